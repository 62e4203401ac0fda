"""A pass through the writer thread: a failed write costs its feed only, and what waits
between the pool and the writer is bounded. Real HTTP on 127.0.0.1, a real SQLite file."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from tests.conftest import kant_story, rss, rss_item, write_config
from tests.worker_probes import report_loaded_modules, report_off_topic_memory
from watcher.config import Config, load_config
from watcher.models import Item
from watcher.normalize import utc_iso
from watcher.poll import Poller, PollSummary, poll_feeds
from watcher.prepare import PreparedBatch, PrepareFailure, PrepareJob, run_prepare_job
from watcher.store import Store
from watcher.workers import WORKER_NICENESS
from watcher.writer import CAPACITY

FEEDS = 12


def rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as connection:
        return connection.execute(sql).fetchall()


def serve_feeds(httpserver: HTTPServer, count: int) -> list[str]:
    urls = []
    for n in range(count):
        body = rss([kant_story(n * 10 + k, host=f"https://site{n}.example") for k in range(3)])
        httpserver.expect_request(f"/f{n}.xml").respond_with_data(body, content_type="text/xml")
        urls.append(httpserver.url_for(f"/f{n}.xml"))
    return urls


def poll(
    tmp_path: Path, urls: Sequence[str], *, workers: int, runner=run_prepare_job
) -> PollSummary:  # type: ignore[no-untyped-def]
    config = load_config(write_config(tmp_path, urls, poll=f"workers = {workers}\n"))
    store = Store.open(tmp_path / "watcher.db")
    try:
        store.sync_config(config, utc_iso(datetime.now(UTC)))
        feeds = store.feed_states(now=utc_iso(datetime.now(UTC)), due_only=False)
        return asyncio.run(poll_feeds(config, store, feeds, runner=runner))
    finally:
        store.close()


def test_a_write_that_fails_costs_its_feed_only(
    httpserver: HTTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The feeds written in the same transaction as the failing one keep their items."""
    urls = serve_feeds(httpserver, FEEDS)
    original = Store.insert_item

    def crash_for_site_5(self: Store, item: Item, **kwargs: object) -> int:
        if "site5.example" in item.url:
            raise ValueError("a value the store cannot hold (simulated)")
        return original(self, item, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Store, "insert_item", crash_for_site_5)
    summary = poll(tmp_path, urls, workers=2)
    failed = [outcome.url for outcome in summary.outcomes if outcome.status == "failed"]
    assert failed == [urls[5]]
    assert summary.ok == FEEDS - 1
    db = tmp_path / "watcher.db"
    assert rows(db, "SELECT count(*) FROM items WHERE url LIKE '%site5%'") == [(0,)]
    assert rows(db, "SELECT count(*) FROM items") == [(3 * (FEEDS - 1),)]
    assert rows(db, "SELECT count(*) FROM sightings") == [(3 * (FEEDS - 1),)]
    assert rows(db, "SELECT count(*) FROM feeds WHERE body_hash IS NULL") == [(1,)]
    assert rows(db, "SELECT outcome, count(*) FROM fetches GROUP BY outcome ORDER BY 1") == [
        ("error", 1),
        ("ok", FEEDS - 1),
    ]
    # the search index holds each stored item once, whatever the failed savepoint undid
    assert rows(db, "SELECT count(*) FROM items_fts_paused") == [(0,)]
    assert rows(db, "SELECT count(*) FROM items_fts WHERE items_fts MATCH 'kant'") == [
        (3 * (FEEDS - 1),)
    ]
    rows(db, "INSERT INTO items_fts(items_fts) VALUES ('integrity-check')")


