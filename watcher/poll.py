"""One pass over many feeds: concurrent downloads, parsing on every core, one writer."""

from __future__ import annotations

import asyncio
import functools
import multiprocessing
import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

from watcher.config import Config, TopicConfig
from watcher.models import FeedState, FetchResult
from watcher.pipeline import Clock, FeedOutcome, refresh_feed
from watcher.prepare import PreparedBatch, prepare_feed
from watcher.sources.fetch import Fetcher, FetchSettings
from watcher.store import Store
from watcher.tagging import warm_up


@dataclass(slots=True)
class PollSummary:
    outcomes: list[FeedOutcome] = field(default_factory=list)

    def _count(self, status: str) -> int:
        return sum(1 for outcome in self.outcomes if outcome.status == status)

    @property
    def ok(self) -> int:
        return self._count("ok")

    @property
    def not_modified(self) -> int:
        return self._count("not_modified") + self._count("unchanged")

    @property
    def failed(self) -> int:
        return self._count("failed")

    @property
    def entries(self) -> int:
        return sum(outcome.entries for outcome in self.outcomes)

    @property
    def new_items(self) -> int:
        return sum(outcome.new_items for outcome in self.outcomes)

    @property
    def duplicates(self) -> int:
        """Entries that were items already stored (level 1), recorded as sightings."""
        return sum(outcome.sightings for outcome in self.outcomes)

    @property
    def near_duplicates(self) -> int:
        """New items stored as copies of an earlier item (level 2)."""
        return sum(outcome.near_duplicates for outcome in self.outcomes)

    def line(self) -> str:
        return (
            f"{len(self.outcomes)} feeds: {self.ok} ok, {self.not_modified} not modified, "
            f"{self.failed} failed; {self.entries} entries seen, {self.new_items} new items "
            f"({self.near_duplicates} near-duplicates), {self.duplicates} duplicates"
        )


def fetch_settings(config: Config) -> FetchSettings:
    poll = config.poll
    return FetchSettings(
        user_agent=poll.user_agent,
        connect_timeout=poll.connect_timeout,
        read_timeout=poll.read_timeout,
        deadline=poll.deadline,
        max_bytes=poll.max_bytes,
        max_redirects=poll.max_redirects,
        concurrency=poll.concurrency,
        per_host=poll.per_host,
    )


def worker_count(config: Config) -> int:
    return config.poll.workers or os.cpu_count() or 1


def make_executor(workers: int) -> Executor | None:
    """A process pool for parsing, or None to parse in this process (``workers = 1``)."""
    if workers <= 1:
        return None
    method = "fork" if sys.platform == "linux" else "spawn"
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context(method),
        initializer=warm_up,
    )


def utc_now() -> datetime:
    return datetime.now(UTC)


async def poll_feeds(
    config: Config,
    store: Store,
    feeds: Sequence[FeedState],
    *,
    clock: Clock = utc_now,
    on_done: Callable[[FeedOutcome], None] | None = None,
) -> PollSummary:
    """Refresh ``feeds`` concurrently; failures are recorded per feed, never raised."""
    summary = PollSummary()
    if not feeds:
        return summary
    executor = make_executor(min(worker_count(config), len(feeds)))
    keep_unmatched = config.poll.keep_unmatched
    loop = asyncio.get_running_loop()

    async def prepare(
        result: FetchResult, topics: tuple[TopicConfig, ...], now: datetime, known: frozenset[str]
    ) -> PreparedBatch:
        job = functools.partial(
            prepare_feed,
            result.body,
            result.headers,
            result.final_url,
            topics,
            keep_unmatched=keep_unmatched,
            now=now,
            known=known,
        )
        if executor is None:
            # a thread, not the loop: other feeds' downloads and deadlines keep running
            return await asyncio.to_thread(job)
        return await loop.run_in_executor(executor, job)

    write_lock = asyncio.Lock()
    try:
        async with Fetcher(fetch_settings(config)) as fetcher:

            async def one(feed: FeedState) -> None:
                outcome = await refresh_feed(
                    feed,
                    fetcher=fetcher,
                    prepare=prepare,
                    store=store,
                    config=config,
                    clock=clock,
                    write_lock=write_lock,
                )
                summary.outcomes.append(outcome)
                if on_done is not None:
                    on_done(outcome)

            await asyncio.gather(*(one(feed) for feed in feeds))
    finally:
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
    return summary
