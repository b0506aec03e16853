"""Two JAX processes on localhost (2 CPU devices each) train one prompt across both, as two
hosts of a pod would, and agree with a single-device run."""

import os
import socket
import subprocess
import sys

import jax
import numpy as np

from prompt_tuning import partitioning
from tests.launch.runner import REPO
from tests.partitioning import tiny_run


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_train_one_sharded_prompt(tmp_path):
    port = _free_port()
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
           "TF_CPP_MIN_LOG_LEVEL": "3", "JAX_PLATFORMS": "cpu"}
    procs = [subprocess.Popen([sys.executable, "-m", "tests.partitioning.two_processes_main",
                               str(i), str(port), str(tmp_path / f"p{i}.npz")], cwd=REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    outputs = [p.communicate(timeout=300) for p in procs]
    for i, (p, (out, err)) in enumerate(zip(procs, outputs)):
        assert p.returncode == 0 and f"ok {i}" in out, err[-3000:]
    # The reference: the same steps on one device, in this process.
    mesh = partitioning.create_mesh(1, jax.devices()[:1])
    reference, _, _ = tiny_run.train_and_score(mesh, partitioning.standard_logical_axis_rules())
    p0, p1 = np.load(tmp_path / "p0.npz"), np.load(tmp_path / "p1.npz")
    for key in ("prompt", "losses", "log_likelihood"):
        np.testing.assert_array_equal(p0[key], p1[key])  # both hosts see the same global result
    np.testing.assert_allclose(p0["prompt"], reference["prompt"], atol=1e-5)
    np.testing.assert_allclose(p0["losses"], reference["losses"], rtol=1e-5)
