r"""Serves one frozen model with many prompts over HTTP, batching requests across prompts.

  python -m prompt_tuning.serve --checkpoint=PATH --prompt=rte=/prompts/rte.npy \
      --prompt=sst2=/prompts/sst2_peft [--vocab=SPM] [--host=127.0.0.1] [--port=8000] \
      [--max_batch=32] [--max_wait_ms=5] [--max_request_bytes=4194304] [--nowarmup] \
      [--max_prompts=64] [--max_prompt_length=256] [--max_input_length=256] \
      [--max_target_length=32] [--max_decode_length=32]

--checkpoint is any supported format (T5X, orbax, Hugging Face, builtin:tiny_t5); each
--prompt=NAME=PATH registers a prompt (`.npy`, a PEFT adapter dir, our export, or a training
run directory: its best prompt); more can be registered at run time with POST /prompts.
Endpoints (JSON): POST /score, POST /generate, POST /prompts, GET /prompts, GET /health; see
`prompt_tuning/serving/app.py`. Requests that arrive within --max_wait_ms of each other run as
one batch, whatever their prompts. It listens on 127.0.0.1 unless --host says otherwise.

Everything is checked, the model and every prompt read, before it listens. Once it accepts
connections it prints `serving ... on http://HOST:PORT`, then compiles every batch shape its
limits allow (`--warmup`, the default; GET /health answers 503 meanwhile) and prints `ready: ...`
(with --nowarmup, at once: each shape then compiles on its first batch). Ctrl-C or SIGTERM
stops it cleanly (exit 0).
"""

from __future__ import annotations

import sys
from typing import Any, Sequence

from absl import flags

from prompt_tuning import cli, errors, paths


def define_flags(values: flags.FlagValues) -> None:
    flags.DEFINE_string("checkpoint", None, "the frozen model: T5X (legacy or orbax), our "
                        "orbax, Hugging Face, or builtin:NAME.", flag_values=values)
    flags.DEFINE_multi_string("prompt", [], "NAME=PATH: a prompt to serve (.npy, PEFT adapter "
                              "dir, our export, or a run dir); repeatable.", flag_values=values)
    flags.DEFINE_string("vocab", None, "SentencePiece model for text (default: the shipped T5 "
                        "vocabulary).", flag_values=values)
    flags.DEFINE_string("host", "127.0.0.1", "address to listen on.", flag_values=values)
    flags.DEFINE_integer("port", 8000, "port to listen on (0: any free port).",
                         flag_values=values)
    flags.DEFINE_float("max_wait_ms", 5.0, "how long a request waits for others to batch with.",
                       flag_values=values)
    flags.DEFINE_integer("max_request_bytes", 4 * 2**20, "the largest request body accepted "
                         "(larger: 413, before the body is read).", flag_values=values)
    flags.DEFINE_boolean("warmup", True, "compile every batch shape before answering "
                         "requests (--nowarmup: each compiles on its first batch).",
                         flag_values=values)
    from prompt_tuning.serving.programs import Limits  # pylint: disable=import-outside-toplevel
    help_texts = {"max_batch": "requests in one batch.",
                  "max_prompts": "prompts the server holds.",
                  "max_prompt_length": "positions of one prompt (longer: refused when "
                                       "registered).",
                  "max_input_length": "input tokens of one request (EOS included), besides "
                                      "its prompt.",
                  "max_target_length": "target tokens of one /score request (EOS included).",
                  "max_decode_length": "tokens one /generate request may ask for (its "
                                       "default)."}
    for name, default in _limit_defaults(Limits).items():
        flags.DEFINE_integer(name, default, f"the most {help_texts[name]}", flag_values=values)


def _limit_defaults(limits_class: Any) -> dict[str, int]:
    import dataclasses  # pylint: disable=import-outside-toplevel
    return {f.name: f.default for f in dataclasses.fields(limits_class)}


def parse_prompts(specs: Sequence[str]) -> dict[str, str]:
    """{name: absolute path} from NAME=PATH values."""
    named: dict[str, str] = {}
    for spec in specs:
        name, _, path = spec.partition("=")
        if not name.strip() or not path:
            raise errors.UsageError(f"--prompt={spec}: expected NAME=PATH.")
        if name in named:
            raise errors.UsageError(f"--prompt names {name!r} twice.")
        named[name] = paths.resolve(path)
    return named


def listening_socket(host: str, port: int) -> Any:
    """A socket bound to (host, port), SO_REUSEADDR (so a restart right after a stop binds
    while the old connections are in TIME_WAIT; a port in use still fails here, at once)."""
    import socket  # pylint: disable=import-outside-toplevel

    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise errors.UsageError(f"cannot listen on {host}:{port}: {e.strerror}; pick another "
                                "--port (0: any free one).") from e
    return sock


def main(argv: Sequence[str]) -> None:
    # A stop during start-up is a clean exit too (uvicorn installs its own handlers later).
    import signal  # pylint: disable=import-outside-toplevel
    for stop in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop, lambda *_: sys.exit(0))
    values = cli.parse_flags(argv, define_flags, __doc__)
    from prompt_tuning.serving.programs import Limits  # pylint: disable=import-outside-toplevel
    if not values.checkpoint:
        raise errors.UsageError("--checkpoint is required.")
    if not 0 <= values.port <= 65535:
        raise errors.UsageError(f"--port must be 0..65535, got {values.port}.")
    if values.max_wait_ms < 0 or values.max_request_bytes < 1:
        raise errors.UsageError("--max_wait_ms must be >= 0 and --max_request_bytes >= 1.")
    limits = Limits(**{name: values[name].value for name in _limit_defaults(Limits)})
    prompts = parse_prompts(values.prompt)
    sock = listening_socket(values.host, values.port)  # a taken port: one line, before loading
    try:
        _serve(values, limits, prompts, sock)
    finally:
        sock.close()


def _serve(values: Any, limits: Any, prompts: dict[str, str], sock: Any) -> None:
    # pylint: disable=import-outside-toplevel
    from prompt_tuning.serving import MultiPromptModel
    from prompt_tuning.serving.app import create_app
    from prompt_tuning.serving.server import Server

    engine = MultiPromptModel.load(paths.resolve(values.checkpoint),
                                   paths.resolve(values.vocab), limits=limits)
    for name, path in prompts.items():
        engine.register(name, path)
    app = create_app(engine, values.max_wait_ms / 1000.0, values.max_request_bytes,
                     warmup=values.warmup)
    server = Server(app, sock, f"serving {len(prompts)} prompt(s) {sorted(prompts)}")
    server.run(sockets=[sock])
    if app.state.serving.failed:
        raise errors.UserError(app.state.serving.failed)


if __name__ == "__main__":
    cli.run(main)
