"""The fetch log is trimmed to ``[poll] keep_fetches``; each feed's newest rows always stay."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from tests.conftest import drive_daemon, kant_story, rss, write_config
from watcher.config import config_from_dict, load_config
from watcher.daemon import Daemon
from watcher.errors import ConfigError
from watcher.normalize import utc_iso
from watcher.poll import KEEP_FETCHES_PER_FEED
from watcher.store import Store

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def log_fetches(store: Store, feed_id: int, days_ago: list[float]) -> None:
    """Fetch-log rows of ``feed_id`` started that many days before NOW, oldest first."""
    for days in sorted(days_ago, reverse=True):
        store.db.execute(
            "INSERT INTO fetches(feed_id, started_at, outcome) VALUES (?, ?, 'ok')",
            [feed_id, utc_iso(NOW - timedelta(days=days))],
        )
    store.db.conn.commit()


def ages(db: Path, feed_url: str) -> list[float]:
    """Days before NOW of the feed's logged fetches, newest first."""
    with sqlite3.connect(db) as connection:
        rows = connection.execute(
            "SELECT started_at FROM fetches JOIN feeds ON feeds.id = fetches.feed_id "
            "WHERE feeds.url = ? ORDER BY fetches.id DESC",
            [feed_url],
        ).fetchall()
    return [
        round((NOW - datetime.fromisoformat(row[0].replace("Z", "+00:00"))).days, 1) for row in rows
    ]


def feed(store: Store, url: str) -> int:
    store.add_feed(url, now=utc_iso(NOW))
    return int(store._one("SELECT id FROM feeds WHERE url = ?", [url]))


def test_old_rows_go_but_each_feed_keeps_its_newest(tmp_path: Path) -> None:
    """Rows older than the cut go, except the newest ``keep_per_feed`` of each feed; rows
    inside the window stay however many there are."""
    store = Store.open(tmp_path / "w.db")
    busy = feed(store, "https://busy.example/feed")
    quiet = feed(store, "https://quiet.example/feed")
    log_fetches(store, busy, [1, 2, 3, 200, 201, 202, 203, 204])
    log_fetches(store, quiet, [300, 301])

    removed = store.prune_fetches(before=utc_iso(NOW - timedelta(days=90)), keep_per_feed=4)
    store.close()

    assert removed == 4
    assert ages(tmp_path / "w.db", "https://busy.example/feed") == [1, 2, 3, 200]
    assert ages(tmp_path / "w.db", "https://quiet.example/feed") == [300, 301]


def test_keep_fetches_reads_durations_and_all() -> None:
    assert config_from_dict({}).poll.keep_fetches == 90 * 86400.0
    assert config_from_dict({"poll": {"keep_fetches": "30d"}}).poll.keep_fetches == 30 * 86400.0
    assert config_from_dict({"poll": {"keep_fetches": "all"}}).poll.keep_fetches is None
    with pytest.raises(ConfigError, match="keep_fetches"):
        config_from_dict({"poll": {"keep_fetches": "soon"}})


def test_a_poll_trims_the_log_it_writes(httpserver: HTTPServer, make_watcher) -> None:  # type: ignore[no-untyped-def]
    """`watcher poll` trims the log once its pass is written: a feed with more old rows than
    it always keeps is left with its newest ones, the new fetch among them."""
    httpserver.expect_request("/feed.xml").respond_with_data(
        rss([kant_story(1)]), content_type="text/xml"
    )
    url = httpserver.url_for("/feed.xml")
    watcher = make_watcher([url])
    store = Store.open(watcher.db)
    log_fetches(store, feed(store, url), [400 + n for n in range(KEEP_FETCHES_PER_FEED + 20)])
    store.close()

    assert watcher("poll", "--all").exit_code == 0

    kept = ages(watcher.db, url)
    assert len(kept) == KEEP_FETCHES_PER_FEED
    assert kept[0] < 1  # the fetch just made
    assert kept[1:] == [400 + n for n in range(KEEP_FETCHES_PER_FEED - 1)]


def test_keep_fetches_all_keeps_every_row(httpserver: HTTPServer, make_watcher) -> None:  # type: ignore[no-untyped-def]
    httpserver.expect_request("/feed.xml").respond_with_data(
        rss([kant_story(1)]), content_type="text/xml"
    )
    url = httpserver.url_for("/feed.xml")
    watcher = make_watcher([url], poll='keep_fetches = "all"\n')
    store = Store.open(watcher.db)
    log_fetches(store, feed(store, url), [400 + n for n in range(KEEP_FETCHES_PER_FEED + 20)])
    store.close()

    assert watcher("poll", "--all").exit_code == 0

    assert len(ages(watcher.db, url)) == KEEP_FETCHES_PER_FEED + 21


def test_the_daemon_trims_the_log_once_a_day(httpserver: HTTPServer, tmp_path: Path) -> None:
    """The daemon schedules the trim as a daily job; run, it trims in a thread of its own."""
    httpserver.expect_request("/feed.xml").respond_with_data(
        rss([kant_story(1)]), content_type="text/xml"
    )
    url = httpserver.url_for("/feed.xml")
    config_path = write_config(
        tmp_path,
        [url],
        poll='default_interval = "1h"\nkeep_fetches = "30d"\n',
        extra='\n[daemon]\njitter = "0s"\nwatch_config = "off"\n',
    )
    db = tmp_path / "watcher.db"
    store = Store.open(db)
    log_fetches(store, feed(store, url), [100 + n for n in range(KEEP_FETCHES_PER_FEED + 5)])
    store.close()
    daemon = Daemon(load_config(config_path), config_path=config_path, db_path=db)
    seen: dict[str, float] = {}

    async def prune() -> None:
        seen["every"] = daemon.scheduler.get_job("prune").trigger.interval.total_seconds()
        await daemon._prune()

    drive_daemon(
        daemon,
        until=lambda: len(ages(db, url)) >= KEEP_FETCHES_PER_FEED + 6,  # its first poll
        then=prune,
        waiting_for="poll the feed",
    )
    assert seen["every"] == 86400
    assert len(ages(db, url)) == KEEP_FETCHES_PER_FEED


def test_a_trim_that_fails_leaves_the_pass_written(
    httpserver: HTTPServer,
    make_watcher,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A locked database at trim time (simulated: a real lock would take the 15 s busy
    timeout) costs the trim only: the poll succeeds with its items stored and says why."""

    def locked(self: Store, **_kwargs: object) -> int:
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(Store, "prune_fetches", locked)
    httpserver.expect_request("/feed.xml").respond_with_data(
        rss([kant_story(1)]), content_type="text/xml"
    )
    watcher = make_watcher([httpserver.url_for("/feed.xml")])

    result = watcher("poll", "--all")

    assert result.exit_code == 0
    assert "1 new item" in result.output
    assert "fetch log not trimmed: database is locked" in caplog.text
    with sqlite3.connect(watcher.db) as connection:
        assert connection.execute("SELECT count(*) FROM items").fetchone() == (1,)
