"""Full article text: pages served on 127.0.0.1, polled through the real CLI into a real SQLite
file with the default worker pool."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.articles import BOILERPLATE, KANT_PARAGRAPHS, article_page, paywall_page
from tests.conftest import rss, rss_item

SHORT = "Kant air base in Kyrgyzstan gets visitors."
"""A feed summary as headline-only feeds give them: it matches the topic and says little."""

OFF_TOPIC_PARAGRAPHS = (
    "The harbour authority reopened the northern pier after a week of repairs to its "
    "timber decking and railings, which had been damaged in the autumn storms.",
    "Fishing boats queued at dawn to land their catch, and the fish market extended its "
    "opening hours to clear the backlog before the weekend.",
    "A spokesperson said the southern pier would close for similar work in the spring, "
    "and that ferry departures would not be affected by either project.",
)


def rows(db: Path, sql: str, params: Sequence[object] = ()) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as connection:
        return connection.execute(sql, list(params)).fetchall()


def requested(httpserver: HTTPServer, path: str) -> int:
    """How many times the server was asked for ``path``."""
    return sum(1 for request, _response in httpserver.log if request.path == path)


def serve_robots(httpserver: HTTPServer, body: str | None = None) -> None:
    """robots.txt with ``body``, or a 404 (no robots.txt: everything allowed)."""
    if body is None:
        httpserver.expect_request("/robots.txt").respond_with_data("", status=404)
    else:
        httpserver.expect_request("/robots.txt").respond_with_data(body, content_type="text/plain")


def serve_page(httpserver: HTTPServer, path: str, page: bytes, status: int = 200) -> str:
    httpserver.expect_request(path).respond_with_data(
        page, status=status, content_type="text/html; charset=utf-8"
    )
    return httpserver.url_for(path)


def serve_feed(httpserver: HTTPServer, path: str, items: Sequence[str]) -> str:
    httpserver.expect_request(path).respond_with_data(
        rss(items), content_type="application/rss+xml"
    )
    return httpserver.url_for(path)


def feeds_toml(*feeds: tuple[str, str]) -> str:
    """``[[feeds]]`` tables: (url, extra TOML lines) each."""
    return "".join(f'\n[[feeds]]\nurl = "{url}"\n{extra}\n' for url, extra in feeds)


def kant_entry(
    httpserver: HTTPServer, number: int, summary: str = SHORT, *, path: str | None = None
) -> str:
    return rss_item(
        f"Kant air base visit {number}",
        httpserver.url_for(path or f"/news/kant-{number}"),
        summary,
        guid=f"kant-{number}",
    )


def item_rows(db: Path) -> dict[str, tuple[object, ...]]:
    """By URL path: (full_text_status, content, summary, author)."""
    found = rows(db, "SELECT url, full_text_status, content, summary, author FROM items")
    return {str(row[0]).split("/", 3)[3]: row[1:] for row in found}


def test_article_text_replaces_the_headline_without_navigation_or_boilerplate(
    httpserver: HTTPServer, make_watcher
) -> None:
    """The stored item carries the article's paragraphs and author, none of the page's
    navigation, cookie banner, sidebar, comments or footer, and the feed text as summary."""
    serve_robots(httpserver)
    serve_page(httpserver, "/news/kant-1", article_page("Engineers inspect Kant", KANT_PARAGRAPHS))
    feed = serve_feed(httpserver, "/feed.xml", [kant_entry(httpserver, 1)])
    watcher = make_watcher(extra=feeds_toml((feed, 'full_text = "always"')))

    result = watcher("poll", "--all")
    assert result.exit_code == 0, result.output

    status, content, summary, author = item_rows(watcher.db)["news/kant-1"]
    assert status == "extracted"
    assert author == "Dana Okoye"
    assert summary == SHORT
    text = str(content)
    for paragraph in KANT_PARAGRAPHS:
        assert paragraph in text
    for noise in BOILERPLATE:
        assert noise[:40] not in text
    assert "Engineers inspect Kant" not in text  # the headline is the title, not the body
    cached = rows(watcher.db, "SELECT status, http_status, author, published_at FROM article_pages")
    assert cached == [("extracted", 200, "Dana Okoye", "2026-11-19T07:30:00Z")]


def test_keywords_found_only_in_the_article_become_tags(
    httpserver: HTTPServer, make_watcher
) -> None:
    """Tags are computed on the full text: keywords the feed summary lacks (CSTO, air defence)
    are tagged once the article is fetched, and not when full text is off."""
    serve_robots(httpserver)
    serve_page(httpserver, "/news/kant-1", article_page("Engineers inspect Kant", KANT_PARAGRAPHS))
    feed = serve_feed(httpserver, "/feed.xml", [kant_entry(httpserver, 1)])

    def keyword_tags(mode: str) -> set[object]:
        watcher = make_watcher(extra=feeds_toml((feed, f'full_text = "{mode}"')))
        watcher.db.unlink(missing_ok=True)
        assert watcher("poll", "--all").exit_code == 0
        return {
            row[0]
            for row in rows(
                watcher.db,
                "SELECT tags.name FROM item_tags JOIN tags ON tags.id = item_tags.tag_id "
                "WHERE tags.kind = 'keyword'",
            )
        }

    without = keyword_tags("never")
    with_text = keyword_tags("always")
    assert {"csto", "air defence"} <= with_text
    assert not {"csto", "air defence"} & without
    assert "kant" in without


def test_robots_disallow_is_respected_and_the_page_never_requested(
    httpserver: HTTPServer, make_watcher
) -> None:
    """A page robots.txt disallows is never requested; its item keeps the feed text with
    status robots, while an allowed page of the same site is extracted; robots.txt is read
    once for both."""
    serve_robots(httpserver, "User-agent: *\nDisallow: /news/kant-2\n")
    serve_page(httpserver, "/news/kant-1", article_page("Allowed story", KANT_PARAGRAPHS))
    serve_page(httpserver, "/news/kant-2", article_page("Forbidden story", KANT_PARAGRAPHS))
    feed = serve_feed(
        httpserver, "/feed.xml", [kant_entry(httpserver, 1), kant_entry(httpserver, 2)]
    )
    watcher = make_watcher(extra=feeds_toml((feed, 'full_text = "always"')))

    assert watcher("poll", "--all").exit_code == 0

    items = item_rows(watcher.db)
    assert items["news/kant-2"][:3] == ("robots", "", SHORT)
    assert items["news/kant-1"][0] == "extracted"
    assert requested(httpserver, "/news/kant-2") == 0
    assert requested(httpserver, "/news/kant-1") == 1
    assert requested(httpserver, "/robots.txt") == 1


def test_rules_for_watcher_by_name_apply(httpserver: HTTPServer, make_watcher) -> None:
    """A robots.txt group naming watcher's product token applies to it, over the * group."""
    serve_robots(httpserver, "User-agent: *\nAllow: /\n\nUser-agent: watcher\nDisallow: /news/\n")
    serve_page(httpserver, "/news/kant-1", article_page("Story", KANT_PARAGRAPHS))
    feed = serve_feed(httpserver, "/feed.xml", [kant_entry(httpserver, 1)])
    watcher = make_watcher(extra=feeds_toml((feed, 'full_text = "always"')))

    assert watcher("poll", "--all").exit_code == 0
    assert item_rows(watcher.db)["news/kant-1"][0] == "robots"
    assert requested(httpserver, "/news/kant-1") == 0


