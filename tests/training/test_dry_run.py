"""`train --dry_run` and `eval --dry_run`: the real programs compiled from shapes on a 4-device
mesh; nothing is read or written, and the report's numbers follow the config."""

import os
import re
import subprocess
import sys

import pytest

from prompt_tuning.model import param_count
from prompt_tuning.runtime import ModelConfig, load_frozen_model
from tests.launch import tiny_run
from tests.launch.runner import REPO

UNITS = {"KiB": 2 ** 10, "MiB": 2 ** 20, "GiB": 2 ** 30}


def _run(module: str, flags: list[str], devices: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
           "TF_CPP_MIN_LOG_LEVEL": "3", "JAX_PLATFORMS": "cpu"}
    return subprocess.run([sys.executable, "-m", module, *flags], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def _dry_run(model_dir, *extra: str, devices: int = 4) -> subprocess.CompletedProcess:
    return _run("prompt_tuning.train", tiny_run.train_flags(str(model_dir), "--dry_run", *extra),
                devices)


def _report(stdout: str) -> dict[str, dict[str, float]]:
    """{program: {part: bytes}} from the per-device tables."""
    programs: dict[str, dict[str, float]] = {}
    for line in stdout.splitlines():
        header = re.fullmatch(r"(.+) \(compiled in [0-9.]+ s\):", line)
        if header:
            table = programs.setdefault(header.group(1), {})
            continue
        row = re.fullmatch(r"  ([a-zA-Z ()]+?) +([0-9.]+) ([GMK]iB)", line)
        if row:
            table[row.group(1)] = float(row.group(2)) * UNITS[row.group(3)]
    return programs


@pytest.mark.slow
def test_dry_run_reports_memory_and_writes_nothing(tmp_path):
    model_dir = tmp_path / "run"
    whole = _dry_run(model_dir, "--gin.NUM_PARTITIONS=2", "--device_memory_gib=1")
    assert whole.returncode == 0, whole.stderr[-3000:]
    assert "mesh {'data': 2, 'model': 2} on cpu" in whole.stdout
    assert whole.stdout.strip().splitlines()[-1].startswith("dry run: fits: peak ")
    assert not model_dir.exists()
    programs = _report(whole.stdout)
    assert list(programs) == ["train step", "evaluation (generate, greedy, batch 32)"], whole.stdout
    table = programs["train step"]
    assert set(table) == {"frozen parameters", "trained parameters", "optimizer state", "batch",
                          "temporaries (XLA)", "peak"}, whole.stdout
    assert set(programs["evaluation (generate, greedy, batch 32)"]) == {
        "parameters", "batch", "temporaries (XLA)", "peak"}
    # One device holds half the batch (data 2) and about half the frozen model (model 2: every
    # kernel and embedding is split, the small layer-norm scales are not); the table rounds.
    frozen_bytes = 4 * param_count(load_frozen_model(
        ModelConfig(initial_checkpoint_path="builtin:tiny_t5")).params)
    assert 0.49 < table["frozen parameters"] / frozen_bytes < 0.55
    features = tiny_run.BATCH_SIZE * (32 + 3 * 4) * 4  # inputs + 3 target-length features
    assert table["batch"] == pytest.approx(features / 2, rel=0.01)
    prompt = tiny_run.PROMPT_LENGTH * tiny_run.EMBED_DIM * 4
    assert table["trained parameters"] == pytest.approx(prompt, rel=0.01)

    # Microbatches cut the activations held at once.
    sliced = _dry_run(model_dir, "--gin.NUM_PARTITIONS=2", "--gin.NUM_MICROBATCHES=4",
                      "--device_memory_gib=1")
    assert sliced.returncode == 0, sliced.stderr[-3000:]
    assert (_report(sliced.stdout)["train step"]["temporaries (XLA)"]
            < table["temporaries (XLA)"])

    # Too little memory: the same report, its last line says so, and the exit status is 1.
    small = _dry_run(model_dir, "--gin.NUM_PARTITIONS=2", "--device_memory_gib=0.001")
    assert small.returncode == 1, small.stderr[-3000:]
    assert small.stderr.strip() == ""
    assert re.fullmatch(r"dry run: does not fit: peak [0-9.]+ GiB per device of 0\.0 GiB "
                        r"\(params [0-9.]+, optimizer [0-9.]+, temporaries [0-9.]+; "
                        r"train step\)", small.stdout.strip().splitlines()[-1]), small.stdout
    assert not model_dir.exists()


@pytest.mark.slow
def test_eval_dry_run_for_each_mode(tmp_path):
    """`eval --dry_run`: the prompt file gives the length; generation and rank classification
    (one program for the task's 4 labels) are compiled, nothing is written."""
    import numpy as np  # pylint: disable=import-outside-toplevel

    prompt_file = tmp_path / "prompt.npy"
    np.save(prompt_file, np.zeros((tiny_run.PROMPT_LENGTH, tiny_run.EMBED_DIM), np.float32))
    out = tmp_path / "eval"
    for mode, program in (("generate", "evaluation (generate, greedy, batch 32)"),
                          ("rank", "evaluation (rank, batch 32), 4 labels")):
        proc = _run("prompt_tuning.eval", tiny_run.eval_flags(
            str(out), f"--gin.PROMPT_FILE='{prompt_file}'", f"--gin.EVAL_MODE='{mode}'",
            "--gin.NUM_PARTITIONS=2", "--dry_run", "--device_memory_gib=1"), devices=4)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert list(_report(proc.stdout)) == [program], proc.stdout
        assert proc.stdout.strip().splitlines()[-1].startswith("dry run: fits: peak ")
        assert not out.exists()


@pytest.mark.parametrize("extra, line", [
    (("--gin.NUM_MICROBATCHES=3",),
     "error: BATCH_SIZE 8 does not split into NUM_MICROBATCHES 3 equal parts."),
    (("--gin.NUM_MICROBATCHES=0",),
     "error: NUM_MICROBATCHES must be a positive integer, got 0."),
    (("--device_memory_gib=-1",), "error: --device_memory_gib must be positive, got -1.0."),
])
def test_dry_run_mistakes(tmp_path, extra, line):
    proc = _dry_run(tmp_path / "run", *extra, devices=1)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == line
    assert not (tmp_path / "run").exists()


def test_device_memory_without_dry_run(tmp_path):
    flags = tiny_run.train_flags(str(tmp_path / "run"), "--device_memory_gib=16")
    proc = subprocess.run([sys.executable, "-m", "prompt_tuning.train", *flags], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: --device_memory_gib is for --dry_run only."
    assert not (tmp_path / "run").exists()
