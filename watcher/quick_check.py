"""SQLite's ``PRAGMA quick_check`` of the database, begun early in a thread of its own.

A command that writes at length checks the file for damage before it writes anything
(:meth:`watcher.store.Store.open` with ``check``). The check is SQLite's own C loop, which
lets go of the GIL, so a command that polls begins it first thing (:mod:`watcher.entry`)
and it runs on another core while this process imports the CLI and its libraries; the
open then takes its answer instead of checking again. Nothing is written before the
answer is in, as before. This module imports nothing but the standard library: it runs
before everything else.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from concurrent.futures import Future
from pathlib import Path

LOCK_WAIT_MS = 15_000
"""How long a connection waits for a lock another process holds (the store's
``busy_timeout``, :data:`watcher.store.database.BUSY_TIMEOUT_MS`)."""
_begun: dict[str, Future[list[str] | None]] = {}


def problems(connection: sqlite3.Connection) -> list[str]:
    """What ``quick_check`` reports of the file (``["ok"]`` when it finds it sound)."""
    return [str(row[0]) for row in connection.execute("PRAGMA quick_check(5)").fetchall()]


def _key(path: Path | str) -> str:
    return os.path.abspath(path)  # no file-system access: a path that cannot resolve still keys


def begin(path: Path) -> None:
    """Check ``path`` in a background thread, when it is a file (a database to create has
    nothing to check)."""
    if not path.is_file():
        return
    key = _key(path)
    if key in _begun:
        return
    future: Future[list[str] | None] = Future()
    _begun[key] = future

    def check() -> None:
        try:  # read-only: the command may be one that only reads
            uri = f"{Path(key).as_uri()}?mode=ro"
            connection = sqlite3.connect(uri, uri=True, timeout=LOCK_WAIT_MS / 1000)
            try:
                future.set_result(problems(connection))
            finally:
                connection.close()
        except Exception:  # (a read-only folder, a file that is not SQLite ...)
            future.set_result(None)  # the open checks for itself, and says what is wrong

    threading.Thread(target=check, name="watcher-quick-check", daemon=True).start()


def take(path: Path | str) -> list[str] | None:
    """The problems the check begun for ``path`` found (waiting for it), or None when none
    was begun or it could not run. Each check is taken once."""
    future = _begun.pop(_key(path), None)
    return None if future is None else future.result()
