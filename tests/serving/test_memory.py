"""The server's memory is bounded by its limits: 32 concurrent maximal requests, again and
again, with requests and a prompt far over the limits among them (refused, never computed), keep
its resident memory within a margin of what the first round of maximal requests took."""

from __future__ import annotations

import asyncio
import threading

import httpx
import numpy as np
import pytest

from tests.serving.server_process import Server

pytestmark = pytest.mark.slow

# server_process.SMALL: inputs 16, targets 8, decoding 8 tokens, prompts 64 positions.
MAXIMAL = [("/score", {"prompt": "a", "inputs": [7] * 16, "targets": [8] * 8}),
           ("/generate", {"prompt": "a", "inputs": [7] * 16, "max_decode_length": 8})]
OVER = [("/score", {"prompt": "a", "inputs": [7] * 16, "targets": [8] * 3000}),
        ("/score", {"prompt": "a", "inputs": [7] * 3000, "targets": [8] * 8}),
        ("/generate", {"prompt": "a", "inputs": "word " * 3000}),
        ("/generate", {"prompt": "a", "inputs": [7] * 16, "max_decode_length": 3000})]


async def _round(url: str, requests: list) -> list[int]:
    async with httpx.AsyncClient(base_url=url, timeout=300,
                                 limits=httpx.Limits(max_connections=64)) as client:
        answers = await asyncio.gather(*[client.post(p, json=b) for p, b in requests])
    return [a.status_code for a in answers]


def test_memory_is_bounded_under_concurrent_maximal_requests(tmp_path):
    path = tmp_path / "a.npy"
    np.save(path, np.random.default_rng(0).uniform(-0.5, 0.5, (64, 64)).astype(np.float32))
    too_long = tmp_path / "long.npy"
    np.save(too_long, np.zeros((3000, 64), np.float32))
    with Server({"a": str(path)}) as server:
        server.ready()
        maximal = [MAXIMAL[i % 2] for i in range(32)]
        assert asyncio.run(_round(server.url, maximal)) == [200] * 32
        baseline = server.rss_kib()
        peak = [baseline]
        sampling = threading.Event()

        def sample():
            while not sampling.wait(0.02):
                peak[0] = max(peak[0], server.rss_kib())
        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            for _ in range(3):
                assert asyncio.run(_round(server.url, maximal)) == [200] * 32
                over = [OVER[i % len(OVER)] for i in range(32)]
                assert asyncio.run(_round(server.url, over)) == [400] * 32
                registered = httpx.post(server.url + "/prompts", timeout=60,
                                        json={"name": "long", "path": str(too_long)})
                assert registered.status_code == 400, registered.text
        finally:
            sampling.set()
            sampler.join()
        code, stderr = server.stop()
    assert code == 0, stderr
    # Bounded: within 10% (+16 MiB) of what the first round of maximal requests took.
    assert peak[0] <= baseline * 1.10 + 16 * 1024, (baseline, peak[0])
