"""Fixtures shared by a whole test session (each xdist worker has its own session)."""

from __future__ import annotations

import os

import pytest

from tests import gcs_emulator


@pytest.fixture(scope="session")
def gcs() -> gcs_emulator.Emulator:
    """A local Cloud Storage emulator, reached through STORAGE_EMULATOR_HOST.

    The variable is also set in this test process (with the clients' derived settings), so
    in-process calls and the subprocesses the tests start reach the same emulator.
    """
    emulator = gcs_emulator.Emulator()
    saved = {k: os.environ.get(k) for k in ("STORAGE_EMULATOR_HOST", "TENSORSTORE_GCS_HTTP_URL")}
    os.environ["STORAGE_EMULATOR_HOST"] = emulator.url
    os.environ["TENSORSTORE_GCS_HTTP_URL"] = emulator.url
    yield emulator
    emulator.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
