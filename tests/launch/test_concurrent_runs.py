"""Two trains on one MODEL_DIR: the second is refused at once, naming the first, which finishes
bit-identical to a run that was alone."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.launch.runner import REPO, run_subprocess

FLAGS = ("--gin_file=runs/embedded_default.gin", "--gin.TRAIN_STEPS=30", "--gin.BATCH_SIZE=8",
         "--gin.PROMPT_LENGTH=10", "--gin.EVAL_PERIOD=10", "--gin.CHECKPOINT_PERIOD=10",
         "--gin.eval_config.EvalConfig.num_examples=64")


def _popen(model_dir: str, log: str) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    with open(log, "w") as f:
        return subprocess.Popen([sys.executable, "-m", "prompt_tuning.train", *FLAGS,
                                 f"--gin.MODEL_DIR='{model_dir}'"], cwd=REPO, env=env,
                                stdout=f, stderr=subprocess.STDOUT)


def _owner(model_dir: str):
    try:
        with open(os.path.join(model_dir, "run.lock")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _final_state(model_dir: str):
    from prompt_tuning import run_dir  # pylint: disable=import-outside-toplevel
    from prompt_tuning.export import prompt_from_run  # pylint: disable=import-outside-toplevel

    runs = run_dir.RunCheckpoints(model_dir)
    try:
        state, progress = runs.state_tree("latest")
    finally:
        runs.close()
    return state, progress, prompt_from_run(model_dir, "best")


@pytest.mark.slow
def test_a_second_writer_is_refused_and_the_first_is_undisturbed(tmp_path):
    import jax  # pylint: disable=import-outside-toplevel

    shared, alone = str(tmp_path / "shared"), str(tmp_path / "alone")
    first, lone = _popen(shared, str(tmp_path / "first.log")), None
    try:
        deadline = time.time() + 300
        while _owner(shared) is None:  # the first run holds the lock
            assert first.poll() is None and time.time() < deadline, (
                open(tmp_path / "first.log").read())
            time.sleep(0.05)
        lone = _popen(alone, str(tmp_path / "alone.log"))
        second = run_subprocess("prompt_tuning.train", *FLAGS, f"--gin.MODEL_DIR='{shared}'")
        assert first.poll() is None, "the first run ended before the second was refused"
        assert second.returncode == 1
        assert second.stderr.startswith(f"error: MODEL_DIR {shared} is in use by process "
                                        f"{first.pid} on host {socket.gethostname()} (since ")
        assert second.stderr.count("\n") == 1, second.stderr
        assert first.wait(timeout=600) == 0, open(tmp_path / "first.log").read()
        assert lone.wait(timeout=600) == 0, open(tmp_path / "alone.log").read()
    finally:
        for proc in (first, lone):
            if proc is not None and proc.poll() is None:
                proc.kill()

    (state_a, progress_a, (best_a, meta_a)), (state_b, progress_b, (best_b, meta_b)) = (
        _final_state(shared), _final_state(alone))
    leaves_a, leaves_b = jax.tree.leaves(state_a), jax.tree.leaves(state_b)
    assert len(leaves_a) == len(leaves_b)
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(leaves_a, leaves_b))
    assert progress_a == progress_b
    assert np.array_equal(best_a, best_b) and meta_a["step"] == meta_b["step"]
    assert _owner(shared) is None  # released cleanly: the lock names nobody
