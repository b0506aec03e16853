"""T5X's per-layer parameter names <-> the stacked layers of `scan_layers`.

    encoder/layers_0/attention/query/kernel [embed, joined]  (one per layer, as checkpoints hold)
    encoder/layers/layer/attention/query/kernel [layers, embed, joined]  (scan_layers=True)

and the same for `decoder/`. Checkpoints keep T5X's names; a scanned model stacks them after
reading (`stack_layers`) and nothing of the frozen model is ever written back.
"""

from __future__ import annotations

import re
from typing import Any

import jax
import jax.numpy as jnp
from flax import traverse_util

from prompt_tuning.model.config import T5Config

PyTree = Any
_LAYER = re.compile(r"^(encoder|decoder)/layers_(\d+)/(.+)$")
_STACKED = re.compile(r"^(encoder|decoder)/layers/layer/(.+)$")


def _layer_counts(config: T5Config) -> dict[str, int]:
    return {"encoder": config.num_encoder_layers, "decoder": config.num_decoder_layers}


def stack_layers(params: PyTree, config: T5Config) -> PyTree:
    """Per-layer `{encoder,decoder}/layers_<i>/...` -> `.../layers/layer/...`, with a leading
    layers axis."""
    counts = _layer_counts(config)
    flat = traverse_util.flatten_dict(dict(params), sep="/")
    per_layer: dict[tuple[str, str], dict[int, Any]] = {}
    out = {}
    for path, value in flat.items():
        match = _LAYER.match(path)
        if match:
            stack, index, rest = match.groups()
            per_layer.setdefault((stack, rest), {})[int(index)] = value
        else:
            out[path] = value
    for (stack, rest), by_index in per_layer.items():
        if sorted(by_index) != list(range(counts[stack])):
            raise ValueError(f"{stack} layer parameters {rest} exist for layers "
                             f"{sorted(by_index)}, not for all of 0..{counts[stack] - 1}.")
        out[f"{stack}/layers/layer/{rest}"] = jnp.stack(
            [by_index[i] for i in range(counts[stack])])
    return traverse_util.unflatten_dict(out, sep="/")


def unstack_layers(params: PyTree) -> PyTree:
    """The inverse of `stack_layers`: T5X's per-layer names again."""
    flat = traverse_util.flatten_dict(dict(params), sep="/")
    out = {}
    for path, value in flat.items():
        match = _STACKED.match(path)
        if match:
            stack, rest = match.groups()
            for i in range(value.shape[0]):
                out[f"{stack}/layers_{i}/{rest}"] = value[i]
        else:
            out[path] = value
    return traverse_util.unflatten_dict(out, sep="/")


def stack_onto(params: PyTree, config: T5Config, shardings: PyTree) -> PyTree:
    """`stack_layers`, compiled to write the stacked arrays straight onto `shardings`."""
    return jax.jit(lambda p: stack_layers(p, config), out_shardings=shardings)(params)
