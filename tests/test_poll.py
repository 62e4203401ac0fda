"""Polling real feeds served on 127.0.0.1 through the real CLI and a real SQLite file."""

from __future__ import annotations

import gzip
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.conftest import kant_story, rss, rss_item
from watcher.store import Store


def rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as connection:
        return connection.execute(sql).fetchall()


def table_counts(db: Path) -> dict[str, int]:
    """Row counts of the tables a poll writes to."""
    tables = ("items", "sightings", "item_tags", "item_topics", "fetches")
    return {table: int(rows(db, f"SELECT count(*) FROM {table}")[0][0]) for table in tables}


def serve_conditional(httpserver: HTTPServer, path: str, body: bytes, etag: str) -> None:
    """Serve ``body`` with an ETag, answering 304 when the client already has it."""

    def handler(request: Request) -> Response:
        if request.headers.get("If-None-Match") == etag:
            return Response(status=304, headers={"ETag": etag})
        return Response(body, content_type="application/rss+xml", headers={"ETag": etag})

    httpserver.expect_request(path).respond_with_handler(handler)


def test_second_poll_of_unchanged_feeds_is_all_304_and_writes_only_fetch_rows(
    httpserver: HTTPServer, make_watcher
) -> None:
    """A second pass over unchanged feeds gets 304s and writes nothing but the fetch log."""
    urls = []
    for number in range(3):
        path = f"/feed{number}.xml"
        serve_conditional(
            httpserver, path, rss([kant_story(number * 10 + k) for k in range(4)]), f'"v{number}"'
        )
        urls.append(httpserver.url_for(path))
    watcher = make_watcher(urls)

    first = watcher("poll", "--all")
    assert first.exit_code == 0, first.output
    assert "3 ok" in first.output
    assert "12 new items" in first.output
    before = table_counts(watcher.db)

    second = watcher("poll", "--all")
    assert second.exit_code == 0, second.output
    assert "3 not modified" in second.output
    assert "0 new items" in second.output
    after = table_counts(watcher.db)
    assert after["fetches"] == before["fetches"] + 3
    assert {k: v for k, v in after.items() if k != "fetches"} == {
        k: v for k, v in before.items() if k != "fetches"
    }
    statuses = rows(watcher.db, "SELECT http_status, outcome FROM fetches ORDER BY id DESC LIMIT 3")
    assert statuses == [(304, "not_modified")] * 3


