"""Job runners for the Dask tests that misbehave on marked feeds; a module of its own, because
a Dask worker imports the module of the function it runs (and the test modules import the CLI).
"""

from __future__ import annotations

import os
import signal
import time

from watcher.prepare import PreparedBatch, PrepareFailure, PrepareJob, run_prepare_job

CRASH_MARK = b"<title>crash the dask worker</title>"
SLOW_MARK = b"<title>stall the dask worker</title>"
SLOW_SECONDS = 8.0


def crashing_runner(job: PrepareJob) -> PreparedBatch | PrepareFailure:
    """Kills its own worker process by SIGKILL (as the OOM killer does) on a marked feed."""
    if CRASH_MARK in job.body:
        os.kill(os.getpid(), signal.SIGKILL)
    return run_prepare_job(job)


def stalling_runner(job: PrepareJob) -> PreparedBatch | PrepareFailure:
    """Takes SLOW_SECONDS on a marked feed (past a shorter parse_timeout); prepares the others."""
    if SLOW_MARK in job.body:
        time.sleep(SLOW_SECONDS)
    return run_prepare_job(job)
