"""Feed discovery against pages and feeds served on 127.0.0.1, through the real CLI."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from pytest_httpserver import HTTPServer

from tests.conftest import kant_story, rss
from watcher.sources.discover import alternate_links, sitemap_feed_links, sitemap_urls

ATOM = (
    b'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
    b"<title>Comments</title><id>urn:x</id><updated>2026-11-20T09:00:00Z</updated>"
    b"<entry><title>One</title><id>urn:1</id><updated>2026-11-20T09:00:00Z</updated>"
    b"<link href='https://news.example/c/1'/></entry></feed>"
)


def page(head: str = "") -> bytes:
    return f"<!doctype html><html><head><title>Site</title>{head}</head><body>Hi</body></html>".encode()


def feed_rows(db: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as connection:
        return connection.execute(
            "SELECT url, title, topics, origin FROM feeds ORDER BY id"
        ).fetchall()


def test_alternate_links_resolve_against_base_and_skip_other_types() -> None:
    """Relative hrefs follow <base>, rel and type are read loosely, non-feed links are ignored."""
    html = page(
        '<base href="/news/">'
        '<link rel="alternate" type="application/rss+xml" href="rss.xml">'
        '<link rel="Alternate nofollow" type="application/atom+xml; charset=utf-8" href="//cdn.example/a.atom">'
        '<link rel="alternate" type="text/html" href="/en/">'
        '<link rel="stylesheet" type="application/rss+xml" href="/not-alternate.xml">'
        '<link rel="alternate" type="application/rss+xml" href="javascript:alert(1)">'
    )
    assert alternate_links(html, "https://site.example/section/page.html") == [
        "https://site.example/news/rss.xml",
        "https://cdn.example/a.atom",
    ]


def test_sitemap_sources_and_feed_looking_entries() -> None:
    """robots.txt Sitemap lines come first, /sitemap.xml last; only feed-like entries are kept."""
    robots = "User-agent: *\nDisallow: /x\nSitemap: https://s.example/news-sitemap.xml\n"
    assert sitemap_urls(robots, "https://s.example/a/b") == [
        "https://s.example/news-sitemap.xml",
        "https://s.example/sitemap.xml",
    ]
    index = (
        b'<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        b"<sitemap><loc>https://s.example/pages.xml</loc></sitemap>"
        b"<sitemap><loc>https://s.example/rss/latest.xml</loc></sitemap></sitemapindex>"
    )
    assert sitemap_feed_links(index) == ["https://s.example/rss/latest.xml"]
    articles = (
        b'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        b"<url><loc>https://s.example/news/2026/kant-story</loc></url></urlset>"
    )
    assert sitemap_feed_links(articles) == []  # a news sitemap lists articles, not feeds
    assert sitemap_feed_links(b"<not xml") == []


def test_page_with_two_alternate_links_lists_both_and_adds_them(
    httpserver: HTTPServer, make_watcher
) -> None:
    """Both announced feeds are verified, shown with title and item count, and added."""
    httpserver.expect_request("/blog/").respond_with_data(
        page(
            '<link rel="alternate" type="application/rss+xml" title="Posts" href="posts.xml">'
            '<link rel="alternate" type="application/atom+xml" href="/comments.atom">'
        ),
        content_type="text/html",
    )
    httpserver.expect_request("/blog/posts.xml").respond_with_data(
        rss([kant_story(1), kant_story(2), kant_story(3)], title="Blog posts"),
        content_type="application/rss+xml",
    )
    httpserver.expect_request("/comments.atom").respond_with_data(
        ATOM, content_type="application/atom+xml"
    )
    watcher = make_watcher()

    result = watcher(
        "feeds", "discover", httpserver.url_for("/blog/"), "--add", "--topic", "kant-air-base"
    )

    assert result.exit_code == 0, result.output
    posts, comments = httpserver.url_for("/blog/posts.xml"), httpserver.url_for("/comments.atom")
    assert "Blog posts" in result.output
    assert "Comments" in result.output
    assert f"added {posts}" in result.output
    assert f"added {comments}" in result.output
    assert feed_rows(watcher.db) == [
        (posts, "Blog posts", '["kant-air-base"]', "discover"),
        (comments, "Comments", '["kant-air-base"]', "discover"),
    ]
    paths = [request.path for request, _response in httpserver.log]
    assert "/feed" not in paths  # common paths are only guessed when the page links to nothing


def test_page_without_links_falls_back_to_the_feed_path(
    httpserver: HTTPServer, make_watcher
) -> None:
    """A page that announces nothing still yields the site's /feed."""
    httpserver.expect_request("/").respond_with_data(page(), content_type="text/html")
    httpserver.expect_request("/feed").respond_with_data(
        rss([kant_story(4), kant_story(5)], title="Site feed"), content_type="text/xml"
    )
    watcher = make_watcher()

    result = watcher("feeds", "discover", httpserver.url_for("/"))

    assert result.exit_code == 0, result.output
    assert httpserver.url_for("/feed") in result.output
    assert "Site feed" in result.output
    assert "path" in result.output
    assert not watcher.db.exists()  # without --add the database is not even opened


