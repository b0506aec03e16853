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
from tests.launch import runner
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


def _elsewhere(prefix: str) -> list[str]:
    """Every path a launch names, under `prefix`: the reference's XXL script names gs:// ones."""
    return [f"--gin.INITIAL_CHECKPOINT_PATH='{prefix}/t5_1_1_lm100k_base/checkpoint_1100000'",
            "--gin.MIXTURE_OR_TASK_NAME='taskless_glue_sst2_v200_examples'",
            "--gin.MIXTURE_OR_TASK_MODULE='prompt_tuning.data.glue'",
            f"--tfds_data_dir={prefix}/tfds", f"--gin.PROMPT_FILE='{prefix}/prompts/sst2.npy'"]


@pytest.mark.parametrize("where", ["gs", "missing", "below_a_file"])
def test_dry_runs_look_at_no_path(tmp_path, where):
    """Weights, data, MODEL_DIR and the prompt file may all be out of reach (gs:// on a laptop
    without network, or not there yet): a dry run needs their shapes only, so it runs; eval
    takes the prompt as PROMPT_LENGTH rows. Nothing is created."""
    (tmp_path / "a_file").write_text("")
    prefix = {"gs": "gs://bucket/xxl", "missing": str(tmp_path / "missing"),
              "below_a_file": str(tmp_path / "a_file" / "below")}[where]
    before = runner.snapshot(str(tmp_path))
    train = runner.run_in_process("prompt_tuning.train", *tiny_run.train_flags(
        f"{prefix}/model", "--dry_run", *_elsewhere(prefix),
        prompt_file="prompts/from_file.gin"))
    assert train.returncode == 0, train.stderr
    assert train.stdout.strip().splitlines()[-1].startswith("dry run: fits: peak "), train.stdout
    prompt_sources = (f"--gin.PROMPT_FILE='{prefix}/prompts/sst2.npy'",
                      f"--gin.MODEL_DIR='{prefix}/model'")
    for source in prompt_sources:
        flags = [f for f in tiny_run.eval_flags(f"{prefix}/eval", "--dry_run",
                                                "--gin.PROMPT_LENGTH=7", *_elsewhere(prefix),
                                                source)
                 if not f.startswith("--gin.PROMPT_FILE") or f == source]
        evaluation = runner.run_in_process("prompt_tuning.eval", *flags)
        assert evaluation.returncode == 0, evaluation.stderr
        assert evaluation.stdout.strip().splitlines()[-1].startswith("dry run: fits: peak ")
        given = source.split("'")[1]
        assert (f"note: dry run: {given} not read (not a local path that exists); the prompt is "
                "taken as PROMPT_LENGTH=7 rows of the model's width.") in evaluation.stderr
    assert runner.snapshot(str(tmp_path)) == before
    assert not os.path.exists(os.path.join(REPO, "gs:"))
