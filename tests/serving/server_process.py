"""`python -m prompt_tuning.serve` as a user runs it, for the serving tests: started on
127.0.0.1 with the tiny built-in model and small limits (few batch shapes, so warm-up takes
seconds), its output lines read as they come, its memory read from /proc, stopped with SIGTERM."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from typing import Optional

from tests.launch import runner

# Small limits: batch sizes (1, 4) x inputs (16,) x targets/decoding (8,): 4 programs.
SMALL = ["--max_batch=4", "--max_input_length=16", "--max_target_length=8",
         "--max_decode_length=8", "--max_prompt_length=64", "--max_wait_ms=20"]


class Server:
    """A running server process; `url` once it printed where it serves."""

    def __init__(self, prompts: dict[str, str], *flags: str, port: int = 0,
                 env: Optional[dict] = None):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "prompt_tuning.serve", "--checkpoint=builtin:tiny_t5",
             *[f"--prompt={n}={p}" for n, p in prompts.items()], f"--port={port}", *SMALL,
             *flags], cwd=runner.REPO,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self._lines: "queue.Queue[str]" = queue.Queue()
        self.stdout: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        self.url: Optional[str] = None

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.stdout.append(line)
            self._lines.put(line)
        self._lines.put("")

    def line(self, timeout: float = 300) -> str:
        """The next line it prints ('' once its output ended)."""
        return self._lines.get(timeout=timeout)

    def started(self) -> "Server":
        """Waits for the `serving ... on http://...` line."""
        first = self.line()
        assert " on http://127.0.0.1:" in first, (first, self.proc.poll(), self.stderr())
        self.url = first.split(" on ")[1].strip()
        return self

    def ready(self) -> "Server":
        """Waits for `serving ...` and `ready ...`."""
        if self.url is None:
            self.started()
        second = self.line()
        assert second.startswith("ready"), (second, self.proc.poll(), self.stderr())
        return self

    def rss_kib(self) -> int:
        """The server's resident memory now (VmRSS, KiB)."""
        with open(f"/proc/{self.proc.pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))

    def stop(self, timeout: float = 60) -> tuple[int, str]:
        """SIGTERM; (exit code, stderr)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        return code, self.stderr()

    def stderr(self) -> str:
        return self.proc.stderr.read() if self.proc.poll() is not None else ""

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