def test_robots_txt_that_cannot_be_read_disallows_the_site(
    httpserver: HTTPServer, make_watcher
) -> None:
    """A robots.txt answering 503 means the site is in trouble: no page of it is fetched."""
    httpserver.expect_request("/robots.txt").respond_with_data("busy", status=503)
    serve_page(httpserver, "/news/kant-1", article_page("Story", KANT_PARAGRAPHS))
    feed = serve_feed(httpserver, "/feed.xml", [kant_entry(httpserver, 1)])
    watcher = make_watcher(extra=feeds_toml((feed, 'full_text = "always"')))

    assert watcher("poll", "--all").exit_code == 0
    assert item_rows(watcher.db)["news/kant-1"][:3] == ("failed:robots_unreachable", "", SHORT)
    assert requested(httpserver, "/news/kant-1") == 0


def test_slow_page_times_out_while_the_other_items_are_stored_with_full_text(
    httpserver: HTTPServer, make_watcher
) -> None:
    """A page slower than [full_text].timeout fails alone: its item keeps the feed text, the
    feed's other items and a second feed are stored with their articles, the feed is ok."""
    serve_robots(httpserver)
    finish = threading.Event()

    def slow(_request: Request) -> Response:
        finish.wait(10)
        return Response(article_page("Slow", KANT_PARAGRAPHS), content_type="text/html")

    httpserver.expect_request("/news/slow").respond_with_handler(slow)
    for number in (2, 3, 4):
        paragraphs = (*KANT_PARAGRAPHS, f"This is the version numbered {number}.")
        serve_page(httpserver, f"/news/kant-{number}", article_page(f"Story {number}", paragraphs))
    entries = [kant_entry(httpserver, 1, path="/news/slow")]
    entries += [kant_entry(httpserver, n) for n in (2, 3)]
    first = serve_feed(httpserver, "/first.xml", entries)
    second = serve_feed(httpserver, "/second.xml", [kant_entry(httpserver, 4)])
    watcher = make_watcher(
        extra=feeds_toml((first, ""), (second, ""))
        + '\n[full_text]\nmode = "auto"\ntimeout = "1s"\n'
    )

    try:
        result = watcher("poll", "--all")
    finally:
        finish.set()
    assert result.exit_code == 0, result.output
    assert "2 ok" in result.output

    items = item_rows(watcher.db)
    assert items["news/slow"][:3] == ("failed:timeout", "", SHORT)
    for number in (2, 3, 4):
        status, content, _summary, _author = items[f"news/kant-{number}"]
        assert status == "extracted"
        assert f"This is the version numbered {number}." in str(content)
    assert rows(watcher.db, "SELECT outcome, error FROM fetches") == [("ok", None)] * 2


