"""Metrics: feeds polled from 127.0.0.1 through the CLI, the endpoint scraped over HTTP and
read with prometheus_client's own text-format parser."""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from pytest_httpserver import HTTPServer

from tests.conftest import rss
from tests.test_alerts import DRONES, DRONES_COPY, FIRE, LEASE
from watcher.config import config_from_dict
from watcher.errors import ConfigError
from watcher.metrics import (
    DatabaseCollector,
    metrics_server_for,
    read_snapshot,
    start_metrics_server,
)
from watcher.store import Store


def scalar(db: Path, sql: str) -> object:
    with sqlite3.connect(db) as connection:
        return connection.execute(sql).fetchone()[0]


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, keyed by name and sorted labels."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as answer:
        assert answer.status == 200
        return answer.read().decode("utf-8")


@pytest.fixture
def polled(httpserver: HTTPServer, make_watcher):  # type: ignore[no-untyped-def]
    """A database after two passes over a good feed, a failing one and an HTML page."""
    httpserver.expect_request("/good.xml").respond_with_data(
        rss([DRONES, LEASE, FIRE, DRONES_COPY]), content_type="application/rss+xml"
    )
    httpserver.expect_request("/down.xml").respond_with_data("oops", status=500)
    httpserver.expect_request("/page.html").respond_with_data(
        "<!doctype html><html><body>hello</body></html>", content_type="text/html"
    )
    watcher = make_watcher(
        [httpserver.url_for(path) for path in ("/good.xml", "/down.xml", "/page.html")]
    )
    assert watcher("poll", "--all").exit_code == 0
    assert watcher("poll", "--all").exit_code == 0
    return watcher


