"""Telling a full disk (or a quota, or a file-size limit) apart from other write failures.

A full disk reaches us in several shapes: an OSError with errno ENOSPC from Python's own
writes, a TensorStore/orbax error whose text carries the OS message (and whose cause may be
several exceptions down), a SafetensorError with the message only. `reason` finds it in any of
them, so every writer can say the same thing: which path, and what to do.
"""

from __future__ import annotations

import errno
import os
from typing import Optional

_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
_TEXTS = tuple(os.strerror(code) for code in _ERRNOS)  # "No space left on device", ...


def _chain(error: BaseException):
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def reason(error: BaseException) -> Optional[str]:
    """The OS's words ("No space left on device", "Disk quota exceeded", "File too large") if
    `error` or any exception behind it is a write that ran out of space; else None."""
    for link in _chain(error):
        if isinstance(link, OSError) and link.errno in _ERRNOS:
            return os.strerror(link.errno)
        text = str(link)
        for words in _TEXTS:
            if words.lower() in text.lower():
                return words
    return None


HINT = ("free some space (or raise the quota or file-size limit) and run the same command "
        "again")