def test_forbidden_paywalled_and_empty_pages_keep_the_feed_text_and_record_why(
    httpserver: HTTPServer, make_watcher
) -> None:
    """A 403, a subscribers-only teaser, a page with no article text and one with less text
    than the feed each leave the item with its feed text and a failed:<reason> status; the
    feed itself is ok."""
    serve_robots(httpserver)
    serve_page(httpserver, "/news/kant-1", b"<html><body>Forbidden</body></html>", status=403)
    serve_page(
        httpserver,
        "/news/kant-2",
        paywall_page("Locked story", "Engineers from Moscow visited the base on Tuesday."),
    )
    serve_page(
        httpserver,
        "/news/kant-3",
        b'<html><body><div id="app"></div><script src="/app.js"></script></body></html>',
    )
    serve_page(httpserver, "/news/kant-4", article_page("Brief", ["Kant base visited."]))
    feed = serve_feed(httpserver, "/feed.xml", [kant_entry(httpserver, n) for n in (1, 2, 3, 4)])
    watcher = make_watcher(extra=feeds_toml((feed, 'full_text = "always"')))

    result = watcher("poll", "--all")
    assert result.exit_code == 0, result.output
    assert "1 ok" in result.output

    items = item_rows(watcher.db)
    assert items["news/kant-1"][:3] == ("failed:http_403", "", SHORT)
    assert items["news/kant-2"][:3] == ("failed:paywall", "", SHORT)
    assert items["news/kant-3"][:3] == ("failed:empty", "", SHORT)
    assert items["news/kant-4"][:3] == ("failed:short", "", SHORT)
    assert rows(watcher.db, "SELECT http_status, status FROM article_pages ORDER BY url") == [
        (403, "failed:http_403"),
        (200, "failed:paywall"),
        (200, "failed:empty"),
        (200, "extracted"),
    ]


def test_one_article_is_fetched_once_across_feeds_and_polls(
    httpserver: HTTPServer, make_watcher
) -> None:
    """Two feeds linking one article in the same pass, and a third feed linking it in a later
    pass, cause one download of the page; every feed's item gets its text."""
    serve_robots(httpserver)
    serve_page(httpserver, "/news/kant-1", article_page("Shared story", KANT_PARAGRAPHS))
    link = httpserver.url_for("/news/kant-1")
    feeds = [
        serve_feed(
            httpserver,
            f"/feed{n}.xml",
            [rss_item(f"Kant air base, outlet {n}", f"{link}?utm_source=feed{n}", SHORT)],
        )
        for n in range(3)
    ]
    mode = '\n[full_text]\nmode = "always"\n'
    first = make_watcher(extra=feeds_toml((feeds[0], ""), (feeds[1], "")) + mode)
    assert first("poll", "--all").exit_code == 0
    assert requested(httpserver, "/news/kant-1") == 1

    later = make_watcher(extra=feeds_toml(*((url, "") for url in feeds)) + mode)
    assert later("poll", "--all").exit_code == 0
    assert requested(httpserver, "/news/kant-1") == 1
    assert requested(httpserver, "/feed2.xml") == 1
    assert rows(later.db, "SELECT count(*), count(DISTINCT feed_id) FROM sightings") == [(3, 3)]
    assert rows(later.db, "SELECT full_text_status FROM items") == [("extracted",)]


