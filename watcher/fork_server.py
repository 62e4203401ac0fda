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


def start() -> None:
    """Start the server now, if it is not running; it loads :data:`PRELOAD` in the background."""
    if available():
        context()
        multiprocessing.forkserver.ensure_running()
