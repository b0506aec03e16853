"""uvicorn serving the app on a bound socket: it says where it serves only once it accepts
connections, then warms up (`Serving.warm_up`) and says when it is ready; a stop signal also
stops any compiling, so the server exits within a batch or a program's compile."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any, Optional

import uvicorn


class Server(uvicorn.Server):
    """`uvicorn.Server` for `create_app`'s app on `sock` (bound, not yet listening).

    Prints `{banner} on http://HOST:PORT` once listening, then `ready: ...` once warmed up.
    """

    def __init__(self, app: Any, sock: socket.socket, banner: str):
        super().__init__(uvicorn.Config(app, log_level="warning", access_log=False,
                                        timeout_graceful_shutdown=30))
        self.serving = app.state.serving
        self.banner = banner
        self.sock = sock
        self._warming: Optional[asyncio.Task] = None

    async def startup(self, sockets: Optional[list] = None) -> None:
        await super().startup(sockets)
        if self.should_exit:
            return
        host, port = self.sock.getsockname()[:2]
        host = f"[{host}]" if ":" in host else host
        print(f"{self.banner} on http://{host}:{port}", flush=True)
        self._warming = asyncio.get_running_loop().create_task(self._warm_up())

    async def _warm_up(self) -> None:
        start = time.monotonic()
        count = await self.serving.warm_up()
        if self.serving.failed:  # `serve` reports it as its one error line once stopped
            self.should_exit = True
        elif count >= 0 and self.serving.warmup:
            print(f"ready: {count} programs compiled in {time.monotonic() - start:.1f} s",
                  flush=True)
        elif count >= 0:
            print("ready (--nowarmup: each batch shape compiles on its first batch)",
                  flush=True)

    def handle_exit(self, sig: int, frame: Any) -> None:
        self.serving.stop.set()  # compiling stops between two programs
        super().handle_exit(sig, frame)
