"""Refresh one feed end to end and record the outcome; never raises into the caller.

fetch → prepare (parse, normalize, match, tag; in a worker process) → full text (for
feeds that ask for it; watcher/fulltext.py) → ingest (dedupe against the corpus, store; in the writer thread, watcher/writer.py)
→ record the fetch on the feed. Each step that can fail ends the refresh with a row in
``fetches`` and the feed backed off; a page the full text step cannot get never does.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import sqlite3
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from watcher.backoff import HISTORY, adaptive_interval, next_due
from watcher.config import Config, TopicConfig
from watcher.dedupe_settings import from_config
from watcher.errors import DatabaseFault, FeedError, HTTPStatusError
from watcher.fulltext import FullText, add_full_text
from watcher.models import EntryCounts, FeedState, FetchResult
from watcher.normalize import utc_iso
from watcher.off_topic import topics_key
from watcher.prepare import PreparedBatch, PrepareJob
from watcher.sources.fetch import Fetcher
from watcher.store import Store
from watcher.store.faults import as_fault
from watcher.store.stories import scripts_seen
from watcher.writer import Writer

log = logging.getLogger("watcher.refresh")

T = TypeVar("T")
PrepareRunner = Callable[[PrepareJob], Awaitable[PreparedBatch]]
STORE_FAILED = "store"
"""The ``error_kind`` of a feed whose batch could not be written."""
Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class FeedOutcome:
    """What happened to one feed in one pass; ``counts`` says where each entry went."""

    url: str
    status: str  # ok | not_modified | unchanged | failed
    counts: EntryCounts = field(default_factory=EntryCounts)
    error_kind: str | None = None
    error: str | None = None
    duration_ms: int = 0
    lag_ms: int | None = None
    """How late the poll ran behind its due time (None: no due time was given)."""

    @property
    def new_items(self) -> int:
        return self.counts.new_items


def topics_for(feed: FeedState, config: Config) -> tuple[TopicConfig, ...]:
    """The topics a feed is matched against: its own list, or every topic."""
    if not feed.topics:
        return config.topics
    return tuple(topic for topic in config.topics if topic.name in feed.topics)


@dataclass(frozen=True, slots=True)
class Stages:
    """What the refreshes of a pass share: the HTTP client, the worker pool, the writer, and
    the limits on what waits between them.

    ``bodies`` bounds the feeds between the start of their download and the end of their
    preparation (so bodies downloaded faster than the pool prepares them wait on the
    network instead of in memory); ``batches`` bounds the feeds between the start of their
    preparation and the end of their write (so prepared batches wait in the pool instead
    of in memory when the writer is the slower side).
    """

    fetcher: Fetcher
    prepare: PrepareRunner
    writer: Writer
    bodies: asyncio.Semaphore
    batches: asyncio.Semaphore
    full_text: FullText | None = None
    writer_queue: Callable[[], int] | None = None
    """How many write jobs are waiting for the writer now (recorded with each fetch)."""


class _Place:
    """A place taken on a semaphore, which can be given back before the block ends."""

    def __init__(self, semaphore: asyncio.Semaphore) -> None:
        self._semaphore = semaphore
        self._held = False

    async def __aenter__(self) -> _Place:
        await self._semaphore.acquire()
        self._held = True
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self.release()

    def release(self) -> None:
        if self._held:
            self._held = False
            self._semaphore.release()


class _Refresh:
    """The bookkeeping of one feed's refresh: its start, its clock, and how each ending is
    recorded (failed, unchanged, stored) through the writer."""

    def __init__(
        self,
        feed: FeedState,
        config: Config,
        clock: Clock,
        writer: Writer,
        *,
        due: datetime | None = None,
        writer_queue: Callable[[], int] | None = None,
    ) -> None:
        self.feed = feed
        self.config = config
        self.clock = clock
        self.writer = writer
        self.started = clock()
        self.started_at = utc_iso(self.started)
        self.interval = feed.interval_seconds or config.poll.default_interval
        self.due = due
        self.request_began = self.started
        self._writer_queue = writer_queue

    def elapsed(self) -> int:
        return int((self.clock() - self.started).total_seconds() * 1000)

    def fetched(self, result: FetchResult) -> None:
        """Note when the feed's request went out: its download ended now, after
        ``result.elapsed_ms`` (waits for a download slot come before)."""
        self.request_began = self.clock() - timedelta(milliseconds=result.elapsed_ms)

    def lag_ms(self) -> int | None:
        """How late the request went out behind the due time (for a download that failed,
        how late the refresh began); None without a due time."""
        if self.due is None:
            return None
        return max(0, int((self.request_began - self.due).total_seconds() * 1000))

    def writer_queue(self) -> int | None:
        return None if self._writer_queue is None else self._writer_queue()

    def due_after_success(self, store: Store, new_items: int = 0) -> str:
        """The next due time, at the feed's interval adapted to what it published lately
        (kept on the feed); call inside the job that records the fetch.

        It counts from the fetch's start, which is what ``last_fetch_at`` records, so the
        cadence does not drift by each fetch's duration and status shows the interval."""
        now = self.clock()
        schedule = store.feed_schedule(self.feed.id)
        low, high = self.config.daemon.interval_bounds(self.interval)
        interval = adaptive_interval(
            now,
            new_items=new_items,
            history=store.fetch_history(self.feed.id, limit=HISTORY),
            current=(schedule.interval if schedule and schedule.interval else self.interval),
            low=low,
            high=high,
        )
        store.set_poll_interval(self.feed.id, interval)
        due = next_due(
            self.started,
            interval=interval,
            error_count=0,
            max_backoff=self.config.poll.max_backoff,
        )
        return utc_iso(due)

    async def write(self, job: Callable[[Store], T], *, size: int = 1) -> T:
        """``job`` through the writer; a fault of the database file itself is raised as a
        :class:`DatabaseFault` (it ends the pass), anything else as it came."""
        try:
            return await self.writer.run(job, size=size)
        except sqlite3.Error as error:
            fault = as_fault(error, self.writer.path)
            if fault is None:
                raise
            raise fault from None

    async def failed(
        self, error: Exception, *, status: int | None = None, kind: str | None = None
    ) -> FeedOutcome:
        """Record ``error`` on the feed, back it off, and say so."""
        feed = self.feed
        kind = kind or (error.kind if isinstance(error, FeedError) else "internal")
        message = (
            error.message if isinstance(error, FeedError) else f"{type(error).__name__}: {error}"
        )
        retry_after = error.retry_after if isinstance(error, HTTPStatusError) else None
        http_status = error.status if isinstance(error, HTTPStatusError) else status
        disable = None
        if http_status == 410:
            disable = f"HTTP 410 Gone at {self.started_at}: the publisher removed this feed"
        due = next_due(
            self.clock(),
            interval=self.interval,
            error_count=feed.error_count + 1,
            max_backoff=self.config.poll.max_backoff,
            retry_after=retry_after,
        )
        duration = self.elapsed()

        def write(store: Store) -> None:
            store.record_fetch(
                feed.id,
                started_at=self.started_at,
                outcome="error",
                next_due_at=utc_iso(due),
                duration_ms=duration,
                http_status=http_status,
                error_kind=kind,
                error=message,
                retry_after=retry_after,
                disable_reason=disable,
                lag_ms=self.lag_ms(),
                writer_queue=self.writer_queue(),
            )

        try:
            await self.write(write)
        except sqlite3.Error as store_error:
            log.error("feed=%s could not record its failure: %s", feed.url, store_error)
        log.info(
            "feed=%s status=failed kind=%s error=%r duration_ms=%d",
            feed.url,
            kind,
            message,
            duration,
        )
        return FeedOutcome(
            feed.url,
            "failed",
            error_kind=kind,
            error=message,
            duration_ms=duration,
            lag_ms=self.lag_ms(),
        )

    async def unchanged(self, result: FetchResult) -> FeedOutcome:
        """A 304, or the same body as last time: only the fetch is recorded."""
        status = "not_modified" if result.not_modified else "unchanged"

        def write(store: Store) -> None:
            store.record_fetch(
                self.feed.id,
                started_at=self.started_at,
                outcome=status,
                next_due_at=self.due_after_success(store),
                duration_ms=self.elapsed(),
                http_status=result.status,
                size=len(result.body),
                etag=result.etag,
                last_modified=result.last_modified,
                new_url=result.permanent_url,
                lag_ms=self.lag_ms(),
                writer_queue=self.writer_queue(),
            )

        try:
            await self.write(write)
        except DatabaseFault:
            raise
        except Exception as error:
            return await self.failed(error, status=result.status, kind=STORE_FAILED)
        log.info("feed=%s status=%s new=0 duration_ms=%d", self.feed.url, status, self.elapsed())
        return FeedOutcome(self.feed.url, status, duration_ms=self.elapsed(), lag_ms=self.lag_ms())

    async def stored(
        self, result: FetchResult, batch: PreparedBatch, body_hash: str, size: int
    ) -> FeedOutcome:
        """Dedupe and store the batch, and record the fetch, in one job of the writer
        (``result`` no longer holds the body; ``size`` is its length)."""

        def write(store: Store) -> EntryCounts:
            from watcher.ingest import ingest_batch  # numpy and the comparisons: first body only

            outcome = ingest_batch(
                store,
                batch.items,
                feed_id=self.feed.id,
                now=self.started_at,
                settings=from_config(self.config.dedupe),
            )
            counts = EntryCounts(
                entries=batch.entries,
                new_items=outcome.new_items,
                near_duplicates=outcome.near_duplicates,
                duplicates=outcome.matches + Counter(dict(batch.known)),
                off_topic=batch.off_topic,
                empty=batch.empty,
            )
            store.replace_off_topic(
                self.feed.id,
                topics_key(topics_for(self.feed, self.config)),
                batch.off_topic_digests,
            )
            store.record_fetch(
                self.feed.id,
                started_at=self.started_at,
                outcome="ok",
                next_due_at=self.due_after_success(store, counts.new_items),
                duration_ms=self.elapsed(),
                http_status=result.status,
                size=size,
                counts=counts,
                etag=result.etag,
                last_modified=result.last_modified,
                body_hash=body_hash,
                new_url=result.permanent_url,
                title=batch.feed_title,
                error=batch.warning,
                lag_ms=self.lag_ms(),
                writer_queue=self.writer_queue(),
            )
            return counts

        try:
            counts = await self.write(write, size=len(batch.items))
        except DatabaseFault:
            raise
        except Exception as error:  # one feed's data or a bug: that feed fails alone
            log.exception("feed=%s could not be stored", self.feed.url)
            return await self.failed(error, status=result.status, kind=STORE_FAILED)
        duration = self.elapsed()
        if not counts.balanced():  # a bug, not bad input: say so loudly, lose nothing silently
            log.error("feed=%s entries do not add up: %s", self.feed.url, counts.line())
        log.info(
            "feed=%s status=ok entries=%d new=%d duplicates=%d off_topic=%d empty=%d "
            "duration_ms=%d",
            self.feed.url,
            counts.entries,
            counts.new_items,
            counts.duplicate_total,
            counts.off_topic,
            counts.empty,
            duration,
        )
        return FeedOutcome(
            self.feed.url, "ok", counts=counts, duration_ms=duration, lag_ms=self.lag_ms()
        )


