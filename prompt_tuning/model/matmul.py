"""Contractions in the activation dtype with float32 accumulation, forward and backward.

With `dtype=float32` this is a plain `jnp.einsum` (the Hugging Face parity path). With a 16-bit
dtype both operands are cast to it and every product, the forward one and the two of the backward
pass, takes 16-bit inputs and accumulates in float32 (`preferred_element_type`), returning float32.
Why the custom backward: JAX's transpose of a `preferred_element_type=float32` product multiplies
the float32 cotangent by the 16-bit operand, which XLA runs as a float32 product (half the speed of
bfloat16 inputs on CPUs with bf16 dot units; on GPUs/TPUs it would leave the fast path too). Casting
the cotangent to the activation dtype first is what `torch.autocast` does as well.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

Array = jax.Array


def einsum(spec: str, lhs: Array, rhs: Array, dtype) -> Array:
    """`jnp.einsum(spec, lhs, rhs)` computed in `dtype`, accumulated and returned in float32.

    `spec` is an explicit two-operand spec ("...->..."); every index summed over appears in both
    operands (true of attention and of a dense layer), so the backward products are einsums too.
    """
    dtype = jnp.dtype(dtype)
    if dtype == jnp.float32:
        return jnp.einsum(spec, lhs.astype(jnp.float32), rhs.astype(jnp.float32))
    return _low_precision_einsum(spec, lhs.astype(dtype), rhs.astype(dtype))


def _operands(spec: str) -> tuple[str, str, str]:
    """"ab,bc->ac" -> ("ab", "bc", "ac")."""
    inputs, out = spec.split("->")
    lhs_spec, rhs_spec = inputs.split(",")
    return lhs_spec, rhs_spec, out


def _product(spec: str, lhs: Array, rhs: Array) -> Array:
    """16-bit operands, float32 accumulation and result.

    The operands are ordered so that the output's first non-batch index comes from the left one:
    XLA's CPU runtime has no bf16 x bf16 -> f32 kernel for some batched products in the other order
    (e.g. "bqhd,bhqk->bkhd" fails at run time where "bhqk,bqhd->bkhd" runs), and the order changes
    nothing else.
    """
    lhs_spec, rhs_spec, out = _operands(spec)
    first_own = next((c for c in out if not (c in lhs_spec and c in rhs_spec)), None)
    if first_own is not None and first_own not in lhs_spec:
        spec, lhs, rhs = f"{rhs_spec},{lhs_spec}->{out}", rhs, lhs
    return jnp.einsum(spec, lhs, rhs, preferred_element_type=jnp.float32)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _low_precision_einsum(spec: str, lhs: Array, rhs: Array) -> Array:
    return _product(spec, lhs, rhs)


def _forward(spec, lhs, rhs):
    return _product(spec, lhs, rhs), (lhs, rhs)


def _backward(spec, residuals, cotangent):
    lhs, rhs = residuals
    lhs_spec, rhs_spec, out = _operands(spec)
    cotangent = cotangent.astype(lhs.dtype)
    d_lhs = _product(f"{out},{rhs_spec}->{lhs_spec}", cotangent, rhs)
    d_rhs = _product(f"{out},{lhs_spec}->{rhs_spec}", cotangent, lhs)
    return d_lhs.astype(lhs.dtype), d_rhs.astype(rhs.dtype)


_low_precision_einsum.defvjp(_forward, _backward)
