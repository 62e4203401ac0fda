"""Faults from outside: absurd dates and field sizes, hostile text, and a database that is
corrupt, locked, read-only or full. Through the CLI, with feeds on 127.0.0.1, the worker
pool on, several feeds at once and the bad one among them (docs/architecture.md lists
what each test stands for)."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from tests.browse_support import free_port
from tests.conftest import Watcher, kant_story, rss, rss_item, write_config
from tests.test_daemon import Daemon, daemon_config, daemons, query, wait_for
from watcher.store import Store, database

__all__ = ["daemons"]  # a fixture, imported for the daemon test below

FEEDS = 4


def rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as connection:
        return connection.execute(sql).fetchall()


def serve_good_feeds(httpserver: HTTPServer, count: int = FEEDS) -> list[str]:
    urls = []
    for number in range(count):
        host = f"https://site{number}.example"
        httpserver.expect_request(f"/good{number}.xml").respond_with_data(
            rss([kant_story(number * 10 + k, host) for k in range(3)]),
            content_type="application/rss+xml",
        )
        urls.append(httpserver.url_for(f"/good{number}.xml"))
    return urls


def raw_item(title: str, link: str, date: str) -> str:
    return (
        f"<item><title>{title}</title><link>{link}</link>"
        f"<description>Officials in Bishkek said the Kant air base in Kyrgyzstan is busy "
        f"({link}).</description><pubDate>{date}</pubDate></item>"
    )


def dated_feed(dates: list[str]) -> bytes:
    items = [
        raw_item(f"Kant air base note {n}", f"https://dates.example/{n}", date)
        for n, date in enumerate(dates)
    ]
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Dates</title>'
        f"<link>https://dates.example/</link>{''.join(items)}</channel></rss>"
    ).encode()


IMPOSSIBLE_DATES = [
    "Mon, 01 Jan 0001 00:00:00 +0000",
    "Sat, 01 Jan 0999 00:00:00 +0000",
    "Thu, 01 Jan 1970 03:00:00 +0300",  # time 0: a content system's empty date field
    "Fri, 20 Nov 2026 09:00:00 +0000",
]


@pytest.fixture
def watcher_with(tmp_path: Path):  # type: ignore[no-untyped-def]
    def make(feeds: list[str], **kwargs: str) -> Watcher:
        return Watcher(tmp_path, write_config(tmp_path, feeds, **kwargs))

    return make


# dates ---------------------------------------------------------------------------------


def test_a_feed_dated_in_year_1_polls_with_the_others_and_again(
    httpserver: HTTPServer, watcher_with
) -> None:
    """Entries dated in year 1 and 999 and at time 0 of the Unix epoch are kept undated with
    a note on the fetch; the pass stores every feed's items, and the next pass runs as well."""
    urls = serve_good_feeds(httpserver)
    httpserver.expect_request("/dates.xml").respond_with_data(
        dated_feed(IMPOSSIBLE_DATES), content_type="application/rss+xml"
    )
    watcher = watcher_with([*urls[:2], httpserver.url_for("/dates.xml"), *urls[2:]])
    result = watcher("poll", "--all")
    assert result.exit_code == 0, result.output
    assert "0 failed" in result.output
    assert rows(watcher.db, "SELECT count(*) FROM items") == [(3 * FEEDS + 4,)]
    assert rows(
        watcher.db,
        "SELECT published_at FROM items WHERE url LIKE 'https://dates.example/%' ORDER BY url",
    ) == [(None,), (None,), (None,), ("2026-11-20T09:00:00Z",)]
    [(note,)] = rows(watcher.db, "SELECT error FROM fetches WHERE error IS NOT NULL")
    assert "3 entries dated before 1900 or at the Unix epoch kept undated" in str(note)
    result = watcher("poll", "--all")
    assert result.exit_code == 0, result.output
    assert "0 failed" in result.output