async def _prepare(
    refresh: _Refresh, result: FetchResult, *, stages: Stages, store: Store, config: Config
) -> PreparedBatch | FeedOutcome:
    """The feed's body prepared in the pool (and its full text added), or its failure."""
    feed = refresh.feed
    full_text = stages.full_text
    topics = topics_for(feed, config)
    keep_unmatched = config.poll.keep_unmatched or (
        full_text is not None and full_text.keeps_unmatched(feed)
    )
    try:
        known = store.known_keys(feed.id)
        if not keep_unmatched:
            remembered = store.off_topic_digests(feed.id, topics_key(topics))
            known = dataclasses.replace(known, off_topic=remembered)
        batch = await stages.prepare(
            PrepareJob(
                body=result.body,
                headers=result.headers,
                url=result.final_url,
                topics=topics,
                keep_unmatched=keep_unmatched,
                now=refresh.started,
                known=known,
                scripts_seen=scripts_seen(
                    store,
                    since=utc_iso(refresh.started - timedelta(seconds=config.dedupe.story_window)),
                ),
            )
        )
        return await add_full_text(
            full_text, feed, batch, topics, config=config, now=refresh.started
        )
    except FeedError as error:
        return await refresh.failed(error, status=result.status)
    except sqlite3.Error as error:  # reading what the feed delivered before
        fault = as_fault(error, store.path)
        if fault is not None:
            raise fault from None
        log.exception("feed=%s could not be processed", feed.url)
        return await refresh.failed(error, status=result.status)
    except Exception as error:  # a parser bug must not stop the other feeds
        log.exception("feed=%s could not be processed", feed.url)
        return await refresh.failed(error, status=result.status)


