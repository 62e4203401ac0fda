"""The command line: init, feeds, OPML, search, status, environment variables and errors."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest
from click.testing import CliRunner

from tests.conftest import write_config
from watcher.cli import main

CONTRACT_TABLES = {
    "feeds",
    "topics",
    "items",
    "item_topics",
    "tags",
    "item_tags",
    "sightings",
    "fetches",
    "digests",
    "digest_items",
    "items_fts",
}
ITEM_COLUMNS = {
    "url",
    "canonical_url",
    "guid",
    "external_id",
    "title",
    "summary",
    "content",
    "published_at",
    "first_seen_at",
    "feed_id",
    "source",
    "lang",
    "content_hash",
    "duplicate_of",
    "story_id",
}
CONFIG_FEED = "https://config.example/rss.xml"

OPML = """<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0">
  <head><title>My subscriptions</title></head>
  <body>
    <outline text="Central Asia">
      <outline type="rss" text="Valley Times" title="Valley Times"
               xmlUrl="https://valley.example/feed.xml" htmlUrl="https://valley.example/"/>
      <outline type="rss" text="Steppe &amp; Sky" xmlUrl="http://steppe.example/rss"/>
    </outline>
    <outline type="rss" text="Shouty exporter" xmlURL=" https://shout.example/rss "/>
    <outline type="rss" text="Podcast" xmlUrl="feed://pod.example/rss"/>
    <outline type="rss" text="Local file" xmlUrl="file:///home/me/feed.xml"/>
    <outline text="A folder with no feed"/>
    <outline type="rss" text="Config feed again" xmlUrl="https://config.example/rss.xml"/>
  </body>