class Counting:
    """A runner that notes, at the start of each preparation, how many feeds were being
    prepared or waiting for the writer; the writer is slowed so batches could pile up."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.started = 0
        self.most_ahead = 0
        self.stored = 0

    def __call__(self, job: PrepareJob) -> PreparedBatch | PrepareFailure:
        with self.lock:
            self.started += 1
            self.most_ahead = max(self.most_ahead, self.started - self.stored)
        return run_prepare_job(job)

    def on_store(self) -> None:
        time.sleep(0.05)
        with self.lock:
            self.stored += 1


def test_prepared_batches_waiting_for_a_slow_writer_are_bounded(
    httpserver: HTTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    feeds = 3 * (2 + CAPACITY)
    urls = serve_feeds(httpserver, feeds)
    runner = Counting()
    original = Store.record_fetch

    def slow_record(self: Store, *args: object, **kwargs: object) -> None:
        runner.on_store()
        original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Store, "record_fetch", slow_record)
    summary = poll(tmp_path, urls, workers=1, runner=runner)
    assert summary.ok == feeds
    # the bound of one worker: 2 × 1 being prepared or waiting for the writer, CAPACITY queued
    assert runner.most_ahead <= 2 + CAPACITY
    assert rows(tmp_path / "watcher.db", "SELECT count(*) FROM items") == [(3 * feeds,)]


def reporting_niceness_runner(job: PrepareJob) -> PreparedBatch | PrepareFailure:
    """Fails every feed with the worker's niceness as the message."""
    return PrepareFailure(kind="parse", message=f"niceness {os.nice(0)}", error_type="Report")


@pytest.mark.skipif(not hasattr(os, "nice"), reason="no process priorities here")
def test_workers_run_at_a_lower_priority_than_the_writer(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    """With the default pool the workers yield the CPU to the main process, whose writer
    thread is the one stage that cannot run in parallel."""
    summary = poll(
        tmp_path, serve_feeds(httpserver, 3), workers=2, runner=reporting_niceness_runner
    )
    expected = f"niceness {min(os.nice(0) + WORKER_NICENESS, 19)}"
    assert [outcome.error for outcome in summary.outcomes] == [expected] * 3


def test_workers_hold_the_tagging_data_and_not_the_cli(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    """Workers come from the fork server with the tagging data loaded, and without the CLI's
    modules, which only the main process needs."""
    summary = poll(tmp_path, serve_feeds(httpserver, 2), workers=2, runner=report_loaded_modules)
    assert [outcome.error for outcome in summary.outcomes] == ["watcher.tagging.gazetteer"] * 2


def test_a_feeds_next_fetch_knows_what_its_last_one_dropped_as_off_topic(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    """Through the worker pool, one pass after another: a feed's second fetch carries the
    digests of the entries its first fetch dropped for matching no topic (kept in the
    database) and counts them off-topic again; a change of topics makes them count for
    nothing."""
    harvest = [
        rss_item(
            f"Harvest report {n}",
            f"https://news.example/harvest/{n}",
            f"<p>Farmers in region {n} brought in the wheat early.</p>",
            guid=f"harvest-{n}",
        )
        for n in range(3)
    ]
    bodies = [rss([kant_story(1), *harvest]), rss([kant_story(2), kant_story(1), *harvest])]
    bodies.append(bodies[1].replace(b"</channel>", kant_story(3).encode() + b"</channel>"))
    httpserver.expect_request("/mixed.xml").respond_with_handler(
        lambda _request: Response(bodies.pop(0), content_type="text/xml")
    )
    url = httpserver.url_for("/mixed.xml")
    config = load_config(write_config(tmp_path, [url], poll="workers = 2\n"))
    topic = config.topics[0]
    requeried = config.model_copy(
        update={"topics": [topic.model_copy(update={"query": f"{topic.query} OR nowhere"})]}
    )
    store = Store.open(tmp_path / "watcher.db")
    store.sync_config(config, utc_iso(datetime.now(UTC)))

    async def fetch(settings: Config) -> None:
        async with Poller(settings, store, workers=2, runner=report_off_topic_memory) as poller:
            (state,) = store.feed_states(now=utc_iso(datetime.now(UTC)), due_only=False)
            outcome = await poller.refresh(state)
            assert outcome.status == "ok", outcome.error

    async def three_passes() -> None:
        for settings in (config, config, requeried):
            await fetch(settings)

    try:
        asyncio.run(three_passes())
        log = rows(
            tmp_path / "watcher.db", "SELECT error, off_topic, new_items FROM fetches ORDER BY id"
        )
        remembered = rows(tmp_path / "watcher.db", "SELECT count(*) FROM off_topic_entries")
    finally:
        store.close()
    assert log == [("remembered 0", 3, 1), ("remembered 3", 3, 1), ("remembered 0", 3, 1)]
    assert remembered == [(3,)]