def test_scraped_endpoint_reports_polls_entries_latency_and_feeds(polled) -> None:  # type: ignore[no-untyped-def]
    """The families a scrape returns hold the figures of the fetch log and the feeds table."""
    server = start_metrics_server(polled.db, "127.0.0.1", 0)
    try:
        found = samples(scrape(server.url))
    finally:
        server.close()

    assert found[("watcher_database_up", ())] == 1
    assert found[("watcher_polls_total", (("outcome", "ok"),))] == 1
    assert found[("watcher_polls_total", (("outcome", "unchanged"),))] == 1
    assert found[("watcher_polls_total", (("outcome", "not_modified"),))] == 0
    assert found[("watcher_polls_total", (("outcome", "error"),))] == 4
    assert found[("watcher_entries_total", (("fate", "new"),))] == 3
    assert found[("watcher_entries_total", (("fate", "near_duplicate"),))] == 1
    assert found[("watcher_entries_total", (("fate", "duplicate"),))] == 0
    assert found[("watcher_items_stored", ())] == 4
    assert found[("watcher_feeds", (("state", "ok"),))] == 1
    assert found[("watcher_feeds", (("state", "failing"),))] == 2
    assert found[("watcher_feeds", (("state", "disabled"),))] == 0

    assert found[("watcher_fetch_duration_seconds_count", ())] == 6
    assert found[("watcher_fetch_duration_seconds_bucket", (("le", "+Inf"),))] == 6
    total_ms = scalar(polled.db, "SELECT SUM(duration_ms) FROM fetches")
    assert found[("watcher_fetch_duration_seconds_sum", ())] == pytest.approx(total_ms / 1000)
    bounds = sorted(
        (float(labels[0][1]), value)
        for (name, labels), value in found.items()
        if name == "watcher_fetch_duration_seconds_bucket"
    )
    assert [value for _bound, value in bounds] == sorted(value for _bound, value in bounds)

    last = scalar(polled.db, "SELECT last_success_at FROM feeds WHERE url LIKE '%good.xml'")
    expected = datetime.strptime(str(last), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert found[("watcher_last_successful_poll_timestamp_seconds", ())] == expected.timestamp()
    assert found[("watcher_queue_lag_seconds", ())] == 0  # nothing is overdue right after a pass


def test_queue_lag_is_how_overdue_the_most_overdue_feed_is(polled) -> None:  # type: ignore[no-untyped-def]
    """Lag is measured from the earliest due time of an enabled feed; feeds not due count none."""
    earliest = scalar(polled.db, "SELECT MIN(next_due_at) FROM feeds")
    due = datetime.strptime(str(earliest), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    store = Store.open(polled.db)
    try:
        later = read_snapshot(store, now=due + timedelta(minutes=5))
        before = read_snapshot(store, now=due - timedelta(seconds=1))
    finally:
        store.close()
    assert later.queue_lag_seconds == 300
    assert later.feeds_due >= 1
    assert (before.queue_lag_seconds, before.feeds_due) == (0, 0)


def test_status_json_prints_the_same_figures_and_per_feed_health(polled) -> None:  # type: ignore[no-untyped-def]
    """status --json carries the scrape's figures and one health record per feed."""
    result = polled("status", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["polls"] == {"ok": 1, "not_modified": 0, "unchanged": 1, "error": 4}
    assert document["entries"] == {
        "new": 3,
        "near_duplicate": 1,
        "duplicate": 0,
        "off_topic": 0,
        "empty": 0,
    }
    assert document["feeds"] == {"ok": 1, "failing": 2, "disabled": 0, "never_fetched": 0}
    assert document["items_stored"] == 4
    assert document["fetch_duration_seconds"]["count"] == 6
    health = {record["url"].rsplit("/", 1)[1]: record for record in document["feed_health"]}
    assert health["good.xml"]["state"] == "ok"
    assert health["down.xml"]["state"] == "failing"
    assert health["down.xml"]["error_count"] == 2
    assert health["down.xml"]["last_status"] == 500
    assert "HTML" in health["page.html"]["last_error"]


def test_unreadable_database_is_reported_as_down() -> None:
    """A database that cannot be opened yields watcher_database_up 0 instead of an error page."""
    registry = CollectorRegistry()
    registry.register(DatabaseCollector("/proc/no-such-dir/watcher.db"))
    found = samples(generate_latest(registry).decode())
    assert found == {("watcher_database_up", ()): 0}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_metrics_serve_command_serves_until_sigterm(polled) -> None:  # type: ignore[no-untyped-def]
    """`watcher metrics serve` answers scrapes on 127.0.0.1 and stops cleanly on SIGTERM."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "watcher",
            "--config",
            str(polled.config),
            "--db",
            str(polled.db),
            "metrics",
            "serve",
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        text = None
        for _attempt in range(200):  # wait for the server to come up, not a speed check
            try:
                text = scrape(f"http://127.0.0.1:{port}/metrics")
                break
            except OSError:
                time.sleep(0.1)
        assert text is not None, process.stderr.read() if process.poll() is not None else ""
        assert samples(text)[("watcher_polls_total", (("outcome", "ok"),))] == 1
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0


def test_metrics_port_is_checked() -> None:
    """A port outside 1-65535 is a config error naming [metrics].port."""
    with pytest.raises(ConfigError) as error:
        config_from_dict({"metrics": {"port": 70000}}, "watcher.toml")
    assert error.value.key == "metrics.port"


def test_running_totals_follow_new_fetches_and_recount_after_a_removed_feed(polled) -> None:  # type: ignore[no-untyped-def]
    """A long-lived collector adds only new fetch rows, and sums afresh when the newest are gone."""
    registry = CollectorRegistry()
    registry.register(DatabaseCollector(polled.db))

    def polls() -> dict[str, float]:
        found = samples(generate_latest(registry).decode())
        return {
            dict(labels)["outcome"]: value
            for (name, labels), value in found.items()
            if name == "watcher_polls_total"
        }

    assert polls() == {"ok": 1, "not_modified": 0, "unchanged": 1, "error": 4}
    assert polled("poll", "--all").exit_code == 0
    assert polls() == {"ok": 1, "not_modified": 0, "unchanged": 2, "error": 6}
    # remove the feed of the newest fetch row: its fetches go with it
    newest = str(
        scalar(
            polled.db,
            "SELECT url FROM feeds JOIN fetches ON feeds.id = fetches.feed_id "
            "ORDER BY fetches.id DESC LIMIT 1",
        )
    )
    text = polled.config.read_text(encoding="utf-8")
    polled.config.write_text(text.replace(f'[[feeds]]\nurl = "{newest}"\n', ""), encoding="utf-8")
    assert polled("feeds", "remove", newest).exit_code == 0
    with sqlite3.connect(polled.db) as connection:
        left = dict(
            connection.execute("SELECT outcome, COUNT(*) FROM fetches GROUP BY outcome").fetchall()
        )
    assert sum(left.values()) < 9
    assert polls() == {"ok": 0, "not_modified": 0, "unchanged": 0, "error": 0} | left


def test_configured_server_starts_only_when_enabled(polled) -> None:  # type: ignore[no-untyped-def]
    """[metrics] enabled = false starts nothing; enabled serves on the configured port."""
    assert metrics_server_for(config_from_dict({}), polled.db) is None
    port = free_port()
    server = metrics_server_for(
        config_from_dict({"metrics": {"enabled": True, "port": port}}), polled.db
    )
    assert server is not None
    try:
        assert server.url == f"http://127.0.0.1:{port}/metrics"
        assert samples(scrape(server.url))[("watcher_items_stored", ())] == 4
    finally:
        server.close()
