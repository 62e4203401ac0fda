"""Job runners that report on the worker they run in; a module of its own, because a worker
imports the module of the function it runs (and the test modules import the CLI)."""

from __future__ import annotations

import sys

from watcher.prepare import PreparedBatch, PrepareFailure, PrepareJob


def report_loaded_modules(job: PrepareJob) -> PreparedBatch | PrepareFailure:
    """Fails every feed with which of the CLI and the tagging data the worker has loaded."""
    loaded = [name for name in ("watcher.cli", "watcher.tagging.gazetteer") if name in sys.modules]
    return PrepareFailure(kind="parse", message=" ".join(loaded), error_type="Report")