def test_same_document_under_two_paths_is_listed_once(httpserver: HTTPServer, make_watcher) -> None:
    """/feed and /rss.xml serving one document are one feed."""
    body = rss([kant_story(6)], title="One feed")
    httpserver.expect_request("/").respond_with_data(page(), content_type="text/html")
    httpserver.expect_request("/feed").respond_with_data(body, content_type="text/xml")
    httpserver.expect_request("/rss.xml").respond_with_data(body, content_type="text/xml")
    watcher = make_watcher()

    result = watcher("feeds", "discover", httpserver.url_for("/"), "--add")

    assert result.exit_code == 0, result.output
    assert [row[0] for row in feed_rows(watcher.db)] == [httpserver.url_for("/feed")]


def test_feed_address_is_recognised_as_a_feed(httpserver: HTTPServer, make_watcher) -> None:
    """Given a feed's own address, discovery says so and adds that address."""
    httpserver.expect_request("/news.rss").respond_with_data(
        rss([kant_story(7), kant_story(8)], title="Wire"), content_type="application/rss+xml"
    )
    url = httpserver.url_for("/news.rss")
    watcher = make_watcher()

    result = watcher("feeds", "discover", url, "--add", "--interval", "15m")

    assert result.exit_code == 0, result.output
    assert f"{url} is a feed: Wire, 2 items" in result.output
    with sqlite3.connect(watcher.db) as connection:
        assert connection.execute("SELECT url, interval_seconds FROM feeds").fetchall() == [
            (url, 900.0)
        ]


def test_pick_adds_only_the_chosen_feed(httpserver: HTTPServer, make_watcher) -> None:
    """--pick 2 adds the second feed of the list and nothing else."""
    httpserver.expect_request("/").respond_with_data(
        page(
            '<link rel="alternate" type="application/rss+xml" href="/a.xml">'
            '<link rel="alternate" type="application/rss+xml" href="/b.xml">'
        ),
        content_type="text/html",
    )
    httpserver.expect_request("/a.xml").respond_with_data(rss([kant_story(1)], title="A"))
    httpserver.expect_request("/b.xml").respond_with_data(rss([kant_story(2)], title="B"))
    watcher = make_watcher()

    result = watcher("feeds", "discover", httpserver.url_for("/"), "--add", "--pick", "2")

    assert result.exit_code == 0, result.output
    assert [row[0] for row in feed_rows(watcher.db)] == [httpserver.url_for("/b.xml")]
    bad = watcher("feeds", "discover", httpserver.url_for("/"), "--add", "--pick", "3")
    assert bad.exit_code == 2
    assert "no feed number 3" in bad.output


def test_sitemap_index_entry_that_is_a_feed_is_found(httpserver: HTTPServer, make_watcher) -> None:
    """With no links and no common path, robots.txt's sitemap index leads to the news feed."""
    httpserver.expect_request("/").respond_with_data(page(), content_type="text/html")
    httpserver.expect_request("/robots.txt").respond_with_data(
        f"Sitemap: {httpserver.url_for('/maps/index.xml')}\n", content_type="text/plain"
    )
    httpserver.expect_request("/maps/index.xml").respond_with_data(
        '<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"<sitemap><loc>{httpserver.url_for('/maps/pages.xml')}</loc></sitemap>"
        f"<sitemap><loc>{httpserver.url_for('/news/rss-latest')}</loc></sitemap></sitemapindex>",
        content_type="application/xml",
    )
    httpserver.expect_request("/news/rss-latest").respond_with_data(
        rss([kant_story(9)], title="Latest news"), content_type="application/rss+xml"
    )
    watcher = make_watcher()

    result = watcher("feeds", "discover", httpserver.url_for("/"))

    assert result.exit_code == 0, result.output
    assert "Latest news" in result.output
    assert "sitemap" in result.output


def test_site_without_feeds_is_a_one_line_error(httpserver: HTTPServer, make_watcher) -> None:
    """No feed anywhere: exit 1 with a message naming the address, no traceback."""
    httpserver.expect_request("/").respond_with_data(page(), content_type="text/html")
    watcher = make_watcher()

    result = watcher("feeds", "discover", httpserver.url_for("/"))

    assert result.exit_code == 1
    assert f"no feeds found at {httpserver.url_for('/')}" in result.output
    assert "Traceback" not in result.output


def test_unreachable_address_and_bad_url_are_one_line_errors(
    httpserver: HTTPServer, make_watcher
) -> None:
    """A 404 page and a non-http address end with a message, not a traceback."""
    httpserver.expect_request("/gone").respond_with_data("no", status=404)
    watcher = make_watcher()

    missing = watcher("feeds", "discover", httpserver.url_for("/gone"))
    assert missing.exit_code == 1
    assert "HTTP 404" in missing.output
    bad = watcher("feeds", "discover", "ftp://example.org/")
    assert bad.exit_code == 1
    assert "http(s)" in bad.output


def test_add_options_without_add_are_refused(make_watcher) -> None:
    """--pick, --topic and --interval only make sense with --add; alone they are an error."""
    watcher = make_watcher()
    for option in (["--pick", "1"], ["--topic", "kant-air-base"], ["--interval", "1h"]):
        result = watcher("feeds", "discover", "http://127.0.0.1:9/", *option)
        assert result.exit_code == 2
        assert f"{option[0]} needs --add" in result.output
