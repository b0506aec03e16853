"""Hugging Face directories written by transformers itself (single file and sharded)."""

import os

import pytest
import transformers  # noqa: F401  pylint: disable=unused-import  (the oracle must be installed)

from prompt_tuning import checkpoints
from prompt_tuning.checkpoints import huggingface
from tests import oracles
from tests.checkpoints import tiny


@pytest.fixture(scope="module")
def hf_model():
    return oracles.build_hf_t5(tiny.CONFIG, seed=3)


@pytest.mark.parametrize("max_shard_size", [None, "40KB"])
def test_reads_what_transformers_writes(tmp_path, hf_model, max_shard_size):
    kwargs = {} if max_shard_size is None else {"max_shard_size": max_shard_size}
    hf_model.save_pretrained(str(tmp_path), **kwargs)
    files = os.listdir(tmp_path)
    if max_shard_size is None:
        assert "model.safetensors" in files
    else:
        assert "model.safetensors.index.json" in files
        assert len([f for f in files if f.endswith(".safetensors")]) > 1
    expected = huggingface.hf_to_flat(oracles.hf_state_numpy(hf_model), tiny.CONFIG)

    loaded = checkpoints.load_checkpoint(str(tmp_path))

    assert checkpoints.detect_format(str(tmp_path)) == "huggingface" == loaded.format
    assert loaded.config.replace(dropout_rate=0.0) == tiny.CONFIG
    assert loaded.prompt is None and loaded.step is None
    tiny.assert_params_equal(loaded.params, expected)


def test_checked_against_a_given_config(tmp_path, hf_model):
    hf_model.save_pretrained(str(tmp_path))
    with pytest.raises(checkpoints.CheckpointError,
                       match=r"mlp/wi_0/kernel is \(32, 64\) in the checkpoint but \(32, 96\)"):
        checkpoints.load_checkpoint(str(tmp_path), config=tiny.CONFIG.replace(mlp_dim=96))