</opml>
"""


def rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as connection:
        return connection.execute(sql).fetchall()


def test_python_m_watcher_help_lists_the_commands() -> None:
    """`python -m watcher --help` runs as a real process and names every contract command."""
    result = subprocess.run(
        [sys.executable, "-m", "watcher", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for command in ("init", "corpus", "poll", "run", "feeds", "search", "status"):
        assert f"  {command}" in result.stdout, command
    assert "--config" in result.stdout
    assert "--db" in result.stdout


def test_init_creates_every_contract_table_in_wal_mode(make_watcher) -> None:
    """init creates the DESIGN.md tables and columns, WAL journaling, and loads the config."""
    watcher = make_watcher([CONFIG_FEED])
    result = watcher("init")
    assert result.exit_code == 0, result.output
    assert "1 feeds, 0 items" in result.output
    names = {
        str(name)
        for (name,) in rows(watcher.db, "SELECT name FROM sqlite_master WHERE type = 'table'")
    }
    assert names >= CONTRACT_TABLES
    columns = {str(row[1]) for row in rows(watcher.db, "PRAGMA table_info(items)")}
    assert columns >= ITEM_COLUMNS
    assert rows(watcher.db, "PRAGMA journal_mode") == [("wal",)]
    assert rows(watcher.db, "SELECT url, origin FROM feeds") == [(CONFIG_FEED, "config")]
    assert rows(watcher.db, "SELECT name FROM topics") == [("kant-air-base",)]


def test_init_twice_is_harmless(make_watcher) -> None:
    """Running init on an existing database migrates nothing twice and keeps the data."""
    watcher = make_watcher([CONFIG_FEED])
    watcher("init")
    watcher("feeds", "add", "https://extra.example/rss")
    result = watcher("init")
    assert result.exit_code == 0, result.output
    assert "2 feeds" in result.output


def test_init_creates_the_database_folder(tmp_path: Path) -> None:
    """--db in a folder that does not exist yet creates the folder."""
    config = write_config(tmp_path)
    db = tmp_path / "nested" / "deeper" / "w.db"
    result = CliRunner().invoke(main, ["--config", str(config), "--db", str(db), "init"])
    assert result.exit_code == 0, result.output
    assert db.is_file()


def test_a_file_that_is_not_a_database_is_a_clear_error(make_watcher) -> None:
    """A --db pointing at some other file fails with a message, not a traceback."""
    watcher = make_watcher()
    watcher.db.write_bytes(b"this is a text file, not SQLite " * 100)
    result = watcher("init")
    assert result.exit_code == 1
    assert str(watcher.db) in result.output
    assert "Traceback" not in result.output


def test_feeds_add_list_remove(make_watcher) -> None:
    """A feed added from the command line is listed with its settings and can be removed."""
    watcher = make_watcher([CONFIG_FEED])
    url = "https://added.example/rss.xml"
    added = watcher(
        "feeds", "add", url, "--title", "Added", "--topic", "kant-air-base", "--interval", "2h"
    )
    assert added.exit_code == 0, added.output
    assert f"added {url}" in added.output
    assert rows(
        watcher.db, f"SELECT title, topics, interval_seconds, origin FROM feeds WHERE url = '{url}'"
    ) == [("Added", '["kant-air-base"]', 7200.0, "cli")]
    assert "already there" in watcher("feeds", "add", url).output

    listing = watcher("feeds", "list")
    assert listing.exit_code == 0, listing.output
    assert url in listing.output
    assert CONFIG_FEED in listing.output

    removed = watcher("feeds", "remove", url)
    assert removed.exit_code == 0, removed.output
    assert rows(watcher.db, "SELECT url FROM feeds") == [(CONFIG_FEED,)]
    again = watcher("feeds", "remove", url)
    assert again.exit_code == 1
    assert f"no such feed: {url}" in again.output


def test_removing_a_config_feed_is_refused_with_advice(make_watcher) -> None:
    """A feed listed in the config cannot be removed from the command line; the message says where."""
    watcher = make_watcher([CONFIG_FEED])
    watcher("init")
    result = watcher("feeds", "remove", CONFIG_FEED)
    assert result.exit_code == 1
    assert f"{CONFIG_FEED} is listed in {watcher.config}" in result.output
    assert "enabled = false" in result.output
    assert rows(watcher.db, "SELECT url FROM feeds") == [(CONFIG_FEED,)]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["ftp://files.example/rss"], "expected an absolute http(s) URL"),
        (["https://a.example/rss", "--topic", "nope"], "unknown topic 'nope'"),
        (["https://a.example/rss", "--interval", "often"], "--interval"),
    ],
)
def test_feeds_add_refuses_bad_input(make_watcher, arguments: list[str], message: str) -> None:
    """Non-http URLs, unknown topics and bad intervals are usage errors; nothing is added."""
    watcher = make_watcher()
    watcher("init")
    result = watcher("feeds", "add", *arguments)
    assert result.exit_code == 2
    assert message in result.output
    assert rows(watcher.db, "SELECT count(*) FROM feeds") == [(0,)]


def test_feeds_add_strips_surrounding_spaces(make_watcher) -> None:
    """A URL pasted with spaces around it is stored clean, so it is not added twice."""
    watcher = make_watcher()
    watcher("feeds", "add", "  https://spaced.example/rss  ")
    watcher("feeds", "add", "https://spaced.example/rss")
    assert rows(watcher.db, "SELECT url FROM feeds") == [("https://spaced.example/rss",)]


def test_feeds_import_opml_skips_non_http_with_a_note(make_watcher, tmp_path: Path) -> None:
    """Nested http(s) outlines (any xmlUrl case) are added; feed:// and file:// are named."""
    opml = tmp_path / "subscriptions.opml"
    opml.write_text(OPML, encoding="utf-8")
    watcher = make_watcher([CONFIG_FEED])
    result = watcher("feeds", "import", str(opml))
    assert result.exit_code == 0, result.output
    assert "3 feeds added, 1 already there, 2 skipped" in result.output
    assert "skipped 'feed://pod.example/rss': not an http(s) URL" in result.output
    assert "skipped 'file:///home/me/feed.xml'" in result.output
    assert rows(watcher.db, "SELECT url, title, origin FROM feeds ORDER BY id") == [
        (CONFIG_FEED, None, "config"),
        ("https://valley.example/feed.xml", "Valley Times", "opml"),
        ("http://steppe.example/rss", "Steppe & Sky", "opml"),
        ("https://shout.example/rss", "Shouty exporter", "opml"),
    ]


