"""`python -m prompt_tuning.convert_checkpoint` run as users run it."""

import os
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest

from prompt_tuning import checkpoints, cli, convert_checkpoint
from prompt_tuning.checkpoints import huggingface
from tests import oracles
from tests.checkpoints import t5x_writers, tiny

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _convert(*flags):
    return subprocess.run([sys.executable, "-m", "prompt_tuning.convert_checkpoint", *flags],
                          cwd=REPO, capture_output=True, text=True, timeout=300, check=False)


def _convert_in_process(*flags) -> int:
    """The command's exit code, run in this interpreter (its error line goes to stderr)."""
    return cli.call(convert_checkpoint.main, ["convert_checkpoint", *flags])


def _assert_found(stdout, fmt, count=57856):
    assert f"format: {fmt} (" in stdout
    assert f"parameters: {count:,} (" in stdout


def test_t5x_legacy_to_ours_and_on_to_hugging_face(tmp_path):
    params, prompt = tiny.random_params(bfloat16=("kernel",)), tiny.random_prompt()
    t5x_writers.write_t5x_legacy(str(tmp_path / "t5x"), params, step=1100000, prompt=prompt)
    ours, hf = str(tmp_path / "ours"), str(tmp_path / "hf")
    # 57,856 = hand count for CONFIG: 2*128*32 (embedding, logits) + 2*2*32 (relpos)
    #   + 2*(2*32 + 4*32*32 + 3*32*64) (encoder layers) + 32 (final norm)
    #   + 2*(3*32 + 8*32*32 + 3*32*64) (decoder layers) + 32
    assert 2 * 128 * 32 + 2 * 2 * 32 + 2 * (64 + 4096 + 6144) + 32 \
        + 2 * (96 + 8192 + 6144) + 32 == 57856

    to_ours = _convert(f"--input={tmp_path / 't5x'}", f"--output={ours}")
    to_hf = _convert(f"--input={ours}", f"--output={hf}", "--to=huggingface", "--dtype=float32")

    assert to_ours.returncode == 0, to_ours.stderr
    _assert_found(to_ours.stdout, "t5x_legacy")
    assert "step 1100000" in to_ours.stdout and "bfloat16, float32" in to_ours.stdout
    assert "prompt: [5, 32]" in to_ours.stdout
    assert f"wrote orbax checkpoint to {ours}" in to_ours.stdout
    loaded = checkpoints.load_checkpoint(ours)
    tiny.assert_params_equal(loaded.params, params)
    np.testing.assert_array_equal(loaded.prompt, prompt)

    assert to_hf.returncode == 0, to_hf.stderr
    _assert_found(to_hf.stdout, "orbax")
    config, flat = huggingface.load_hf_checkpoint(hf)
    assert config == tiny.CONFIG
    for path, value in params.items():
        np.testing.assert_array_equal(flat[path], value.astype(np.float32), err_msg=path)


@pytest.mark.parametrize("max_shard_size", [None, "40KB"])
def test_hugging_face_dirs_single_and_sharded(tmp_path, max_shard_size):
    model = oracles.build_hf_t5(tiny.CONFIG, seed=7)
    kwargs = {} if max_shard_size is None else {"max_shard_size": max_shard_size}
    model.save_pretrained(str(tmp_path / "hf"), **kwargs)
    expected = huggingface.hf_to_flat(oracles.hf_state_numpy(model), tiny.CONFIG)

    result = _convert(f"--input={tmp_path / 'hf'}", f"--output={tmp_path / 'out'}",
                      "--dtype=bfloat16")

    assert result.returncode == 0, result.stderr
    _assert_found(result.stdout, "huggingface")
    assert "(bfloat16)" in result.stdout
    loaded = checkpoints.load_checkpoint(str(tmp_path / "out"))
    tiny.assert_params_equal(loaded.params,
                             {k: v.astype(jnp.bfloat16) for k, v in expected.items()})


def test_failure_is_one_line_and_leaves_no_output(tmp_path):
    step_dir = t5x_writers.write_t5x_legacy(str(tmp_path / "t5x"), tiny.random_params(), step=1)
    os.remove(os.path.join(step_dir, "target.encoder.layers_0.mlp.wo.kernel", "0.0"))
    truncated = str(tmp_path / "t5x_truncated")
    t5x_writers.write_t5x_legacy(truncated, tiny.random_params(), step=1)
    with open(os.path.join(truncated, "checkpoint_1", "checkpoint"), "r+b") as f:
        f.truncate(100)

    missing_chunk = _convert(f"--input={step_dir}", f"--output={tmp_path / 'out'}")

    assert missing_chunk.returncode == 1
    assert missing_chunk.stderr.strip().splitlines() == [missing_chunk.stderr.strip()]
    assert missing_chunk.stderr.startswith("error: ")
    assert sorted(os.listdir(tmp_path)) == ["t5x", "t5x_truncated"]

    assert _convert_in_process(f"--input={truncated}", f"--output={tmp_path / 'out'}") == 1
    assert _convert_in_process(f"--input={tmp_path / 'nowhere'}",
                               f"--output={tmp_path / 'out'}") == 1
    assert sorted(os.listdir(tmp_path)) == ["t5x", "t5x_truncated"]


def test_bad_flags_exit_2(tmp_path):
    result = _convert("--input=x", f"--output={tmp_path / 'out'}", "--dtype=float64")
    assert result.returncode == 2
    assert result.stderr.startswith("error: flag --dtype=float64: value should be one of")
    assert len(result.stderr.strip().splitlines()) == 1
    assert not os.path.exists(tmp_path / "out")


def test_refuses_to_write_over_input_or_a_non_empty_dir(tmp_path, capsys):
    params = tiny.random_params()
    checkpoints.save_checkpoint(params, tiny.CONFIG, str(tmp_path / "m"))
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("user data")

    assert _convert_in_process(f"--input={tmp_path / 'm'}", f"--output={tmp_path / 'm'}",
                               "--overwrite") == 2  # the two flags contradict each other
    assert _convert_in_process(f"--input={tmp_path / 'm'}",
                               f"--output={tmp_path / 'busy'}") == 1

    errors = capsys.readouterr().err.strip().splitlines()
    assert errors[0].startswith("error: --output ")
    assert "must not contain or lie inside" in errors[0]
    assert errors[1].startswith("error: ") and "exists and is not empty" in errors[1]
    assert (tmp_path / "busy" / "keep.txt").read_text() == "user data"
    tiny.assert_params_equal(checkpoints.load_checkpoint(str(tmp_path / "m")).params, params)
