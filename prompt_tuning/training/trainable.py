"""Which parameters train: regexes over '/'-joined parameter paths, e.g. `prompt/prompt`.

The model's parameters are split into a small trainable dict and a frozen tree. Gradients are
taken only with respect to the trainable dict, so frozen weights get neither gradient buffers nor
optimizer state; the frozen tree is passed to the step as a constant.
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

from flax import traverse_util

from prompt_tuning import errors
from prompt_tuning.prompts import seam

PyTree = Any
Flat = dict[str, Any]
DEFAULT_TRAINABLE = seam.TRAINABLE


def flatten(params: PyTree) -> Flat:
    return traverse_util.flatten_dict(params, sep="/")


def unflatten(flat: Mapping[str, Any]) -> PyTree:
    return traverse_util.unflatten_dict(dict(flat), sep="/")


def trainable_paths(params: PyTree, patterns: Sequence[str] = DEFAULT_TRAINABLE) -> list[str]:
    """The paths matched (`re.fullmatch`) by any pattern. Raises if that is none or all."""
    if isinstance(patterns, str):
        patterns = (patterns,)
    try:
        compiled = [re.compile(p) for p in patterns]
    except re.error as e:
        raise errors.UsageError(f"Bad trainable-parameter regex in {list(patterns)}: {e}") from e
    paths = sorted(flatten(params))
    chosen = [p for p in paths if any(c.fullmatch(p) for c in compiled)]
    if not chosen:
        raise errors.UsageError(f"Trainable-parameter regexes {list(patterns)} match no "
                                f"parameter; paths look like {paths[:3]}.")
    if len(chosen) == len(paths):
        raise errors.UsageError(f"Trainable-parameter regexes {list(patterns)} match every "
                                "parameter: that is full fine-tuning, not prompt tuning. Narrow "
                                "them (e.g. 'prompt/.*').")
    return chosen


def split(params: PyTree, paths: Sequence[str]) -> tuple[Flat, PyTree]:
    """(trainable {path: array}, frozen tree without those paths)."""
    flat = flatten(params)
    chosen = set(paths)
    return ({p: flat[p] for p in paths},
            unflatten({p: v for p, v in flat.items() if p not in chosen}))


def merge(trainable: Mapping[str, Any], frozen: PyTree) -> PyTree:
    """The inverse of `split`: one parameter tree for `model.apply`."""
    return unflatten({**flatten(frozen), **trainable})