def test_a_pass_with_nothing_new_loads_neither_the_tagger_nor_the_story_step(
    httpserver: HTTPServer, make_watcher
) -> None:
    """A pass of 304s, in a fresh interpreter as cron runs it, never imports what only new
    items need (the tagger, feedparser, the comparisons, the story modules): a `watcher
    poll` that finds nothing new starts that much sooner."""
    serve_conditional(httpserver, "/feed.xml", rss([kant_story(1), kant_story(2)]), '"v1"')
    watcher = make_watcher([httpserver.url_for("/feed.xml")])
    assert "2 new items" in watcher("poll", "--all").output
    heavy = (
        "watcher.tagging",
        "watcher.fingerprints",
        "watcher.ingest",
        "watcher.story_grouping",
        "watcher.story_vectors",
        "watcher.regroup",
        "feedparser",
        "rapidfuzz",
        "scipy.cluster",  # loaded ahead in a thread once a body arrives, not for 304s
    )
    script = (
        "import sys\n"
        "from watcher.entry import main\n"
        f"sys.argv = ['watcher', '--config', {str(watcher.config)!r}, '--db', "
        f"{str(watcher.db)!r}, 'poll', '--all']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as stop:\n"
        "    assert not stop.code, stop.code\n"
        f"print('loaded:', ','.join(m for m in {heavy!r} if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "1 not modified" in done.stdout
    assert done.stdout.strip().endswith("loaded:")  # none of them


def test_identical_body_without_validators_is_treated_as_not_modified(
    httpserver: HTTPServer, make_watcher
) -> None:
    """A server that ignores conditional GET but sends the same bytes costs no parse."""
    httpserver.expect_request("/same.xml").respond_with_data(
        rss([kant_story(1)]), content_type="application/rss+xml"
    )
    watcher = make_watcher([httpserver.url_for("/same.xml")])
    watcher("poll", "--all")
    result = watcher("poll", "--all")
    assert "1 not modified" in result.output
    assert rows(watcher.db, "SELECT outcome FROM fetches ORDER BY id") == [("ok",), ("unchanged",)]


def test_changed_body_is_parsed_even_when_validators_did_not_change(
    httpserver: HTTPServer, make_watcher
) -> None:
    """A stale ETag does not hide a changed feed."""
    bodies = [rss([kant_story(1)]), rss([kant_story(1), kant_story(2)])]

    def handler(request: Request) -> Response:
        return Response(bodies.pop(0), content_type="application/rss+xml", headers={"ETag": '"x"'})

    httpserver.expect_request("/stale.xml").respond_with_handler(handler)
    watcher = make_watcher([httpserver.url_for("/stale.xml")])
    watcher("poll", "--all")
    # the server above never answers 304: it ignores If-None-Match, as stale servers do
    result = watcher("poll", "--all")
    assert "1 new items" in result.output


def test_same_story_in_two_feeds_with_tracking_parameters_is_one_item_two_sightings(
    httpserver: HTTPServer, make_watcher
) -> None:
    """URLs differing only by utm_*/fbclid and host case are one item seen twice."""
    text = "<p>The Kant air base near Bishkek in Kyrgyzstan hosts new aircraft, officials said.</p>"
    first = rss_item("Kant base gets aircraft", "https://news.example/kant?utm_source=rss", text)
    second = rss_item(
        "Kant base gets aircraft (wire)",
        "https://WWW.News.Example/kant/?fbclid=abc&utm_medium=social#top",
        text + "<p>Extra paragraph from the second outlet.</p>",
    )
    httpserver.expect_request("/a.xml").respond_with_data(rss([first]), content_type="text/xml")
    httpserver.expect_request("/b.xml").respond_with_data(rss([second]), content_type="text/xml")
    watcher = make_watcher([httpserver.url_for("/a.xml"), httpserver.url_for("/b.xml")])

    result = watcher("poll", "--all")
    assert result.exit_code == 0, result.output
    assert rows(watcher.db, "SELECT count(*) FROM items") == [(1,)]
    sightings = rows(watcher.db, "SELECT feed_id, url, match FROM sightings ORDER BY feed_id")
    assert len(sightings) == 2
    assert {row[2] for row in sightings} == {"first", "url"}
    assert rows(watcher.db, "SELECT canonical_url FROM items") == [("https://news.example/kant",)]


def test_same_article_under_new_guid_is_still_one_item(
    httpserver: HTTPServer, make_watcher
) -> None:
    """A feed that changes the GUID of an article it already served adds no new item."""
    bodies = [
        rss(
            [
                rss_item(
                    "Kant air base news",
                    "https://n.example/1",
                    "Kant airbase in Kyrgyzstan",
                    guid="a",
                )
            ]
        ),
        rss(
            [
                rss_item(
                    "Kant air base news",
                    "https://n.example/1",
                    "Kant airbase in Kyrgyzstan",
                    guid="b",
                )
            ]
        ),
    ]
    httpserver.expect_request("/g.xml").respond_with_handler(
        lambda _request: Response(bodies.pop(0), content_type="text/xml")
    )
    watcher = make_watcher([httpserver.url_for("/g.xml")])
    watcher("poll", "--all")
    watcher("poll", "--all")
    assert rows(watcher.db, "SELECT count(*) FROM items") == [(1,)]


def test_repeated_guid_does_not_swallow_new_articles(httpserver: HTTPServer, make_watcher) -> None:
    """When a feed repeats one GUID for different entries, each entry is still stored."""
    entries = [
        rss_item(
            f"Kant air base story {n}",
            f"https://n.example/{n}",
            f"Kant airbase in Kyrgyzstan, different text number {n} {'x' * n}",
            guid="same",
        )
        for n in range(3)
    ]
    httpserver.expect_request("/r.xml").respond_with_data(rss(entries), content_type="text/xml")
    watcher = make_watcher([httpserver.url_for("/r.xml")])
    watcher("poll", "--all")
    assert rows(watcher.db, "SELECT count(*), count(guid) FROM items") == [(3, 0)]


def test_items_matching_no_topic_are_not_stored_unless_configured(
    httpserver: HTTPServer, make_watcher, tmp_path: Path
) -> None:
    """keep_unmatched decides whether off-topic entries are stored."""
    entries = [kant_story(1), rss_item("Football results", "https://n.example/f", "A match.")]
    httpserver.expect_request("/m.xml").respond_with_data(rss(entries), content_type="text/xml")
    url = httpserver.url_for("/m.xml")
    watcher = make_watcher([url])
    watcher("poll", "--all")
    assert rows(watcher.db, "SELECT title FROM items") == [("Kant air base report number 1",)]
    assert rows(watcher.db, "SELECT topic FROM item_topics") == [("kant-air-base",)]

    keeping = make_watcher([url], poll="keep_unmatched = true\n")
    keeping.db.unlink()
    keeping("poll", "--all")
    assert rows(keeping.db, "SELECT count(*) FROM items") == [(2,)]


def _failing_feeds(httpserver: HTTPServer) -> dict[str, str]:
    """Paths of feeds that each fail one way, with the error kind each must record."""
    httpserver.expect_request("/malformed.xml").respond_with_data(
        b"\x00\x01 this is <<< not xml at all", content_type="application/rss+xml"
    )
    httpserver.expect_request("/page.html").respond_with_data(
        b"<!DOCTYPE html><html><head><title>Home</title></head><body><p>Hi</p></body></html>",
        content_type="text/html",
    )

    def slow(_request: Request) -> Response:
        time.sleep(4.0)
        return Response(rss([kant_story(99)]), content_type="text/xml")

    httpserver.expect_request("/slow.xml").respond_with_handler(slow)
    httpserver.expect_request("/missing.xml").respond_with_data("nope", status=404)
    httpserver.expect_request("/gone.xml").respond_with_data("gone", status=410)
    httpserver.expect_request("/busy.xml").respond_with_data(
        "later", status=429, headers={"Retry-After": "7200"}
    )
    httpserver.expect_request("/huge.xml").respond_with_data(
        rss([kant_story(n) for n in range(1000)]), content_type="text/xml"
    )
    bomb = gzip.compress(b"<rss>" + b" " * 3_000_000)
    httpserver.expect_request("/bomb.xml").respond_with_data(
        bomb, content_type="text/xml", headers={"Content-Encoding": "gzip"}
    )
    httpserver.expect_request("/loop1.xml").respond_with_data(
        "", status=302, headers={"Location": "/loop2.xml"}
    )
    httpserver.expect_request("/loop2.xml").respond_with_data(
        "", status=302, headers={"Location": "/loop1.xml"}
    )
    return {
        "/malformed.xml": "not_a_feed",
        "/page.html": "not_a_feed",
        "/slow.xml": "timeout",
        "/missing.xml": "http_status",
        "/gone.xml": "http_status",
        "/busy.xml": "http_status",
        "/huge.xml": "too_large",
        "/bomb.xml": "too_large",
        "/loop1.xml": "redirects",
    }


def test_each_kind_of_failure_is_recorded_on_its_feed_and_the_others_still_work(
    httpserver: HTTPServer, make_watcher
) -> None:
    """Malformed, HTML, timeout, 404, 410, 429, oversized, gzip bomb, redirect loop: recorded."""
    expected = _failing_feeds(httpserver)
    httpserver.expect_request("/good.xml").respond_with_data(
        rss([kant_story(1), kant_story(2)]), content_type="text/xml"
    )
    urls = {path: httpserver.url_for(path) for path in [*expected, "/good.xml"]}
    watcher = make_watcher(list(urls.values()), poll="max_bytes = 200000\n")

    result = watcher("poll", "--all")
    assert result.exit_code == 0, result.output
    assert f"{len(expected)} failed" in result.output
    assert "2 new items" in result.output
    recorded = dict(
        rows(
            watcher.db,
            "SELECT feeds.url, fetches.error_kind FROM fetches JOIN feeds ON feeds.id = fetches.feed_id",
        )
    )
    for path, kind in expected.items():
        assert recorded[urls[path]] == kind, path
    assert recorded[urls["/good.xml"]] is None

    feeds = {
        row[0]: row[1:]
        for row in rows(
            watcher.db, "SELECT url, enabled, error_count, next_due_at, last_error FROM feeds"
        )
    }
    assert feeds[urls["/gone.xml"]][0] == 0, "410 disables the feed"
    assert all(feeds[urls[path]][1] == 1 for path in expected)
    busy_due = feeds[urls["/busy.xml"]][2]
    missing_due = feeds[urls["/missing.xml"]][2]
    assert busy_due > missing_due, "Retry-After of two hours outlasts the first backoff"
    assert "HTML page" in feeds[urls["/page.html"]][3]


def test_moved_permanently_updates_the_stored_feed_url(
    httpserver: HTTPServer, make_watcher
) -> None:
    """A 301 to a new address is followed and the feed row takes the new URL."""
    httpserver.expect_request("/old.xml").respond_with_data(
        "", status=301, headers={"Location": "/new.xml"}
    )
    httpserver.expect_request("/new.xml").respond_with_data(
        rss([kant_story(5)]), content_type="text/xml"
    )
    old, new = httpserver.url_for("/old.xml"), httpserver.url_for("/new.xml")
    watcher = make_watcher(extra="")
    watcher("feeds", "add", old)
    result = watcher("poll", "--all")
    assert "1 new items" in result.output
    assert rows(watcher.db, "SELECT url FROM feeds") == [(new,)]


def test_backoff_grows_and_success_resets_it(httpserver: HTTPServer, make_watcher) -> None:
    """Consecutive errors push the next try further out; a success clears the count."""
    answers = [503, 503, 200]

    def handler(_request: Request) -> Response:
        status = answers.pop(0)
        if status != 200:
            return Response("busy", status=status)
        return Response(rss([kant_story(3)]), content_type="text/xml")

    httpserver.expect_request("/flaky.xml").respond_with_handler(handler)
    watcher = make_watcher([httpserver.url_for("/flaky.xml")])
    dues = []
    for _ in range(2):
        watcher("poll", "--all")
        dues.append(
            rows(watcher.db, "SELECT error_count, next_due_at, last_fetch_at FROM feeds")[0]
        )
    assert [due[0] for due in dues] == [1, 2]
    gaps = [
        (
            __import__("datetime").datetime.fromisoformat(due[1])
            - __import__("datetime").datetime.fromisoformat(due[2])
        ).total_seconds()
        for due in dues
    ]
    assert gaps[1] > gaps[0]
    watcher("poll", "--all")
    assert rows(watcher.db, "SELECT error_count, last_error FROM feeds") == [(0, None)]


def test_interrupted_batch_leaves_nothing_half_written(
    httpserver: HTTPServer, make_watcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure in the middle of storing a feed's batch rolls the whole batch back."""
    httpserver.expect_request("/batch.xml").respond_with_data(
        rss([kant_story(n) for n in range(5)]), content_type="text/xml"
    )
    watcher = make_watcher([httpserver.url_for("/batch.xml")])
    original = Store.insert_item
    calls = {"n": 0}

    def crash_on_third(self: Store, *args: object, **kwargs: object) -> int:
        calls["n"] += 1
        if calls["n"] == 3:
            raise sqlite3.OperationalError("disk I/O error (simulated power cut)")
        return original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Store, "insert_item", crash_on_third)
    result = watcher("poll", "--all")
    # an I/O error is the database's fault, not the feed's: the pass stops, exit status 1
    assert result.exit_code == 1
    assert "cannot be read or written" in result.output
    for table in ("items", "sightings", "item_tags", "item_topics", "items_fts"):
        assert rows(watcher.db, f"SELECT count(*) FROM {table}") == [(0,)], table
    assert rows(watcher.db, "SELECT etag, body_hash FROM feeds") == [(None, None)]

    monkeypatch.setattr(Store, "insert_item", original)
    result = watcher("poll", "--all")
    assert "5 new items" in result.output


def test_poll_without_network_exits_cleanly_and_records_why(make_watcher) -> None:
    """A feed on a host that refuses connections is recorded as failed; exit status 0."""
    watcher = make_watcher(["http://127.0.0.1:9/closed.xml"])
    result = watcher("poll")
    assert result.exit_code == 0, result.output
    assert "1 failed" in result.output
    assert rows(watcher.db, "SELECT error_kind FROM fetches") == [("network",)]


def test_only_due_feeds_are_polled(httpserver: HTTPServer, make_watcher) -> None:
    """A plain poll skips feeds whose interval has not passed; --all does not."""
    httpserver.expect_request("/due.xml").respond_with_data(
        rss([kant_story(1)]), content_type="text/xml"
    )
    watcher = make_watcher([httpserver.url_for("/due.xml")])
    assert "1 feeds" in watcher("poll").output
    assert "0 feeds" in watcher("poll").output
    assert "1 feeds" in watcher("poll", "--all").output


def test_a_feed_that_gained_one_entry_costs_one_entry(httpserver: HTTPServer, make_watcher) -> None:
    """Entries the feed delivered before are counted as seen and skip the costly stages."""
    bodies = [rss([kant_story(n) for n in range(3)]), rss([kant_story(n) for n in range(4)])]
    httpserver.expect_request("/grow.xml").respond_with_handler(
        lambda _request: Response(bodies.pop(0), content_type="text/xml")
    )
    watcher = make_watcher([httpserver.url_for("/grow.xml")])
    assert "3 new items" in watcher("poll", "--all").output
    second = watcher("poll", "--all").output
    assert "1 new items" in second
    assert "3 duplicates" in second
    assert rows(watcher.db, "SELECT count(*) FROM sightings") == [(4,)]


def test_prepare_feed_drops_entries_the_feed_already_delivered() -> None:
    """prepare_feed leaves out entries whose GUID or text hash the feed already delivered,
    but not an entry that only shares a known URL while its GUID is new."""
    import tomllib
    from datetime import UTC, datetime

    from tests.conftest import TOPIC_TOML
    from watcher.config import config_from_dict
    from watcher.models import KnownKeys
    from watcher.prepare import prepare_feed

    topics = config_from_dict(tomllib.loads(TOPIC_TOML)).topics
    same_link = rss_item(
        "Another post about the Kant air base in Kyrgyzstan",
        "https://news.example/kant/2",
        "<p>A second look at the Kant air base near Bishkek, with other words.</p>",
        guid="kant-2-followup",
    )
    body = rss([*(kant_story(n) for n in range(3)), same_link])
    known = KnownKeys(guids=frozenset({"kant-1"}), urls=frozenset({"https://news.example/kant/2"}))
    batch = prepare_feed(
        body,
        {},
        "https://news.example/feed",
        topics,
        keep_unmatched=False,
        now=datetime.now(UTC),
        known=known,
    )
    assert batch.known == (("guid", 1),)
    assert [entry.item.guid for entry in batch.items] == ["kant-0", "kant-2", "kant-2-followup"]
