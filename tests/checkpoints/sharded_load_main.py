r"""Run by test_sharded_load.py in a fresh process with 8 forced CPU devices.

    XLA_FLAGS=--xla_force_host_platform_device_count=8 \
        python -m tests.checkpoints.sharded_load_main DIR

Writes a T5X legacy, a T5X orbax and one of our checkpoints under DIR (DIR/hf and
DIR/hf_expected.npz come from the parent, which has torch), loads each onto a (4, 2) mesh and
checks every array's sharding and every device shard's values. Prints "ok <format>" per format.
"""

from __future__ import annotations

import os
import sys

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from prompt_tuning import checkpoints
from tests.checkpoints import t5x_writers, tiny


def _spec(shape: tuple[int, ...]) -> P:
    if len(shape) == 2:
        return P("data" if shape[0] % 4 == 0 else None, "model")
    return P("data")


def _check(loaded, expected, shardings) -> None:
    flat = tiny.flat(loaded.params)
    assert sorted(flat) == sorted(expected), "parameter paths differ"
    for path, want in expected.items():
        array = flat[path]
        assert array.sharding == shardings[path], (path, array.sharding)
        assert array.dtype == want.dtype, (path, array.dtype, want.dtype)
        np.testing.assert_array_equal(np.asarray(array), want, err_msg=path)
        for shard in array.addressable_shards:
            np.testing.assert_array_equal(np.asarray(shard.data), want[shard.index],
                                          err_msg=f"{path} on {shard.device}")
        if _spec(want.shape) != P():
            assert array.addressable_shards[0].data.size < want.size, f"{path} not split"


def main(directory: str) -> None:
    assert jax.device_count() == 8, f"expected 8 CPU devices, got {jax.device_count()}"
    mesh = Mesh(np.array(jax.devices()).reshape(4, 2), ("data", "model"))
    params = tiny.random_params(bfloat16=("kernel",))
    shardings = {k: NamedSharding(mesh, _spec(v.shape)) for k, v in params.items()}
    tree = tiny.nested(shardings)
    sources = {
        "t5x_legacy": t5x_writers.write_t5x_legacy(os.path.join(directory, "legacy"), params, 1),
        "t5x_orbax": t5x_writers.write_t5x_orbax(os.path.join(directory, "t5x_orbax"), params, 2),
    }
    checkpoints.save_checkpoint(params, tiny.CONFIG, os.path.join(directory, "ours"))
    sources["orbax"] = os.path.join(directory, "ours")
    for name, path in sources.items():
        loaded = checkpoints.load_checkpoint(path, config=tiny.CONFIG, shardings=tree)
        assert loaded.format == name
        _check(loaded, params, shardings)
        print("ok", name)
    with np.load(os.path.join(directory, "hf_expected.npz"), allow_pickle=False) as data:
        hf_expected = {k.replace(".", "/"): data[k] for k in data.files}
    loaded = checkpoints.load_checkpoint(os.path.join(directory, "hf"), shardings=tree)
    _check(loaded, hf_expected, shardings)
    print("ok", loaded.format)
    # rel_embedding is [2 heads, 32]: 2 rows cannot be split over the 4 "data" devices.
    bad = {**shardings, "encoder/relpos_bias/rel_embedding": NamedSharding(mesh, P("data"))}
    try:
        checkpoints.load_checkpoint(sources["orbax"], shardings=tiny.nested(bad))
    except ValueError as e:
        assert "encoder/relpos_bias/rel_embedding" in str(e) and "does not fit" in str(e), e
        print("ok refused")


if __name__ == "__main__":
    main(sys.argv[1])
