"""A regular (non-editable) install carries every gin config and asset, and runs the default job
from outside the repository."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from tests.launch.runner import REPO


def _run(args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=600, check=False,
                          **kwargs)


@pytest.mark.slow
def test_wheel_ships_the_configs_and_runs_the_default_job(tmp_path):
    # Built from a copy: setuptools leaves build/ behind, whose stale files a later build of the
    # repository itself would pick up.
    source = tmp_path / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "*.egg-info", "__pycache__", ".pytest_cache"))
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                  "--quiet", "-w", str(tmp_path / "dist"), str(source)])
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = glob.glob(str(tmp_path / "dist" / "prompt_tuning-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    package = os.path.join(REPO, "prompt_tuning")
    for kind in ("configs", "assets"):
        shipped = {os.path.relpath(os.path.join(root, name), REPO)
                   for root, _, files in os.walk(os.path.join(package, kind)) for name in files}
        assert shipped and shipped <= names, sorted(shipped - names)[:5]

    site = tmp_path / "site"
    installed = _run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet",
                      "--target", str(site), wheel])
    assert installed.returncode == 0, installed.stderr[-3000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "HF_HUB_OFFLINE": "1"}
    where = _run([sys.executable, "-c", "import prompt_tuning; print(prompt_tuning.__file__)"],
                 cwd=elsewhere, env=env)
    assert where.stdout.strip().startswith(str(site)), where.stdout + where.stderr

    demo = _run([sys.executable, "-m", "prompt_tuning.demo", "--model_dir=run",
                 "--train_steps=5"], cwd=elsewhere, env=env)
    assert demo.returncode == 0, demo.stderr[-3000:]
    assert "dev accuracy, trained prompt" in demo.stdout
    assert os.path.isfile(elsewhere / "run" / "export" / "prompt.npy")  # relative --model_dir
