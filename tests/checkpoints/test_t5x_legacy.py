"""T5X legacy checkpoints (msgpack + zarr), written as t5x writes them, read back exactly."""

import os

import numpy as np
import pytest

from prompt_tuning import checkpoints
from prompt_tuning.checkpoints import t5x_legacy
from prompt_tuning.model import t5_1_1
from tests.checkpoints import t5x_writers, tiny

# Kernels and the embedding go to bfloat16 (as the public checkpoints store them); norms stay f32.
BF16 = ("kernel", "embedding")


@pytest.mark.parametrize("kvstore", ["gcs", "file", "gfile"])
def test_round_trip_inline_and_zarr_arrays(tmp_path, kvstore):
    params = tiny.random_params(bfloat16=BF16)
    step_dir = t5x_writers.write_t5x_legacy(str(tmp_path), params, step=1100000,
                                            kvstore=kvstore)
    zarr_dirs = [d for d in os.listdir(step_dir) if d.startswith("target.")]
    inline = [p for p, v in params.items() if v.size < 256]
    assert "target.encoder.layers_0.attention.query.kernel" in zarr_dirs
    assert inline and len(zarr_dirs) == len(params) - len(inline)

    loaded = checkpoints.load_checkpoint(step_dir)

    assert loaded.format == "t5x_legacy" == checkpoints.detect_format(step_dir)
    assert loaded.step == 1100000
    assert loaded.prompt is None
    assert loaded.config == tiny.CONFIG  # inferred from the shapes alone
    tiny.assert_params_equal(loaded.params, params)


def test_zarr_spec_records_dummy_bucket_and_relative_path(tmp_path):
    params = tiny.random_params(bfloat16=BF16)
    step_dir = t5x_writers.write_t5x_legacy(str(tmp_path), params, step=3)
    contents = t5x_legacy.read_msgpack(os.path.join(step_dir, "checkpoint"))
    spec = contents["optimizer"]["target"]["encoder"]["layers_0"]["mlp"]["wi_0"]["kernel"]
    # The layout we claim to read, as t5x's gs:// writer records it.
    assert spec["kvstore"] == {"driver": "gcs", "bucket": "t5x-dummy-bucket",
                               "path": "target.encoder.layers_0.mlp.wi_0.kernel/"}
    assert spec["dtype"] == "bfloat16" and spec["metadata"]["compressor"]["id"] == "gzip"
    assert isinstance(contents["optimizer"]["target"]["encoder"]["encoder_norm"]["scale"],
                      np.ndarray)


def test_model_dir_reads_largest_step_and_checkpoint_file_is_accepted(tmp_path):
    old, new = tiny.random_params(seed=1), tiny.random_params(seed=2)
    t5x_writers.write_t5x_legacy(str(tmp_path), old, step=9)
    newest = t5x_writers.write_t5x_legacy(str(tmp_path), new, step=10)
    os.makedirs(tmp_path / "checkpoint_11.tmp-1700000000")  # an unfinished save is ignored

    from_model_dir = checkpoints.load_checkpoint(str(tmp_path))
    from_file = checkpoints.load_checkpoint(os.path.join(newest, "checkpoint"))

    for loaded in (from_model_dir, from_file):
        assert loaded.step == 10 and loaded.path == newest
        tiny.assert_params_equal(loaded.params, new)


def test_reference_prompt_is_returned_separately(tmp_path):
    params, prompt = tiny.random_params(), tiny.random_prompt()
    step_dir = t5x_writers.write_t5x_legacy(str(tmp_path), params, step=5, prompt=prompt)

    loaded = checkpoints.load_checkpoint(step_dir, config=tiny.CONFIG)

    np.testing.assert_array_equal(loaded.prompt, prompt)
    assert "prompt" not in loaded.params["encoder"]
    tiny.assert_params_equal(loaded.params, params)


def test_dtype_casts_every_parameter(tmp_path):
    params = tiny.random_params(bfloat16=BF16)
    step_dir = t5x_writers.write_t5x_legacy(str(tmp_path), params, step=1)

    loaded = checkpoints.load_checkpoint(step_dir, dtype="float32")

    tiny.assert_params_equal(loaded.params,
                             {k: v.astype(np.float32) for k, v in params.items()})


def test_wrong_size_is_named_before_reading_arrays(tmp_path):
    step_dir = t5x_writers.write_t5x_legacy(str(tmp_path), tiny.random_params(), step=1)
    with pytest.raises(checkpoints.CheckpointError,
                       match=r"checkpoint does not match the chosen model size .*"
                             r"encoder/layers_0/attention/key/kernel is \(32, 32\) in the "
                             r"checkpoint but \(512, 384\) for t5_1_1 'small'"):
        checkpoints.load_checkpoint(step_dir, config=t5_1_1("small", vocab_size=128))
