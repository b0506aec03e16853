"""A checkpoint's architecture: inferred from its parameter shapes, or checked against a config.

T5X checkpoints store no config, but T5 1.1 shapes determine it: `token_embedder/embedding` is
`[vocab, embed]`, `mlp/wi_0/kernel` is `[embed, mlp]`, `relpos_bias/rel_embedding` is
`[heads, buckets]`, `attention/query/kernel` is `[embed, heads * head_dim]`, and the layer count is
the number of `layers_<i>`. Only `relpos_max_distance` (128 in every T5 1.1) cannot be seen.
"""

from __future__ import annotations

import re
from typing import Mapping, Optional, Sequence

import jax
from flax import traverse_util

from prompt_tuning.errors import CheckpointError
from prompt_tuning.model.config import SIZES, T5Config
from prompt_tuning.model.params import abstract_params

Shapes = Mapping[str, jax.ShapeDtypeStruct]
_EMBEDDING = "token_embedder/embedding"
_LOGITS = "decoder/logits_dense/kernel"
_RELPOS = "encoder/relpos_bias/rel_embedding"
_QUERY = "encoder/layers_0/attention/query/kernel"
_WI_0 = "encoder/layers_0/mlp/wi_0/kernel"


def size_name(config: T5Config) -> Optional[str]:
    """The named T5 1.1 size whose dimensions `config` has ("small", ...), else None."""
    for name, dims in SIZES.items():
        if all(getattr(config, k) == v for k, v in dims.items()):
            return name
    return None


def describe(config: T5Config) -> str:
    """"t5_1_1 'small'" for a named size, else the dimensions."""
    name = size_name(config)
    if name is not None:
        return f"t5_1_1 {name!r}"
    return (f"the model (embed {config.emb_dim}, {config.num_encoder_layers}+"
            f"{config.num_decoder_layers} layers, {config.num_heads} heads x {config.head_dim}, "
            f"mlp {config.mlp_dim})")


def _count_layers(shapes: Shapes, stack: str) -> int:
    pattern = re.compile(rf"^{stack}/layers_(\d+)/")
    found = {int(m.group(1)) for m in map(pattern.match, shapes) if m}
    return len(found)


def infer_config(shapes: Shapes, **overrides) -> T5Config:
    """The T5 1.1 config whose parameters have these shapes (see module doc)."""
    if "encoder/layers_0/mlp/wi/kernel" in shapes:
        raise CheckpointError("checkpoint has a single-input MLP (mlp/wi/kernel): it is a T5 1.0 "
                              "model; only T5 1.1 (gated-GELU, mlp/wi_0 + wi_1) is supported.")
    missing = [k for k in (_EMBEDDING, _LOGITS, _RELPOS, _QUERY, _WI_0) if k not in shapes]
    if missing:
        raise CheckpointError(f"cannot infer the model from the checkpoint: it has no {missing[0]}"
                              " (is it a T5 1.1 encoder-decoder?).")
    vocab, emb_dim = shapes[_EMBEDDING].shape
    heads, buckets = shapes[_RELPOS].shape
    joined_kv = shapes[_QUERY].shape[1]
    if heads <= 0 or joined_kv % heads:
        raise CheckpointError(f"cannot infer the head width: {_QUERY} has {joined_kv} columns, "
                              f"not a multiple of the {heads} heads of {_RELPOS}.")
    dims = dict(vocab_size=vocab, emb_dim=emb_dim, num_heads=heads, head_dim=joined_kv // heads,
                mlp_dim=shapes[_WI_0].shape[1], relpos_num_buckets=buckets,
                num_encoder_layers=_count_layers(shapes, "encoder"),
                num_decoder_layers=_count_layers(shapes, "decoder"))
    try:
        return T5Config(**{**dims, **overrides})
    except ValueError as e:
        raise CheckpointError(f"cannot infer the model from the checkpoint: {e}") from e


def expected_shapes(config: T5Config) -> dict[str, tuple[int, ...]]:
    """{path: shape} of `config`'s parameters, without a prompt, computed abstractly."""
    flat = traverse_util.flatten_dict(abstract_params(config), sep="/")
    return {k: tuple(v.shape) for k, v in flat.items()}


_STACKS = ("token_embedder", "encoder", "decoder")


def _report_order(path: str) -> tuple[int, int]:
    # Name a kernel of the first encoder layer rather than a norm scale: it shows both dims.
    top = path.split("/")[0]
    return (0 if path.endswith("kernel") else 1,
            _STACKS.index(top) if top in _STACKS else len(_STACKS))


def _listed(paths: Sequence[str], limit: int = 3) -> str:
    shown = ", ".join(paths[:limit])
    return shown + (f" (+{len(paths) - limit} more)" if len(paths) > limit else "")


def _vocab_mismatch(shapes: Shapes, expected: Mapping[str, tuple], config: T5Config
                    ) -> Optional[str]:
    for path, axis in ((_EMBEDDING, 0), (_LOGITS, 1)):
        if path in shapes and tuple(shapes[path].shape) != expected[path]:
            got = tuple(shapes[path].shape)
            if len(got) == 2 and got[1 - axis] == expected[path][1 - axis]:
                return (f"checkpoint vocabulary size does not match the chosen model: {path} is "
                        f"{got} in the checkpoint ({got[axis]} tokens) but {expected[path]} for "
                        f"{describe(config)} with vocab_size={config.vocab_size}.")
    return None


def check_matches(shapes: Shapes, config: T5Config) -> None:
    """Raises a one-line CheckpointError naming the first differences from `config`'s params."""
    expected = expected_shapes(config)
    vocab_message = _vocab_mismatch(shapes, expected, config)
    if vocab_message:
        raise CheckpointError(vocab_message)
    wrong = sorted((k for k in expected if k in shapes and tuple(shapes[k].shape) != expected[k]),
                   key=_report_order)
    missing = [k for k in expected if k not in shapes]
    unexpected = [k for k in shapes if k not in expected]
    if not (wrong or missing or unexpected):
        return
    parts = []
    if wrong:
        first = wrong[0]
        parts.append(f"{first} is {tuple(shapes[first].shape)} in the checkpoint but "
                     f"{expected[first]} for {describe(config)}"
                     + (f" ({len(wrong) - 1} more shape mismatches)" if len(wrong) > 1 else ""))
    if missing:
        parts.append(f"missing from the checkpoint: {_listed(missing)}")
    if unexpected:
        parts.append(f"unexpected in the checkpoint: {_listed(unexpected)}")
    layers = (f" (checkpoint has {_count_layers(shapes, 'encoder')}+"
              f"{_count_layers(shapes, 'decoder')} layers, the model "
              f"{config.num_encoder_layers}+{config.num_decoder_layers})"
              if (_count_layers(shapes, "encoder"), _count_layers(shapes, "decoder"))
              != (config.num_encoder_layers, config.num_decoder_layers) else "")
    raise CheckpointError("checkpoint does not match the chosen model size" + layers + ": "
                          + "; ".join(parts) + ".")


def check_prompt(prompt_shape: tuple[int, ...], config: T5Config) -> None:
    if len(prompt_shape) != 2 or prompt_shape[1] != config.emb_dim:
        raise CheckpointError(f"checkpoint prompt is {tuple(prompt_shape)} but the model's "
                              f"prompts are [prompt_length, {config.emb_dim}].")
