"""Lag that shows before it hurts (issue 24): each daemon poll's lag behind its due time and the
writer's queue are recorded in the fetch log, reported by `watcher status`, `status --json`
and the metrics, and the daemon warns when feeds run late for minutes."""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from pytest_httpserver import HTTPServer

from tests.conftest import kant_story, rss, write_config
from tests.test_daemon import Daemon, daemon_config, query, wait_for
from watcher.config import load_config
from watcher.daemon.service import LagWatch
from watcher.metrics import read_snapshot, start_metrics_server
from watcher.normalize import utc_iso
from watcher.poll import Poller
from watcher.store import Store

# --- the warning -------------------------------------------------------------------------


def test_lag_watch_warns_once_feeds_have_run_late_for_five_minutes() -> None:
    """p95 over a minute at every check for five minutes: one warning, repeated every five
    minutes while it lasts; a check without late polls ends it with a line saying so."""
    watch = LagWatch(threshold=60, sustained=300, check_every=60)
    lines = []
    for minute in range(1, 12):
        for lag in [5.0] * 90 + [120.0] * 10:  # p95 120 s
            watch.add(lag)
        lines.append((minute, watch.check(minute * 60.0, writer_queue=7)))
    warnings = [(minute, line) for minute, line in lines if line is not None]
    assert [minute for minute, _line in warnings] == [5, 10]
    level, message, fields = warnings[0][1]
    assert (level, message) == (logging.WARNING, "feeds running late")
    assert fields["lag_p95_s"] == 120.0
    assert fields["lag_p50_s"] == 5.0
    assert fields["writer_queue"] == 7
    assert fields["polls"] == 100

    watch.add(1.0)
    back = watch.check(12 * 60.0)
    assert back is not None
    assert back[:2] == (logging.INFO, "feeds back on time")
    watch.add(1.0)
    assert watch.check(13 * 60.0) is None


def test_lag_watch_forgets_a_short_burst() -> None:
    """Four late minutes, then one on time: no warning (a restart's burst is not a problem)."""
    watch = LagWatch(threshold=60, sustained=300, check_every=60)
    for minute in range(1, 5):
        watch.add(200.0)
        assert watch.check(minute * 60.0) is None
    watch.add(1.0)
    assert watch.check(300.0) is None
    watch.add(200.0)
    assert watch.check(360.0) is None
    assert watch.check(420.0) is None  # no poll ended: nothing to judge by


# --- recorded with each fetch ------------------------------------------------------------


