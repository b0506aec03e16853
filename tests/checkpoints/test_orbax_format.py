"""Our orbax format: save_checkpoint writes it atomically, load_checkpoint reads it exactly."""

import json
import os

import jax.numpy as jnp
import numpy as np
import pytest

from prompt_tuning import checkpoints
from tests.checkpoints import tiny


def _nested(flat):
    return tiny.nested({k: jnp.asarray(v) for k, v in flat.items()})


def test_round_trip_with_config_and_prompt(tmp_path):
    config = tiny.CONFIG.replace(relpos_max_distance=64, dropout_rate=0.1)
    params, prompt = tiny.random_params(config, bfloat16=("embedding",)), tiny.random_prompt()
    path = str(tmp_path / "model")

    checkpoints.save_checkpoint(_nested(params), config, path, prompt=prompt)
    loaded = checkpoints.load_checkpoint(path)

    assert sorted(os.listdir(path)) == ["model_config.json", "params", "prompt"]
    with open(os.path.join(path, "model_config.json")) as f:
        assert json.load(f)["relpos_max_distance"] == 64
    assert (loaded.format, loaded.config, loaded.step) == ("orbax", config, None)
    np.testing.assert_array_equal(loaded.prompt, prompt)
    tiny.assert_params_equal(loaded.params, params)
    assert [p for p in os.listdir(tmp_path) if p != "model"] == []  # no temporary left


def test_prompt_inside_params_is_saved_as_the_prompt(tmp_path):
    params, prompt = tiny.random_params(), tiny.random_prompt()
    tree = _nested({**params, "prompt/prompt": prompt})

    checkpoints.save_checkpoint(tree, tiny.CONFIG, str(tmp_path / "m"))
    loaded = checkpoints.load_checkpoint(str(tmp_path / "m"))

    np.testing.assert_array_equal(loaded.prompt, prompt)
    tiny.assert_params_equal(loaded.params, params)


def test_existing_dir_is_refused_unless_overwrite(tmp_path):
    path = str(tmp_path / "m")
    checkpoints.save_checkpoint(_nested(tiny.random_params(seed=1)), tiny.CONFIG, path)
    newer = tiny.random_params(seed=2)

    with pytest.raises(checkpoints.CheckpointError, match=r"exists and is not empty.*overwrite"):
        checkpoints.save_checkpoint(_nested(newer), tiny.CONFIG, path)
    checkpoints.save_checkpoint(_nested(newer), tiny.CONFIG, path, overwrite=True)

    tiny.assert_params_equal(checkpoints.load_checkpoint(path).params, newer)
    assert sorted(os.listdir(tmp_path)) == ["m"]


def test_params_not_matching_config_are_not_written(tmp_path):
    params = tiny.random_params()
    with pytest.raises(checkpoints.CheckpointError, match=r"does not match the chosen model size"):
        checkpoints.save_checkpoint(_nested(params), tiny.CONFIG.replace(mlp_dim=48),
                                    str(tmp_path / "m"))
    assert os.listdir(tmp_path) == []


def test_failure_while_writing_leaves_nothing(tmp_path):
    # The prompt is written after the parameters; orbax cannot store an object array, so the
    # save fails with the parameters already in the temporary directory.
    bad_prompt = np.array([[object()] * tiny.CONFIG.emb_dim] * tiny.PROMPT_LENGTH)
    with pytest.raises(ValueError, match="dtype"):
        checkpoints.save_checkpoint(_nested(tiny.random_params()), tiny.CONFIG,
                                    str(tmp_path / "m"), prompt=bad_prompt)
    assert os.listdir(tmp_path) == []