def test_every_stored_time_has_a_four_digit_year(tmp_path: Path) -> None:
    """A JSONL import dated in year 5 is stored undated; the time strings the store
    compares stay in one shape."""
    source = tmp_path / "old.jsonl"
    source.write_text(
        '{"title": "Kant air base record", "text": "Kyrgyzstan Kant air base.", '
        '"published": "0005-03-01T00:00:00Z"}\n',
        encoding="utf-8",
    )
    watcher = Watcher(tmp_path, write_config(tmp_path))
    result = watcher("corpus", "import", str(source))
    assert result.exit_code == 0, result.output
    assert rows(watcher.db, "SELECT published_at FROM items") == [(None,)]


def test_the_daemon_does_not_refetch_a_feed_with_impossible_dates(
    httpserver: HTTPServer, tmp_path: Path, daemons: list[Daemon]
) -> None:
    """The daemon stores the feed once and waits for its interval (the bug refetched it
    thousands of times a minute)."""
    httpserver.expect_request("/dates.xml").respond_with_data(
        dated_feed(IMPOSSIBLE_DATES), content_type="application/rss+xml"
    )
    urls = serve_good_feeds(httpserver, 2)
    config = daemon_config(tmp_path, [httpserver.url_for("/dates.xml"), *urls], interval="1h")
    db = tmp_path / "watcher.db"
    daemon = Daemon(config, db)
    daemons.append(daemon)
    wait_for(lambda: query(db, "SELECT count(*) FROM fetches") == [(3,)], "three fetches")
    time.sleep(3)
    assert query(db, "SELECT count(*) FROM fetches") == [(3,)]
    assert query(db, "SELECT count(*) FROM items") == [(10,)]
    assert daemon.stop() == 0


# field sizes -----------------------------------------------------------------------------


def test_megabyte_titles_are_cut_and_noted(httpserver: HTTPServer, watcher_with) -> None:
    """Three entries with 1 MB titles, beside good feeds: titles stored cut to a headline's
    length, the fetch says so, every item stored."""
    huge = [
        rss_item(
            "Kant air base " + " ".join(f"word{n}x{k}" for k in range(110_000)),
            f"https://huge.example/{n}",
            "Officials in Bishkek said the Kant air base in Kyrgyzstan is busy.",
        )
        for n in range(3)
    ]
    httpserver.expect_request("/huge.xml").respond_with_data(
        rss(huge), content_type="application/rss+xml"
    )
    urls = serve_good_feeds(httpserver, 2)
    watcher = watcher_with([httpserver.url_for("/huge.xml"), *urls])
    result = watcher("poll", "--all")
    assert result.exit_code == 0, result.output
    lengths = rows(watcher.db, "SELECT length(title) FROM items WHERE url LIKE '%huge%'")
    assert len(lengths) == 3
    assert all(int(str(length)) <= 500 for (length,) in lengths)
    [(note,)] = rows(watcher.db, "SELECT error FROM fetches WHERE error IS NOT NULL")
    assert "oversized fields cut to size (3 title)" in str(note)
    assert rows(watcher.db, "SELECT count(*) FROM items") == [(9,)]


# a storing error -----------------------------------------------------------------------


