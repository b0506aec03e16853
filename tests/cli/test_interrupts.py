"""Our SIGINT handler in-process: an interrupt is never lost in a gc callback, and waits for a
block that must finish (a checkpoint commit). The real commands: tests/launch/test_integrity.py."""

import gc
import os
import signal
import sys
import time

import pytest

from prompt_tuning import interrupts


@pytest.fixture
def handler(monkeypatch):
    previous = signal.getsignal(signal.SIGINT)
    monkeypatch.setattr(sys, "unraisablehook", sys.unraisablehook)  # restored afterwards
    monkeypatch.setattr(interrupts, "_installed", False)
    monkeypatch.setattr(interrupts, "_started", False)
    interrupts.install()
    interrupts.started()
    yield
    signal.signal(signal.SIGINT, previous)


def _wait_for_interrupt(seconds: float = 2.0) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        time.sleep(0.005)


def test_an_interrupt_inside_a_gc_callback_is_not_lost(handler):
    def interrupt_during_collection(phase, _info):
        if phase == "start":
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(10_000):  # the handler runs here, inside the callback
                pass

    gc.callbacks.append(interrupt_during_collection)
    try:
        with pytest.raises(KeyboardInterrupt):
            gc.collect()
            _wait_for_interrupt()
    finally:
        gc.callbacks.remove(interrupt_during_collection)


def test_an_interrupt_waits_for_a_deferred_block(handler):
    finished = []
    with pytest.raises(KeyboardInterrupt):
        with interrupts.deferred():
            os.kill(os.getpid(), signal.SIGINT)
            _wait_for_interrupt(0.2)
            finished.append(True)
    assert finished == [True]
