"""Prompt tuning on 8-device CPU meshes ((8, 1), (4, 2), (2, 4), (1, 8), and 2-D parameter
sharding) equals the single-device run.

The sharded work runs in a fresh process (the device count is fixed when JAX starts).
"""

import os
import subprocess
import sys

import numpy as np
import pytest

from tests.launch.runner import REPO


def _run(module: str, *args: str, devices: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
           "TF_CPP_MIN_LOG_LEVEL": "3", "JAX_PLATFORMS": "cpu"}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=300)


def test_eight_devices_match_one_device(tmp_path):
    out = tmp_path / "results.npz"
    proc = _run("tests.partitioning.eight_devices_main", str(out), devices=8)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for check in ("ok errors", "ok placement", "ok trained"):
        assert check in proc.stdout, proc.stdout
    r = np.load(out)
    np.testing.assert_array_equal(r["sharded_initial_prompt"], r["single_initial_prompt"])
    # The prompt really trained (Adafactor moves each entry by about lr = 0.01 per step) ...
    assert np.abs(r["sharded_prompt"] - r["sharded_initial_prompt"]).mean() > 5e-3
    # ... and the sharded run computed the same thing up to float32 reduction order.
    np.testing.assert_allclose(r["sharded_prompt"], r["single_prompt"], atol=1e-5)
    np.testing.assert_allclose(r["sharded_losses"], r["single_losses"], rtol=1e-5)
    np.testing.assert_allclose(r["sharded_log_likelihood"], r["single_log_likelihood"],
                               rtol=1e-5, atol=1e-4)
    # Every mesh shape, and 2-D parameter sharding, computes the same (the split itself is
    # checked in the subprocess). Tolerances as above: float32 sums in other orders, 3 steps.
    for mesh in ("d8m1", "d4m2", "d2m4", "d1m8", "d4m2_2d"):
        assert f"ok mesh {mesh}" in proc.stdout, proc.stdout
        np.testing.assert_allclose(r[f"{mesh}_prompt"], r["single_prompt"], atol=1e-5,
                                   err_msg=mesh)
        np.testing.assert_allclose(r[f"{mesh}_losses"], r["single_losses"], rtol=1e-5,
                                   err_msg=mesh)
        np.testing.assert_allclose(r[f"{mesh}_log_likelihood"], r["single_log_likelihood"],
                                   rtol=1e-5, atol=1e-4, err_msg=mesh)


def _train(model_dir, devices: int, *extra: str) -> subprocess.CompletedProcess:
    from tests.launch import tiny_run  # pylint: disable=import-outside-toplevel

    flags = tiny_run.train_flags(str(model_dir), "--gin.TRAIN_STEPS=8", "--gin.EVAL_PERIOD=8",
                                 "--gin.DROPOUT_RATE=0.1", *extra)
    return _run("prompt_tuning.train", *flags, devices=devices)


@pytest.mark.slow
def test_train_command_on_a_mesh_matches_one_device(tmp_path):
    """`prompt_tuning.train` with NUM_PARTITIONS=2 on 8 devices (data 4 x model 2): the frozen
    model is split over 'model', batches over 'data'; the prompt ends as on one device."""
    from prompt_tuning.export import prompt_from_run  # pylint: disable=import-outside-toplevel

    sharded = _train(tmp_path / "sharded", 8, "--gin.NUM_PARTITIONS=2")
    assert sharded.returncode == 0, sharded.stderr[-3000:]
    single = _train(tmp_path / "single", 1)
    assert single.returncode == 0, single.stderr[-3000:]
    a, meta_a = prompt_from_run(str(tmp_path / "sharded"), "latest")
    b, meta_b = prompt_from_run(str(tmp_path / "single"), "latest")
    assert meta_a["step"] == meta_b["step"] == 8
    # Adafactor normalises each update to about +-lr (0.3) per entry, so float32 reduction-order
    # differences between the meshes grow step by step (~2e-3 after 8 steps); a wrong sharding,
    # batch split or dropout mask would differ by the size of the updates themselves.
    earlier, _ = prompt_from_run(str(tmp_path / "single"), "5")
    movement = np.abs(b - earlier).mean()  # three steps' worth of updates
    assert movement > 0.1, movement
    assert np.abs(a - b).max() < 0.05 * movement, (np.abs(a - b).max(), movement)
    bad = _train(tmp_path / "bad", 8, "--gin.NUM_PARTITIONS=3")
    assert bad.returncode == 2 and "num_partitions" in bad.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "bad").exists()


@pytest.mark.slow
def test_memory_settings_on_a_mesh_change_no_result(tmp_path):
    """The XL/XXL memory settings (scanned, rematerialised layers; activations split along
    'embed'; microbatches) through the real `train` on 4 devices (data 2 x model 2, the
    per-layer checkpoint stacked onto its shardings) train the same prompt as the plain model on
    one device. Without dropout: scanning and microbatching only change dropout masks."""
    from prompt_tuning.export import prompt_from_run  # pylint: disable=import-outside-toplevel

    settings = ("--gin.SCAN_LAYERS=True", "--gin.REMAT_POLICY='full'", "--gin.NUM_MICROBATCHES=2",
                "--gin.partitioning.PjitPartitioner.activation_partitioning_dims=2",
                "--gin.NUM_PARTITIONS=2")
    lean = _train(tmp_path / "lean", 4, "--gin.DROPOUT_RATE=0.0", *settings)
    assert lean.returncode == 0, lean.stderr[-3000:]
    plain = _train(tmp_path / "plain", 1, "--gin.DROPOUT_RATE=0.0")
    assert plain.returncode == 0, plain.stderr[-3000:]
    a, _ = prompt_from_run(str(tmp_path / "lean"), "latest")
    b, _ = prompt_from_run(str(tmp_path / "plain"), "latest")
    earlier, _ = prompt_from_run(str(tmp_path / "plain"), "5")
    movement = np.abs(b - earlier).mean()
    assert movement > 0.05, movement  # three steps' worth of updates (~0.08)
    # As above: float32 sums in other orders, amplified by Adafactor's normalised updates.
    assert np.abs(a - b).max() < 0.05 * movement, (np.abs(a - b).max(), movement)
    with open(tmp_path / "lean" / "config.gin") as f:
        operative = f.read()
    assert "SCAN_LAYERS = True" in operative and "NUM_MICROBATCHES = 2" in operative
