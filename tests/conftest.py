"""Shared fixtures: a real HTTP server on 127.0.0.1, feed documents, configs and databases."""

from __future__ import annotations

import asyncio
import textwrap
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from click.testing import CliRunner, Result
from pytest_httpserver import HTTPServer

from watcher.cli import main
from watcher.daemon.service import Daemon

SEEDS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "seeds"

TOPIC_TOML = """
[[topics]]
name = "kant-air-base"
title = "Russia's Kant air base in Kyrgyzstan"
query = '(Kant OR Кант*) AND (Kyrgyz* OR Bishkek OR "air base" OR airbase OR Киргиз*)'
keywords = ["Kant", "Kyrgyzstan", "CSTO", "air defence", "air base"]
[topics.aliases]
"CSTO" = ["Collective Security Treaty Organization", "ОДКБ"]
"""


@pytest.fixture(scope="session")
def feed_server() -> Iterator[HTTPServer]:
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield server
    server.clear()
    if server.is_running():
        server.stop()


@pytest.fixture
def httpserver(feed_server: HTTPServer) -> Iterator[HTTPServer]:
    """A clean 127.0.0.1 server per test (handlers from other tests removed)."""
    feed_server.clear()
    yield feed_server
    feed_server.clear()


def rss_item(
    title: str,
    link: str,
    description: str,
    *,
    guid: str | None = None,
    published: datetime | None = None,
) -> str:
    moment = published or datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    guid_xml = f"<guid isPermaLink='false'>{escape(guid)}</guid>" if guid else ""
    return (
        f"<item><title>{escape(title)}</title><link>{escape(link)}</link>{guid_xml}"
        f"<description>{escape(description)}</description>"
        f"<pubDate>{format_datetime(moment)}</pubDate></item>"
    )


def rss(items: Sequence[str], title: str = "Test feed", language: str = "en") -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>{escape(title)}</title><link>https://news.example/</link>"
        f"<language>{language}</language>{''.join(items)}</channel></rss>"
    ).encode()


def kant_story(number: int, host: str = "https://news.example") -> str:
    """An RSS item about the Kant base whose text differs with ``number``."""
    words = " ".join(f"detail{number}x{k}" for k in range(12))
    return rss_item(
        f"Kant air base report number {number}",
        f"{host}/kant/{number}",
        f"<p>Officials in Bishkek said the Kant air base in Kyrgyzstan will get new equipment "
        f"under plan {number}. {words}.</p>",
        guid=f"kant-{number}",
        published=datetime(2026, 11, 20, 9, 0, tzinfo=UTC) - timedelta(hours=number),
    )


def write_config(
    directory: Path, feeds: Sequence[str] = (), *, extra: str = "", poll: str = ""
) -> Path:
    feed_toml = "".join(f'\n[[feeds]]\nurl = "{url}"\n' for url in feeds)
    text = (
        textwrap.dedent(
            """
            [poll]
            connect_timeout = "5s"
            read_timeout = "2s"
            deadline = "10s"
            """
        )
        + poll
        + TOPIC_TOML
        + feed_toml
        + extra
    )
    path = directory / "watcher.toml"
    path.write_text(text, encoding="utf-8")
    return path


class Watcher:
    """Runs the real CLI against a config and database in a temporary folder."""

    def __init__(self, directory: Path, config: Path) -> None:
        self.directory = directory
        self.config = config
        self.db = directory / "watcher.db"

    def __call__(self, *args: str) -> Result:
        runner = CliRunner()
        return runner.invoke(
            main,
            ["--config", str(self.config), "--db", str(self.db), *args],
            catch_exceptions=False,
        )


@pytest.fixture
def make_watcher(tmp_path: Path):  # type: ignore[no-untyped-def]
    def factory(feeds: Sequence[str] = (), **kwargs: str) -> Watcher:
        return Watcher(tmp_path, write_config(tmp_path, feeds, **kwargs))

    return factory


def drive_daemon(
    daemon: Daemon,
    *,
    until: Callable[[], bool],
    then: Callable[[], Coroutine[object, object, object]],
    waiting_for: str,
    timeout: float = 30,
) -> None:
    """Run ``daemon`` until its scheduler runs and ``until()`` holds (checked every 50 ms,
    at most ``timeout`` s: else it fails saying it was ``waiting_for`` that), await
    ``then()`` inside it (a job run by hand), and stop it."""

    async def main() -> None:
        stop = asyncio.Event()
        running = asyncio.create_task(daemon.run(stop))
        deadline = time.monotonic() + timeout
        while not (daemon.scheduler.running and until()):
            assert not running.done(), "the daemon stopped"
            assert time.monotonic() < deadline, f"the daemon never got to {waiting_for}"
            await asyncio.sleep(0.05)
        await asyncio.create_task(then())  # a task of its own, as the scheduler runs a job
        stop.set()
        await asyncio.wait_for(running, timeout)

    asyncio.run(main())
