"""The T5 1.1 architecture as a frozen dataclass, and the named sizes."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import jax.numpy as jnp

DTYPES = ("float32", "bfloat16", "float16")
# What each layer keeps for the backward pass: everything ("none": no rematerialisation), the
# matmul outputs ("minimal"), or only its input ("full": the rest is recomputed).
REMAT_POLICIES = ("none", "minimal", "full")


@dataclasses.dataclass(frozen=True)
class T5Config:
    """Hyper-parameters of a T5 1.1 encoder-decoder.

    Attributes:
        vocab_size: rows of the shared input embedding and columns of `logits_dense`
            (32,128 for the T5 SentencePiece vocabulary: 32,100 ids padded to a multiple of 128).
        emb_dim: width of the residual stream (`embed` axis).
        num_heads: attention heads (`heads` axis).
        num_encoder_layers / num_decoder_layers: depth of each stack.
        head_dim: width of one head; query/key/value kernels are `[embed, heads * head_dim]`.
        mlp_dim: width of the gated-GELU MLP (`mlp` axis).
        relpos_num_buckets / relpos_max_distance: relative position buckets, shared by
            every layer of a stack.
        dropout_rate: used for every dropout of the model when dropout is enabled.
        layer_norm_epsilon: the RMS norm's epsilon.
        dtype: activation dtype ("bfloat16" on accelerators); logits are always float32.
        param_dtype: dtype parameters are created in.
        remat_policy: rematerialisation of each encoder and decoder layer in the backward pass
            (REMAT_POLICIES); it trades compute for memory and changes no result.
        scan_layers: run the encoder and the decoder layers each as one scan over stacked
            parameters (`layers` axis); the tree then holds `{encoder,decoder}/layers/layer/...`
            (`model.scanned_params` converts T5X's per-layer names to it and back). The same
            model, but other dropout masks (they follow the layers' places in the tree).
    """

    vocab_size: int = 32128
    emb_dim: int = 512
    num_heads: int = 6
    num_encoder_layers: int = 8
    num_decoder_layers: int = 8
    head_dim: int = 64
    mlp_dim: int = 1024
    relpos_num_buckets: int = 32
    relpos_max_distance: int = 128
    dropout_rate: float = 0.0
    layer_norm_epsilon: float = 1e-6
    dtype: str = "float32"
    param_dtype: str = "float32"
    remat_policy: str = "none"
    scan_layers: bool = False

    def __post_init__(self):
        for name in ("vocab_size", "emb_dim", "num_heads", "num_encoder_layers",
                                  "num_decoder_layers", "head_dim", "mlp_dim", "relpos_num_buckets",
                                  "relpos_max_distance"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"T5Config.{name} must be a positive integer, got {value!r}.")
        if not 0.0 <= self.dropout_rate < 1.0:
            raise ValueError(f"T5Config.dropout_rate must be in [0, 1), got {self.dropout_rate!r}.")
        if self.remat_policy not in REMAT_POLICIES:
            raise ValueError(f"T5Config.remat_policy must be one of {REMAT_POLICIES}, got "
                             f"{self.remat_policy!r}.")
        for name in ("dtype", "param_dtype"):
            if getattr(self, name) not in DTYPES:
                raise ValueError(f"T5Config.{name} must be one of {DTYPES}, got {getattr(self, name)!r}.")

    @property
    def activation_dtype(self) -> Any:
        return jnp.dtype(self.dtype)

    @property
    def parameter_dtype(self) -> Any:
        return jnp.dtype(self.param_dtype)

    @property
    def layer_dtypes(self) -> dict[str, Any]:
        """`dtype` and `param_dtype` keyword arguments for the layers."""
        return dict(dtype=self.activation_dtype, param_dtype=self.parameter_dtype)

    def remat(self, layer: type) -> type:
        """`layer` (a Module class whose `__call__` ends in a static `deterministic`), wrapped
        for `remat_policy`."""
        if self.remat_policy == "none":
            return layer
        import flax.linen as nn  # pylint: disable=import-outside-toplevel
        import jax  # pylint: disable=import-outside-toplevel

        policy = (jax.checkpoint_policies.dots_with_no_batch_dims_saveable
                  if self.remat_policy == "minimal" else jax.checkpoint_policies.nothing_saveable)
        # self counts as argument 0 for flax's static_argnums.
        deterministic = len(inspect.signature(layer.__call__).parameters) - 1
        return nn.remat(layer, policy=policy, static_argnums=(deterministic,))

    def replace(self, **changes) -> "T5Config":
        return dataclasses.replace(self, **changes)


# Sizes of T5 1.1 (and LM-adapted T5 1.1): layers per stack, width, heads, head width, MLP width.
# `tiny` is ours: small enough to train on a laptop CPU in seconds.
SIZES: dict[str, dict[str, int]] = {
        "tiny": dict(emb_dim=64, num_heads=4, num_encoder_layers=2, num_decoder_layers=2,
                                  head_dim=16, mlp_dim=128),
        "small": dict(emb_dim=512, num_heads=6, num_encoder_layers=8, num_decoder_layers=8,
                                    head_dim=64, mlp_dim=1024),
        "base": dict(emb_dim=768, num_heads=12, num_encoder_layers=12, num_decoder_layers=12,
                                  head_dim=64, mlp_dim=2048),
        "large": dict(emb_dim=1024, num_heads=16, num_encoder_layers=24, num_decoder_layers=24,
                                    head_dim=64, mlp_dim=2816),
        "xl": dict(emb_dim=2048, num_heads=32, num_encoder_layers=24, num_decoder_layers=24,
                              head_dim=64, mlp_dim=5120),
        "xxl": dict(emb_dim=4096, num_heads=64, num_encoder_layers=24, num_decoder_layers=24,
                                head_dim=64, mlp_dim=10240),
}


def t5_1_1(size: str, **overrides) -> T5Config:
    """The T5 1.1 config of a named size, e.g. `t5_1_1("base", dtype="bfloat16")`."""
    if size not in SIZES:
        raise ValueError(f"Unknown T5 1.1 size {size!r}; expected one of {sorted(SIZES)}.")
    return T5Config(**{**SIZES[size], **overrides})
