"""The server's life as a user sees it: it prints where it serves only once it accepts
connections; it compiles every batch shape before /health says ready (a cold compilation cache
too), so no request compiles; a prompt registered later compiles while the others keep being
served; SIGTERM stops it cleanly (exit 0, no traceback), and it restarts on the same port at
once."""

from __future__ import annotations

import asyncio
import socket
import time

import httpx
import pytest

from tests.prompts import random_prompts
from tests.serving.server_process import Server

pytestmark = pytest.mark.slow

NUM_SHAPES = 4  # server_process.SMALL: batch (1, 4) x inputs (16,) x (score 8, generate 8)


@pytest.fixture(scope="module")
def prompts(tmp_path_factory) -> dict[str, str]:
    return random_prompts.write(str(tmp_path_factory.mktemp("prompts")),
                                {"a": 3, "b": 7, "long": 40})


async def _burst(url: str, count: int) -> list[httpx.Response]:
    """`count` requests at once, mixing prompts a and b, both endpoints, batch sizes 1 to 4."""
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        calls = []
        for i in range(count):
            prompt = "ab"[i % 2]
            if i % 3:
                calls.append(client.post("/score", json={"prompt": prompt, "inputs": [5] * (
                    1 + i % 16), "targets": [6] * (1 + i % 8)}))
            else:
                calls.append(client.post("/generate", json={
                    "prompt": prompt, "inputs": "sentence: ok", "max_decode_length": 1 + i % 8}))
        return await asyncio.gather(*calls)


def test_warm_up_with_a_cold_cache_then_no_request_compiles(prompts, tmp_path):
    cache = tmp_path / "xla"  # empty: every program is compiled, none read from disk
    with Server({"a": prompts["a"], "b": prompts["b"]},
                env={"PT_COMPILATION_CACHE_DIR": str(cache)}) as server:
        server.started()
        # Printed only once it accepts connections: asked at once, it answers (warming).
        warming = httpx.get(server.url + "/health", timeout=10)
        assert warming.status_code == 503, warming.text
        assert warming.json()["status"] == "warming"
        assert warming.json()["error"].startswith("warming up: ")
        early = httpx.post(server.url + "/score", timeout=10,
                           json={"prompt": "a", "inputs": "x", "targets": "y"})
        assert early.status_code == 503 and "warming up" in early.json()["error"]
        assert server.line().startswith(f"ready: {NUM_SHAPES} programs compiled in ")
        health = httpx.get(server.url + "/health", timeout=10).json()
        assert (health["status"], health["programs"]) == ("ok", NUM_SHAPES)
        assert any(cache.iterdir())  # the programs went to the (cold) persistent cache
        responses = asyncio.run(_burst(server.url, 40))
        assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
        # Every batch shape the burst met was compiled before: nothing compiled since.
        after = httpx.get(server.url + "/health", timeout=10).json()
        assert after["programs"] == NUM_SHAPES and after["requests"] == 40, after
        code, stderr = server.stop()
    assert code == 0 and "Traceback" not in stderr, stderr


def test_a_registered_prompt_compiles_while_the_others_are_served(prompts):
    with Server({"a": prompts["a"]}, "--max_wait_ms=1") as server:
        server.ready()
        loop_answers: list[float] = []

        async def scenario():
            async with httpx.AsyncClient(base_url=server.url, timeout=300) as client:
                # A 40-position prompt needs a longer table: a new set of programs.
                register = asyncio.ensure_future(client.post(
                    "/prompts", json={"name": "long", "path": prompts["long"]}))
                while not register.done():
                    start = time.monotonic()
                    served = await client.post("/score", json={"prompt": "a", "inputs": "x",
                                                               "targets": "y"})
                    assert served.status_code == 200, served.text
                    if not register.done():
                        loop_answers.append(time.monotonic() - start)
                        unknown = await client.post("/score", json={
                            "prompt": "long", "inputs": "x", "targets": "y"})
                        # Not served before it is compiled.
                        assert unknown.status_code in (404, 200), unknown.text
                return await register
        registered = asyncio.run(scenario())
        assert (registered.status_code, registered.json()) == (201, {"name": "long",
                                                                      "shape": [40, 64]})
        # Prompt 'a' was answered while the new programs compiled.
        assert len(loop_answers) >= 3, loop_answers
        health = httpx.get(server.url + "/health", timeout=10).json()
        assert health["programs"] == NUM_SHAPES  # the new table's, all compiled before the swap
        for prompt in ("a", "long"):
            answer = httpx.post(server.url + "/generate", timeout=60,
                                json={"prompt": prompt, "inputs": "x", "max_decode_length": 3})
            assert answer.status_code == 200, answer.text
        assert httpx.get(server.url + "/health", timeout=10).json()["programs"] == NUM_SHAPES
        code, stderr = server.stop()
    assert code == 0 and "Traceback" not in stderr, stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_sigterm_then_restart_on_the_same_port_at_once(prompts):
    port = _free_port()
    for _ in range(2):
        with Server({"a": prompts["a"]}, "--nowarmup", port=port) as server:
            server.ready()
            # Open connections at SIGTERM: the server closes them, and its side of each waits
            # in TIME_WAIT, which is what a bind without SO_REUSEADDR trips on.
            with httpx.Client(base_url=server.url, timeout=60) as client:
                for _ in range(3):
                    assert client.post("/score", json={"prompt": "a", "inputs": "x",
                                                       "targets": "y"}).status_code == 200
                code, stderr = server.stop()
        assert code == 0, stderr
        assert "Traceback" not in stderr and "error" not in stderr.lower(), stderr


def test_sigterm_while_warming_up_exits_cleanly_and_soon(prompts, tmp_path):
    with Server({"a": prompts["a"]}, "--max_batch=32",
                env={"PT_COMPILATION_CACHE_DIR": str(tmp_path / "xla")}) as server:
        server.started()
        assert httpx.get(server.url + "/health", timeout=10).status_code == 503
        start = time.monotonic()
        code, stderr = server.stop()
    assert code == 0 and "Traceback" not in stderr, stderr
    assert time.monotonic() - start < 30  # one program's compile at most, not all 8