def test_auto_fetches_only_short_entries(httpserver: HTTPServer, make_watcher) -> None:
    """In auto mode an entry whose feed text reaches short_words keeps it unfetched
    (skipped:long); a short one gets the article."""
    serve_robots(httpserver)
    serve_page(httpserver, "/news/kant-1", article_page("Short entry", KANT_PARAGRAPHS))
    serve_page(httpserver, "/news/kant-2", article_page("Long entry", KANT_PARAGRAPHS))
    long_summary = " ".join(KANT_PARAGRAPHS[:2])  # 50 words
    feed = serve_feed(
        httpserver,
        "/feed.xml",
        [kant_entry(httpserver, 1), kant_entry(httpserver, 2, summary=long_summary)],
    )
    watcher = make_watcher(
        extra=feeds_toml((feed, 'full_text = "auto"')) + "\n[full_text]\nshort_words = 40\n"
    )

    assert watcher("poll", "--all").exit_code == 0
    items = item_rows(watcher.db)
    assert items["news/kant-1"][0] == "extracted"
    assert items["news/kant-2"][:3] == ("skipped:long", "", long_summary)
    assert requested(httpserver, "/news/kant-2") == 0


def test_never_fetches_nothing_and_is_the_default(httpserver: HTTPServer, make_watcher) -> None:
    """Without full_text settings no page and no robots.txt is requested and items have no
    full-text status."""
    serve_robots(httpserver)
    serve_page(httpserver, "/news/kant-1", article_page("Story", KANT_PARAGRAPHS))
    feed = serve_feed(httpserver, "/feed.xml", [kant_entry(httpserver, 1)])
    watcher = make_watcher([feed])

    assert watcher("poll", "--all").exit_code == 0
    assert item_rows(watcher.db)["news/kant-1"][:2] == (None, "")
    assert requested(httpserver, "/news/kant-1") == 0
    assert requested(httpserver, "/robots.txt") == 0


def test_only_matched_items_are_enriched_unless_the_feed_is_dedicated(
    httpserver: HTTPServer, make_watcher
) -> None:
    """An entry whose feed text matches no topic is neither fetched nor stored; in a feed
    marked dedicated its article is fetched and, matching on the full text, it is stored
    in the topic (while an article off the topic is fetched and still dropped)."""
    serve_robots(httpserver)
    serve_page(httpserver, "/news/kant-1", article_page("Matched", KANT_PARAGRAPHS))
    visit = (*KANT_PARAGRAPHS, "The delegation is expected to return in the new year.")
    serve_page(httpserver, "/news/visit", article_page("Vague headline", visit))
    serve_page(httpserver, "/news/harbour", article_page("Harbour", OFF_TOPIC_PARAGRAPHS))
    entries = [
        kant_entry(httpserver, 1),
        rss_item("Engineers arrive", httpserver.url_for("/news/visit"), "A delegation arrived."),
        rss_item("Pier reopens", httpserver.url_for("/news/harbour"), "The pier is open again."),
    ]
    feed = serve_feed(httpserver, "/feed.xml", entries)

    plain = make_watcher(extra=feeds_toml((feed, 'full_text = "always"')))
    result = plain("poll", "--all")
    assert "1 new items" in result.output
    assert "2 off-topic" in result.output
    assert requested(httpserver, "/news/visit") == 0
    assert requested(httpserver, "/news/harbour") == 0

    plain.db.unlink()
    dedicated = make_watcher(extra=feeds_toml((feed, 'full_text = "always"\ndedicated = true')))
    result = dedicated("poll", "--all")
    assert "2 new items" in result.output
    assert "1 off-topic" in result.output
    assert requested(httpserver, "/news/visit") == 1
    assert requested(httpserver, "/news/harbour") == 1
    stored = rows(
        dedicated.db,
        "SELECT items.full_text_status, item_topics.topic FROM items "
        "JOIN item_topics ON item_topics.item_id = items.id WHERE items.title = ?",
        ["Engineers arrive"],
    )
    assert stored == [("extracted", "kant-air-base")]
    counts = rows(dedicated.db, "SELECT entries, new_items, off_topic FROM fetches")
    assert counts == [(3, 2, 1)]