def test_feeds_import_of_a_broken_opml_is_a_clear_error(make_watcher, tmp_path: Path) -> None:
    """A file that is not OPML gives a one-line error naming it; exit 1."""
    bad = tmp_path / "bad.opml"
    bad.write_text("<opml><body><outline", encoding="utf-8")
    not_opml = tmp_path / "feed.xml"
    not_opml.write_text("<rss version='2.0'><channel/></rss>", encoding="utf-8")
    watcher = make_watcher()
    for path, reason in [(bad, "not a valid OPML"), (not_opml, "expected an <opml> document")]:
        result = watcher("feeds", "import", str(path))
        assert result.exit_code == 1
        assert f"{path}: {reason}" in result.output
        assert "Traceback" not in result.output


def test_opml_export_round_trips_into_another_database(make_watcher, tmp_path: Path) -> None:
    """Exported OPML is valid XML and imports every feed with its title into a fresh database."""
    watcher = make_watcher([CONFIG_FEED])
    watcher("feeds", "add", "https://a.example/rss?x=1&y=2", "--title", "A & <B>")
    watcher("feeds", "add", "https://b.example/feed")
    out = tmp_path / "export.opml"
    result = watcher("feeds", "export", "--out", str(out))
    assert result.exit_code == 0, result.output
    outlines = ElementTree.parse(out).getroot().findall("./body/outline")
    assert [outline.get("xmlUrl") for outline in outlines] == [
        CONFIG_FEED,
        "https://a.example/rss?x=1&y=2",
        "https://b.example/feed",
    ]
    assert watcher("feeds", "export").output.strip() == out.read_text(encoding="utf-8").strip()

    other = tmp_path / "other"
    other.mkdir()
    config = write_config(other)
    runner = CliRunner()
    imported = runner.invoke(
        main, ["--config", str(config), "--db", str(other / "w.db"), "feeds", "import", str(out)]
    )
    assert imported.exit_code == 0, imported.output
    assert "3 feeds added" in imported.output
    assert rows(other / "w.db", "SELECT url, title FROM feeds ORDER BY id") == [
        (CONFIG_FEED, CONFIG_FEED),
        ("https://a.example/rss?x=1&y=2", "A & <B>"),
        ("https://b.example/feed", "https://b.example/feed"),
    ]


def test_search_finds_an_imported_item(make_watcher, tmp_path: Path) -> None:
    """An imported document is found by a word, a phrase and a stem, with a snippet."""
    doc = tmp_path / "note.txt"
    doc.write_text(
        "Hangars rebuilt at Kant\n\nThe air bases near Bishkek got two new hangars this spring.\n",
        encoding="utf-8",
    )
    other = tmp_path / "other.txt"
    other.write_text("Budget passed\n\nDeputies approved the budget.\n", encoding="utf-8")
    watcher = make_watcher()
    assert watcher("corpus", "import", str(doc), str(other)).exit_code == 0
    for query in ("Bishkek", '"air base"', "hangar", "kant NOT budget"):
        result = watcher("search", query)
        assert result.exit_code == 0, result.output
        assert "Hangars rebuilt at Kant" in result.output, query
        assert "Budget passed" not in result.output, query
        assert "[" in result.output, "a highlighted snippet"
    assert watcher("search", "submarine").output.strip() == "no matches"


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ('"unclosed phrase', "double quote is not closed"),
        ("Kant AND", "ends too early"),
        ("Issyk-Kul", "quote hyphenated words"),
    ],
)
def test_bad_search_query_is_a_clear_error(make_watcher, query: str, reason: str) -> None:
    """An invalid FTS5 query gives one line naming the query; exit 1; no traceback."""
    result = make_watcher()("search", query)
    assert result.exit_code == 1
    assert f"invalid query {query!r}" in result.output
    assert reason in result.output
    assert "Traceback" not in result.output


