"""One writer per MODEL_DIR in an object store (`gs://`), where `flock` cannot reach.

The lock is the object `MODEL_DIR/run.lock`, created with a generation precondition
(`ifGenerationMatch=0`: the upload succeeds only if no such object exists), so of two processes
that start together exactly one creates it. It holds its owner (`pid`, `host`, `started`, a
random `token`) and a `heartbeat` time that the owner rewrites every HEARTBEAT_S seconds from a
daemon thread while it runs; a clean release deletes it.

Nothing removes the object of a process that was killed, so a lock is *stale* when
* its host is this host and its pid is not running (a run killed and restarted on the same
  machine takes over at once), or
* its heartbeat is older than LEASE_S (the owner's machine is gone: preempted, lost).
Taking over a stale lock must not let two newcomers both win: each first creates the marker
`run.lock.takeover-<generation of the stale lock>` with the same precondition; only its creator
replaces the lock. Guarantees and limits (also in docs/design.md): mutual exclusion among
processes that follow this protocol, as long as clocks agree within LEASE_S and a live owner is
not paused for longer than LEASE_S (an owner that finds its lock taken stops writing).
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import threading
import time
from typing import Optional

from prompt_tuning import errors, filesystem

LOCK_FILE = "run.lock"
HEARTBEAT_S = 30.0
LEASE_S = 120.0


def _create(path: str, data: bytes) -> bool:
    """Uploads `data` to `path` only if no object is there; False if one is."""
    try:
        filesystem.client(path).pipe(path, data, mode="create")
        return True
    except FileExistsError:
        return False


def _pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


class ObjectLock:
    """The exclusive lock of a `gs://` run directory; the same interface as `RunLock`."""

    def __init__(self, model_dir: str):
        self.model_dir = model_dir
        self.path = filesystem.join(model_dir, LOCK_FILE)
        self.took_over: Optional[str] = None
        self._owner: Optional[dict] = None
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def _read(self) -> tuple[Optional[dict], Optional[str]]:
        """(the lock's owner record, its generation), or (None, None) if there is no lock."""
        fs = filesystem.client(self.path)
        fs.invalidate_cache(self.path)
        try:
            info = fs.info(self.path)
            owner = json.loads(fs.cat(self.path))
        except FileNotFoundError:
            return None, None
        except ValueError:
            owner = {}
        return (owner if isinstance(owner, dict) else {}), str(info.get("generation"))

    @staticmethod
    def _stale(owner: dict) -> bool:
        if owner.get("host") == socket.gethostname() and isinstance(owner.get("pid"), int):
            if not _pid_running(owner["pid"]):
                return True
        heartbeat = owner.get("heartbeat")
        return not isinstance(heartbeat, (int, float)) or time.time() - heartbeat > LEASE_S

    def _refuse(self, owner: dict) -> errors.RunDirError:
        age = time.time() - owner.get("heartbeat", 0) if owner.get("heartbeat") else None
        seen = f", last heartbeat {age:.0f} s ago" if age is not None else ""
        return errors.RunDirError(
            f"MODEL_DIR {self.model_dir} is in use by process {owner.get('pid')} on host "
            f"{owner.get('host')} (since {owner.get('started')}{seen}); wait for it to finish or "
            f"stop it. A lock whose owner is gone is taken over after {LEASE_S:.0f} s without a "
            f"heartbeat, or at once by a run on the same host; {self.path} may also be deleted "
            "by hand once you are sure no process writes this run.")

    def check(self) -> None:
        """Refuses at once if a live process holds the lock; creates and changes nothing."""
        owner, _ = self._read()
        if owner is not None and not self._stale(owner):
            raise self._refuse(owner)

    def _record(self) -> bytes:
        assert self._owner is not None
        self._owner["heartbeat"] = time.time()
        return (json.dumps(self._owner) + "\n").encode()

    def acquire(self) -> None:
        """Takes the lock; refuses if a live process holds it or another takes it over first."""
        if self._thread is not None:
            return
        self._owner = {"pid": os.getpid(), "host": socket.gethostname(),
                       "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                       "token": secrets.token_hex(8)}
        if not _create(self.path, self._record()):
            owner, generation = self._read()
            if owner is not None and not self._stale(owner):
                raise self._refuse(owner)
            if owner is not None:
                marker = f"{self.path}.takeover-{generation}"
                if not _create(marker, self._record()):
                    raise self._refuse(owner)
                filesystem.remove(self.path)
                self.took_over = f"process {owner.get('pid')} on host {owner.get('host')}"
                created = _create(self.path, self._record())
                filesystem.remove(marker)
            else:  # released between our two looks
                created = _create(self.path, self._record())
            if not created:
                raise self._refuse(self._read()[0] or {})
        self._thread = threading.Thread(target=self._beat, name="run-lock-heartbeat",
                                        daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            owner, _ = self._read()
            if owner is None or owner.get("token") != self._owner["token"]:
                return  # taken over: never overwrite another owner's lock
            filesystem.write_bytes(self.path, self._record())

    def release(self) -> None:
        """Stops the heartbeat and deletes the lock, if it is still ours."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout=HEARTBEAT_S)
        self._thread = None
        owner, _ = self._read()
        if owner is not None and owner.get("token") == self._owner["token"]:
            filesystem.remove(self.path)
