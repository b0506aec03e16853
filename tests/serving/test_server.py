"""The real server under load, as clients see it: `python -m prompt_tuning.serve` on 127.0.0.1,
500+ concurrent requests from a real HTTP client mixing four prompts of different lengths (one
registered while the others are served) and both endpoints, with about 15% bad requests of every
kind and clients that go away mid-request. Every good answer is checked against the offline
results (the `score` command; generation with the engine in-process, one request at a time),
every bad one is a 4xx `{"error"}`, nothing answers 500, the server's memory stays flat, and it
stops cleanly. Bounded: 127.0.0.1 only, a fixed number of requests, seconds on 2 cores."""

from __future__ import annotations

import asyncio
import json

import httpx
import numpy as np
import pytest

from tests.launch import runner
from tests.prompts import random_prompts
from tests.serving.server_process import SMALL, Server

pytestmark = pytest.mark.slow

LENGTHS = {"a": 3, "b": 7, "c": 12, "d": 20}  # d: registered under load (a longer table)
TEXTS = ["sentence: the soup was cold", "sentence: a long flight home",
         "sentence: the band played all night", "sentence: ok",
         "sentence: rain again on the hiking trip", "sentence: the striker scored twice"]
TARGETS = ["food", "travel", "music", "positive", "negative", "sports"]
LIMIT = 65536  # --max_request_bytes
SURROGATE = '{"prompt": "a", "inputs": "x\\ud800", "targets": "y"}'
# (method, path, body: JSON-able or raw bytes, status)
BAD = [("POST", "/score", b"{not json", 422),
       ("POST", "/score", {"prompt": "zz", "inputs": "x", "targets": "y"}, 404),
       ("POST", "/generate", {"prompt": "a", "inputs": 7}, 422),
       ("POST", "/score", SURROGATE.encode(), 422),
       ("POST", "/generate", {"prompt": "b", "inputs": [5] * 17}, 400),
       ("POST", "/score", {"prompt": "b", "inputs": "x", "targets": [5] * 9}, 400),
       ("POST", "/score", b"[" + b"1," * LIMIT + b"1]", 413),
       ("POST", "/score", {"prompt": "c", "inputs": "", "targets": "y"}, 400),
       ("POST", "/generate", {"prompt": "c", "inputs": []}, 400),
       ("POST", "/score", b"\xff\xfe\xfd", 422),
       ("POST", "/generate", {"prompt": "a", "inputs": "x", "max_decode_length": 99}, 400),
       ("POST", "/prompts", {"name": "a", "path": "/nowhere.npy"}, 409),
       ("GET", "/score", b"", 405),
       ("POST", "/nowhere", {}, 404),
       ("POST", "/score", {"prompt": "a", "inputs": "x", "targets": "y", "extra": 1}, 422)]


@pytest.fixture(scope="module")
def prompts(tmp_path_factory) -> dict[str, str]:
    return random_prompts.write(str(tmp_path_factory.mktemp("prompts")), LENGTHS)


