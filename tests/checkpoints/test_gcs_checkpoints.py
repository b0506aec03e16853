"""Every checkpoint format read from gs:// (and ours written there), against a local emulator:
the same parameters, bit for bit, as from a local copy."""

from __future__ import annotations

import pytest

from prompt_tuning import checkpoints, filesystem
from prompt_tuning.checkpoints import huggingface
from tests.checkpoints import t5x_writers, tiny


def _t5x_legacy(directory: str, params) -> str:
    return t5x_writers.write_t5x_legacy(directory, params, step=1100000)


def _t5x_orbax(directory: str, params) -> str:
    return t5x_writers.write_t5x_orbax(directory, params, step=1100000)


def _huggingface(directory: str, params) -> str:
    huggingface.save_hf_checkpoint(params, tiny.CONFIG, directory)
    return directory


@pytest.mark.parametrize("write", [_t5x_legacy, _t5x_orbax, _huggingface])
def test_read_from_gcs(gcs, tmp_path, write):
    params = tiny.random_params()
    local = write(str(tmp_path / "ckpt"), params)
    remote = f"{gcs.bucket()}/ckpt"
    filesystem.upload_dir(str(tmp_path / "ckpt"), remote)
    remote_step = remote + local[len(str(tmp_path / "ckpt")):]
    loaded = checkpoints.load_checkpoint(remote_step)
    assert loaded.format == checkpoints.detect_format(local)
    tiny.assert_params_equal(loaded.params, params)


def test_ours_written_to_and_read_from_gcs(gcs):
    params, prompt = tiny.random_params(), tiny.random_prompt()
    remote = f"{gcs.bucket()}/models/tiny"
    checkpoints.save_checkpoint(tiny.nested(params), tiny.CONFIG, remote, prompt=prompt)
    assert not [n for n in gcs.objects(remote.rsplit("/", 1)[0]) if ".tmp-" in n]
    loaded = checkpoints.load_checkpoint(remote)
    tiny.assert_params_equal(loaded.params, params)
    assert (loaded.prompt == prompt).all()
