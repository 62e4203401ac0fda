"""Nothing lost on real feeds: bad documents, dying workers and URL rules cost no good entry.

Every poll here runs with a real pool of worker processes, a real HTTP server on 127.0.0.1 and
a real SQLite file.
"""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import signal
import sqlite3
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from tests.conftest import kant_story, rss, rss_item, write_config
from watcher import errors
from watcher.config import load_config
from watcher.normalize import utc_iso
from watcher.poll import PollSummary, poll_feeds
from watcher.prepare import PreparedBatch, PrepareFailure, PrepareJob, run_prepare_job
from watcher.store import Store

WILD = Path(__file__).parent / "fixtures" / "wild"
NEWSML = b"""<?xml version="1.0" encoding="UTF-8"?>
<newsItem xmlns="http://iptc.org/std/nar/2006-10-01/" guid="urn:newsml:example.org:1" version="1">
  <itemMeta><itemClass qcode="ninat:text"/></itemMeta>
  <contentSet><inlineXML contenttype="application/nitf+xml">
    <nitf><body><body.content><p>Kant air base in Kyrgyzstan</p></body.content></body></nitf>
  </inlineXML></contentSet>
</newsItem>
"""


def rows(db: Path, sql: str, params: Sequence[object] = ()) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as connection:
        return connection.execute(sql, list(params)).fetchall()


def serve(httpserver: HTTPServer, path: str, body: bytes, content_type: str) -> str:
    httpserver.expect_request(path).respond_with_data(body, content_type=content_type)
    return httpserver.url_for(path)


def kant_feed(first: int, count: int = 4) -> bytes:
    return rss([kant_story(first + k) for k in range(count)])


def poll_with(
    tmp_path: Path, urls: Sequence[str], *, runner=run_prepare_job, poll: str = ""
) -> tuple[PollSummary, Store]:
    """One pass over ``urls`` through the library, with a real pool of two workers (the default
    on two cores, set here so that a one-core machine still tests the pool)."""
    config = load_config(write_config(tmp_path, urls, poll="workers = 2\n" + poll))
    store = Store.open(tmp_path / "watcher.db")
    store.sync_config(config, utc_iso(datetime.now(UTC)))
    feeds = store.feed_states(now=utc_iso(datetime.now(UTC)), due_only=False)
    summary = asyncio.run(poll_feeds(config, store, feeds, runner=runner))
    return summary, store


def by_url(summary: PollSummary) -> dict[str, object]:
    return {outcome.url: outcome for outcome in summary.outcomes}


# --- errors cross the process boundary whole ------------------------------------------


ERROR_EXAMPLES = [
    errors.WatcherError("plain"),
    errors.ConfigError("config/watcher.toml", "feeds[0].url", "expected a URL"),
    errors.QueryError("Kant AND", "syntax error"),
    errors.CorpusImportError("seeds/a.txt:3", "not UTF-8"),
    errors.StoreError("db is locked"),
    errors.DatabaseFault("db/watcher.db", "corrupt", "the database file is damaged"),
    errors.DigestError("no digest named 'weekly'"),
    errors.MailError("550 refused"),
    errors.AlertError("webhook:team", "HTTP 503", retry_after=30.0),
    errors.DaemonAlreadyRunning("db/watcher.db.lock", "4242"),
    errors.FeedError("https://a.example/f", "broken"),
    errors.FeedError("https://a.example/f", "reported by a worker", kind="not_a_feed"),
    errors.InvalidFeedURL("ftp://a.example/f", "only http(s)"),
    errors.FetchError("https://a.example/f", "reset"),
    errors.FetchTimeout("https://a.example/f", "slow"),
    errors.TooManyRedirects("https://a.example/f", "loop"),
    errors.ResponseTooLarge("https://a.example/f", "big"),
    errors.HTTPStatusError("https://a.example/f", 503, "HTTP 503", retry_after=120.0),
    errors.NotAFeed("https://a.example/f", "an HTML page"),
    errors.WorkerError("https://a.example/f", "failed"),
    errors.ParseTimeout("https://a.example/f", "too slow"),
    errors.WorkerDied("https://a.example/f", "killed by SIGKILL"),
]


