"""One writer per MODEL_DIR: a lock file holding its owner's pid and host.

Two processes training into one MODEL_DIR would crash each other mid-checkpoint and break
keep-N. The writer holds an exclusive `flock` on `MODEL_DIR/run.lock` for as long as it runs;
the file says who it is (`{"pid": ..., "host": ..., "started": ...}`) so that a refused run can
name the owner. The kernel drops the lock when its process dies, SIGKILL included, so a lock
left by a dead process is stale by construction: the next run takes it over (and says so).

    lock = RunLock(model_dir)
    lock.check()        # before any work: refuses at once if a live process holds it; writes nothing
    ...                 # validate, load the model
    lock.acquire()      # when MODEL_DIR is first written
    ...
    lock.release()

Only the first process of a multi-host run takes the lock. `flock` is local to one machine
(and unreliable on some network filesystems): two hosts sharing MODEL_DIR over NFS are not
guarded by it. A MODEL_DIR in an object store (`gs://`) is locked by `object_lock.ObjectLock`
instead (`lock_for` picks).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from typing import Optional

from prompt_tuning import errors, filesystem

LOCK_FILE = "run.lock"


def _owner_text() -> str:
    return json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                       "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}) + "\n"


def _describe(path: str) -> str:
    """'process 123 on host h (since ...)' from a lock file, as far as it can be read."""
    try:
        with open(path) as f:
            owner = json.load(f)
        return (f"process {owner.get('pid')} on host {owner.get('host')} "
                f"(since {owner.get('started')})")
    except (OSError, ValueError, AttributeError):
        return "another process"


class RunLock:
    """The exclusive lock of a run directory (see the module docstring)."""

    def __init__(self, model_dir: str):
        self.model_dir = model_dir
        self.path = os.path.join(model_dir, LOCK_FILE)
        self._fd: Optional[int] = None
        self.took_over: Optional[str] = None  # the dead owner of a stale lock taken over

    def _refuse(self) -> errors.RunDirError:
        return errors.RunDirError(
            f"MODEL_DIR {self.model_dir} is in use by {_describe(self.path)}; wait for it to "
            "finish, stop it, or choose another MODEL_DIR.")

    def check(self) -> None:
        """Refuses at once if a live process holds the lock; creates and changes nothing."""
        if not os.path.isfile(self.path):
            return
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raise self._refuse() from None
        finally:
            os.close(fd)  # closing drops a shared lock taken just to look

    def acquire(self) -> None:
        """Takes the lock (creating MODEL_DIR and the file); refuses if it is held."""
        if self._fd is not None:
            return
        os.makedirs(self.model_dir, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise self._refuse() from None
        previous = os.read(fd, 4096).decode(errors="replace")
        if previous.strip():
            self.took_over = self._stale_owner(previous)
        os.lseek(fd, 0, os.SEEK_SET)
        os.ftruncate(fd, 0)
        os.write(fd, _owner_text().encode())
        os.fsync(fd)
        self._fd = fd

    @staticmethod
    def _stale_owner(text: str) -> str:
        """'process P on host H': the owner named by a lock that nobody holds any more.

        A clean release empties the file, so a name left in it is a process that died holding
        the lock (killed, or its machine lost).
        """
        try:
            owner = json.loads(text)
            return f"process {owner.get('pid')} on host {owner.get('host')}"
        except (ValueError, AttributeError):
            return "an unknown process"

    def release(self) -> None:
        """Empties the file (nobody owns the run now) and drops the lock.

        The file itself stays: removing it would let a process that opened it a moment before
        lock a file no longer in MODEL_DIR while another locks a new one.
        """
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def lock_for(model_dir: str):
    """The lock of `model_dir`: `flock` on a local disk, a precondition object in `gs://`."""
    if filesystem.is_remote(model_dir):
        from prompt_tuning.run_dir.object_lock import ObjectLock  # pylint: disable=import-outside-toplevel
        return ObjectLock(model_dir)
    return RunLock(model_dir)
