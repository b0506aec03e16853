"""T5X checkpoints written the way t5x's orbax manager writes them, read back exactly."""

import os

import numpy as np

from prompt_tuning import checkpoints
from tests.checkpoints import t5x_writers, tiny


def test_layout_is_t5x_orbax(tmp_path):
    step_dir = t5x_writers.write_t5x_orbax(str(tmp_path), tiny.random_params(), step=7)
    # What t5x's OrbaxCheckpointManagerInterface leaves: a step dir with a `state` PyTree item.
    assert os.path.basename(step_dir) == "checkpoint_7"
    assert os.path.isfile(os.path.join(step_dir, "state", "_METADATA"))
    assert os.path.isfile(os.path.join(step_dir, "state", "manifest.ocdbt"))  # use_ocdbt=True
    assert checkpoints.detect_format(step_dir) == "t5x_orbax"
    assert checkpoints.detect_format(str(tmp_path)) == "t5x_orbax"


def test_round_trip_reads_only_the_target(tmp_path):
    params = tiny.random_params(bfloat16=("kernel",))
    step_dir = t5x_writers.write_t5x_orbax(str(tmp_path), params, step=7)

    loaded = checkpoints.load_checkpoint(step_dir)

    assert (loaded.format, loaded.step, loaded.config) == ("t5x_orbax", 7, tiny.CONFIG)
    assert loaded.prompt is None
    tiny.assert_params_equal(loaded.params, params)


def test_model_dir_state_dir_and_prompt(tmp_path):
    t5x_writers.write_t5x_orbax(str(tmp_path), tiny.random_params(seed=3), step=100)
    params, prompt = tiny.random_params(seed=4), tiny.random_prompt()
    newest = t5x_writers.write_t5x_orbax(str(tmp_path), params, step=200, prompt=prompt)

    from_model_dir = checkpoints.load_checkpoint(str(tmp_path), config=tiny.CONFIG)
    from_state_dir = checkpoints.load_checkpoint(os.path.join(newest, "state"))

    for loaded in (from_model_dir, from_state_dir):
        assert loaded.step == 200
        np.testing.assert_array_equal(loaded.prompt, prompt)
        tiny.assert_params_equal(loaded.params, params)


def test_dtype_cast_on_restore(tmp_path):
    params = tiny.random_params()
    step_dir = t5x_writers.write_t5x_orbax(str(tmp_path), params, step=1)

    loaded = checkpoints.load_checkpoint(step_dir, dtype="bfloat16")

    import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
    tiny.assert_params_equal(loaded.params, {k: v.astype(jnp.bfloat16) for k, v in params.items()})
