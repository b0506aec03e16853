"""`benchmarks/command_startup.py` runs in the README's venv (`scripts/setup_venv.sh`, no test
extras): the packages only the test extra installs are made unimportable for it and for the
commands it starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.launch.runner import REPO

# What `pip install -e .[test]` adds to the package's own dependencies.
TEST_ONLY = ("httpx", "torch", "transformers", "peft", "pytest")
BLOCKER = f'''
import sys
class _TestOnly:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {TEST_ONLY!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}} (a test extra)", name=name)
        return None
sys.meta_path.insert(0, _TestOnly())
'''


@pytest.mark.slow
def test_runs_without_the_test_extras(tmp_path):
    (tmp_path / "sitecustomize.py").write_text(BLOCKER)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(tmp_path)}
    blocked = subprocess.run([sys.executable, "-c", "import httpx"], env=env,
                             capture_output=True, text=True, timeout=60)
    assert blocked.returncode != 0 and "(a test extra)" in blocked.stderr  # the blocker works
    proc = subprocess.run([sys.executable, "benchmarks/command_startup.py", "--runs", "1"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert report["score"]["median_wall_s"] > 0 and report["serve"]["median_first_answer_s"] > 0
    assert not report["score"]["runs"][0]["tensorflow_loaded"]
