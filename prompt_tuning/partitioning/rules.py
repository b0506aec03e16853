"""T5X's logical axis rules: which mesh axis (if any) each logical axis name is split over.

A rule is `(logical_name, mesh_axis)`; `mesh_axis` is a mesh axis name, a tuple of them, or
None (replicated). Flax resolves an array's axes against the rules in order, and the first rule
whose mesh axis is still unused in that array wins, so `('embed', 'model'), ('embed', 'data')`
means "model if free, else data".
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

from prompt_tuning import errors

MeshAxes = Union[None, str, tuple[str, ...]]
LogicalRules = list[tuple[str, MeshAxes]]

# The prompt keeps its own axis names (see `prompts.module.PROMPT_AXES`) and they are always
# replicated, so every host holds the whole prompt and can export it without a gather.
PROMPT_RULES: LogicalRules = [("prompt", None), ("prompt_embed", None), ("prompt_index", None)]

# Axes T5X never splits.
_REPLICATED_RULES: LogicalRules = [
    ("relpos_buckets", None),
    ("abspos_buckets", None),
    ("length", None),
    ("layers", None),
    ("stack", None),
    ("mlp_activations", None),
]

# The T5X rules for (activation_partitioning_dims, parameter_partitioning_dims), in T5X's order.
# 2-D activations put `embed` on 'model'; 2-D parameters put it on 'data'. Order is priority:
# within one array an earlier rule claims its mesh axis first, so for a kernel ('embed', 'mlp')
# under (2, 2) `mlp` takes 'model' and `embed` falls through to 'data'.
_SPLIT = [("mlp", "model"), ("heads", "model"), ("kv", None), ("joined_kv", "model")]
_STANDARD_RULES: dict[tuple[int, int], LogicalRules] = {
    (1, 1): [("batch", "data"), ("vocab", "model"), ("embed", None), *_SPLIT],
    (2, 1): [("batch", "data"), ("vocab", "model"), *_SPLIT, ("embed", "model")],
    (1, 2): [("batch", "data"), ("vocab", "model"), *_SPLIT, ("embed", "data")],
    (2, 2): [("batch", "data"), ("vocab", "model"), *_SPLIT, ("embed", "model"),
             ("embed", "data")],
}


def _check_rule(rule) -> tuple[str, MeshAxes]:
    if not isinstance(rule, (tuple, list)) or len(rule) != 2:
        raise errors.UsageError(f"A logical axis rule must be a pair (logical_name, mesh_axis), got {rule!r}.")
    name, axes = rule
    if not isinstance(name, str):
        raise errors.UsageError(f"A rule's logical name must be a string, got {name!r} in {rule!r}.")
    if isinstance(axes, list):
        axes = tuple(axes)
    ok = axes is None or isinstance(axes, str) or (
        isinstance(axes, tuple) and all(isinstance(a, str) for a in axes))
    if not ok:
        raise errors.UsageError(f"A rule's mesh axis must be None, a name or a tuple of names, got "
                         f"{axes!r} in {rule!r}.")
    return name, axes


def check_rules(rules: Sequence[tuple[str, MeshAxes]], name: str = "logical_axis_rules"
                ) -> LogicalRules:
    """`rules` as a list of checked `(logical_name, mesh_axes)` pairs."""
    if isinstance(rules, (str, bytes)) or not isinstance(rules, (list, tuple)):
        raise errors.UsageError(f"{name} must be a sequence of pairs, got {rules!r}.")
    return [_check_rule(rule) for rule in rules]


def standard_logical_axis_rules(activation_partitioning_dims: int = 1,
                                parameter_partitioning_dims: int = 1,
                                additional_rules: Optional[Sequence[tuple[str, MeshAxes]]] = (),
                                ) -> LogicalRules:
    """T5X's default rules for a ('data', 'model') mesh, plus the replicated prompt axes.

    With the defaults: batch -> data; vocab, mlp, heads, joined_kv -> model; embed, kv and the
    positional/stack axes replicated. `parameter_partitioning_dims=2` also splits `embed` over
    'data' (2-D parameter sharding); `activation_partitioning_dims=2` splits activations'
    `embed` over 'model'. The prompt's axes (`prompt`, `prompt_embed`, `prompt_index`) are
    replicated.

    Args:
      activation_partitioning_dims: 1 or 2.
      parameter_partitioning_dims: 1 or 2.
      additional_rules: put before the standard rules, so they win: `[("embed", "data")]`
        splits `embed` over 'data' where the standard rules would replicate it. (T5X appends
        them instead, so there they can only name axes the standard rules leave out.)
    Returns:
      A list of `(logical_name, mesh_axis_or_None)` pairs, in priority order.
    """
    dims = (activation_partitioning_dims, parameter_partitioning_dims)
    if not all(type(d) is int for d in dims) or dims not in _STANDARD_RULES:
        raise errors.UsageError("activation_partitioning_dims and parameter_partitioning_dims must each "
                         f"be 1 or 2, got {activation_partitioning_dims!r} and "
                         f"{parameter_partitioning_dims!r}.")
    extra = check_rules(additional_rules or (), "additional_rules")
    return [*extra, *_STANDARD_RULES[dims], *_REPLICATED_RULES, *PROMPT_RULES]
