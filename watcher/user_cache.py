"""The user's cache folder, where watcher keeps what it builds once and reuses: the place
index (:mod:`watcher.tagging.gazetteer`) and the unpacked lead encoder
(:mod:`watcher.lead_encoder`). Each entry's name carries a hash of the code and versions
it was built by, so an upgrade builds a new one beside the old."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

SUPERSEDED_AFTER = 30 * 86400
"""Age in seconds after which another version's entry is removed when a new one is
written. Not at once: two versions in use side by side (two virtualenvs) would remove each
other's at every load."""


def folder() -> Path:
    """``$XDG_CACHE_HOME/watcher``, else ``~/.cache/watcher`` (it may not exist yet)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "watcher"


def remove_superseded(current: Path, older_than: float = SUPERSEDED_AFTER) -> None:
    """Remove the other versions of the entry ``current`` (the names beside it that share
    its prefix up to the first ``-``) written more than ``older_than`` seconds ago."""
    prefix = current.name.split("-", 1)[0]
    now = time.time()
    for other in current.parent.glob(f"{prefix}-*"):
        if other.name == current.name:
            continue
        try:
            if now - other.stat().st_mtime <= older_than:
                continue
            if other.is_dir():
                shutil.rmtree(other, ignore_errors=True)
            else:
                other.unlink()
        except OSError:
            continue  # removed by another process meanwhile, or not ours to remove
