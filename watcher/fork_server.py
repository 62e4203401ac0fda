"""The fork server the pool's workers are forked from (see :class:`watcher.workers.PreparePool`).

Standard library only: :mod:`watcher.entry` starts the server before the command's own
imports, so that the server loads the tagging data while the main process loads the rest.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.context
import multiprocessing.forkserver
import os
import sys

PRELOAD = ["watcher.worker_preload"]
"""What the server imports before it forks a worker: the tagging data and the language
model, loaded once and shared by every worker."""


def cores() -> int:
    """How many processes ``[poll] workers = 0`` means."""
    return os.cpu_count() or 1


def available() -> bool:
    """Whether workers come from a fork server here (Linux; elsewhere they are spawned)."""
    return sys.platform == "linux"


def context() -> multiprocessing.context.BaseContext:
    """The multiprocessing context of the pool, with :data:`PRELOAD` set."""
    forkserver = multiprocessing.get_context("forkserver")
    forkserver.set_forkserver_preload(PRELOAD)
    return forkserver


ENCODER = "WATCHER_PRELOAD_ENCODER"
"""The environment variable the server reads as it starts: "1" loads the lead encoder too
(shared by every worker); otherwise a worker loads it the first time it encodes, which a
corpus in one language never does (from the cache folder, 0.1-0.2 CPU-s:
:mod:`watcher.lead_encoder`)."""
ENCODED_LATELY = 7 * 86400
"""How far back :func:`encoder_in_use` looks for encoded leads of both scripts."""


def encoder_in_use(db: os.PathLike[str] | str, *, now: float | None = None) -> bool:
    """Whether the store at ``db`` encoded leads of both scripts in the last
    :data:`ENCODED_LATELY` seconds (read-only; False for no or another database): then the
    next pass will encode too, and the server should load the encoder for every worker."""
    import sqlite3
    import time

    since = time.strftime(
        "%Y-%m-%dT%H:%M:%SZ", time.gmtime((time.time() if now is None else now) - ENCODED_LATELY)
    )
    recent = "SELECT EXISTS (SELECT 1 FROM story_encodings WHERE script = ? AND at >= ?)"
    try:
        connection = sqlite3.connect(f"file:{os.fspath(db)}?mode=ro", uri=True, timeout=0.5)
    except sqlite3.Error:
        return False
    try:
        return all(connection.execute(recent, [script, since]).fetchone()[0] for script in (0, 1))
    except sqlite3.Error:
        return False
    finally:
        connection.close()


def start(*, encoder: bool = False) -> None:
    """Start the server now, if it is not running; it loads :data:`PRELOAD` in the
    background, and the lead encoder if ``encoder`` (:data:`ENCODER`)."""
    if available():
        os.environ[ENCODER] = "1" if encoder else "0"
        context()
        multiprocessing.forkserver.ensure_running()
