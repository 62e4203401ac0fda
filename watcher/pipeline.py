"""Refresh one feed end to end and record the outcome; never raises into the caller.

fetch → prepare (parse, normalize, match, tag; in a worker process) → ingest
(dedupe against the corpus, store) → record the fetch on the feed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from watcher.backoff import next_due
from watcher.config import Config, TopicConfig
from watcher.errors import FeedError, HTTPStatusError
from watcher.ingest import dedupe_settings, ingest_batch
from watcher.models import FeedState, FetchResult
from watcher.normalize import utc_iso
from watcher.prepare import PreparedBatch
from watcher.sources.fetch import Fetcher
from watcher.store import Store

log = logging.getLogger("watcher.refresh")

PrepareRunner = Callable[
    [FetchResult, tuple[TopicConfig, ...], datetime, frozenset[str]], Awaitable[PreparedBatch]
]
Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class FeedOutcome:
    """What happened to one feed in one pass."""

    url: str
    status: str  # ok | not_modified | unchanged | failed
    entries: int = 0
    new_items: int = 0
    sightings: int = 0
    near_duplicates: int = 0
    unmatched: int = 0
    error_kind: str | None = None
    error: str | None = None
    duration_ms: int = 0


def topics_for(feed: FeedState, config: Config) -> tuple[TopicConfig, ...]:
    """The topics a feed is matched against: its own list, or every topic."""
    if not feed.topics:
        return config.topics
    return tuple(topic for topic in config.topics if topic.name in feed.topics)


def _interval(feed: FeedState, config: Config) -> float:
    return feed.interval_seconds or config.poll.default_interval


async def refresh_feed(
    feed: FeedState,
    *,
    fetcher: Fetcher,
    prepare: PrepareRunner,
    store: Store,
    config: Config,
    clock: Clock,
    write_lock: asyncio.Lock | None = None,
) -> FeedOutcome:
    """Run the stages for ``feed`` and record the outcome; failures are returned, not raised.

    ``write_lock`` is shared by the feeds of one pass: the database writes are synchronous,
    and taking turns through the lock lets the event loop serve downloads between two
    feeds' writes instead of running many writes back to back.
    """
    started = clock()
    started_at = utc_iso(started)
    interval = _interval(feed, config)
    max_backoff = config.poll.max_backoff

    def elapsed() -> int:
        return int((clock() - started).total_seconds() * 1000)

    def due_after_success() -> str:
        return utc_iso(next_due(clock(), interval=interval, error_count=0, max_backoff=max_backoff))

    def fail(error: FeedError | Exception, *, status: int | None = None) -> FeedOutcome:
        kind = error.kind if isinstance(error, FeedError) else "internal"
        message = (
            error.message if isinstance(error, FeedError) else f"{type(error).__name__}: {error}"
        )
        retry_after = error.retry_after if isinstance(error, HTTPStatusError) else None
        http_status = error.status if isinstance(error, HTTPStatusError) else status
        disable = None
        if http_status == 410:
            disable = f"HTTP 410 Gone at {started_at}: the publisher removed this feed"
        due = next_due(
            clock(),
            interval=interval,
            error_count=feed.error_count + 1,
            max_backoff=max_backoff,
            retry_after=retry_after,
        )
        duration = elapsed()
        try:
            with store.transaction():
                store.record_fetch(
                    feed.id,
                    started_at=started_at,
                    outcome="error",
                    next_due_at=utc_iso(due),
                    duration_ms=duration,
                    http_status=http_status,
                    error_kind=kind,
                    error=message,
                    retry_after=retry_after,
                    disable_reason=disable,
                )
        except sqlite3.Error as store_error:
            log.error("feed=%s could not record its failure: %s", feed.url, store_error)
        log.info(
            "feed=%s status=failed kind=%s error=%r duration_ms=%d",
            feed.url,
            kind,
            message,
            duration,
        )
        return FeedOutcome(feed.url, "failed", error_kind=kind, error=message, duration_ms=duration)

    try:
        result = await fetcher.fetch(feed)
    except FeedError as error:
        return fail(error)
    except Exception as error:  # an unforeseen client failure must not stop the other feeds
        log.exception("feed=%s fetch failed unexpectedly", feed.url)
        return fail(error)

    body_hash = hashlib.sha256(result.body).hexdigest() if not result.not_modified else None
    if result.not_modified or body_hash == feed.body_hash:
        status = "not_modified" if result.not_modified else "unchanged"
        try:
            with store.transaction():
                store.record_fetch(
                    feed.id,
                    started_at=started_at,
                    outcome=status,
                    next_due_at=due_after_success(),
                    duration_ms=elapsed(),
                    http_status=result.status,
                    size=len(result.body),
                    etag=result.etag,
                    last_modified=result.last_modified,
                    new_url=result.permanent_url,
                )
        except sqlite3.Error as error:
            return fail(error, status=result.status)
        log.info("feed=%s status=%s new=0 duration_ms=%d", feed.url, status, elapsed())
        return FeedOutcome(feed.url, status, duration_ms=elapsed())

    try:
        known = store.known_keys(feed.id)
        batch = await prepare(result, topics_for(feed, config), started, known)
    except FeedError as error:
        return fail(error, status=result.status)
    except Exception as error:  # a parser bug must not stop the other feeds
        log.exception("feed=%s could not be processed", feed.url)
        return fail(error, status=result.status)

    try:
        async with write_lock or contextlib.nullcontext():
            with store.transaction():
                outcome = ingest_batch(
                    store,
                    batch.items,
                    feed_id=feed.id,
                    now=started_at,
                    settings=dedupe_settings(config.dedupe),
                )
                store.record_fetch(
                    feed.id,
                    started_at=started_at,
                    outcome="ok",
                    next_due_at=due_after_success(),
                    duration_ms=elapsed(),
                    http_status=result.status,
                    size=len(result.body),
                    entries=batch.entries,
                    new_items=outcome.new_items,
                    etag=result.etag,
                    last_modified=result.last_modified,
                    body_hash=body_hash,
                    new_url=result.permanent_url,
                    title=batch.feed_title,
                    error=batch.warning,
                )
    except sqlite3.Error as error:
        store.forget_cached_ids()
        return fail(error, status=result.status)
    duration = elapsed()
    log.info(
        "feed=%s status=ok entries=%d new=%d seen=%d duration_ms=%d",
        feed.url,
        batch.entries,
        outcome.new_items,
        outcome.sightings,
        duration,
    )
    return FeedOutcome(
        feed.url,
        "ok",
        entries=batch.entries,
        new_items=outcome.new_items,
        sightings=outcome.sightings + batch.known,
        near_duplicates=outcome.near_duplicates,
        unmatched=batch.unmatched,
        duration_ms=duration,
    )
