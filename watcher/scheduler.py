"""The daemon: APScheduler wakes up, polls the due feeds, sleeps; stops cleanly on a signal.

When a feed is due lives in the database (``feeds.next_due_at``, moved by successes,
backoff and Retry-After), so one dispatch job that polls whatever is due is enough
and a restart loses no schedule.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from watcher.config import Config
from watcher.normalize import utc_iso
from watcher.poll import poll_feeds
from watcher.store import Store

log = logging.getLogger("watcher.scheduler")


async def poll_due(config: Config, store: Store) -> None:
    feeds = store.feed_states(now=utc_iso(datetime.now(UTC)), due_only=True)
    if not feeds:
        return
    summary = await poll_feeds(config, store, feeds)
    log.warning("poll: %s", summary.line())


async def _serve(config: Config, store: Store, check_every: float) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    scheduler = AsyncIOScheduler(timezone=UTC)
    scheduler.add_job(
        poll_due,
        "interval",
        seconds=check_every,
        args=[config, store],
        id="poll-due-feeds",
        next_run_time=datetime.now(UTC),
        max_instances=1,
        coalesce=True,
        misfire_grace_time=None,
    )
    scheduler.start()
    try:
        await stop.wait()
    finally:
        scheduler.shutdown(wait=False)
        pending = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


def run_daemon(config: Config, store: Store, *, check_every: float = 60.0) -> None:
    """Block until SIGINT/SIGTERM; a batch being written when the signal comes is rolled back."""
    asyncio.run(_serve(config, store, check_every))