def test_a_storing_error_fails_its_feed_alone_and_backs_it_off(
    httpserver: HTTPServer, watcher_with, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any error while storing one feed (here a value the store rejects) fails that feed,
    records why and backs it off; the other feeds are stored and the pass exits 0."""
    urls = serve_good_feeds(httpserver)
    original = Store.insert_item

    def reject_site_1(self: Store, item: object, **kwargs: object) -> int:
        if "site1.example" in str(getattr(item, "url", "")):
            raise ValueError("time data '1-01-01T00:00:00Z' does not match (simulated)")
        return original(self, item, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Store, "insert_item", reject_site_1)
    watcher = watcher_with(urls)
    result = watcher("poll", "--all")
    assert result.exit_code == 0, result.output
    assert "1 failed" in result.output
    assert rows(watcher.db, "SELECT count(*) FROM items") == [(3 * (FEEDS - 1),)]
    [(kind, error)] = rows(
        watcher.db, "SELECT error_kind, error FROM fetches WHERE error_kind IS NOT NULL"
    )
    assert kind == "store"
    assert "does not match" in str(error)
    [(count, due)] = rows(
        watcher.db, f"SELECT error_count, next_due_at FROM feeds WHERE url = '{urls[1]}'"
    )
    assert count == 1
    assert str(due) > datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    result = watcher("poll")  # only due feeds: the failed one waits for its backoff
    assert urls[1] not in result.output


def test_poll_exits_non_zero_when_nothing_could_be_stored(
    httpserver: HTTPServer, watcher_with, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every feed with new entries failed to write: cron must not see success."""
    urls = serve_good_feeds(httpserver, 2)

    def reject(self: Store, item: object, **kwargs: object) -> int:
        raise ValueError("rejected (simulated)")

    monkeypatch.setattr(Store, "insert_item", reject)
    result = watcher_with(urls)("poll", "--all")
    assert result.exit_code == 1
    assert "nothing could be stored" in result.output


# hostile text ----------------------------------------------------------------------------

HOSTILE = "Kant [/] base [bold red]RED[/bold red] \x1b]0;owned\x07\x1b[2J\u202eevil"


def test_hostile_text_reaches_the_terminal_as_plain_text(
    httpserver: HTTPServer, watcher_with
) -> None:
    """Rich markup in a feed's title and headlines and in an HTTP reason phrase is shown as
    written; escape sequences and direction overrides never reach the terminal."""
    item = rss_item(
        f"{HOSTILE} Kant air base in Kyrgyzstan",
        "https://hostile.example/1",
        f"Officials in Bishkek said the Kant air base is busy. {HOSTILE}",
    )
    httpserver.expect_request("/hostile.xml").respond_with_data(
        rss([item], title=HOSTILE), content_type="application/rss+xml"
    )
    httpserver.expect_request("/reason.xml").respond_with_response(
        Response("no", status="503 Busy [/] \x1b[31mred")
    )
    urls = serve_good_feeds(httpserver, 2)
    watcher = watcher_with(
        [httpserver.url_for("/hostile.xml"), httpserver.url_for("/reason.xml"), *urls]
    )
    assert watcher("poll", "--all").exit_code == 0
    for command in (["status"], ["stories"], ["search", "Kant"], ["feeds", "list"]):
        result = watcher(*command)
        assert result.exit_code == 0, (command, result.output)
        assert "\x1b" not in result.output, command
        assert "\u202e" not in result.output, command
    status = watcher("status").output
    assert "[/]" in status
    assert "[bold red]RED[/bold red]" in status
    assert "Busy [/]" in status
    assert "[/]" in watcher("stories").output
    assert "[bold red]" in watcher("search", "Kant").output


# a damaged database --------------------------------------------------------------------


def damage(db: Path) -> None:
    """Overwrite pages in the middle of the file (its header stays sound)."""
    with sqlite3.connect(db) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = connection.execute("PRAGMA page_size").fetchone()[0]
    pages = db.stat().st_size // page_size
    with db.open("r+b") as handle:
        for page in range(pages // 3, pages // 3 + max(4, pages // 4)):
            handle.seek(page * page_size)
            handle.write(os.urandom(page_size))


def digest_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_damaged_database_stops_poll_and_status_without_writing(
    httpserver: HTTPServer, watcher_with
) -> None:
    urls = serve_good_feeds(httpserver)
    watcher = watcher_with(urls)
    assert watcher("poll", "--all").exit_code == 0
    damage(watcher.db)
    before = digest_of(watcher.db)
    for command in (["poll", "--all"], ["status"], ["corpus", "import", str(watcher.config)]):
        result = watcher(*command)
        assert result.exit_code == 1, (command, result.output)
        assert "damaged" in result.output, command
        assert "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1, result.output
    assert digest_of(watcher.db) == before
    wal = watcher.db.with_name(watcher.db.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0


def test_a_file_that_is_not_a_database_gets_one_line(tmp_path: Path) -> None:
    db = tmp_path / "watcher.db"
    db.write_bytes(b"this is not SQLite " * 500)
    watcher = Watcher(tmp_path, write_config(tmp_path))
    watcher.db = db
    for command in (["status"], ["search", "Kant"], ["poll"]):
        result = watcher(*command)
        assert result.exit_code == 1, (command, result.output)
        assert "damaged" in result.output
        assert len(result.output.strip().splitlines()) == 1


def test_the_writer_writes_nothing_after_finding_damage(
    httpserver: HTTPServer, watcher_with, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Damage met in the middle of a pass (past the opening check) ends it: exit 1, and
    the feeds after it are not written."""
    urls = serve_good_feeds(httpserver)
    original = Store.insert_item

    def corrupt_at_site_2(self: Store, item: object, **kwargs: object) -> int:
        if "site2.example" in str(getattr(item, "url", "")):
            error = sqlite3.DatabaseError("database disk image is malformed")
            error.sqlite_errorcode = 11  # type: ignore[attr-defined]
            raise error
        return original(self, item, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Store, "insert_item", corrupt_at_site_2)
    watcher = watcher_with(urls)
    result = watcher("poll", "--all")
    assert result.exit_code == 1
    assert "damaged" in result.output
    assert rows(watcher.db, "SELECT count(*) FROM items WHERE url LIKE '%site2%'") == [(0,)]


# locked ------------------------------------------------------------------------------------


@pytest.fixture
def short_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(database, "BUSY_TIMEOUT_MS", 300)


@pytest.fixture
def locked(tmp_path: Path) -> Iterator[Watcher]:
    """A migrated database holding items, write-locked by another connection."""
    watcher = Watcher(tmp_path, write_config(tmp_path))
    articles = tmp_path / "articles"
    articles.mkdir()
    (articles / "a.txt").write_text(
        "Kant air base gets new radar\n\nOfficials in Bishkek said the Kant air base in "
        "Kyrgyzstan gets a new radar.\n",
        encoding="utf-8",
    )
    assert watcher("corpus", "import", str(articles)).exit_code == 0
    holder = sqlite3.connect(watcher.db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    yield watcher
    holder.execute("ROLLBACK")
    holder.close()


@pytest.mark.usefixtures("short_wait")
def test_a_locked_database_gets_one_line_and_readers_still_read(locked: Watcher) -> None:
    for command in (["poll", "--all"], ["init"], ["run"]):
        result = locked(*command)
        assert result.exit_code == 1, (command, result.output)
        errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1, result.output
        assert "locked by another process" in errors[0]
        assert "waited 0.3 s" in errors[0]
        assert "Traceback" not in result.output
    for command in (["status"], ["stories"], ["search", "radar"], ["feeds", "list"]):
        result = locked(*command)
        assert result.exit_code == 0, (command, result.output)
    assert "radar" in locked("search", "radar").output


# read-only ---------------------------------------------------------------------------------


def without_write_permission() -> list[str]:
    """The prefix that runs a command unable to write a read-only file: root writes any
    file unless it drops CAP_DAC_OVERRIDE."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv (util-linux) to drop CAP_DAC_OVERRIDE")
    return [setpriv, "--bounding-set", "-dac_override,-dac_read_search"]


def watcher_command(config: Path, db: Path) -> list[str]:
    return [sys.executable, "-m", "watcher", "--config", str(config), "--db", str(db)]


def run_cli(config: Path, db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*without_write_permission(), *watcher_command(config, db), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("folder_read_only", [False, True], ids=["file", "folder"])
def test_reading_commands_work_on_a_read_only_database(
    httpserver: HTTPServer, tmp_path: Path, folder_read_only: bool
) -> None:
    urls = serve_good_feeds(httpserver, 2)
    home = tmp_path / "data"
    home.mkdir()
    watcher = Watcher(home, write_config(tmp_path, urls))
    assert watcher("poll", "--all").exit_code == 0
    with sqlite3.connect(watcher.db) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for extra in ("-wal", "-shm"):
        watcher.db.with_name(watcher.db.name + extra).unlink(missing_ok=True)
    watcher.db.chmod(0o444)
    if folder_read_only:
        home.chmod(0o555)
    try:
        before = digest_of(watcher.db)
        for command in (
            ["status"],
            ["stories"],
            ["search", "Kant"],
            ["feeds", "list"],
            ["digest", "--dry-run"],
        ):
            result = run_cli(watcher.config, watcher.db, *command)
            assert result.returncode == 0, (command, result.stderr)
            assert "Traceback" not in result.stderr
        assert (
            "Kant air base report" in run_cli(watcher.config, watcher.db, "search", "Kant").stdout
        )
        result = run_cli(watcher.config, watcher.db, "poll", "--all")
        assert result.returncode == 1
        assert "cannot be written" in result.stderr
        assert "Traceback" not in result.stderr
        assert digest_of(watcher.db) == before
    finally:
        home.chmod(0o755)


def test_serve_browses_a_read_only_database(httpserver: HTTPServer, tmp_path: Path) -> None:
    urls = serve_good_feeds(httpserver, 1)
    watcher = Watcher(tmp_path, write_config(tmp_path, urls))
    assert watcher("poll", "--all").exit_code == 0
    watcher.db.chmod(0o444)
    port = free_port()
    process = subprocess.Popen(
        [
            *without_write_permission(),
            *watcher_command(watcher.config, watcher.db),
            *("serve", "--port", str(port)),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        body = ""

        def answers() -> bool:
            nonlocal body
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/watcher/items.json") as r:
                    body = r.read().decode()
                return True
            except OSError:
                return process.poll() is not None

        wait_for(answers, "watcher serve")
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        assert "Kant air base report" in body
    finally:
        process.terminate()
        process.wait(timeout=30)


# a full disk -------------------------------------------------------------------------------


def test_a_full_disk_ends_the_pass_with_one_line(
    httpserver: HTTPServer, watcher_with, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite's own SQLITE_FULL, made by capping the file's size on the writer's connection
    (a real full disk cannot be had here): exit 1, one line, nothing half-written."""
    urls = serve_good_feeds(httpserver)
    watcher = watcher_with(urls)
    assert watcher("init").exit_code == 0
    pages = rows(watcher.db, "PRAGMA page_count")[0][0]
    original = Store.open.__func__  # type: ignore[attr-defined]

    def capped(cls: type[Store], path: Path | str, **kwargs: object) -> Store:
        store: Store = original(cls, path, **kwargs)
        store.db.execute(f"PRAGMA max_page_count = {int(str(pages)) + 2}")
        return store

    monkeypatch.setattr(Store, "open", classmethod(capped))
    result = watcher("poll", "--all")
    assert result.exit_code == 1, result.output
    assert "disk is full" in result.output
    assert "Traceback" not in result.output
    monkeypatch.undo()
    stored = rows(watcher.db, "SELECT count(*) FROM items")[0][0]
    assert int(str(stored)) % 3 == 0  # whole feeds only


# a permanent redirect --------------------------------------------------------------------


def test_a_config_feed_moved_by_a_301_stays_one_feed(httpserver: HTTPServer, watcher_with) -> None:
    httpserver.expect_request("/old.xml").respond_with_response(
        Response(status=301, headers={"Location": httpserver.url_for("/new.xml")})
    )
    httpserver.expect_request("/new.xml").respond_with_data(
        rss([kant_story(1)]), content_type="application/rss+xml"
    )
    old, new = httpserver.url_for("/old.xml"), httpserver.url_for("/new.xml")
    watcher = watcher_with([old])
    assert watcher("poll", "--all").exit_code == 0
    assert rows(watcher.db, "SELECT url, config_url FROM feeds") == [(new, old)]
    for command in (["poll", "--all"], ["status"], ["feeds", "list"]):
        assert watcher(*command).exit_code == 0
    assert rows(watcher.db, "SELECT url, config_url FROM feeds") == [(new, old)]
    assert rows(watcher.db, "SELECT count(*) FROM items") == [(1,)]


def test_daemon_log_lines_escape_what_a_feed_sent() -> None:
    """A feed's error text in a `key=value` log line is visible but inert."""
    import logging

    from watcher.daemon.logs import KeyValueFormatter

    record = logging.LogRecord("watcher.daemon", logging.INFO, "", 0, "poll", None, None)
    record.error = "\x1b]0;owned\x07"
    record.title = "plain\u202eevil"
    record.note = "\x9bcsi"
    line = KeyValueFormatter().format(record)
    assert "\x1b" not in line
    assert "\u202e" not in line
    assert "\x9b" not in line
    assert r"\u001b]0;owned\u0007" in line
    assert r"plain\u202eevil" in line
