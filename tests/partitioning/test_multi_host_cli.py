"""The real `train` and `eval` commands across two JAX processes (2 CPU devices each), started
with T5X's multi-host flags: one run on a (data 2, model 2) mesh spanning both, written once;
later continued on another mesh (one device) with the same results as a run that never moved."""

from __future__ import annotations

import glob
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from tests.launch import tiny_run
from tests.launch.runner import REPO

STEPS = ("--gin.EVAL_PERIOD=4", "--gin.CHECKPOINT_PERIOD=4", "--gin.DROPOUT_RATE=0.1")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(devices: int, extra: dict | None = None) -> dict:
    return {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
            "JAX_PLATFORMS": "cpu", "HF_HUB_OFFLINE": "1", **(extra or {})}


def _on_two_hosts(module: str, args: list[str], log_dir, env: dict | None = None) -> None:
    port = _free_port()
    procs = []
    for index in range(2):
        log = open(os.path.join(log_dir, f"{module.split('.')[-1]}_{index}.log"), "w")
        procs.append((subprocess.Popen(
            [sys.executable, "-m", module, *args, f"--coordinator_address=127.0.0.1:{port}",
             "--process_count=2", f"--process_index={index}"],
            cwd=REPO, env=_env(2, env), stdout=log, stderr=subprocess.STDOUT), log))
    for proc, log in procs:
        code = proc.wait(timeout=600)
        log.close()
        assert code == 0, open(log.name).read()[-3000:]


def _one_host(module: str, args: list[str], devices: int = 1) -> None:
    proc = subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, env=_env(devices),
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.slow
def test_two_hosts_train_evaluate_and_a_later_run_continues_on_one_device(tmp_path):
    from prompt_tuning.export import prompt_from_run  # pylint: disable=import-outside-toplevel

    shared, alone = str(tmp_path / "shared"), str(tmp_path / "alone")
    _on_two_hosts("prompt_tuning.train", tiny_run.train_flags(
        shared, *STEPS, "--gin.NUM_PARTITIONS=2", train_steps=8), tmp_path)
    assert sorted(os.listdir(os.path.join(shared, "checkpoints"))) == ["4", "8"]
    assert len(os.listdir(os.path.join(shared, "best"))) == 1
    # What a run writes once was written by one process.
    assert len(glob.glob(os.path.join(shared, "train", "*tfevents*"))) == 1
    assert len(glob.glob(os.path.join(shared, "validation", "*tfevents*"))) == 1
    assert os.path.isfile(os.path.join(shared, "config.gin"))

    # The same run, continued on one device (the partitioning may change on resume), and a run
    # that did all 12 steps on one device.
    _one_host("prompt_tuning.train", tiny_run.train_flags(shared, *STEPS, train_steps=12))
    _one_host("prompt_tuning.train", tiny_run.train_flags(alone, *STEPS, train_steps=12))
    two_hosts, _ = prompt_from_run(shared, "8")
    one_device, _ = prompt_from_run(alone, "8")
    moved, _ = prompt_from_run(shared, "latest")
    still, meta = prompt_from_run(alone, "latest")
    assert meta["step"] == 12
    movement = np.abs(one_device - prompt_from_run(alone, "4")[0]).mean()  # steps 5-8
    assert movement > 0.1, movement
    # As in test_sharded_training: the meshes sum float32s in other orders (~1e-5 after 4
    # steps), and Adafactor's normalised updates amplify that step by step (~3e-3 after 8);
    # a wrong split, data slice or dropout mask would differ by the updates themselves.
    assert np.abs(two_hosts - one_device).max() < 0.05 * movement
    # Continued on one device from the two hosts' checkpoint: on course with the run that never
    # moved (the same examples, optimizer state and dropout from step 9 on; the small start
    # difference keeps growing, to ~0.05 at most after 4 more steps, ~6% of a step's movement
    # on average, where a wrong restore would be off by whole updates).
    assert np.abs(moved - still).mean() < 0.1 * movement

    # eval across the two hosts writes one result: the best prompt's metrics, as the one-device
    # training recorded them.
    _on_two_hosts("prompt_tuning.eval", tiny_run.eval_flags(
        str(tmp_path / "eval2"), f"--gin.MODEL_DIR='{alone}'", "--gin.NUM_PARTITIONS=2"),
        tmp_path)
    result = json.load(open(tmp_path / "eval2" / "eval_results.json"))
    (best_step,) = os.listdir(os.path.join(alone, "best"))
    recorded = json.load(open(os.path.join(alone, "best", best_step, "info", "metadata")))
    assert result["metrics"] == recorded["metrics"]


@pytest.mark.slow
def test_two_hosts_train_into_one_gcs_model_dir_and_resume(gcs, tmp_path):
    """A pod's hosts share no disk: both processes write one run into one gs:// MODEL_DIR (the
    first one writes what is written once), and both resume it from there."""
    from prompt_tuning.export import prompt_from_run  # pylint: disable=import-outside-toplevel

    model_dir = gcs.bucket() + "/runs/pod"
    _on_two_hosts("prompt_tuning.train", tiny_run.train_flags(
        model_dir, *STEPS, "--gin.NUM_PARTITIONS=2", train_steps=4), tmp_path, gcs.env)
    names = gcs.objects(model_dir)
    assert {n.split("/")[3] for n in names if "/checkpoints/" in n} == {"4"}
    assert len([n for n in names if "/train/" in n and "tfevents" in n]) == 1
    assert not [n for n in names if n.endswith("run.lock")]
    _on_two_hosts("prompt_tuning.train", tiny_run.train_flags(
        model_dir, *STEPS, "--gin.NUM_PARTITIONS=2", train_steps=8), tmp_path, gcs.env)
    assert "resumed" in open(tmp_path / "train_0.log").read()
    resumed, meta = prompt_from_run(model_dir, "latest")
    assert meta["step"] == 8
    assert np.abs(resumed - prompt_from_run(model_dir, "4")[0]).mean() > 0
