"""The HTTP API of one frozen model with many prompts (FastAPI; served by uvicorn).

  POST /score     {"prompt": NAME, "inputs": TEXT|[ids], "targets": TEXT|[ids]}
                  -> {"log_likelihood": float, "token_log_probs": [float per target token]}
  POST /generate  {"prompt": NAME, "inputs": TEXT|[ids], "max_decode_length": N (32)}
                  -> {"output": TEXT, "tokens": [ids before EOS]}   (greedy)
  POST /prompts   {"name": NAME, "path": FILE|RUN_DIR} -> 201 {"name": NAME, "shape": [P, d]}
  GET  /prompts   -> {NAME: [P, d], ...}
  GET  /health    -> {"status": "ok", "prompts": n, "batches": b, "requests": r}

Requests are checked before they are queued (unknown prompt: 404; bad ids, inputs too long for
the prompt, a bad max_decode_length: 400; malformed JSON or fields: 422), each with one
`{"error": message}`; valid requests that arrive close together are batched across prompts
(`DynamicBatcher`), so a bad request never disturbs the others.
"""

from __future__ import annotations

import contextlib
from typing import Any, Optional, Union

import pydantic

from prompt_tuning import errors
from prompt_tuning.serving.batcher import DynamicBatcher
from prompt_tuning.scoring.batches import bucket
from prompt_tuning.serving.engine import MultiPromptModel, check_decode_length

TokensOrText = Union[str, list[int]]


class ScoreRequest(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", strict=True)
    prompt: str
    inputs: TokensOrText
    targets: TokensOrText


class GenerateRequest(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", strict=True)
    prompt: str
    inputs: TokensOrText
    max_decode_length: int = 32


class RegisterRequest(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", strict=True)
    name: str
    path: str


def create_app(engine: MultiPromptModel, max_batch: int = 32, max_wait_s: float = 0.005) -> Any:
    """The FastAPI app serving `engine` (its prompts registered beforehand or via POST)."""
    from fastapi import FastAPI, Request  # pylint: disable=import-outside-toplevel
    from fastapi.exceptions import RequestValidationError  # pylint: disable=import-outside-toplevel
    from fastapi.responses import JSONResponse  # pylint: disable=import-outside-toplevel

    def run_batch(key: tuple, rows: list) -> list:
        return engine.score_tokens(rows) if key[0] == "score" else engine.generate_tokens(rows)

    state: dict[str, Optional[DynamicBatcher]] = {"batcher": None}

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        batcher = DynamicBatcher(run_batch, max_batch, max_wait_s)
        batcher.start()
        state["batcher"] = batcher
        yield
        await batcher.stop()

    app = FastAPI(title="prompt-tuning", lifespan=lifespan)

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse(status_code=status, content={"error": message})

    @app.exception_handler(RequestValidationError)
    async def malformed(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        if first.get("type") == "json_invalid":
            return error(422, "bad request: malformed JSON")
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return error(422, f"bad request: {where + ': ' if where else ''}"
                          f"{first.get('msg', 'malformed request')}")

    def checked(prompt: str, inputs: TokensOrText) -> list[int]:
        ids = engine.tokens(inputs, "inputs")
        engine.check(prompt, ids)
        return ids

    def refusal(e: errors.UserError) -> JSONResponse:
        message = str(e).strip().splitlines()[0]
        return error(404 if message.startswith("Unknown prompt") else 400, message)

    @app.post("/score")
    async def score(request: ScoreRequest) -> Any:
        try:
            row = (request.prompt, checked(request.prompt, request.inputs),
                   engine.tokens(request.targets, "targets"))
        except errors.UserError as e:
            return refusal(e)
        return await state["batcher"].submit(("score",), row)

    @app.post("/generate")
    async def generate(request: GenerateRequest) -> Any:
        try:
            length = check_decode_length(request.max_decode_length)
            row = (request.prompt, checked(request.prompt, request.inputs), length)
        except errors.UserError as e:
            return refusal(e)
        return await state["batcher"].submit(("generate", bucket(length)), row)

    @app.post("/prompts", status_code=201)
    async def register(request: RegisterRequest) -> Any:
        try:  # on the batch worker: the table changes between batches, never inside one
            shape = await state["batcher"].run_in_worker(
                lambda: engine.register(request.name, request.path))
        except errors.UserError as e:
            return error(400, str(e).strip().splitlines()[0])
        return {"name": request.name, "shape": list(shape)}

    @app.get("/prompts")
    async def prompts() -> Any:
        return engine.prompts

    @app.get("/health")
    async def health() -> Any:
        batcher = state["batcher"]
        return {"status": "ok", "prompts": len(engine.bank),
                "batches": batcher.batches if batcher else 0,
                "requests": batcher.items if batcher else 0}

    return app
