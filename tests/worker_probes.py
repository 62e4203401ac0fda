"""Job runners that report on the worker they run in; a module of its own, because a worker
imports the module of the function it runs (and the test modules import the CLI)."""

from __future__ import annotations

import dataclasses
import sys

from watcher.prepare import PreparedBatch, PrepareFailure, PrepareJob, run_prepare_job


def report_loaded_modules(job: PrepareJob) -> PreparedBatch | PrepareFailure:
    """Fails every feed with which of the CLI and the tagging data the worker has loaded."""
    loaded = [name for name in ("watcher.cli", "watcher.tagging.gazetteer") if name in sys.modules]
    return PrepareFailure(kind="parse", message=" ".join(loaded), error_type="Report")


def report_off_topic_memory(job: PrepareJob) -> PreparedBatch | PrepareFailure:
    """Prepares the feed as usual, with how many off-topic digests the job carried as the
    batch's warning (the fetch log records it)."""
    result = run_prepare_job(job)
    if isinstance(result, PrepareFailure):
        return result
    return dataclasses.replace(result, warning=f"remembered {len(job.known.off_topic)}")


def encoder_loaded(_: object) -> bool:
    """Whether the worker holds the lead encoder (loaded by the fork server before forking)."""
    from watcher import lead_encoder

    return lead_encoder.loaded()


def stages_loaded(_: object) -> list[str]:
    """Which of the preparation's stage modules the worker did not get from its fork
    server (the fork server imports them before forking, so none)."""
    stages = ("feedparser", "watcher.fingerprints", "watcher.story_vectors", "watcher.tagging")
    return [name for name in stages if name not in sys.modules]
