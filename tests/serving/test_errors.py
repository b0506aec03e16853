"""Every way a client can get a request wrong, against the real server: one 4xx `{"error"}`
JSON answer each (none of FastAPI's `{"detail"}`, no 500, no text/plain), and nothing changed
by a refused request (a refused registration leaves the prompts as they were)."""

from __future__ import annotations

import socket
import time

import httpx
import numpy as np
import pytest

from tests.prompts import random_prompts
from tests.serving.server_process import Server

pytestmark = pytest.mark.slow

LIMIT = 65536  # --max_request_bytes


@pytest.fixture(scope="module")
def prompts(tmp_path_factory) -> dict[str, str]:
    out = random_prompts.write(str(tmp_path_factory.mktemp("prompts")),
                               {"a": 3, "b": 7, "long": 65, "other": 5})
    return out


@pytest.fixture(scope="module")
def server(prompts):
    with Server({"a": prompts["a"], "b": prompts["b"]}, f"--max_request_bytes={LIMIT}") as s:
        s.ready()
        yield s
        code, stderr = s.stop()
        assert code == 0, stderr
        assert "Traceback" not in stderr, stderr


def _post(server, path: str, content: bytes) -> httpx.Response:
    return httpx.post(server.url + path, content=content, timeout=60,
                      headers={"content-type": "application/json"})


def _error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json", response.headers
    body = response.json()
    assert list(body) == ["error"] and isinstance(body["error"], str), body
    return body["error"]


SURROGATE = b'"a\\ud800b"'


@pytest.mark.parametrize("path, body", [
    ("/score", b'{"prompt": "a", "inputs": ' + SURROGATE + b', "targets": "x"}'),
    ("/score", b'{"prompt": "a", "inputs": "x", "targets": ' + SURROGATE + b'}'),
    ("/score", b'{"prompt": ' + SURROGATE + b', "inputs": "x", "targets": "y"}'),
    ("/generate", b'{"prompt": "a", "inputs": ' + SURROGATE + b'}'),
    ("/generate", b'{"prompt": "a", "inputs": "x", ' + SURROGATE + b': 1}'),
])
def test_lone_surrogates_are_refused(server, path, body):
    assert "lone surrogate" in _error(_post(server, path, body), 422)


def test_a_refused_registration_changes_nothing(server, prompts):
    before = httpx.get(server.url + "/prompts", timeout=60).json()
    score = {"prompt": "a", "inputs": "sentence: ok", "targets": "food"}
    scored = httpx.post(server.url + "/score", json=score, timeout=60).json()
    refused = [
        (b'{"name": ' + SURROGATE + f', "path": "{prompts["other"]}"}}'.encode(), 422),
        (f'{{"name": "a", "path": "{prompts["b"]}"}}'.encode(), 409),  # taken, no replace
        (f'{{"name": "c", "path": "{prompts["long"]}"}}'.encode(), 400),  # > 64 positions
        (f'{{"name": "a", "path": "{prompts["long"]}", "replace": true}}'.encode(), 400),
        (b'{"name": "c", "path": "/nowhere/c.npy"}', 400),
        (b'{"name": "", "path": "/nowhere/c.npy"}', 400),
        (f'{{"name": "c", "path": "{prompts["b"]}", "replace": 1}}'.encode(), 422),
    ]
    for body, status in refused:
        message = _error(_post(server, "/prompts", body), status)
        assert httpx.get(server.url + "/prompts", timeout=60).json() == before, message
    assert "\"replace\": true" in _error(_post(server, "/prompts", refused[1][0]), 409)
    assert "--max_prompt_length=64" in _error(_post(server, "/prompts", refused[2][0]), 400)
    again = httpx.post(server.url + "/score", json=score, timeout=60).json()
    assert again == scored  # the prompt 'a' scored is still the same prompt