def test_a_failed_page_is_tried_again_only_after_retry_failed_after(
    httpserver: HTTPServer, make_watcher
) -> None:
    """A cached failure is reused while it is younger than retry_failed_after (no new
    request) and the page is asked for again once it is older."""
    serve_robots(httpserver)
    serve_page(httpserver, "/news/kant-1", b"gone", status=404)
    feeds = [serve_feed(httpserver, f"/feed{n}.xml", [kant_entry(httpserver, 1)]) for n in range(3)]
    watcher = make_watcher(
        extra=feeds_toml(*((url, "") for url in feeds)) + '\n[full_text]\nmode = "always"\n'
    )

    assert watcher("poll", "--feed", feeds[0]).exit_code == 0
    assert watcher("poll", "--feed", feeds[1]).exit_code == 0
    assert requested(httpserver, "/news/kant-1") == 1
    with sqlite3.connect(watcher.db) as connection:
        connection.execute("UPDATE article_pages SET fetched_at = '2000-01-01T00:00:00Z'")
    assert watcher("poll", "--feed", feeds[2]).exit_code == 0
    assert requested(httpserver, "/news/kant-1") == 2
    assert rows(watcher.db, "SELECT full_text_status FROM items") == [("failed:http_404",)]


@pytest.mark.parametrize("value", ["sometimes", "true"])
def test_an_unknown_full_text_mode_names_the_key(make_watcher, value: str) -> None:
    """full_text accepts always, auto or never; anything else names the feed's key."""
    watcher = make_watcher(extra=feeds_toml(("https://a.example/rss", f'full_text = "{value}"')))
    result = watcher("feeds", "list")
    assert result.exit_code != 0
    assert "feeds[0].full_text" in result.output


def test_posts_sharing_one_link_are_not_given_that_pages_text(
    httpserver: HTTPServer, make_watcher
) -> None:
    """Two posts of one fetch that link the same page (a link blog) are different items: the
    page is not fetched for them, so its text cannot merge them (skipped:shared_url)."""
    serve_robots(httpserver)
    serve_page(httpserver, "/news/kant-1", article_page("Linked story", KANT_PARAGRAPHS))
    link = httpserver.url_for("/news/kant-1")
    entries = [
        rss_item("Kant air base: first take", link, f"{SHORT} One view.", guid="p1"),
        rss_item("Kant air base: second take", link, f"{SHORT} Another view.", guid="p2"),
    ]
    feed = serve_feed(httpserver, "/feed.xml", entries)
    watcher = make_watcher(extra=feeds_toml((feed, 'full_text = "always"')))

    assert watcher("poll", "--all").exit_code == 0
    assert rows(watcher.db, "SELECT full_text_status, content FROM items") == [
        ("skipped:shared_url", ""),
        ("skipped:shared_url", ""),
    ]
    assert requested(httpserver, "/news/kant-1") == 0


def test_article_downloads_keep_to_the_per_host_limit(httpserver: HTTPServer, make_watcher) -> None:
    """With [full_text].per_host = 1 the server never sees two article requests at once,
    however many items want their page."""
    serve_robots(httpserver)
    lock = threading.Lock()
    in_flight = [0]
    most = [0]

    def page(request: Request) -> Response:
        with lock:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
        threading.Event().wait(0.2)  # long enough for concurrent requests to overlap
        with lock:
            in_flight[0] -= 1
        number = request.path.rsplit("-", 1)[1]
        paragraphs = (*KANT_PARAGRAPHS, f"This is the version numbered {number}.")
        return Response(article_page(f"Story {number}", paragraphs), content_type="text/html")

    for number in range(6):
        httpserver.expect_request(f"/news/kant-{number}").respond_with_handler(page)
    feed = serve_feed(httpserver, "/feed.xml", [kant_entry(httpserver, n) for n in range(6)])
    watcher = make_watcher(
        extra=feeds_toml((feed, 'full_text = "always"')) + "\n[full_text]\nper_host = 1\n"
    )

    assert watcher("poll", "--all").exit_code == 0
    statuses = rows(watcher.db, "SELECT full_text_status FROM items")
    assert statuses == [("extracted",)] * 6
    assert most[0] == 1


