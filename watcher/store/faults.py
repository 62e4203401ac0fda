"""Which SQLite errors are the database's fault rather than one feed's, and what to say.

A constraint failure or a bug while writing one feed's batch costs that feed; a corrupt
file, a lock held elsewhere, a read-only file, a full disk or an I/O error would fail
every write that follows, so they stop the command (:class:`DatabaseFault`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from watcher.errors import DatabaseFault

_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6
_SQLITE_READONLY = 8
_SQLITE_IOERR = 10
_SQLITE_CORRUPT = 11
_SQLITE_FULL = 13
_SQLITE_CANTOPEN = 14
_SQLITE_NOTADB = 26

_REASONS = {
    _SQLITE_CORRUPT: "corrupt",
    _SQLITE_NOTADB: "corrupt",
    _SQLITE_BUSY: "locked",
    _SQLITE_LOCKED: "locked",
    _SQLITE_READONLY: "read_only",
    _SQLITE_FULL: "disk_full",
    _SQLITE_IOERR: "io",
    _SQLITE_CANTOPEN: "io",
}

_ADVICE = {
    "corrupt": (
        "the database file is damaged ({error}); nothing more is written to it. "
        "Restore it from a backup, or rescue what it holds with "
        "'sqlite3 FILE .recover | sqlite3 NEW.db' and point --db at the new file"
    ),
    "locked": (
        "the database is locked by another process ({error}{waited}). "
        "Another watcher command or a program holding a long transaction is writing; "
        "try again when it is done"
    ),
    "read_only": (
        "the database cannot be written ({error}): the file or its folder is read-only. "
        "Reading commands (status, stories, search, serve, digest --dry-run) still work; "
        "this one needs write access"
    ),
    "disk_full": "the disk is full ({error}); nothing of this write was kept",
    "io": "the database file cannot be read or written ({error})",
}


def fault_reason(error: BaseException) -> str | None:
    """The :class:`DatabaseFault` reason ``error`` stands for, None for a per-write error.

    Python gives the (extended) result code where SQLite had one; without it the message
    decides (``sqlite3.connect`` and some pragmas raise without a code)."""
    if not isinstance(error, sqlite3.Error):
        return None
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None:
        return _REASONS.get(code & 0xFF)
    text = str(error).lower()
    if "malformed" in text or "not a database" in text:
        return "corrupt"
    if "locked" in text:
        return "locked"
    if "readonly" in text or "read-only" in text:
        return "read_only"
    if "disk is full" in text or "database or disk is full" in text:
        return "disk_full"
    if "unable to open" in text or "disk i/o" in text:
        return "io"
    return None


def as_fault(error: BaseException, path: str, *, wait: float = 0.0) -> DatabaseFault | None:
    """``error`` as a :class:`DatabaseFault` with advice, or None when it is not one."""
    if isinstance(error, DatabaseFault):
        return error
    reason = fault_reason(error)
    if reason is None:
        return None
    return database_fault(path, reason, str(error), wait=wait)


def database_fault(path: str, reason: str, detail: str, *, wait: float = 0.0) -> DatabaseFault:
    """A :class:`DatabaseFault` whose message says what happened (``detail``) and what to do."""
    waited = f"; waited {wait:g} s" if wait else ""
    return DatabaseFault(path, reason, _ADVICE[reason].format(error=detail, waited=waited))


@contextmanager
def faults_raised(path: str, *, wait: float = 0.0) -> Iterator[None]:
    """Turn a database-level SQLite error inside the block into a :class:`DatabaseFault`."""
    try:
        yield
    except sqlite3.Error as error:
        fault = as_fault(error, path, wait=wait)
        if fault is None:
            raise
        raise fault from None
