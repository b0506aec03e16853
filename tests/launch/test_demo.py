"""The embedded default never deletes: it writes only into a new directory of its own, or a new
or empty one it is given; two at once never meet."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from tests.launch import tiny_run
from tests.launch.runner import REPO, run_in_process, snapshot


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tiny_run.SharedRun:
    return tiny_run.shared_run(tmp_path_factory)


def test_a_real_training_run_given_as_model_dir_is_left_alone(run, tmp_path):
    shutil.copytree(run.model_dir, tmp_path / "run")
    (tmp_path / "run" / "my_notes.txt").write_text("the user's own file")
    before = snapshot(str(tmp_path))
    result = run_in_process("prompt_tuning.demo", f"--model_dir={tmp_path / 'run'}")
    assert result.returncode == 2
    assert result.stderr == (f"error: --model_dir {tmp_path / 'run'} is not empty; the demo writes "
                             "only into a new or empty directory (pass --resume to continue the "
                             "demo run in it, or leave --model_dir out).\n")
    assert snapshot(str(tmp_path)) == before


@pytest.mark.slow
def test_two_default_runs_at_once_use_their_own_directories(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TMPDIR": str(tmp_path)}
    procs = [subprocess.Popen([sys.executable, "-m", "prompt_tuning.demo", "--train_steps=5"],
                              cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outputs = [proc.communicate(timeout=600) for proc in procs]
    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 0, err[-3000:]
    dirs = [re.search(r"\(run in (\S+)\)", out).group(1) for out, _ in outputs]
    assert dirs[0] != dirs[1]
    for directory in dirs:
        assert os.path.dirname(directory) == str(tmp_path)
        assert os.path.basename(directory).startswith("prompt_tuning_default_")
        assert os.path.isfile(os.path.join(directory, "export", "prompt.npy"))