def test_replace_true_replaces_a_prompt(server, prompts):
    score = {"prompt": "b2", "inputs": "sentence: ok", "targets": "food"}
    first = httpx.post(server.url + "/prompts", json={"name": "b2", "path": prompts["b"]},
                       timeout=300)
    assert (first.status_code, first.json()) == (201, {"name": "b2", "shape": [7, 64]})
    as_b = httpx.post(server.url + "/score", json=score, timeout=60).json()
    replaced = httpx.post(server.url + "/prompts", timeout=300,
                          json={"name": "b2", "path": prompts["other"], "replace": True})
    assert (replaced.status_code, replaced.json()) == (201, {"name": "b2", "shape": [5, 64]})
    as_other = httpx.post(server.url + "/score", json=score, timeout=60).json()
    assert as_other != as_b
    assert httpx.get(server.url + "/prompts", timeout=60).json()["b2"] == [5, 64]


DEEP = b"[" * 30_000 + b"]" * 30_000  # 100,000 deep would be over --max_request_bytes


@pytest.mark.parametrize("method, path, body, status, message", [
    ("POST", "/score", b"\xff\xfe{}", 422, "not UTF-8"),
    ("POST", "/score", DEEP, 422, "nested too deeply"),
    ("POST", "/generate", b"{not json", 422, "malformed JSON"),
    ("POST", "/score", b"[1, 2]", 422, "expected a JSON object"),
    ("GET", "/nowhere", b"", 404, "Not Found"),
    ("POST", "/nowhere", b"{}", 404, "Not Found"),
    ("DELETE", "/score", b"", 405, "Method Not Allowed"),
    ("GET", "/generate", b"", 405, "Method Not Allowed"),
    ("PUT", "/prompts", b"{}", 405, "Method Not Allowed"),
    ("POST", "/score", b'{"prompt": "a", "inputs": 5, "targets": "x"}', 422,
     "inputs: expected text or a list of integer token ids, got an integer"),
    ("POST", "/score", b'{"prompt": "a", "inputs": [5, true], "targets": "x"}', 422,
     "got a list with a boolean"),
    ("POST", "/score", b'{"prompt": 3, "inputs": "x", "targets": "y"}', 422,
     "prompt: expected text"),
    ("POST", "/score", b'{"prompt": "a", "inputs": "x"}', 422, "targets: Field required"),
    ("POST", "/score", b'{"prompt": "a", "inputs": "x", "targets": "y", "z": 1}', 422,
     "unknown field 'z'"),
    ("POST", "/generate", b'{"prompt": "a", "inputs": "x", "max_decode_length": "8"}', 422,
     "max_decode_length: expected an integer"),
    ("POST", "/score", b'{"prompt": "a", "inputs": "", "targets": "x"}', 400,
     "inputs must be non-empty"),
    ("POST", "/score", b'{"prompt": "a", "inputs": "   ", "targets": "x"}', 400,
     "inputs must be non-empty"),
    ("POST", "/score", b'{"prompt": "a", "inputs": [], "targets": "x"}', 400,
     "non-empty list"),
    ("POST", "/score", b'{"prompt": "a", "inputs": "x", "targets": ""}', 400,
     "targets must be non-empty"),
    ("POST", "/generate", b'{"prompt": "a", "inputs": []}', 400, "non-empty list"),
    ("POST", "/score", b'{"prompt": "a", "inputs": [5, 0], "targets": "x"}', 400, "token id 0"),
    ("POST", "/score", b'{"prompt": "a", "inputs": [99999], "targets": "x"}', 400,
     "out of range"),
    ("POST", "/score", b'{"prompt": "zz", "inputs": "x", "targets": "y"}', 404,
     "Unknown prompt 'zz'"),
    ("POST", "/generate", b'{"prompt": "a", "inputs": "x", "max_decode_length": 9}', 400,
     "max_decode_length must be an integer from 1 to 8, got 9."),
    ("POST", "/generate", b'{"prompt": "a", "inputs": "x", "max_decode_length": 0}', 400,
     "from 1 to 8"),
    ("POST", "/score", b'{"prompt": "a", "inputs": [5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, '
                       b'5, 5, 5], "targets": "x"}', 400,
     "inputs has 17 tokens; this server accepts at most 16"),
    ("POST", "/score", b'{"prompt": "a", "inputs": "x", "targets": [5, 5, 5, 5, 5, 5, 5, 5, '
                       b'5]}', 400, "targets has 9 tokens; this server accepts at most 8"),
    ("POST", "/score", b" " * (LIMIT + 1), 413, "--max_request_bytes"),
], ids=lambda value: value if isinstance(value, str) and value.startswith("/") else None)
def test_each_bad_request_gets_one_json_error(server, method, path, body, status, message):
    response = httpx.request(method, server.url + path, content=body, timeout=60,
                             headers={"content-type": "application/json"})
    assert message in _error(response, status)