async def refresh_feed(
    feed: FeedState,
    *,
    stages: Stages,
    store: Store,
    config: Config,
    clock: Clock,
    due: datetime | None = None,
) -> FeedOutcome:
    """Run the stages for ``feed`` and record the outcome; failures are returned, not raised.

    ``store`` is read on the event loop (what the feed already delivered); every write
    goes through ``stages.writer``. ``due`` is when the poll was due (the daemon's); the
    fetch log records how late its request went out behind it.
    """
    refresh = _Refresh(
        feed, config, clock, stages.writer, due=due, writer_queue=stages.writer_queue
    )
    async with _Place(stages.bodies) as body_place:
        try:
            result = await stages.fetcher.fetch(feed)
        except FeedError as error:
            return await refresh.failed(error)
        except Exception as error:  # an unforeseen client failure must not stop the other feeds
            log.exception("feed=%s fetch failed unexpectedly", feed.url)
            return await refresh.failed(error)
        refresh.fetched(result)

        body_hash = hashlib.sha256(result.body).hexdigest() if not result.not_modified else None
        if body_hash is None or body_hash == feed.body_hash:
            return await refresh.unchanged(result)

        async with stages.batches:
            prepared = await _prepare(refresh, result, stages=stages, store=store, config=config)
            size = len(result.body)
            result = dataclasses.replace(result, body=b"")
            body_place.release()
            if isinstance(prepared, FeedOutcome):
                return prepared
            return await refresh.stored(result, prepared, body_hash, size)
