"""The daemon in-process: cron jobs in worker threads, re-probes of disabled feeds, reloads."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.conftest import kant_story, rss, write_config
from watcher.config import load_config
from watcher.daemon import CronJob, Daemon
from watcher.store import Store

WAIT = 30.0
DAEMON_TOML = """
[daemon]
jitter = "0s"
adaptive = false
watch_config = "off"
reprobe_interval = "1s"
"""


async def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def serve(daemon: Daemon, body: Callable[[Daemon], Awaitable[None]]) -> None:
    """Run ``daemon`` on a fresh loop while ``body`` drives it, then stop it."""

    async def main() -> None:
        stop = asyncio.Event()
        running = asyncio.create_task(daemon.run(stop))
        try:
            await until(lambda: daemon.scheduler.running or running.done(), "the daemon")
            await body(daemon)
        finally:
            stop.set()
            await asyncio.wait_for(running, WAIT)

    asyncio.run(main())


def count(db: Path, table: str) -> int:
    store = Store.open(db)
    try:
        return store.count(table)
    finally:
        store.close()


def test_cron_job_runs_in_a_thread_with_its_own_store_while_polling_goes_on(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    """A cron job that blocks does not hold up polls, and writes through its own Store."""
    httpserver.expect_request("/c.xml").respond_with_data(
        rss([kant_story(1), kant_story(2)]), content_type="text/xml"
    )
    config_path = write_config(
        tmp_path,
        [httpserver.url_for("/c.xml")],
        poll='default_interval = "1h"\n',
        extra=DAEMON_TOML,
    )
    db = tmp_path / "watcher.db"
    seen: dict[str, object] = {}
    release = threading.Event()

    def digest(now: datetime) -> None:
        seen["thread"] = threading.current_thread().name
        seen["now"] = now
        store = Store.open(db)
        try:
            release.wait(WAIT)  # the daemon must poll meanwhile
            seen["items_while_running"] = store.count("items")
            with store.transaction():
                store.db.execute(
                    "INSERT INTO digests(topic, created_at, status) VALUES (?, ?, 'sent')",
                    ["kant-air-base", now.isoformat()],
                )
        finally:
            store.close()

    def jobs(config: object, db_path: Path) -> list[CronJob]:
        assert db_path == db
        return [CronJob("digest", "0 8 * * *", digest, timezone=UTC)]

    daemon = Daemon(load_config(config_path), config_path=config_path, db_path=db, cron_jobs=jobs)

    async def body(daemon: Daemon) -> None:
        job = daemon.scheduler.get_job("cron:digest")
        assert job is not None
        upcoming = job.next_run_time.astimezone(UTC)
        assert (upcoming.hour, upcoming.minute) == (8, 0)
        # feed job and cron job are due now; the feed still waits on its first refresh
        daemon.scheduler.modify_job("cron:digest", next_run_time=datetime.now(UTC))
        await until(lambda: "thread" in seen, "the cron job to start")
        await until(lambda: count(db, "items") == 2, "the poll, while the cron job runs")
        release.set()
        await until(lambda: count(db, "digests") == 1, "the cron job's row")

    serve(daemon, body)
    assert str(seen["thread"]).startswith("watcher-cron")
    assert seen["items_while_running"] == 2
    assert isinstance(seen["now"], datetime)
    assert seen["now"].tzinfo is not None


def test_a_feed_gone_410_is_disabled_then_reenabled_when_it_answers_a_reprobe(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    """410 disables a feed; the re-probe finds it answering, enables it and stores its items;
    a feed disabled in the config is never probed."""
    answers = [410]

    def comeback(_request: Request) -> Response:
        if answers and answers.pop(0) == 410:
            return Response("gone", status=410)
        return Response(rss([kant_story(4)]), content_type="text/xml")

    off_requests: list[str] = []

    def switched_off(request: Request) -> Response:
        off_requests.append(request.path)
        return Response(rss([kant_story(9)]), content_type="text/xml")

    httpserver.expect_request("/back.xml").respond_with_handler(comeback)
    httpserver.expect_request("/off.xml").respond_with_handler(switched_off)
    back = httpserver.url_for("/back.xml")
    off = httpserver.url_for("/off.xml")
    config_path = write_config(
        tmp_path,
        [back],
        poll='default_interval = "1h"\n',
        extra=f'\n[[feeds]]\nurl = "{off}"\nenabled = false\n' + DAEMON_TOML,
    )
    db = tmp_path / "watcher.db"
    daemon = Daemon(load_config(config_path), config_path=config_path, db_path=db)
    states: list[tuple[bool, str | None]] = []

    def feed_row() -> tuple[bool, str | None]:
        row = next(row for row in daemon.store.feeds() if row.url == back)
        if not states or states[-1] != (row.enabled, row.disabled_reason):
            states.append((row.enabled, row.disabled_reason))
        return row.enabled, row.disabled_reason

    async def body(daemon: Daemon) -> None:
        await until(lambda: not feed_row()[0], "the 410 to disable the feed")
        await until(lambda: feed_row()[0] and daemon.store.count("items") == 1, "the re-probe")

    serve(daemon, body)
    disabled = [reason for enabled, reason in states if not enabled]
    assert disabled
    assert "410" in str(disabled[0])
    assert states[-1] == (True, None)
    assert off_requests == []


def test_status_shows_why_a_feed_was_disabled(httpserver: HTTPServer, make_watcher) -> None:
    """`watcher status` says a 410 feed is disabled, with the server's reason and date."""
    httpserver.expect_request("/gone.xml").respond_with_data("gone", status=410)
    watcher = make_watcher([httpserver.url_for("/gone.xml")])
    watcher("poll", "--all")
    result = watcher("status")
    assert result.exit_code == 0, result.output
    assert "disabled" in result.output
    assert "HTTP 410 Gone at" in result.output
    assert "1 disabled" in result.output


def test_reload_applies_a_new_config_and_keeps_the_old_one_when_broken(
    httpserver: HTTPServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A broken edit is logged and ignored; a good one adds feeds and a new [poll] Poller."""
    httpserver.expect_request("/r1.xml").respond_with_data(
        rss([kant_story(1)]), content_type="text/xml"
    )
    httpserver.expect_request("/r2.xml").respond_with_data(
        rss([kant_story(2)]), content_type="text/xml"
    )
    first = httpserver.url_for("/r1.xml")
    second = httpserver.url_for("/r2.xml")
    config_path = write_config(
        tmp_path, [first], poll='default_interval = "1h"\n', extra=DAEMON_TOML
    )
    db = tmp_path / "watcher.db"
    daemon = Daemon(load_config(config_path), config_path=config_path, db_path=db)

    async def body(daemon: Daemon) -> None:
        await until(lambda: daemon.store.count("items") == 1, "the first feed")
        running = daemon.config
        config_path.write_text("[poll\n", encoding="utf-8")
        with caplog.at_level(logging.ERROR, logger="watcher.daemon"):
            await daemon.reload("test")
        assert daemon.config is running
        assert "reload failed, keeping the running config" in caplog.text
        write_config(
            tmp_path,
            [first, second],
            poll='default_interval = "1h"\nmax_bytes = 2000000\n',
            extra=DAEMON_TOML,
        )
        poller = daemon._poller
        await daemon.reload("test")
        assert daemon.config.poll.max_bytes == 2_000_000
        assert daemon._poller is not poller, "a [poll] change gets a new Poller"
        await until(lambda: daemon.store.count("items") == 2, "the added feed")

    serve(daemon, body)