@pytest.mark.parametrize("error", ERROR_EXAMPLES, ids=lambda e: type(e).__name__)
def test_every_error_pickles_with_its_fields(error: errors.WatcherError) -> None:
    """An error raised in a worker arrives in the parent with its type, message and fields."""
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert copy.__dict__ == error.__dict__


def test_every_error_class_has_a_pickling_example() -> None:
    """The examples above cover the whole exception tree, so a new class cannot be missed."""

    def tree(cls: type) -> set[type]:
        return {cls}.union(*(tree(sub) for sub in cls.__subclasses__()))

    assert tree(errors.WatcherError) == {type(error) for error in ERROR_EXAMPLES}


# --- bad documents among good feeds ------------------------------------------------------


def test_bad_documents_among_good_feeds_cost_only_themselves(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    """HTML, junk bytes, NewsML and a truncated feed fail (or parse leniently) on their own
    feed, and every good feed of the same pass is stored whole."""
    good = [
        serve(httpserver, f"/good{n}.xml", kant_feed(n * 10), "application/rss+xml")
        for n in range(4)
    ]
    truncated_body = kant_feed(50, 3)
    truncated_body = truncated_body[: truncated_body.rindex(b"<item>") + 40]
    bad = {
        "html": serve(
            httpserver,
            "/page.html",
            b"<!doctype html><html><body><p>Hi</p></body></html>",
            "text/html",
        ),
        "junk": serve(httpserver, "/junk.xml", os.urandom(4096), "application/octet-stream"),
        "newsml": serve(httpserver, "/news.xml", NEWSML, "application/xml"),
    }
    truncated = serve(httpserver, "/cut.xml", truncated_body, "application/rss+xml")
    summary, store = poll_with(tmp_path, [*good, *bad.values(), truncated])
    outcomes = by_url(summary)

    for url in good:
        assert outcomes[url].status == "ok"
        assert outcomes[url].counts.new_items == 4
    for url in bad.values():
        assert outcomes[url].status == "failed"
        assert outcomes[url].error_kind == "not_a_feed"
    assert outcomes[truncated].status == "ok"  # a lenient parse keeps the complete entries
    assert outcomes[truncated].counts.new_items == 2
    assert store.count("items") == 4 * 4 + 2
    failed_rows = rows(
        tmp_path / "watcher.db",
        "SELECT feeds.url, fetches.error_kind FROM fetches JOIN feeds ON feeds.id = fetches.feed_id "
        "WHERE fetches.outcome = 'error' ORDER BY feeds.url",
    )
    assert sorted(failed_rows) == sorted((url, "not_a_feed") for url in bad.values())


# --- workers that die or hang ------------------------------------------------------------

CRASH_MARK = b"<title>crash the worker</title>"
HANG_MARK = b"<title>hang the worker</title>"


def crashing_runner(job: PrepareJob) -> PreparedBatch | PrepareFailure:
    """Dies by SIGKILL (as the OOM killer does) on a marked feed; prepares the others."""
    if CRASH_MARK in job.body:
        os.kill(os.getpid(), signal.SIGKILL)
    return run_prepare_job(job)


def hanging_runner(job: PrepareJob) -> PreparedBatch | PrepareFailure:
    """Never returns on a marked feed (a parse stuck in a loop); prepares the others."""
    if HANG_MARK in job.body:
        time.sleep(3600)
    return run_prepare_job(job)


def marked_feed(mark: bytes) -> bytes:
    return kant_feed(90).replace(b"<title>Test feed</title>", mark, 1)


def test_worker_killed_mid_parse_costs_that_feed_only(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    """A worker killed while preparing one feed fails that feed (worker_died); the pool is
    replaced and every other feed of the pass is stored."""
    good = [
        serve(httpserver, f"/ok{n}.xml", kant_feed(n * 10), "application/rss+xml") for n in range(5)
    ]
    doomed = serve(httpserver, "/doomed.xml", marked_feed(CRASH_MARK), "application/rss+xml")
    summary, store = poll_with(
        tmp_path,
        [good[0], doomed, *good[1:]],
        runner=crashing_runner,
        poll='parse_timeout = "20s"\n',
    )
    outcomes = by_url(summary)

    assert outcomes[doomed].status == "failed"
    # pebble reports the death at once, except when the worker died holding the result
    # channel's lock (seen under heavy load): then the time limit ends the wait
    assert outcomes[doomed].error_kind in ("worker_died", "parse_timeout")
    if outcomes[doomed].error_kind == "worker_died":
        assert "SIGKILL" in (outcomes[doomed].error or "")
    assert [outcomes[url].status for url in good] == ["ok"] * 5
    assert store.count("items") == 5 * 4


def test_parse_over_the_time_limit_fails_that_feed_only(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    """A feed whose preparation never ends fails with parse_timeout; the others are stored."""
    good = [
        serve(httpserver, f"/fine{n}.xml", kant_feed(n * 10), "application/rss+xml")
        for n in range(3)
    ]
    stuck = serve(httpserver, "/stuck.xml", marked_feed(HANG_MARK), "application/rss+xml")
    summary, store = poll_with(
        tmp_path, [stuck, *good], runner=hanging_runner, poll='parse_timeout = "6s"\n'
    )
    outcomes = by_url(summary)

    assert outcomes[stuck].error_kind == "parse_timeout"
    assert [outcomes[url].status for url in good] == ["ok"] * 3
    assert store.count("items") == 3 * 4
    assert rows(
        tmp_path / "watcher.db", "SELECT count(*) FROM fetches WHERE error_kind = 'parse_timeout'"
    ) == [(1,)]


# --- identity rules that must not eat posts ----------------------------------------------


def daily_page_feed(posts: int) -> bytes:
    """A Scripting News style blog: every post an #anchor on one page per day."""
    items = []
    for n in range(posts):
        day = 26 - n // 5
        items.append(
            rss_item(
                f"Kant air base note {n}" if n % 2 else "",
                f"http://blog.example/2026/11/{day}.html#a0{n:05d}",
                f"<p>Short note {n} on the Kant air base in Kyrgyzstan: word{n} other{n * 7}.</p>",
                guid=f"http://blog.example/2026/11/{day}.html#a0{n:05d}",
            )
        )
    return rss(items, title="Daily page blog")


def test_daily_page_blog_keeps_every_post_and_a_copy_of_the_feed_only_sightings(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    """Posts that differ only by #fragment on a shared daily page are one item each; the
    same feed under a second address adds sightings, not items."""
    body = daily_page_feed(20)
    first = serve(httpserver, "/daily.xml", body, "application/rss+xml")
    mirror = serve(httpserver, "/mirror/daily.xml", body, "application/rss+xml")
    summary, store = poll_with(tmp_path, [first])
    assert summary.counts.new_items == 20
    store.close()

    summary, store = poll_with(tmp_path, [first, mirror])
    outcomes = by_url(summary)
    assert outcomes[first].status == "unchanged"
    assert outcomes[mirror].counts.new_items == 0
    assert outcomes[mirror].counts.duplicate_total == 20
    assert store.count("items") == 20
    per_item = rows(tmp_path / "watcher.db", "SELECT count(*) FROM sightings GROUP BY item_id")
    assert per_item == [(2,)] * 20


def link_blog_feed() -> bytes:
    """Two posts of a link blog about one outside page, with their own GUIDs and words."""
    return rss(
        [
            rss_item(
                "Kant air base gets new radar",
                "https://outside.example/kant-radar?utm_source=linkblog",
                "<p>A short take on the Kant air base radar in Kyrgyzstan: worth reading.</p>",
                guid="linkblog-1",
            ),
            rss_item(
                "More on the Kant radar",
                "https://outside.example/kant-radar",
                "<p>Follow-up: the Kyrgyzstan base radar story now has a map of Kant.</p>",
                guid="linkblog-2",
            ),
        ],
        title="Link blog",
    )


def test_two_posts_linking_one_url_are_two_items_and_a_mirror_sees_each(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    """Different GUIDs and text under one cleaned URL stay two items; the same feed under
    another address records a sighting of each, matched to the right post."""
    body = link_blog_feed()
    first = serve(httpserver, "/links.xml", body, "application/rss+xml")
    mirror = serve(httpserver, "/links-mirror.xml", body, "application/rss+xml")
    summary, store = poll_with(tmp_path, [first])
    assert summary.counts.new_items == 2
    store.close()

    summary, store = poll_with(tmp_path, [first, mirror])
    assert by_url(summary)[mirror].counts.new_items == 0
    assert store.count("items") == 2
    pairs = rows(
        tmp_path / "watcher.db",
        "SELECT items.guid, count(*) FROM sightings JOIN items ON items.id = sightings.item_id "
        "GROUP BY items.id ORDER BY items.guid",
    )
    assert pairs == [("linkblog-1", 2), ("linkblog-2", 2)]


def test_a_third_post_on_a_known_url_is_not_taken_for_a_known_entry(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    """When the link blog adds a third post about the same page, that post is new."""
    bodies = [link_blog_feed()]
    third = rss_item(
        "Kant radar, third look",
        "https://outside.example/kant-radar#comments",
        "<p>Third post: the Kant base in Kyrgyzstan answered questions about the radar.</p>",
        guid="linkblog-3",
    )
    bodies.append(bodies[0].replace(b"</channel>", third.encode() + b"</channel>"))
    httpserver.expect_request("/grow.xml").respond_with_handler(
        lambda _request: __import__("werkzeug").Response(bodies.pop(0), content_type="text/xml")
    )
    url = httpserver.url_for("/grow.xml")
    poll_with(tmp_path, [url])[1].close()
    summary, store = poll_with(tmp_path, [url])
    counts = by_url(summary)[url].counts
    assert counts.new_items == 1
    assert dict(counts.duplicates) == {"hash": 2}
    assert store.count("items") == 3


# --- every entry accounted for ----------------------------------------------------------


def test_summary_and_fetch_rows_account_for_every_entry(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    """new + duplicates + off-topic + empty = entries, in the summary and in ``fetches``."""
    off_topic = rss_item(
        "Weather in Oslo", "https://news.example/oslo", "<p>Rain again.</p>", guid="o"
    )
    empty = "<item><description></description></item>"
    repeated = kant_story(1)
    body = rss([kant_story(0), repeated, repeated, off_topic, empty])
    url = serve(httpserver, "/mixed.xml", body, "application/rss+xml")
    summary, _store = poll_with(tmp_path, [url])
    counts = summary.counts

    assert (
        counts.entries,
        counts.new_items,
        counts.duplicate_total,
        counts.off_topic,
        counts.empty,
    ) == (5, 2, 1, 1, 1)
    assert counts.balanced()
    assert (
        "5 entries: 2 new items (0 near-duplicates), 1 duplicates (url 1), 1 off-topic, 1 empty"
        in summary.line()
    )
    fetch = rows(
        tmp_path / "watcher.db",
        "SELECT entries, new_items, near_duplicates, duplicates, duplicate_matches, off_topic, empty "
        "FROM fetches",
    )
    assert fetch == [(5, 2, 0, 1, '{"url": 1}', 1, 1)]


def test_an_entry_with_only_a_link_is_stored_not_dropped(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    """A bare <link> is still a post (kept with its address as title) when unmatched items are kept."""
    body = rss(["<item><link>https://news.example/only-a-link</link></item>"])
    url = serve(httpserver, "/link-only.xml", body, "application/rss+xml")
    summary, _store = poll_with(tmp_path, [url], poll="keep_unmatched = true\n")
    assert summary.counts.new_items == 1
    assert rows(tmp_path / "watcher.db", "SELECT title FROM items") == [
        ("https://news.example/only-a-link",)
    ]


# --- documents from the wild ---------------------------------------------------------------


def wild_manifest() -> list[dict[str, object]]:
    return json.loads((WILD / "manifest.json").read_text(encoding="utf-8"))


def test_real_world_feeds_polled_together_lose_no_entry(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    """Every real-world fixture in one pass with the default settings: each feed is parsed
    and every one of its entries is stored or recognised (none lost); non-feeds fail alone."""
    manifest = wild_manifest()
    assert len([entry for entry in manifest if entry["kind"] == "feed"]) >= 20
    urls = {}
    for entry in manifest:
        name = str(entry["file"])
        urls[name] = serve(
            httpserver, f"/wild/{name}", (WILD / name).read_bytes(), "application/xml"
        )
    summary, store = poll_with(tmp_path, list(urls.values()), poll="keep_unmatched = true\n")
    outcomes = by_url(summary)

    lost = {}
    for entry in manifest:
        outcome = outcomes[urls[str(entry["file"])]]
        if entry["kind"] == "not_feed":
            assert outcome.status == "failed", entry["file"]
            assert outcome.error_kind == "not_a_feed", entry["file"]
            continue
        counts = outcome.counts
        if outcome.status != "ok" or counts.entries != entry["entries"] or not counts.balanced():
            lost[entry["file"]] = (outcome.status, outcome.error, counts.line())
    assert lost == {}
    assert store.count("items") == summary.counts.new_items
    assert summary.counts.balanced()


@pytest.mark.parametrize("keep_unmatched", [False, True])
def test_real_world_feeds_fetched_again_lose_nothing_on_the_short_cuts(
    httpserver: HTTPServer, tmp_path: Path, keep_unmatched: bool
) -> None:
    """Every real-world fixture polled twice through the pool, the second time with a
    changed body (a comment added) so that each is prepared again: the entries remembered as
    off-topic (the default: none of them is about the Kant base) or, when all are stored,
    recognised by GUID, both before their text is read, are counted exactly as the first
    pass counted them, and nothing new appears or goes missing."""
    setting = f"keep_unmatched = {'true' if keep_unmatched else 'false'}\n"
    manifest = [entry for entry in wild_manifest() if entry["kind"] == "feed"]
    passes = {"n": 0}

    def answer(body: bytes) -> object:
        def respond(_request: object) -> object:
            extra = b"\n<!-- fetched again -->\n" if passes["n"] else b""
            return __import__("werkzeug").Response(body + extra, content_type="application/xml")

        return respond

    urls = {}
    for entry in manifest:
        name = str(entry["file"])
        httpserver.expect_request(f"/again/{name}").respond_with_handler(
            answer((WILD / name).read_bytes())
        )
        urls[name] = httpserver.url_for(f"/again/{name}")
    first, store = poll_with(tmp_path, list(urls.values()), poll=setting)
    store.close()
    passes["n"] = 1
    second, store = poll_with(tmp_path, list(urls.values()), poll=setting)
    stored = store.count("items")
    remembered = store.count("off_topic_entries")
    store.close()

    before, after = by_url(first), by_url(second)
    differences = {}
    for name, url in urls.items():
        one, two = before[url].counts, after[url].counts
        expected = (one.entries, 0, one.new_items + one.duplicate_total, one.off_topic, one.empty)
        got = (two.entries, two.new_items, two.duplicate_total, two.off_topic, two.empty)
        if after[url].status != "ok" or got != expected or not two.balanced():
            differences[name] = (after[url].status, expected, got)
    assert differences == {}
    assert stored == first.counts.new_items
    if keep_unmatched:
        assert second.counts.duplicates["guid"] > 0  # recognised before their text was read
        assert remembered == 0
    else:
        assert second.counts.off_topic == first.counts.off_topic > 0
        assert remembered == first.counts.off_topic


def test_scripting_news_daily_pages_keep_all_fifty_posts(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    """The real Scripting News capture (50 posts on 7 day pages, 2 GUIDs repeated) gives 50 items."""
    body = (WILD / "rsparser-scripting-news.rss").read_bytes()
    url = serve(httpserver, "/scripting.xml", body, "application/rss+xml")
    summary, store = poll_with(tmp_path, [url], poll="keep_unmatched = true\n")
    assert summary.counts.new_items == 50
    assert store.count("items") == 50
