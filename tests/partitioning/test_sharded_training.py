"""Prompt tuning on an 8-device CPU mesh (data 4 x model 2) equals the single-device run.

The sharded work runs in a fresh process (the device count is fixed when JAX starts).
"""

import os
import subprocess
import sys

import numpy as np

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
