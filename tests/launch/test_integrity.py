"""Damaged checkpoints, a lost best prompt, readers racing the writer, Ctrl-C and a full disk,
with the real entry points.

* Flipped bytes in a checkpoint's arrays are one `error:` line naming the step directory (the
  checksums recorded at write time), for train (resume), export and eval alike.
* Following the advice for a damaged best/ keeps the best prompt: it is read from the copy every
  step checkpoint keeps, and a resumed run writes best/ again.
* Checkpoints of the previous release (no checksums, no copy) still load.
* Exports racing a live run's keep-N deletions never call the run corrupt.
* Ctrl-C at any early moment of `train` exits 130 with one line, and the run then completes.
* A full disk while checkpointing is one line with the path, the step and the last good
  checkpoint (a real write past the process's file-size limit).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.launch import tiny_run
from tests.launch.runner import REPO, Result, flip_array_bytes, run_in_process
from tests.launch.test_user_errors import assert_user_error, fails_untouched
from tests.launch.tiny_run import TRAIN_STEPS

TRAIN, EVAL, EXPORT = "prompt_tuning.train", "prompt_tuning.eval", "prompt_tuning.export_prompt"
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "HF_HUB_OFFLINE": "1"}


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tiny_run.SharedRun:
    return tiny_run.shared_run(tmp_path_factory)


def _copy_run(run, tmp_path) -> str:
    copy = str(tmp_path / "run")
    shutil.copytree(run.model_dir, copy)
    return copy


def _export(model_dir: str, step: str, output: str):
    return run_in_process(EXPORT, f"--model_dir={model_dir}", f"--step={step}",
                          f"--output={output}", "--overwrite")


def _exported(output: str) -> tuple[np.ndarray, dict]:
    with open(output[:-len(".npy")] + ".json") as f:
        return np.load(output), json.load(f)


def _launch(args: list[str], log: str, env: dict | None = None) -> subprocess.Popen:
    with open(log, "w") as out:  # a file, not a pipe: a full pipe would stall the run
        return subprocess.Popen([sys.executable, "-m", TRAIN, *args], cwd=REPO,
                                env={**ENV, **(env or {})}, stdout=out,
                                stderr=subprocess.STDOUT)


def _wait_for(condition, proc: subprocess.Popen, timeout: float, what: str) -> None:
    deadline = time.time() + timeout
    while not condition():
        assert proc.poll() is None, f"the run ended before {what}"
        assert time.time() < deadline, f"no {what} within {timeout} s"
        time.sleep(0.01)


def _committed_steps(model_dir: str, sub: str = "checkpoints") -> list[int]:
    try:
        return sorted(int(n) for n in os.listdir(os.path.join(model_dir, sub)) if n.isdigit())
    except FileNotFoundError:
        return []


# --- Checksums ------------------------------------------------------------------------------
# orbax's reader threads may outlive a failed read and complain about the closed event loop.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_flipped_bytes_in_a_checkpoint_are_one_error_line(run, tmp_path):
    model_dir = _copy_run(run, tmp_path)
    step_dir = os.path.join(model_dir, "checkpoints", str(TRAIN_STEPS))
    flip_array_bytes(os.path.join(step_dir, "state"))
    fragments = (f"checkpoint {step_dir} is damaged", "do not match the checksums recorded",
                 "delete that step directory")
    args = tiny_run.train_flags(model_dir, train_steps=TRAIN_STEPS + 5)
    fails_untouched(TRAIN, args, model_dir, *fragments)
    output = str(tmp_path / "exported.npy")
    fails_untouched(EXPORT, [f"--model_dir={model_dir}", "--step=latest", f"--output={output}"],
                    model_dir, *fragments)
    assert not os.path.exists(output)
    eval_args = tiny_run.eval_flags(str(tmp_path / "eval"), f"--gin.MODEL_DIR='{model_dir}'",
                                    "--gin.CHECKPOINT_STEP='latest'")
    fails_untouched(EVAL, eval_args, model_dir, *fragments)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_damaged_best_prompt_survives_following_the_advice(run, tmp_path):
    from prompt_tuning.export import prompt_from_run  # pylint: disable=import-outside-toplevel

    model_dir = _copy_run(run, tmp_path)
    want, want_meta = prompt_from_run(model_dir, "best")
    best_dir = os.path.join(model_dir, "best", str(want_meta["step"]))
    flip_array_bytes(os.path.join(best_dir, "params"))
    output = str(tmp_path / "best.npy")
    message = fails_untouched(EXPORT, [f"--model_dir={model_dir}", f"--output={output}"],
                              model_dir, f"checkpoint {best_dir} is damaged")
    assert "delete that directory: the same best prompt" in message, message
    shutil.rmtree(best_dir)  # as advised

    result = _export(model_dir, "best", output)
    assert result.returncode == 0, result.stderr
    assert "holds no best prompt; using the copy" in result.stderr
    got, got_meta = _exported(output)
    np.testing.assert_array_equal(got, want)
    for key in ("step", "dev_metric", "dev_metrics"):
        assert got_meta[key] == want_meta[key], key

    # A resumed run (here with nothing left to train) writes best/ again.
    result = run_in_process(TRAIN, *tiny_run.train_flags(model_dir))
    assert result.returncode == 0, result.stderr
    assert f"wrote it again (step {want_meta['step']})" in result.stderr
    assert _committed_steps(model_dir, "best") == [want_meta["step"]]
    result = _export(model_dir, "best", output)
    assert result.returncode == 0 and "note:" not in result.stderr, result.stderr
    np.testing.assert_array_equal(_exported(output)[0], want)


def test_checkpoints_of_the_previous_release_still_load(run, tmp_path):
    """A step of the previous release has no checksums and no copy of the best prompt."""
    from prompt_tuning.export import prompt_from_run  # pylint: disable=import-outside-toplevel

    model_dir = _copy_run(run, tmp_path)
    want = {step: prompt_from_run(model_dir, step) for step in ("latest", "best")}
    for sub in ("checkpoints", "best"):
        for step in _committed_steps(model_dir, sub):
            for item in ("integrity", "best", "best_info"):
                shutil.rmtree(os.path.join(model_dir, sub, str(step), item), ignore_errors=True)
    for step, (prompt, metadata) in want.items():
        output = str(tmp_path / f"{step}.npy")
        result = _export(model_dir, step, output)
        assert result.returncode == 0, result.stderr
        assert "has no checksums (written by an earlier release): it is read unverified" in (
            result.stderr)
        got, got_meta = _exported(output)
        np.testing.assert_array_equal(got, prompt)
        assert got_meta["step"] == metadata["step"]


# --- A live run -----------------------------------------------------------------------------
RACE_S = 6.0


def test_exports_racing_the_writers_deletions_never_call_the_run_corrupt(tmp_path):
    model_dir = str(tmp_path / "live")
    args = tiny_run.train_flags(model_dir, "--gin.CHECKPOINT_PERIOD=1",
                                "--gin.CHECKPOINTS_TO_KEEP=1", "--gin.EVAL_PERIOD=1000",
                                "--gin.eval_config.EvalConfig.num_examples=8",
                                train_steps=100_000)
    writer = _launch(args, str(tmp_path / "writer.log"))
    results = []
    try:
        _wait_for(lambda: len(_committed_steps(model_dir)) > 0, writer, 300, "checkpoint")
        deadline = time.time() + RACE_S
        while time.time() < deadline:
            step = ("latest", "best")[len(results) % 2]
            results.append((step, _export(model_dir, step, str(tmp_path / "out.npy"))))
        assert writer.poll() is None, "the writer stopped during the race"
    finally:
        writer.kill()
        writer.wait()
    failed = [(step, r.stderr.strip()) for step, r in results if r.returncode != 0]
    print(f"{len(results)} exports, {len(failed)} failed: {failed}")
    said = " ".join(text for _, text in failed)
    for word in ("corrupt", "cannot be read", "damaged", "Traceback"):
        assert word not in said, failed
    for _, text in failed:  # the only excuse: the run kept changing under the reader
        assert "(its run is writing it); run the command again." in text, failed
    assert len(results) >= 10 and len(failed) <= len(results) // 5, (len(results), failed)


# --- Ctrl-C ---------------------------------------------------------------------------------
SIGINT_AT_S = (0.3, 0.8, 1.5, 2.5)


def _assert_interrupted(proc: subprocess.Popen, log: str) -> None:
    assert proc.wait(timeout=120) == 130, open(log).read()[-3000:]
    lines = open(log).read().strip().splitlines()
    assert lines[-1] == "error: interrupted", lines[-10:]
    assert [line for line in lines if line.startswith("error:")] == ["error: interrupted"]
    assert not [line for line in lines if "Traceback" in line or "Exception ignored" in line]


@pytest.mark.slow
def test_ctrl_c_at_early_moments_exits_130_and_the_run_then_completes(tmp_path):
    model_dir = str(tmp_path / "run")
    args = tiny_run.train_flags(model_dir, "--gin.CHECKPOINT_PERIOD=2", train_steps=10)
    for launch, seconds in enumerate(SIGINT_AT_S):
        log = str(tmp_path / f"early_{launch}.log")
        proc = _launch(args, log)
        time.sleep(seconds)
        proc.send_signal(signal.SIGINT)
        _assert_interrupted(proc, log)
    # Once it has written something: a checkpoint, then Ctrl-C.
    log = str(tmp_path / "training.log")
    proc = _launch(args, log)
    _wait_for(lambda: _committed_steps(model_dir), proc, 300, "checkpoint")
    proc.send_signal(signal.SIGINT)
    _assert_interrupted(proc, log)
    written = _committed_steps(model_dir)
    assert written and not [n for n in os.listdir(os.path.join(model_dir, "checkpoints"))
                            if not n.isdigit()], "something half-written was left"

    log = str(tmp_path / "final.log")
    proc = _launch(args, log)
    assert proc.wait(timeout=600) == 0, open(log).read()[-3000:]
    assert f"resumed {model_dir} at step {written[-1]} of 10" in open(log).read()
    assert _committed_steps(model_dir)[-1] == 10


# --- A full disk ----------------------------------------------------------------------------
@pytest.mark.slow
def test_a_full_disk_while_checkpointing_is_one_line(run, tmp_path):
    """The resumed run may write its config as usual; then its file-size limit drops to 1 KiB,
    so the next checkpoint's array data fails to be written (EFBIG, as ENOSPC on a full disk),
    through orbax's real write path with its threads."""
    model_dir = _copy_run(run, tmp_path)
    before = _committed_steps(model_dir), _committed_steps(model_dir, "best")
    config = os.path.join(model_dir, "config.gin")
    written_config = os.stat(config).st_ino
    log = str(tmp_path / "full.log")
    proc = _launch(tiny_run.train_flags(model_dir, train_steps=TRAIN_STEPS + 5), log,
                   env={"PT_COMPILATION_CACHE_DIR": "off"})
    try:
        _wait_for(lambda: os.stat(config).st_ino != written_config, proc, 300, "config.gin")
        resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, (1024, resource.RLIM_INFINITY))
        code = proc.wait(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = open(log).read()
    lines = text.strip().splitlines()
    assert code == 1, text[-3000:]
    assert not [line for line in lines if not line.startswith(("note: ", "step ", "error: "))], (
        text[-3000:])
    step = TRAIN_STEPS + 5
    message = assert_user_error(Result(code, "", text), "File too large",
        f"of step {step} could not be written",
        f"the last good checkpoint is step {TRAIN_STEPS} in {model_dir}/checkpoints",
        "free some space")
    assert message.startswith((f"error: {model_dir}/checkpoints/{step}: ",
                               f"error: {model_dir}/best/{step}: ")), message
    assert (_committed_steps(model_dir), _committed_steps(model_dir, "best")) == before
    for sub in ("checkpoints", "best"):
        assert [n for n in os.listdir(os.path.join(model_dir, sub)) if not n.isdigit()] == []
