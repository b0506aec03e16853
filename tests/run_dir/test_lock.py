"""The run directory lock: a live owner is named and refused, a dead one's lock is taken over."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from prompt_tuning import errors
from prompt_tuning.run_dir import LOCK_FILE, RunLock
from tests.launch.runner import REPO, snapshot

HOLDER = """
import sys, time
from prompt_tuning.run_dir import RunLock
lock = RunLock(sys.argv[1])
lock.acquire()
print("holding", flush=True)
time.sleep(600)
"""


def _holder(model_dir: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, model_dir], cwd=REPO,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "holding"
    return proc


def test_a_live_owner_is_refused_by_name_and_a_dead_ones_lock_is_taken_over(tmp_path):
    model_dir = str(tmp_path / "run")
    holder = _holder(model_dir)
    try:
        before = snapshot(model_dir)
        expected = (f"MODEL_DIR {model_dir} is in use by process {holder.pid} on host "
                    f"{socket.gethostname()} (since ")
        for attempt in (RunLock(model_dir).check, RunLock(model_dir).acquire):
            with pytest.raises(errors.RunDirError) as refused:
                attempt()
            assert str(refused.value).startswith(expected)
            assert str(refused.value).endswith("wait for it to finish, stop it, or choose "
                                               "another MODEL_DIR.")
        assert snapshot(model_dir) == before  # refusing writes nothing
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()

    lock = RunLock(model_dir)
    lock.check()
    lock.acquire()
    assert lock.took_over == f"process {holder.pid} on host {socket.gethostname()}"
    with open(os.path.join(model_dir, LOCK_FILE)) as f:
        assert f'"pid": {os.getpid()}' in f.read()
    lock.release()
    with open(os.path.join(model_dir, LOCK_FILE)) as f:
        assert f.read() == ""  # a clean release leaves no owner behind

    again = RunLock(model_dir)
    again.acquire()
    assert again.took_over is None
    again.release()


def test_checking_a_directory_without_a_lock_creates_nothing(tmp_path):
    RunLock(str(tmp_path / "missing")).check()
    assert not (tmp_path / "missing").exists()


def test_the_lock_is_released_when_its_process_is_killed(tmp_path):
    model_dir = str(tmp_path / "run")
    holder = _holder(model_dir)
    holder.kill()
    holder.wait()
    started = time.time()
    lock = RunLock(model_dir)
    lock.acquire()  # at once: the kernel dropped the flock with the process
    assert time.time() - started < 5
    lock.release()
