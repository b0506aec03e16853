"""Loading onto a NamedSharding over 8 CPU devices, in a subprocess (XLA_FLAGS must precede jax)."""

import os
import subprocess
import sys

import numpy as np
import pytest

from prompt_tuning.checkpoints import huggingface
from tests import oracles
from tests.checkpoints import tiny

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_every_format_loads_onto_a_4x2_mesh(tmp_path):
    model = oracles.build_hf_t5(tiny.CONFIG, seed=5)
    model.save_pretrained(str(tmp_path / "hf"))
    expected = huggingface.hf_to_flat(oracles.hf_state_numpy(model), tiny.CONFIG)
    np.savez(tmp_path / "hf_expected.npz", **{k.replace("/", "."): v for k, v in expected.items()})
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8",
           "JAX_PLATFORMS": "cpu"}

    result = subprocess.run([sys.executable, "-m", "tests.checkpoints.sharded_load_main",
                             str(tmp_path)], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=300, check=False)

    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split("\n")[:5] == ["ok t5x_legacy", "ok t5x_orbax", "ok orbax",
                                             "ok huggingface", "ok refused"]
