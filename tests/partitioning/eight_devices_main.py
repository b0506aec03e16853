"""Run by test_sharded_training.py in a fresh process with 8 forced CPU devices.

    XLA_FLAGS=--xla_force_host_platform_device_count=8 python -m tests.partitioning.eight_devices_main OUT.npz

Trains a tiny prompt 3 steps on the meshes (data, model) = (8, 1), (4, 2), (2, 4), (1, 8), on
(4, 2) with 2-D parameter sharding, and on a 1-device mesh; checks where the arrays live, and
saves every run's results to OUT.npz (keys `<mesh>_<result>`). Prints "ok <check>" per check.
"""

from __future__ import annotations

import sys

import jax
import numpy as np
from jax.sharding import PartitionSpec as P

from prompt_tuning import partitioning
from tests.partitioning import tiny_run

CFG = tiny_run.CONFIG


def _check_placement(mesh, state, frozen) -> None:
    """The frozen params are split as the rules say; the train state is replicated."""
    expected = {  # name: (array, spec, per-device shard shape)
        "wi_0": (frozen["encoder"]["layers_0"]["mlp"]["wi_0"]["kernel"], P(None, "model"),
                 (CFG.emb_dim, CFG.mlp_dim // 2)),
        "wo": (frozen["decoder"]["layers_0"]["mlp"]["wo"]["kernel"], P("model", None),
               (CFG.mlp_dim // 2, CFG.emb_dim)),
        "query": (frozen["encoder"]["layers_0"]["attention"]["query"]["kernel"],
                  P(None, "model"), (CFG.emb_dim, CFG.num_heads * CFG.head_dim // 2)),
        "embedding": (frozen["token_embedder"]["embedding"], P("model", None),
                      (CFG.vocab_size // 2, CFG.emb_dim)),
        "logits_dense": (frozen["decoder"]["logits_dense"]["kernel"], P(None, "model"),
                         (CFG.emb_dim, CFG.vocab_size // 2)),
        "rel_embedding": (frozen["encoder"]["relpos_bias"]["rel_embedding"], P("model", None),
                          (CFG.num_heads // 2, CFG.relpos_num_buckets)),
        # The train state is replicated whole (P()), as the rules' P(None, None) would have it.
        "prompt": (state.params["prompt/prompt"], P(),
                   (tiny_run.PROMPT_LENGTH, CFG.emb_dim)),
    }
    for name, (array, spec, shard_shape) in expected.items():
        assert array.sharding.spec == spec, (name, array.sharding.spec)
        shapes = {s.data.shape for s in array.addressable_shards}
        assert shapes == {shard_shape}, (name, shapes)
        assert len(array.addressable_shards) == 8, name
    for leaf in jax.tree.leaves(state):
        assert leaf.sharding.is_fully_replicated, leaf.sharding
    batch = partitioning.global_batch(tiny_run.global_numpy_batch(0), mesh)
    tokens = batch["encoder_input_tokens"]
    assert tokens.sharding.spec == P("data"), tokens.sharding.spec
    assert {s.data.shape for s in tokens.addressable_shards} == {(tiny_run.BATCH // 4, 6)}
    print("ok placement")


def _check_errors(mesh) -> None:
    six = {k: v[:6] for k, v in tiny_run.global_numpy_batch(0).items()}
    for call in (lambda: partitioning.global_batch(six, mesh),
                 lambda: partitioning.check_batch_size(6, mesh)):
        try:
            call()
        except ValueError as e:
            assert "batch size 6 is not divisible by the 4 data-parallel devices" in str(e), e
        else:
            raise AssertionError("a batch of 6 on 4 data shards was accepted")
    for bad in (3, 16, 0):
        try:
            partitioning.create_mesh(bad)
        except ValueError as e:
            assert "num_partitions" in str(e), e
        else:
            raise AssertionError(f"num_partitions={bad} was accepted on 8 devices")
    print("ok errors")


def _check_split(frozen, mesh, spec) -> None:
    """An MLP kernel ('embed', 'mlp') has the spec and the per-device shard the mesh implies."""
    kernel = frozen["encoder"]["layers_0"]["mlp"]["wi_0"]["kernel"]
    assert kernel.sharding.spec == spec, (dict(mesh.shape), kernel.sharding.spec)
    ways = [1 if axis is None else mesh.shape[axis] for axis in (tuple(spec) + (None, None))[:2]]
    expected = (CFG.emb_dim // ways[0], CFG.mlp_dim // ways[1])
    assert {s.data.shape for s in kernel.addressable_shards} == {expected}, kernel.sharding


# name: (PartitioningConfig, the spec of an ('embed', 'mlp') kernel)
MESHES = {
    "d8m1": (partitioning.PartitioningConfig(mesh_shape=(8, 1)), P(None, "model")),
    "d4m2": (partitioning.PartitioningConfig(num_partitions=2), P(None, "model")),
    "d2m4": (partitioning.PartitioningConfig(model_parallel_submesh=(2, 2, 1, 1)),
             P(None, "model")),
    "d1m8": (partitioning.PartitioningConfig(mesh_shape=(-1, 8)), P(None, "model")),
    "d4m2_2d": (partitioning.PartitioningConfig(num_partitions=2, parameter_partitioning_dims=2),
                P("data", "model")),
}


def main(out_path: str) -> None:
    assert jax.device_count() == 8, f"expected 8 CPU devices, got {jax.device_count()}"
    rules = partitioning.standard_logical_axis_rules()
    mesh = partitioning.create_mesh(num_partitions=2)
    assert dict(mesh.shape) == {"data": 4, "model": 2}, mesh.shape
    _check_errors(mesh)
    sharded, state, frozen = tiny_run.train_and_score(mesh, rules)
    _check_placement(mesh, state, frozen)
    results = {f"sharded_{k}": v for k, v in sharded.items()}
    for name, (config, spec) in MESHES.items():
        mesh = config.mesh()
        run, _, frozen = tiny_run.train_and_score(mesh, config.rules())
        _check_split(frozen, mesh, spec)
        results.update({f"{name}_{k}": v for k, v in run.items()})
        print("ok mesh", name, dict(mesh.shape))
    single, _, _ = tiny_run.train_and_score(partitioning.create_mesh(1, jax.devices()[:1]), rules)
    results.update({f"single_{k}": v for k, v in single.items()})
    np.savez(out_path, **results)
    print("ok trained")


if __name__ == "__main__":
    main(sys.argv[1])