def test_a_poll_with_a_due_time_records_its_lag_and_the_writer_queue(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    """The lag counts from the due time to the request; the writer queue counts the job
    recording the fetch. A poll without a due time (watcher poll) records no lag."""
    httpserver.expect_request("/late.xml").respond_with_data(
        rss([kant_story(1), kant_story(2)]), content_type="application/rss+xml"
    )
    httpserver.expect_request("/now.xml").respond_with_data(
        rss([kant_story(3)]), content_type="application/rss+xml"
    )
    urls = [httpserver.url_for("/late.xml"), httpserver.url_for("/now.xml")]
    config = load_config(write_config(tmp_path, urls, poll="workers = 1\n"))
    store = Store.open(tmp_path / "watcher.db")
    store.sync_config(config, utc_iso(datetime.now(UTC)))
    late, now = store.feed_states(now=utc_iso(datetime.now(UTC)), due_only=False)

    async def poll() -> tuple[int | None, int | None]:
        async with Poller(config, store) as poller:
            first = await poller.refresh(late, due=datetime.now(UTC) - timedelta(seconds=90))
            second = await poller.refresh(now)
            assert poller.writer_queue() == 0
            return first.lag_ms, second.lag_ms

    lags = asyncio.run(poll())
    rows = store.db.execute(
        "SELECT outcome, lag_ms, writer_queue FROM fetches ORDER BY id"
    ).fetchall()
    store.close()
    assert lags[0] is not None
    assert 90_000 <= lags[0] < 150_000
    assert lags[1] is None
    assert rows[0][0] == "ok"
    assert rows[0][1] == lags[0]
    assert rows[0][2] >= 1
    assert rows[1][:2] == ("ok", None)  # the writer queue is recorded all the same


# --- reported ----------------------------------------------------------------------------


def test_status_json_and_metrics_report_the_last_hours_lag_and_the_writer_queue(
    make_watcher,  # type: ignore[no-untyped-def]
) -> None:
    """Twenty polls with lags of 1 to 20 s and one two hours old with an hour of lag: the
    figures are over the twenty (nearest rank), the queue is the newest poll's."""
    watcher = make_watcher(["http://127.0.0.1:9/feed.xml"])
    assert watcher("status").exit_code == 0
    assert "poll lag: no daemon polls in the last hour" in watcher("status").output
    now = datetime.now(UTC)
    store = Store.open(watcher.db)
    feed_id = store.enabled_feed_ids()[0]
    with store.db.conn:
        store.record_fetch(
            feed_id,
            started_at=utc_iso(now - timedelta(hours=2)),
            outcome="not_modified",
            next_due_at=utc_iso(now),
            lag_ms=3_600_000,
            writer_queue=50,
        )
        for second in range(1, 21):
            store.record_fetch(
                feed_id,
                started_at=utc_iso(now - timedelta(seconds=60 - second)),
                outcome="not_modified",
                next_due_at=utc_iso(now),
                lag_ms=second * 1000,
                writer_queue=second % 6,
            )
    snapshot = read_snapshot(store, now=now)
    store.close()
    assert snapshot.poll_lag_seconds == {"polls": 20, "p50": 10.0, "p95": 19.0, "max": 20.0}
    assert snapshot.writer_queue["latest"] == 2
    assert snapshot.writer_queue["max"] == 5

    result = watcher("status")
    assert result.exit_code == 0
    assert (
        "poll lag, last hour (20 daemon polls): p50 10.0 s, p95 19.0 s, max 20.0 s; "
        "writer queue 2 at"
    ) in result.output
    document = json.loads(watcher("status", "--json").output)
    assert document["poll_lag_seconds"] == snapshot.poll_lag_seconds
    assert document["writer_queue"]["latest"] == 2

    server = start_metrics_server(watcher.db, "127.0.0.1", 0)
    try:
        with urllib.request.urlopen(server.url, timeout=10) as answer:
            text = answer.read().decode("utf-8")
    finally:
        server.close()
    found = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    assert found[("watcher_poll_lag_seconds", (("stat", "p95"),))] == 19.0
    assert found[("watcher_poll_lag_seconds", (("stat", "max"),))] == 20.0
    assert found[("watcher_poll_lag_polls", ())] == 20
    assert found[("watcher_writer_queue", ())] == 2
    assert found[("watcher_writer_queue_max", ())] == 5


def test_the_daemon_records_the_lag_of_its_polls(httpserver: HTTPServer, tmp_path: Path) -> None:
    """`watcher run` records lag_ms and writer_queue on every fetch it makes, and logs them."""
    httpserver.expect_request("/feed.xml").respond_with_data(
        rss([kant_story(1)]), content_type="application/rss+xml"
    )
    db = tmp_path / "watcher.db"
    daemon = Daemon(daemon_config(tmp_path, [httpserver.url_for("/feed.xml")]), db)
    try:
        wait_for(lambda: len(query(db, "SELECT id FROM fetches")) >= 3, "three polls")
    finally:
        assert daemon.stop() == 0, daemon.log
    rows = query(db, "SELECT lag_ms, writer_queue FROM fetches")
    assert all(lag is not None and 0 <= lag < 30_000 for lag, _queue in rows), rows
    assert all(queue is not None and queue >= 1 for _lag, queue in rows), rows
    assert "lag_ms=" in daemon.log
