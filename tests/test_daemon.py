"""`watcher run` as a real process against feeds on 127.0.0.1: polling, stops, kills, lock, reload."""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.conftest import kant_story, rss, write_config

WAIT = 30.0
DAEMON_TOML = """
[daemon]
jitter = "0s"
adaptive = false
watch_config = "{watch}"
"""


def daemon_config(
    directory: Path, feeds: Sequence[str], *, watch: str = "off", interval: str = "1s"
) -> Path:
    path = write_config(
        directory,
        feeds,
        poll=f'default_interval = "{interval}"\n',
        extra=DAEMON_TOML.format(watch=watch),
    )
    # a request the test holds open must outlast any delay of a loaded machine
    text = path.read_text(encoding="utf-8")
    text = text.replace('read_timeout = "2s"', 'read_timeout = "60s"')
    path.write_text(text.replace('deadline = "10s"', 'deadline = "90s"'), encoding="utf-8")
    return path


def query(db: Path, sql: str, params: Sequence[object] = ()) -> list[tuple[object, ...]]:
    if not db.exists():
        return []
    try:
        with sqlite3.connect(db, timeout=10) as connection:
            return connection.execute(sql, list(params)).fetchall()
    except sqlite3.OperationalError:  # not created or not migrated yet
        return []


def item_count(db: Path) -> int:
    found = query(db, "SELECT count(*) FROM items")
    return int(found[0][0]) if found else 0  # type: ignore[call-overload]