def test_status_lists_every_feed_with_its_health(make_watcher) -> None:
    """status shows each feed, its state and the totals."""
    watcher = make_watcher([CONFIG_FEED, "https://second.example/rss"])
    result = watcher("status")
    assert result.exit_code == 0, result.output
    assert CONFIG_FEED in result.output
    assert "https://second.example/rss" in result.output
    assert "never" in result.output
    assert "2 feeds, 0 failing, 0 items stored" in result.output


def test_status_shows_a_failing_feed(make_watcher) -> None:
    """After a failed poll, status counts the feed as failing and shows why."""
    watcher = make_watcher(["http://127.0.0.1:9/closed.xml"])
    watcher("poll", "--all")
    result = watcher("status")
    assert "failing" in result.output
    assert "1 feeds, 1 failing" in result.output


def test_environment_variables_choose_config_and_database(tmp_path: Path) -> None:
    """WATCHER_CONFIG and WATCHER_DB are used when --config and --db are not given."""
    config = write_config(tmp_path, [CONFIG_FEED])
    db = tmp_path / "from-env.db"
    runner = CliRunner(env={"WATCHER_CONFIG": str(config), "WATCHER_DB": str(db)})
    result = runner.invoke(main, ["init"])
    assert result.exit_code == 0, result.output
    assert rows(db, "SELECT url FROM feeds") == [(CONFIG_FEED,)]
    override = tmp_path / "from-option.db"
    assert runner.invoke(main, ["--db", str(override), "init"]).exit_code == 0
    assert override.is_file()


def test_defaults_are_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without options or environment, config/watcher.toml and db/watcher.db are used."""
    (tmp_path / "config").mkdir()
    write_config(tmp_path / "config", [CONFIG_FEED])
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WATCHER_CONFIG", raising=False)
    monkeypatch.delenv("WATCHER_DB", raising=False)
    result = CliRunner().invoke(main, ["init"])
    assert result.exit_code == 0, result.output
    assert rows(tmp_path / "db" / "watcher.db", "SELECT url FROM feeds") == [(CONFIG_FEED,)]


def test_broken_config_exits_1_naming_the_file_and_key(tmp_path: Path) -> None:
    """A config error stops every command with one line naming file and key; no traceback."""
    config = write_config(
        tmp_path, extra='\n[[feeds]]\nurl = "https://x.example/"\nintervall = "1h"\n'
    )
    for command in (["init"], ["status"], ["feeds", "list"], ["search", "Kant"]):
        result = CliRunner().invoke(
            main, ["--config", str(config), "--db", str(tmp_path / "w.db"), *command]
        )
        assert result.exit_code == 1, command
        assert f"{config}: feeds[0].intervall: unknown key" in result.output
        assert "Traceback" not in result.output


def test_missing_config_exits_1(tmp_path: Path) -> None:
    """A config path that does not exist is named in the error."""
    missing = tmp_path / "nowhere.toml"
    result = CliRunner().invoke(
        main, ["--config", str(missing), "--db", str(tmp_path / "w.db"), "init"]
    )
    assert result.exit_code == 1
    assert f"{missing}: file not found" in result.output


def test_a_command_loads_only_its_own_module(tmp_path: Path) -> None:
    """``watcher status`` in a fresh interpreter imports neither the digest nor the importer
    nor the other commands' modules: every command starts without them."""
    config = write_config(tmp_path)
    script = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from watcher.cli import main\n"
        f"args = ['--config', {str(config)!r}, '--db', {str(tmp_path / 'w.db')!r}]\n"
        "assert CliRunner().invoke(main, [*args, 'init']).exit_code == 0\n"
        "result = CliRunner().invoke(main, [*args, 'status'])\n"
        "assert result.exit_code == 0, result.output\n"
        "loaded = [m for m in ('watcher.digest', 'watcher.importer', 'watcher.cli.alerts',\n"
        "          'watcher.cli.digest', 'watcher.cli.corpus') if m in sys.modules]\n"
        "print(','.join(loaded))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""
