"""Shardings of parameters, train state and batches, and placing trees onto them.

Frozen parameters follow the logical axis rules (e.g. `mlp` split over 'model'); the prompt,
its optimizer state and the step count are replicated (they are tiny and every host needs the
whole prompt to save it); batches are split over 'data' on their leading axis.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import numpy as np
from flax import traverse_util
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from prompt_tuning import errors
from prompt_tuning.model import T5Config, Transformer, params as params_lib
from prompt_tuning.partitioning.rules import LogicalRules

PyTree = Any


def replicated(mesh: Mesh) -> NamedSharding:
    """Every device holds the whole array."""
    return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (batch) axis split over 'data', the rest replicated: `[batch, ...]`."""
    return NamedSharding(mesh, P("data"))


def _is_spec(x: Any) -> bool:
    return isinstance(x, P)


def _check_spec(path: str, spec: P, shape: tuple[int, ...], mesh: Mesh) -> None:
    """A clear error where the mesh cannot split a parameter the way the rules ask."""
    for dim, axes in enumerate(spec):
        if axes is None:
            continue
        names = (axes,) if isinstance(axes, str) else tuple(axes)
        unknown = [a for a in names if a not in mesh.shape]
        if unknown:
            raise errors.UsageError(f"The logical axis rules put parameter {path} on mesh axis "
                             f"{unknown[0]!r}, but the mesh has axes {tuple(mesh.axis_names)}.")
        ways = math.prod(mesh.shape[a] for a in names)
        if shape[dim] % ways:
            raise errors.UsageError(f"Parameter {path} {list(shape)}: dimension {dim} (size {shape[dim]}) "
                             f"is not divisible by the {ways} devices of mesh axis {axes!r}; "
                             "choose a num_partitions that divides it.")


def _check_named(logical: PyTree, rules: LogicalRules) -> None:
    named = {name for name, _ in rules}
    flat = traverse_util.flatten_dict(logical, sep="/")
    for path, spec in sorted(flat.items()):
        for name in spec:
            if name is not None and name not in named:
                raise errors.UsageError(
                    f"parameter {path} has logical axis {name!r}, which no partitioning rule "
                    f"names; add one, e.g. additional_rules = [({name!r}, None)].")


def param_shardings(model_or_config: Transformer | T5Config, mesh: Mesh,
                    rules: LogicalRules) -> PyTree:
    """A `NamedSharding` per parameter, same tree as the unboxed params.

    The logical axes come from the model's `nn.with_logical_partitioning` annotations, mapped
    to mesh axes by `rules`. A name no rule mentions is refused (flax would replicate it
    silently, which hides a missing rule until the memory runs out); `(name, None)` replicates.
    """
    boxed = params_lib.abstract_variables(model_or_config)["params"]
    logical = nn.get_partition_spec(boxed)
    _check_named(logical, rules)
    shapes = nn.meta.unbox(boxed)
    specs = nn.logical_to_mesh(logical, rules)
    flat_specs = traverse_util.flatten_dict(specs, sep="/")
    flat_shapes = traverse_util.flatten_dict(shapes, sep="/")
    for path, spec in flat_specs.items():
        _check_spec(path, spec, flat_shapes[path].shape, mesh)
    return traverse_util.unflatten_dict(
        {path: NamedSharding(mesh, spec) for path, spec in flat_specs.items()}, sep="/")


def flat_shardings(tree_of_shardings: PyTree, paths: Sequence[str]) -> dict[str, NamedSharding]:
    """`{path: sharding}` for the paths of a flat dict such as the trainable one."""
    flat = traverse_util.flatten_dict(tree_of_shardings, sep="/")
    missing = [p for p in paths if p not in flat]
    if missing:
        raise ValueError(f"No sharding for parameter {missing[0]!r}; the tree has paths like "
                         f"{sorted(flat)[:3]}.")
    return {p: flat[p] for p in paths}


def state_shardings(state: PyTree, mesh: Mesh) -> PyTree:
    """The train state's shardings: every leaf (prompt, optimizer state, step) replicated.

    `state` may be concrete or abstract (`jax.eval_shape`); the result has its structure.
    """
    return jax.tree.map(lambda _: replicated(mesh), state)


def _identity(x: Any) -> Any:
    return x


def _put_one(x: Any, sharding: NamedSharding) -> jax.Array:
    if isinstance(x, jax.Array) and x.sharding == sharding:
        return x
    if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        # Typed PRNG keys have no numpy form: move their raw uint32 data instead.
        data = _put_one(jax.random.key_data(x), sharding)
        return jax.random.wrap_key_data(data, impl=jax.random.key_impl(x))
    if sharding.is_fully_addressable or (isinstance(x, jax.Array) and not x.is_fully_addressable):
        # A jitted copy, not `device_put`: on a 1-device mesh `device_put` gives arrays whose
        # type lacks the mesh, so the first jitted step's outputs would retrace the step.
        return jax.jit(_identity, out_shardings=sharding)(x)
    # Host-local value (numpy or a local jax.Array), the same on every process: each process
    # fills its own devices' slices.
    host = np.asarray(x)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def put_sharded(tree: PyTree, shardings: PyTree) -> PyTree:
    """Places every leaf of `tree` on its sharding (a same-structure tree, or one sharding).

    Host-local leaves (numpy, single-device arrays) must hold the same value on every process;
    arrays already on their sharding are returned as they are.
    """
    if isinstance(shardings, jax.sharding.Sharding):
        return jax.tree.map(lambda x: _put_one(x, shardings), tree)
    return jax.tree.map(_put_one, tree, shardings)


def init_sharded_params(model: Transformer, rng: jax.Array, mesh: Mesh,
                        rules: LogicalRules) -> PyTree:
    """Randomly initialised, unboxed params, each born on its sharding (big_vision style).

    Shapes come from `jax.eval_shape`; `jax.jit(init, out_shardings=...)` then writes every
    shard on its own device, so no host ever holds the whole model.
    """
    shardings = param_shardings(model, mesh, rules)
    init = jax.jit(lambda key: params_lib.init_params(model, key), out_shardings=shardings)
    with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
        return init(put_sharded(rng, replicated(mesh)))


def shard_train_state(state: PyTree, mesh: Mesh) -> PyTree:
    """The `TrainState` (prompt, optimizer state, step) replicated over the mesh."""
    return put_sharded(state, state_shardings(state, mesh))


def frozen_shardings(tree_of_shardings: PyTree, trainable_paths: Sequence[str]) -> PyTree:
    """The parameter shardings without the trainable paths (the tree `train_step` gets frozen)."""
    flat = traverse_util.flatten_dict(tree_of_shardings, sep="/")
    flat_shardings(tree_of_shardings, trainable_paths)  # a clear error for unknown paths
    chosen = set(trainable_paths)
    return traverse_util.unflatten_dict({p: s for p, s in flat.items() if p not in chosen},
                                        sep="/")