def wait_for(condition: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


class Daemon:
    """A `python -m watcher ... run` process whose stderr is collected line by line."""

    def __init__(self, config: Path, db: Path, *args: str) -> None:
        command = [sys.executable, "-m", "watcher", "--config", str(config), "--db", str(db)]
        self.process = subprocess.Popen(
            [*command, "run", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    def wait_for_log(self, text: str) -> None:
        wait_for(lambda: text in self.log or self.process.poll() is not None, repr(text))
        assert text in self.log, self.log

    def stop(self, signum: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            code = self.process.wait(timeout=WAIT)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            self._reader.join(timeout=5)
        return code


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    """Every daemon a test starts is killed at its end, whatever happened."""
    started: list[Daemon] = []
    yield started
    for daemon in started:
        if daemon.process.poll() is None:
            daemon.process.kill()
            daemon.process.wait()


def assert_whole_batches(db: Path) -> None:
    """Every stored item belongs to a recorded fetch whose count it is part of."""
    per_fetch = query(
        db,
        "SELECT fetches.id, fetches.new_items, (SELECT count(*) FROM items "
        "WHERE items.feed_id = fetches.feed_id AND items.first_seen_at = fetches.started_at) "
        "FROM fetches WHERE outcome = 'ok'",
    )
    assert all(row[1] == row[2] for row in per_fetch), per_fetch
    orphans = query(
        db,
        "SELECT count(*) FROM items WHERE NOT EXISTS (SELECT 1 FROM fetches WHERE "
        "fetches.feed_id = items.feed_id AND fetches.started_at = items.first_seen_at)",
    )
    assert orphans == [(0,)]


class GrowingFeed:
    """A feed that publishes the stories it is given; `block` holds the next request."""

    def __init__(self, numbers: Sequence[int]) -> None:
        self.numbers = list(numbers)
        self.requests = 0
        self.arrived = threading.Event()
        self.release = threading.Event()
        self.release.set()

    def __call__(self, _request: Request) -> Response:
        self.requests += 1
        self.arrived.set()
        self.release.wait(timeout=WAIT)
        body = rss([kant_story(number) for number in self.numbers])
        return Response(body, content_type="text/xml")

    def block(self) -> None:
        self.arrived.clear()
        self.release.clear()


def test_daemon_stores_new_items_as_feeds_publish_them(
    httpserver: HTTPServer, tmp_path: Path, daemons: list[Daemon]
) -> None:
    """New entries published between polls are stored; each poll logs feed, status, new, time."""
    feed = GrowingFeed([1, 2])
    httpserver.expect_request("/grow.xml").respond_with_handler(feed)
    url = httpserver.url_for("/grow.xml")
    db = tmp_path / "watcher.db"
    daemons.append(daemon := Daemon(daemon_config(tmp_path, [url]), db))
    wait_for(lambda: item_count(db) == 2, "the first two items")
    feed.numbers = [1, 2, 3, 4, 5]
    wait_for(lambda: item_count(db) == 5, "the items published later")
    assert daemon.stop() == 0, daemon.log
    assert f"poll feed={url} status=ok new_items=2" in daemon.log
    assert f"poll feed={url} status=ok new_items=3" in daemon.log
    assert "duration_ms=" in daemon.log
    assert query(db, "SELECT count(DISTINCT guid) FROM items") == [(5,)]
    assert_whole_batches(db)


def test_sigterm_during_a_poll_exits_0_without_a_partial_batch(
    httpserver: HTTPServer, tmp_path: Path, daemons: list[Daemon]
) -> None:
    """SIGTERM while a feed is downloading: exit 0, its batch not begun, other batches whole."""
    feed = GrowingFeed([1, 2, 3])
    other = GrowingFeed([7])
    httpserver.expect_request("/feed.xml").respond_with_handler(feed)
    httpserver.expect_request("/other.xml").respond_with_handler(other)
    urls = [httpserver.url_for("/feed.xml"), httpserver.url_for("/other.xml")]
    db = tmp_path / "watcher.db"
    daemons.append(daemon := Daemon(daemon_config(tmp_path, urls), db))
    wait_for(lambda: item_count(db) == 4, "the first batches")
    feed.numbers = list(range(1, 40))
    feed.block()
    try:
        wait_for(feed.arrived.is_set, "a poll in flight")
        assert daemon.stop(signal.SIGTERM) == 0, daemon.log
    finally:
        feed.release.set()
    assert re.search(r"stopped interrupted=[1-9]", daemon.log), daemon.log
    assert "Traceback" not in daemon.log
    assert item_count(db) == 4, "the batch in flight was not begun"
    assert_whole_batches(db)


def test_kill_9_then_restart_loses_no_committed_item_and_stores_none_twice(
    httpserver: HTTPServer, tmp_path: Path, daemons: list[Daemon]
) -> None:
    """A daemon killed mid-poll keeps what it committed; its successor stores the rest once
    and does not refetch a feed that is not due."""
    feed = GrowingFeed([1, 2, 3])
    hourly = GrowingFeed([50])
    httpserver.expect_request("/news.xml").respond_with_handler(feed)
    httpserver.expect_request("/hourly.xml").respond_with_handler(hourly)
    url = httpserver.url_for("/news.xml")
    config = daemon_config(tmp_path, [url])
    text = config.read_text(encoding="utf-8")
    config.write_text(
        text + f'\n[[feeds]]\nurl = "{httpserver.url_for("/hourly.xml")}"\ninterval = "1h"\n',
        encoding="utf-8",
    )
    db = tmp_path / "watcher.db"
    daemons.append(first := Daemon(config, db))
    wait_for(lambda: item_count(db) == 4, "the first batches")
    feed.numbers = [1, 2, 3, 4, 5, 6]
    feed.block()
    try:
        wait_for(feed.arrived.is_set, "the next poll")
        first.process.kill()
        first.process.wait(timeout=WAIT)
    finally:
        feed.release.set()
    assert item_count(db) == 4
    daemons.append(second := Daemon(config, db))
    wait_for(lambda: item_count(db) == 7, "the rest after the restart")
    assert second.stop() == 0, second.log
    guids = query(db, "SELECT guid, count(*) FROM items GROUP BY guid ORDER BY guid")
    assert sorted(str(row[0]) for row in guids) == sorted(
        [f"kant-{n}" for n in range(1, 7)] + ["kant-50"]
    )
    assert all(row[1] == 1 for row in guids), guids
    assert hourly.requests == 1, "the restart resumed the schedule instead of refetching"
    assert_whole_batches(db)


def test_a_second_daemon_on_the_same_database_refuses(
    httpserver: HTTPServer, tmp_path: Path, daemons: list[Daemon]
) -> None:
    """A second `watcher run` exits 1 with one line naming the running pid and the lock file;
    once the first stops (Ctrl-C), the database can be served again."""
    httpserver.expect_request("/one.xml").respond_with_handler(GrowingFeed([1]))
    config = daemon_config(tmp_path, [httpserver.url_for("/one.xml")])
    db = tmp_path / "watcher.db"
    daemons.append(first := Daemon(config, db))
    first.wait_for_log("started")
    second = subprocess.run(
        [sys.executable, "-m", "watcher", "--config", str(config), "--db", str(db), "run"],
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )
    assert second.returncode == 1
    message = second.stderr.strip()
    assert len(message.splitlines()) == 1, message
    assert f"pid {first.process.pid}" in message
    assert f"{db}.lock" in message
    assert first.process.poll() is None, "the first daemon runs on"
    assert first.stop(signal.SIGINT) == 0, "Ctrl-C stops it like SIGTERM"
    daemons.append(again := Daemon(config, db))
    again.wait_for_log("started")
    assert again.stop() == 0, "the lock went with the daemon that held it"


def test_sighup_picks_up_a_feed_added_to_the_config(
    httpserver: HTTPServer, tmp_path: Path, daemons: list[Daemon]
) -> None:
    """After SIGHUP the daemon polls a feed added to the file, without a restart."""
    httpserver.expect_request("/a.xml").respond_with_handler(GrowingFeed([1]))
    httpserver.expect_request("/b.xml").respond_with_handler(GrowingFeed([2, 3]))
    a, b = httpserver.url_for("/a.xml"), httpserver.url_for("/b.xml")
    config = daemon_config(tmp_path, [a])
    db = tmp_path / "watcher.db"
    daemons.append(daemon := Daemon(config, db))
    wait_for(lambda: item_count(db) == 1, "the first feed")
    daemon_config(tmp_path, [a, b])
    daemon.process.send_signal(signal.SIGHUP)
    wait_for(lambda: item_count(db) == 3, "the added feed")
    assert daemon.stop() == 0
    assert "reload reason=SIGHUP feeds=2" in daemon.log


def test_an_edited_config_file_is_reloaded_without_a_signal(
    httpserver: HTTPServer, tmp_path: Path, daemons: list[Daemon]
) -> None:
    """With watch_config set, saving the file is enough; a broken edit keeps the daemon going."""
    httpserver.expect_request("/a.xml").respond_with_handler(GrowingFeed([1]))
    httpserver.expect_request("/b.xml").respond_with_handler(GrowingFeed([2]))
    a, b = httpserver.url_for("/a.xml"), httpserver.url_for("/b.xml")
    config = daemon_config(tmp_path, [a], watch="1s")
    db = tmp_path / "watcher.db"
    daemons.append(daemon := Daemon(config, db))
    wait_for(lambda: item_count(db) == 1, "the first feed")
    config.write_text(config.read_text(encoding="utf-8") + "\n[poll\n", encoding="utf-8")
    daemon.wait_for_log("reload failed, keeping the running config")
    daemon_config(tmp_path, [a, b], watch="1s")
    wait_for(lambda: item_count(db) == 2, "the added feed")
    assert daemon.stop() == 0
    assert 'reload reason="config file changed" feeds=2' in daemon.log


def test_json_log_lines_carry_the_poll_fields(
    httpserver: HTTPServer, tmp_path: Path, daemons: list[Daemon]
) -> None:
    """--log-format json writes one JSON object per line; a poll has feed, status, new, time."""
    httpserver.expect_request("/j.xml").respond_with_handler(GrowingFeed([1, 2]))
    url = httpserver.url_for("/j.xml")
    db = tmp_path / "watcher.db"
    daemons.append(daemon := Daemon(daemon_config(tmp_path, [url]), db, "--log-format", "json"))
    wait_for(lambda: item_count(db) == 2, "the items")
    daemon.wait_for_log('"event": "poll"')
    assert daemon.stop() == 0
    records = [json.loads(line) for line in daemon.lines]
    poll = next(record for record in records if record["event"] == "poll")
    assert poll["feed"] == url
    assert poll["status"] == "ok"
    assert poll["new_items"] == 2
    assert isinstance(poll["duration_ms"], int)
    assert {"time", "level", "logger"} <= poll.keys()
    assert records[-1]["event"] == "stopped"