def test_an_article_that_does_not_match_the_topic_its_feed_text_matched_keeps_the_feed_text(
    httpserver: HTTPServer, make_watcher
) -> None:
    """When the feed text matches a topic and the page's text does not (a wrong page, a bad
    extraction), the item is stored as the feed gave it, with status failed:unmatched."""
    serve_robots(httpserver)
    serve_page(httpserver, "/news/pier", article_page("Harbour", OFF_TOPIC_PARAGRAPHS))
    entry = rss_item("Engineers arrive", httpserver.url_for("/news/pier"), SHORT)
    feed = serve_feed(httpserver, "/feed.xml", [entry])
    watcher = make_watcher(extra=feeds_toml((feed, 'full_text = "always"')))

    assert watcher("poll", "--all").exit_code == 0
    assert item_rows(watcher.db)["news/pier"][:3] == ("failed:unmatched", "", SHORT)
    assert rows(watcher.db, "SELECT topic FROM item_topics") == [("kant-air-base",)]


def test_an_extracted_article_is_reused_for_cache_lifetime_then_fetched_again(
    httpserver: HTTPServer, make_watcher
) -> None:
    """Within cache_lifetime a later feed linking the article uses the stored text; once the
    row is older the page is downloaded again."""
    serve_robots(httpserver)
    serve_page(httpserver, "/news/kant-1", article_page("Story", KANT_PARAGRAPHS))
    feeds = [serve_feed(httpserver, f"/feed{n}.xml", [kant_entry(httpserver, 1)]) for n in range(3)]
    watcher = make_watcher(
        extra=feeds_toml(*((url, "") for url in feeds))
        + '\n[full_text]\nmode = "always"\ncache_lifetime = "7d"\n'
    )

    assert watcher("poll", "--feed", feeds[0]).exit_code == 0
    with sqlite3.connect(watcher.db) as connection:
        connection.execute(
            "UPDATE article_pages SET fetched_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '-6 days')"
        )
    assert watcher("poll", "--feed", feeds[1]).exit_code == 0
    assert requested(httpserver, "/news/kant-1") == 1
    with sqlite3.connect(watcher.db) as connection:
        connection.execute(
            "UPDATE article_pages SET fetched_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '-8 days')"
        )
    assert watcher("poll", "--feed", feeds[2]).exit_code == 0
    assert requested(httpserver, "/news/kant-1") == 2


def test_a_page_over_the_size_cap_is_not_read(httpserver: HTTPServer, make_watcher) -> None:
    """A page larger than [full_text].max_bytes fails too_large and the item keeps its feed
    text."""
    serve_robots(httpserver)
    serve_page(httpserver, "/news/kant-1", article_page("Story", KANT_PARAGRAPHS * 20))
    feed = serve_feed(httpserver, "/feed.xml", [kant_entry(httpserver, 1)])
    watcher = make_watcher(
        extra=feeds_toml((feed, 'full_text = "always"')) + "\n[full_text]\nmax_bytes = 4096\n"
    )

    assert watcher("poll", "--all").exit_code == 0
    assert item_rows(watcher.db)["news/kant-1"][:3] == ("failed:too_large", "", SHORT)


def test_article_pages_are_cached_by_the_writer_thread(
    httpserver: HTTPServer, make_watcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page cache is written on the writer thread's connection, never from the event
    loop, which would wait there while the writer's transaction holds the database."""
    from watcher.store import Store

    threads: list[str] = []
    original = Store.save_article_pages

    def recording(self: Store, pages: Sequence[object]) -> None:
        threads.append(threading.current_thread().name)
        original(self, pages)  # type: ignore[arg-type]

    monkeypatch.setattr(Store, "save_article_pages", recording)
    serve_robots(httpserver)
    serve_page(httpserver, "/news/kant-1", article_page("Kant story", KANT_PARAGRAPHS))
    feed = serve_feed(
        httpserver,
        "/feed.xml",
        [rss_item("Kant air base", httpserver.url_for("/news/kant-1"), SHORT)],
    )
    watcher = make_watcher(extra=feeds_toml((feed, "")) + '\n[full_text]\nmode = "always"\n')
    assert watcher("poll", "--all").exit_code == 0

    assert threads == ["watcher-writer"]
    assert rows(watcher.db, "SELECT status FROM article_pages") == [("extracted",)]