def _valid(rng, count: int, names: str) -> list[tuple[str, dict]]:
    """(path, body) of `count` valid requests over prompts `names`, in a random order."""
    out = []
    for i in range(count):
        prompt = names[i % len(names)]
        if i % 2:
            out.append(("/score", {"prompt": prompt, "inputs": TEXTS[i % len(TEXTS)],
                                   "targets": TARGETS[(i // 2) % len(TARGETS)]}))
        else:
            out.append(("/generate", {"prompt": prompt, "inputs": TEXTS[(i // 2) % len(TEXTS)],
                                      "max_decode_length": [2, 5, 8][i % 3]}))
    return [out[i] for i in rng.permutation(len(out))]


async def _send(client: httpx.AsyncClient, method: str, path: str, body) -> httpx.Response:
    if isinstance(body, bytes):
        return await client.request(method, path, content=body,
                                    headers={"content-type": "application/json"})
    return await client.request(method, path, json=body)


async def _walk_away(url: str, request: bytes) -> None:
    """A client that sends `request` (maybe cut short) and closes without reading the answer."""
    host, port = url.removeprefix("http://").split(":")
    _, writer = await asyncio.open_connection(host, int(port))
    writer.write(request)
    await writer.drain()
    await asyncio.sleep(0.01)
    writer.close()


def _walkers(url: str, count: int) -> list:
    body = json.dumps({"prompt": "b", "inputs": "sentence: ok", "max_decode_length": 8}).encode()
    head = b"POST /generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    cut = head + b"Content-Length: %d\r\n\r\n" % len(body) + body[:len(body) // 2]
    whole = head + b"Content-Length: %d\r\n\r\n" % len(body) + body
    return [_walk_away(url, cut if i % 2 else whole) for i in range(count)]


async def _register_under_load(url: str, prompts: dict[str, str], rng
                               ) -> tuple[list, list, httpx.Response]:
    """Registers d while 100 requests use a, b, c; then 100 requests over a-d."""
    async with httpx.AsyncClient(base_url=url, timeout=300,
                                 limits=httpx.Limits(max_connections=64)) as client:
        first = _valid(rng, 100, "abc")
        register = _send(client, "POST", "/prompts", {"name": "d", "path": prompts["d"]})
        answers = await asyncio.gather(register, *[_send(client, "POST", p, b) for p, b in first])
        then = _valid(rng, 100, "abcd")
        answers += await asyncio.gather(*[_send(client, "POST", p, b) for p, b in then])
    return first + then, answers[1:], answers[0]


async def _mixed_load(url: str, rng) -> tuple[list, list, list]:
    """325 valid requests over a-d, 75 bad ones and 10 clients walking away, all at once."""
    async with httpx.AsyncClient(base_url=url, timeout=300,
                                 limits=httpx.Limits(max_connections=64)) as client:
        valid = _valid(rng, 325, "abcd")
        bad = [BAD[i % len(BAD)] for i in range(75)]
        calls = [_send(client, "POST", p, b) for p, b in valid]
        calls += [_send(client, m, p, b) for m, p, b, _ in bad]
        calls += _walkers(url, 10)
        order = rng.permutation(len(calls))
        results = dict(zip(order, await asyncio.gather(*[calls[i] for i in order])))
        answers = [results[i] for i in range(len(calls))]
    return valid, answers[:len(valid)], list(zip(bad, answers[len(valid):len(valid) + len(bad)]))


def _offline_scores(tmp_path, prompts, valid) -> list[dict]:
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
    """Each (prompt, text, length) generated alone, one request at a time, in-process."""
    from prompt_tuning.serving import MultiPromptModel

    engine = MultiPromptModel.load("builtin:tiny_t5")
    for name, path in prompts.items():
        engine.register(name, path)
    out = {}
    for path, body in valid:
        key = (body["prompt"], body["inputs"], body.get("max_decode_length"))
        if path == "/generate" and key not in out:
            out[key] = engine.generate([key[:2]], key[2])[0]
    return out


def test_server_under_mixed_load_answers_each_as_offline(tmp_path, prompts):
    with Server({n: prompts[n] for n in "abc"}, f"--max_request_bytes={LIMIT}") as server:
        server.ready()
        assert SMALL  # the small limits the BAD requests are written against
        rng = np.random.default_rng(1)
        asyncio.run(_load_once(server.url))  # the batch paths run once
        first, first_answers, registered = asyncio.run(
            _register_under_load(server.url, prompts, rng))
        # What warm-up, the registration and the first batches left: the load must not grow it.
        start_kib = server.rss_kib()
        valid, good, bad = asyncio.run(_mixed_load(server.url, rng))
        valid, good = first + valid, first_answers + good
        health = httpx.get(f"{server.url}/health", timeout=60).json()
        listed = httpx.get(f"{server.url}/prompts", timeout=60).json()
        end_kib = server.rss_kib()
        code, stderr = server.stop()
    assert code == 0 and "Traceback" not in stderr, stderr[-3000:]
    assert (registered.status_code, registered.json()) == (201, {"name": "d", "shape": [20, 64]})
    assert listed == {n: [length, 64] for n, length in LENGTHS.items()}
    assert len(valid) + len(bad) >= 500

    for (method, path, _, status), response in bad:
        assert response.status_code == status, (method, path, response.text)
        assert list(response.json()) == ["error"], response.text
    assert all(r.status_code == 200 for r in good), [r.text for r in good if r.status_code != 200]

    scores = iter(_offline_scores(tmp_path, prompts, valid))
    generated = _offline_generation(prompts, valid)
    for (path, body), response in zip(valid, good):
        answer = response.json()
        if path == "/score":
            expected = next(scores)
            np.testing.assert_allclose(answer["log_likelihood"], expected["log_likelihood"],
                                       atol=2e-5, rtol=1e-5)
            np.testing.assert_allclose(answer["token_log_probs"], expected["token_log_probs"],
                                       atol=2e-5, rtol=1e-5)
        else:
            assert answer == generated[(body["prompt"], body["inputs"],
                                        body["max_decode_length"])]
    # Batched: far fewer batches than requests (10 warmed the batch paths; the walkers' whole
    # requests, 5, may have run too).
    assert len(valid) + 10 <= health["requests"] <= len(valid) + 10 + 5, health
    assert health["batches"] < 0.6 * health["requests"], health
    # Flat memory: 400 requests later, within 10% (+16 MiB) of what warm-up and the first
    # batches left.
    assert end_kib <= start_kib * 1.10 + 16 * 1024, (start_kib, end_kib)


async def _load_once(url: str) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=300) as client:
        for size in (1, 4):
            await asyncio.gather(*[
                client.post("/score", json={"prompt": "a", "inputs": "x", "targets": "y"})
                for _ in range(size)] + [
                client.post("/generate", json={"prompt": "b", "inputs": "x"})
                for _ in range(size)])
