"""Scheduling decisions of the daemon, pure: when a feed's job fires, how cron lines read."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, tzinfo

from apscheduler.triggers.cron import CronTrigger

JITTER_SHARE = 0.1
"""Jitter never delays a feed by more than this share of its interval."""
RETRY_SECONDS = 60.0
"""When a feed could not even be scheduled (a database error), the next try."""


def fire_time(
    next_due_at: str | None,
    *,
    now: datetime,
    interval: float,
    jitter: float,
    rng: random.Random,
) -> datetime:
    """When a feed's job fires: its due time from the database (now, when it is overdue or
    was never fetched) plus a random delay of at most ``jitter`` and a tenth of its interval,
    so that feeds falling due together (every feed, after a restart) are spread out."""
    due = datetime.fromisoformat(next_due_at) if next_due_at else now
    spread = max(0.0, min(jitter, interval * JITTER_SHARE))
    return max(due, now) + timedelta(seconds=rng.uniform(0.0, spread))


def cron_trigger(crontab: str, timezone: tzinfo | None = None) -> CronTrigger:
    """A 5-field crontab line (minute hour day month weekday) as a trigger; ``timezone``
    None is the machine's local time. Raises ValueError on a malformed line."""
    if len(crontab.split()) != 5:
        raise ValueError(
            f"expected 5 crontab fields (minute hour day month weekday), got {crontab!r}"
        )
    return CronTrigger.from_crontab(crontab, timezone=timezone)


def reprobe_check_every(reprobe_interval: float) -> float:
    """How often to look for disabled feeds due a re-probe: hourly, or more often when the
    re-probe interval itself is shorter."""
    return min(reprobe_interval, 3600.0)
