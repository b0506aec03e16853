r"""Serves one frozen model with many prompts over HTTP, batching requests across prompts.

  python -m prompt_tuning.serve --checkpoint=PATH --prompt=rte=/prompts/rte.npy \
      --prompt=sst2=/prompts/sst2_peft [--vocab=SPM] [--host=127.0.0.1] [--port=8000] \
      [--max_batch=32] [--max_wait_ms=5]

--checkpoint is any supported format (T5X, orbax, Hugging Face, builtin:tiny_t5); each
--prompt=NAME=PATH registers a prompt (`.npy`, a PEFT adapter dir, our export, or a training
run directory: its best prompt); more can be registered at run time with POST /prompts.
Endpoints (JSON): POST /score, POST /generate, POST /prompts, GET /prompts, GET /health; see
`prompt_tuning/serving/app.py`. Requests that arrive within --max_wait_ms of each other run as
one batch, whatever their prompts. It listens on 127.0.0.1 unless --host says otherwise.
Everything is checked, the model and every prompt read, before it starts listening; Ctrl-C or
SIGTERM stops it cleanly.
"""

from __future__ import annotations

from typing import Sequence

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
    flags.DEFINE_integer("max_batch", 32, "the most requests in one batch.", flag_values=values)
    flags.DEFINE_float("max_wait_ms", 5.0, "how long a request waits for others to batch with.",
                       flag_values=values)


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


def main(argv: Sequence[str]) -> None:
    values = cli.parse_flags(argv, define_flags, __doc__)
    if not values.checkpoint:
        raise errors.UsageError("--checkpoint is required.")
    if not 0 <= values.port <= 65535:
        raise errors.UsageError(f"--port must be 0..65535, got {values.port}.")
    if values.max_batch < 1 or values.max_wait_ms < 0:
        raise errors.UsageError("--max_batch must be >= 1 and --max_wait_ms >= 0.")
    prompts = parse_prompts(values.prompt)
    # pylint: disable=import-outside-toplevel
    import signal
    import socket
    import sys

    import uvicorn

    from prompt_tuning.serving import MultiPromptModel
    from prompt_tuning.serving.app import create_app

    with socket.socket() as probe:  # a taken port is one line now, not after the model loads
        try:
            probe.bind((values.host, values.port))
        except OSError as e:
            raise errors.UsageError(f"cannot listen on {values.host}:{values.port}: "
                                    f"{e.strerror}.") from e
    engine = MultiPromptModel.load(paths.resolve(values.checkpoint),
                                   paths.resolve(values.vocab), max_batch=values.max_batch)
    for name, path in prompts.items():
        engine.register(name, path)
    app = create_app(engine, values.max_batch, values.max_wait_ms / 1000.0)
    config = uvicorn.Config(app, host=values.host, port=values.port, log_level="warning",
                            access_log=False)
    server = uvicorn.Server(config)
    # uvicorn stops gracefully on SIGINT/SIGTERM, then re-raises the signal under the handlers
    # it found: these make that re-raise a clean exit (0), as stopping a server is no error.
    for stop in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop, lambda *_: sys.exit(0))
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((values.host, values.port))
        host, port = sock.getsockname()[:2]
        # Listening before the line is printed: a client that connects as soon as it reads the
        # line is queued until uvicorn accepts, not refused.
        sock.listen(config.backlog)
        print(f"serving {len(prompts)} prompt(s) {sorted(prompts)} on http://{host}:{port}",
              flush=True)
        server.run(sockets=[sock])


if __name__ == "__main__":
    cli.run(main)
