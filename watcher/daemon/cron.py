"""Cron jobs the daemon runs beside polling (digests): what one is, where jobs come from."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path

from watcher.config import Config


@dataclass(frozen=True, slots=True)
class CronJob:
    """``run(now)`` at the times of ``crontab`` (5 fields, in ``timezone``; None: local time).

    ``run`` is called in a worker thread, so it may block (build and send a mail) without
    delaying polls. A Store is not thread-safe: the job opens its own from the database path.
    Two runs of one job never overlap; a run still going when the next is due skips that one.
    ``after_new_items``: also run as soon as a refresh stores new items (instant alerts).
    """

    name: str
    crontab: str
    run: Callable[[datetime], None]
    timezone: tzinfo | None = None
    after_new_items: bool = False


CronJobSource = Callable[[Config, Path], Sequence[CronJob]]
"""Derives the cron jobs from the config and the database path; asked again on every reload,
so edited schedules take effect without a restart."""


def no_cron_jobs(config: Config, db_path: Path) -> Sequence[CronJob]:
    return ()
