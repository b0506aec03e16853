"""A regular (non-editable) install carries every gin config and asset, runs the default job
from outside the repository, prepares SuperGLUE data with TFDS's builder from hand-made upstream
archives, and trains on it with the reference's spelling of the config paths."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from tests.data import raw_archives
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

    # Data as a user without internet prepares it: upstream archives -> TFDS, then train on it.
    raw_archives.write(str(elsewhere / "raw"), ["super_glue/rte:1.0.2"])
    prepared = _run([sys.executable, "-m", "prompt_tuning.prepare_data",
                     "--tasks=taskless_super_glue_rte_v102", "--tfds_data_dir=tfds",
                     "--raw_dir=raw"], cwd=elsewhere, env=env)
    assert prepared.returncode == 0, prepared.stderr[-3000:]
    package_dir = _run([sys.executable, "-m", "prompt_tuning.scripts.find_module",
                        "prompt_tuning"], cwd=elsewhere, env=env).stdout.strip()
    assert package_dir.startswith(str(site))
    train = _run([sys.executable, "-m", "prompt_tuning.train",
                  f"--gin_search_paths={package_dir}/..",
                  "--gin_file=prompt_tuning/configs/models/t5_1_1_tiny_prompt.gin",
                  "--gin_file=prompt_tuning/configs/prompts/from_class_labels.gin",
                  "--gin_file=prompt_tuning/configs/runs/prompt_finetune.gin",
                  "--gin.CLASS_LABELS=['entailment', 'not_entailment']",
                  "--gin.INITIAL_CHECKPOINT_PATH='builtin:tiny_t5'",
                  "--gin.MIXTURE_OR_TASK_NAME='taskless_super_glue_rte_v102'",
                  "--gin.TASK_FEATURE_LENGTHS={'inputs': 32, 'targets': 4}",
                  "--gin.TRAIN_STEPS=2", "--gin.BATCH_SIZE=2", "--gin.PROMPT_LENGTH=4",
                  "--gin.MODEL_DIR='rte'", "--tfds_data_dir=tfds"], cwd=elsewhere, env=env)
    assert train.returncode == 0, train.stderr[-3000:]
    assert "dev score at step 2" in train.stdout