def _answer(sock: socket.socket) -> bytes:
    """One HTTP answer (headers and its Content-Length of body) read from `sock`."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:")))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def _raw(server, request: bytes) -> bytes:
    """What the server answers to `request` (headers, maybe part of a body) sent on a raw
    socket, without sending the rest."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(request)
        return _answer(sock)


def test_an_oversized_body_is_refused_before_it_is_read(server):
    # 60 MB announced, none sent: the 413 comes at once, not after a 60 MB upload.
    start = time.monotonic()
    answer = _raw(server, b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                          b"\r\nContent-Length: 60000000\r\n\r\n{")
    assert answer.startswith(b"HTTP/1.1 413 "), answer
    assert b'{"error":"the request body is larger than this server accepts (65536 bytes' in answer
    assert time.monotonic() - start < 10
    # Chunked, no length announced: refused once the bytes read pass the limit.
    chunk = b"%x\r\n%s\r\n" % (16384, b" " * 16384)
    answer = _raw(server, b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                          b"\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk * 5)
    assert answer.startswith(b"HTTP/1.1 413 "), answer
    assert httpx.get(server.url + "/health", timeout=10).status_code == 200


def test_a_large_body_does_not_stall_other_clients(server):
    # A body at the limit, sent slowly: /health answers meanwhile.
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        sock.sendall(b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n[" % LIMIT)
        start = time.monotonic()
        assert httpx.get(server.url + "/health", timeout=10).status_code == 200
        assert time.monotonic() - start < 2
        sock.sendall(b"1," * ((LIMIT - 2) // 2) + b"1]"[:LIMIT - 1 - 2 * ((LIMIT - 2) // 2)])
        answer = _answer(sock)
    assert answer.startswith(b"HTTP/1.1 422 "), answer


def test_a_fault_of_the_server_is_a_json_500(prompts):
    # An exception no route expects (here: a route added for the test that raises), answered
    # by the app's own handler.
    from starlette.testclient import TestClient

    from prompt_tuning.serving import MultiPromptModel
    from prompt_tuning.serving.app import create_app

    app = create_app(MultiPromptModel.load("builtin:tiny_t5"))

    def boom():
        raise RuntimeError("an unexpected fault")

    app.add_api_route("/boom", boom)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom")
    assert "internal server error (RuntimeError)" in _error(response, 500)


def test_the_server_still_answers_right_after_all_that(server):
    response = httpx.post(server.url + "/generate", timeout=60,
                          json={"prompt": "b", "inputs": "sentence: ok", "max_decode_length": 4})
    assert response.status_code == 200 and len(response.json()["tokens"]) <= 4
    assert np.isfinite(httpx.post(server.url + "/score", timeout=60, json={
        "prompt": "a", "inputs": [5, 6], "targets": [7]}).json()["log_likelihood"])


def test_command_line_mistakes_are_one_error_line(prompts):
    from tests.launch import runner

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cases = [([f"--port={port}"], f"cannot listen on 127.0.0.1:{port}: Address already in "
                                      "use; pick another --port (0: any free one)."),
                 (["--max_batch=0"], "--max_batch must be an integer from 1 to 65536, got 0."),
                 (["--max_request_bytes=0"], "--max_request_bytes >= 1"),
                 ([f"--prompt=a={prompts['long']}", "--max_prompt_length=64", "--port=0"],
                  "a prompt of 65 positions is longer than this server accepts "
                  "(--max_prompt_length=64).")]
        for flags, message in cases:
            done = runner.run_subprocess("prompt_tuning.serve", "--checkpoint=builtin:tiny_t5",
                                         *flags, timeout=120)
            assert done.returncode in (1, 2), done.stderr
            lines = done.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], (
                done.stderr)
            assert done.stdout == ""
