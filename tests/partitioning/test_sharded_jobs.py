"""eval, infer and score on an 8-device mesh (data 4 x model 2, the frozen model split over
'model', batches over 'data') give what one device gives."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.launch.runner import REPO


def _jobs(tmp_path, devices: int, num_partitions: int, prompt: str) -> str:
    out = tmp_path / f"d{devices}_p{num_partitions}"
    out.mkdir()
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
           "JAX_PLATFORMS": "cpu", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "tests.partitioning.sharded_jobs_main",
                           str(num_partitions), str(out), prompt], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for check in ("ok placement", "ok eval", "ok infer", "ok score"):
        assert check in proc.stdout, proc.stdout
    return str(out)


@pytest.mark.slow
def test_eval_infer_and_score_on_eight_devices_equal_one_device(tmp_path):
    prompt = str(tmp_path / "prompt.npy")
    np.save(prompt, np.random.default_rng(0).uniform(-0.5, 0.5, (10, 64)).astype(np.float32))
    sharded, single = _jobs(tmp_path, 8, 2, prompt), _jobs(tmp_path, 1, 1, prompt)

    results = [json.load(open(os.path.join(d, "eval", "eval_results.json")))
               for d in (sharded, single)]
    assert results[0]["metrics"] == results[1]["metrics"]
    predictions = [open(os.path.join(d, "infer.jsonl")).read().splitlines()
                   for d in (sharded, single)]
    assert len(predictions[0]) == 40 and predictions[0] == predictions[1]
    scores = [[json.loads(line) for line in open(os.path.join(d, "scores.jsonl"))]
              for d in (sharded, single)]
    for a, b in zip(*scores):
        # float32 sums in another order across devices: equal to rounding.
        np.testing.assert_allclose(a["token_log_probs"], b["token_log_probs"], atol=1e-4)
