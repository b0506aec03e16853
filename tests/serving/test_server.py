"""The real server, as a client sees it: `python -m prompt_tuning.serve` on 127.0.0.1, hundreds of
concurrent requests from a real HTTP client mixing prompts (one registered at run time) and both
endpoints, bad requests among them; every answer is checked against the offline results (the
`score` command; generation with each prompt alone), and the server stops cleanly."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading

import httpx
import numpy as np
import pytest

from tests.launch import runner
from tests.prompts import random_prompts

pytestmark = pytest.mark.slow

LENGTHS = {"a": 3, "b": 7, "c": 12}
TEXTS = ["sentence: the soup was cold", "sentence: a long flight home",
         "sentence: the band played all night and we loved it", "sentence: ok",
         "sentence: rain again on the hiking trip", "sentence: the striker scored twice",
         "sentence: what a fantastic hostel", "sentence: the concert was far too loud"]
TARGETS = ["food", "travel", "music", "positive", "negative", "sports"]
NUM_EACH = 120  # score and generate requests each: 240 valid ones


@pytest.fixture(scope="module")
def prompts(tmp_path_factory) -> dict[str, str]:
    return random_prompts.write(str(tmp_path_factory.mktemp("prompts")), LENGTHS)


def _start(prompts) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "prompt_tuning.serve", "--checkpoint=builtin:tiny_t5",
         f"--prompt=a={prompts['a']}", f"--prompt=b={prompts['b']}", "--port=0",
         "--max_wait_ms=20", "--max_batch=16"],
        cwd=runner.REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout=300)
    assert line and line[0].startswith("serving 2 prompt(s) ['a', 'b'] on http://127.0.0.1:"), (
        line, proc.poll())
    return proc, line[0].split(" on ")[1].strip()


def _requests(rng) -> list[tuple[str, dict]]:
    """(endpoint, body) of the valid requests, in a random order."""
    out = []
    for i in range(NUM_EACH):
        out.append(("/score", {"prompt": "abc"[i % 3], "inputs": TEXTS[i % len(TEXTS)],
                               "targets": TARGETS[i % len(TARGETS)]}))
        out.append(("/generate", {"prompt": "abc"[(i + 1) % 3], "inputs": TEXTS[i % len(TEXTS)],
                                  "max_decode_length": [3, 6, 10][i % 3]}))
    return [out[i] for i in rng.permutation(len(out))]


BAD = [("/score", {"prompt": "zz", "inputs": "x", "targets": "y"}, 404, "Unknown prompt 'zz'"),
       ("/generate", {"prompt": "a", "inputs": [5] * 3000}, 400, "inputs of 3000 tokens do not "
                                                                 "fit with prompt 'a'"),
       ("/generate", {"prompt": "a", "inputs": "x", "max_decode_length": 0}, 400,
        "max_decode_length must be an integer from 1 to 1024, got 0."),
       ("/score", {"prompt": "b", "inputs": [5, 0], "targets": "y"}, 400, "token id 0"),
       ("/score", {"prompt": "b", "inputs": "x"}, 422, "bad request: targets: Field required"),
       ("/score", "{not json", 422, "bad request: malformed JSON")]


async def _send_all(base: str, valid, bad) -> tuple[list, list]:
    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(base_url=base, timeout=300, limits=limits) as client:
        async def send(path, body):
            if isinstance(body, str):
                return await client.post(path, content=body,
                                         headers={"content-type": "application/json"})
            return await client.post(path, json=body)
        tasks = [send(p, b) for p, b in valid] + [send(p, b) for p, b, _, _ in bad]
        responses = await asyncio.gather(*tasks)
    return responses[:len(valid)], responses[len(valid):]


def _offline_scores(tmp_path, prompts, valid) -> list[float]:
    rows = [b for p, b in valid if p == "/score"]
    inputs = tmp_path / "in.jsonl"
    inputs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    output = tmp_path / "out.jsonl"
    result = runner.run_in_process("prompt_tuning.score", "--checkpoint=builtin:tiny_t5",
                                   f"--inputs={inputs}", f"--output={output}",
                                   *[f"--prompt={n}={p}" for n, p in prompts.items()])
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in output.read_text().splitlines()]


def _offline_generation(prompts, valid) -> dict[tuple, dict]:
    """Each (prompt, text, length) generated with that prompt alone, one example at a time."""
    from prompt_tuning.serving import MultiPromptModel

    engines = {}
    out = {}
    for path, body in valid:
        if path != "/generate":
            continue
        key = (body["prompt"], body["inputs"], body["max_decode_length"])
        if key in out:
            continue
        if body["prompt"] not in engines:
            engine = MultiPromptModel.load("builtin:tiny_t5")
            engine.register(body["prompt"], prompts[body["prompt"]])
            engines[body["prompt"]] = engine
        out[key] = engines[body["prompt"]].generate([key[:2]], key[2])[0]
    return out


def test_server_batches_mixed_prompts_and_answers_each_as_offline(tmp_path, prompts):
    proc, base = _start(prompts)
    try:
        registered = httpx.post(f"{base}/prompts", json={"name": "c", "path": prompts["c"]},
                                timeout=60)
        assert (registered.status_code, registered.json()) == (201, {"name": "c",
                                                                      "shape": [12, 64]})
        valid = _requests(np.random.default_rng(1))
        good, bad = asyncio.run(_send_all(base, valid, BAD))
        health = httpx.get(f"{base}/health", timeout=60).json()
        listed = httpx.get(f"{base}/prompts", timeout=60).json()
        # Text was tokenized and decoded with SentencePiece alone: no TensorFlow in the server.
        with open(f"/proc/{proc.pid}/maps") as f:
            libraries = {line.split()[-1] for line in f if "/" in line}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert code == 0, proc.stderr.read()[-3000:]
    assert listed == {"a": [3, 64], "b": [7, 64], "c": [12, 64]}
    assert any("jaxlib" in lib for lib in libraries)  # the check sees the libraries loaded
    assert not [lib for lib in libraries if "tensorflow" in lib]

    for response, (_, _, status, message) in zip(bad, BAD):
        assert response.status_code == status, response.text
        assert message in response.json()["error"]
    assert all(r.status_code == 200 for r in good), [r.text for r in good if r.status_code != 200]

    scores = iter(_offline_scores(tmp_path, prompts, valid))
    generated = _offline_generation(prompts, valid)
    for (path, body), response in zip(valid, good):
        answer = response.json()
        if path == "/score":
            expected = next(scores)
            np.testing.assert_allclose(answer["log_likelihood"], expected["log_likelihood"],
                                       atol=2e-5, rtol=0)
            np.testing.assert_allclose(answer["token_log_probs"], expected["token_log_probs"],
                                       atol=2e-5, rtol=0)
        else:
            key = (body["prompt"], body["inputs"], body["max_decode_length"])
            assert answer == generated[key]
    # Requests were batched: far fewer batches than requests, all of them answered.
    assert health["requests"] == len(valid)
    assert health["batches"] < len(valid) / 3, health
