"""The HTTP API of one frozen model with many prompts (FastAPI; served by uvicorn).

  POST /score     {"prompt": NAME, "inputs": TEXT|[ids], "targets": TEXT|[ids]}
                  -> {"log_likelihood": float, "token_log_probs": [float per target token]}
  POST /generate  {"prompt": NAME, "inputs": TEXT|[ids], "max_decode_length": N (the limit)}
                  -> {"output": TEXT, "tokens": [ids before EOS]}   (greedy)
  POST /prompts   {"name": NAME, "path": FILE|RUN_DIR, "replace": false}
                  -> 201 {"name": NAME, "shape": [P, d]}
  GET  /prompts   -> {NAME: [P, d], ...}
  GET  /health    -> {"status": "ok", "prompts": n, "batches": b, "requests": r, "programs": c}
                     (503 {"error": "warming up: ...", "status": "warming"} until warmed up)

Every answer that is not 2xx is `{"error": "<one line>"}` JSON: 400 for bad values (token ids,
empty or too long inputs or targets, max_decode_length, a prompt file or a prompt too long),
404 for an unknown prompt or route, 405 for a wrong method, 409 for registering a registered
name without "replace": true, 413 for a body over `max_request_bytes`, 422 for a body that is
not the JSON object asked for (`requests.py`), 503 while warming up, 500 for a fault of the
server's own. Bodies are read with a byte limit; a large one is parsed, checked and tokenized
on a thread of its own (never on the event loop), so a bad or large request never delays
others; valid requests that arrive close together are batched across prompts
(`DynamicBatcher`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from typing import Any, Callable, Optional

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from prompt_tuning import errors
from prompt_tuning.serving.batcher import DynamicBatcher
from prompt_tuning.serving.engine import MultiPromptModel, PromptExistsError, UnknownPromptError
from prompt_tuning.serving.programs import Stopped
from prompt_tuning.serving.requests import (GENERATE_FIELDS, REGISTER_FIELDS, SCORE_FIELDS,
                                            RequestError, parse_object)
from prompt_tuning.scoring.batches import rung

MAX_REQUEST_BYTES = 4 * 2**20
# Bodies up to this size are parsed and checked on the event loop (well under a millisecond);
# larger ones on the parse thread, so that a big body never holds up the other clients.
INLINE_BYTES = 16384


class Serving:
    """What the routes share: the engine, the batcher, the threads and the warm-up state."""

    def __init__(self, engine: MultiPromptModel, max_wait_s: float, warmup: bool):
        self.engine = engine
        self.max_wait_s = max_wait_s
        self.warmup = warmup
        self.warming = warmup  # until `warm_up` finishes, batches are refused (503)
        self.progress = (0, len(engine.limits.shapes()) if warmup else 0)
        self.failed: Optional[str] = None
        self.stop = threading.Event()  # set on shutdown: compiling stops between programs
        self.batcher: Optional[DynamicBatcher] = None
        self.parser = concurrent.futures.ThreadPoolExecutor(1, "parse")
        self.registrar = concurrent.futures.ThreadPoolExecutor(1, "register")

    def run_batch(self, key: tuple, rows: list) -> list:
        engine = self.engine
        return engine.score_tokens(rows) if key[0] == "score" else engine.generate_tokens(rows)

    async def warm_up(self) -> int:
        """Compiles every batch shape (on the batch worker); returns how many, or -1 if it
        failed (the reason in `failed`)."""
        if not self.warming:
            return 0
        def progress(done: int, total: int) -> None:
            self.progress = (done, total)
        try:
            count = await self.batcher.run_in_worker(
                lambda: self.engine.warm_up(self.stop, progress))
        except Stopped:
            return -1
        except Exception as e:  # pylint: disable=broad-except  # reported by /health
            self.failed = f"warm-up failed: {type(e).__name__}: {e}".splitlines()[0]
            return -1
        self.warming = False
        return count

    def unavailable(self) -> Optional[str]:
        """Why batches cannot run now, or None."""
        if self.failed:
            return self.failed
        if self.warming:
            done, total = self.progress
            return f"warming up: {done} of {total} programs compiled"
        return None


def create_app(engine: MultiPromptModel, max_wait_s: float = 0.005,
               max_request_bytes: int = MAX_REQUEST_BYTES, warmup: bool = False) -> Any:
    """The FastAPI app serving `engine` (its prompts registered beforehand or via POST).

    With `warmup`, batches are refused (503) until `app.state.serving.warm_up()` has compiled
    every batch shape; the host calls it once it listens (`prompt_tuning.serve`).
    """
    serving = Serving(engine, max_wait_s, warmup)

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        serving.batcher = DynamicBatcher(serving.run_batch, engine.limits.max_batch, max_wait_s)
        serving.batcher.start()
        yield
        serving.stop.set()
        serving.registrar.shutdown(wait=True, cancel_futures=True)
        await serving.batcher.stop()
        serving.parser.shutdown(wait=True, cancel_futures=True)

    app = FastAPI(title="prompt-tuning", lifespan=lifespan)
    app.state.serving = serving
    app.add_middleware(_BodyLimit, max_bytes=max_request_bytes)

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, exc: HTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail), exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, f"bad request: {exc.errors()[0].get('msg', 'invalid')}"
                              if exc.errors() else "bad request")

    @app.exception_handler(Exception)
    async def fault(_request: Request, exc: Exception) -> JSONResponse:
        # Starlette logs the traceback after this answer: the operator sees the fault.
        return error_response(500, f"internal server error ({type(exc).__name__}); the "
                                   "server log has the details.")

    async def parsed(request: Request, check: Callable[[bytes], Any]) -> Any:
        """`check(body)` on the parse thread, once the body is read within the byte limit."""
        chunks, size = [], 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > max_request_bytes:
                    raise RequestError(413, too_large(max_request_bytes))
                chunks.append(chunk)
        except ClientDisconnect:
            raise RequestError(400, "the client disconnected before sending the body.") from None
        body = b"".join(chunks)
        if len(body) <= INLINE_BYTES:  # microseconds: a thread hop would cost more
            return check(body)
        return await asyncio.get_running_loop().run_in_executor(serving.parser, check, body)

    async def batched(request: Request, check: Callable[[bytes], tuple]) -> Any:
        busy = serving.unavailable()
        if busy:
            return error_response(503, f"{busy}; retry once GET /health answers 200.",
                                  {"Retry-After": "1"})
        try:
            key, row = await parsed(request, check)
        except RequestError as e:
            return error_response(e.status, e.message)
        except errors.UserError as e:
            return refusal(e)
        return await serving.batcher.submit(key, row)

    def score_row(body: bytes) -> tuple:
        fields = parse_object(body, SCORE_FIELDS)
        return ("score",), engine.score_row(fields["prompt"], fields["inputs"], fields["targets"])

    def generate_row(body: bytes) -> tuple:
        fields = parse_object(body, GENERATE_FIELDS)
        length = fields["max_decode_length"]
        row = engine.generate_row(fields["prompt"], fields["inputs"],
                                  engine.limits.max_decode_length if length is None else length)
        return ("generate", rung(row[2], engine.limits.decode_lengths)), row

    @app.post("/score")
    async def score(request: Request) -> Any:
        return await batched(request, score_row)

    @app.post("/generate")
    async def generate(request: Request) -> Any:
        return await batched(request, generate_row)

    @app.post("/prompts", status_code=201)
    async def register(request: Request) -> Any:
        busy = serving.unavailable()
        if busy:
            return error_response(503, f"{busy}; retry once GET /health answers 200.",
                                  {"Retry-After": "1"})
        try:
            fields = await parsed(request, lambda body: parse_object(body, REGISTER_FIELDS))
            # Compiling (when the prompt is longer than the table) runs on its own thread while
            # batches go on with the prompts already served; the prompt joins them when ready.
            shape = await asyncio.get_running_loop().run_in_executor(
                serving.registrar, lambda: engine.register(
                    fields["name"], fields["path"], fields["replace"], compile_first=warmup,
                    stop=serving.stop))
        except RequestError as e:
            return error_response(e.status, e.message)
        except errors.UserError as e:
            return refusal(e)
        except (Stopped, RuntimeError):  # RuntimeError: the registrar was shut down
            return error_response(503, "the server is shutting down.")
        return {"name": fields["name"], "shape": list(shape)}

    @app.get("/prompts")
    async def prompts() -> Any:
        return engine.prompts

    @app.get("/health")
    async def health() -> Any:
        busy = serving.unavailable()
        if busy:
            return error_response(503, busy, {"Retry-After": "1"},
                                  status="failed" if serving.failed else "warming")
        batcher = serving.batcher
        return {"status": "ok", "prompts": len(engine.bank), "programs": engine.num_compiled,
                "batches": batcher.batches if batcher else 0,
                "requests": batcher.items if batcher else 0}

    return app


def refusal(e: errors.UserError) -> Any:
    """The answer to a request the engine refused."""
    message = str(e).strip().splitlines()[0]
    if isinstance(e, UnknownPromptError):
        return error_response(404, message)
    return error_response(409 if isinstance(e, PromptExistsError) else 400, message)


def too_large(limit: int) -> str:
    return (f"the request body is larger than this server accepts ({limit} bytes, "
            "--max_request_bytes).")


def error_response(code: int, message: str, headers: Optional[dict] = None,
                   **extra: Any) -> Any:
    """`{"error": message}` JSON (any text UTF-8 cannot encode escaped, so it always can)."""
    safe = message.encode("utf-8", "backslashreplace").decode("utf-8")
    return JSONResponse(status_code=code, content={"error": safe, **extra}, headers=headers)


class _BodyLimit:
    """ASGI middleware: a request whose Content-Length is over the limit gets 413 before any of
    its body is read (chunked bodies are counted as they are read, in `create_app`)."""

    def __init__(self, app: Any, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "http":
            declared = dict(scope.get("headers") or []).get(b"content-length")
            status, message = 0, ""
            if declared is not None:
                if not declared.isdigit():
                    status, message = 400, "bad request: Content-Length is not a number."
                elif int(declared) > self.max_bytes:
                    status, message = 413, too_large(self.max_bytes)
            if status:
                await error_response(status, message, {"Connection": "close"})(scope, receive,
                                                                               send)
                return
        await self.app(scope, receive, send)
