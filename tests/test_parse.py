"""Parsing feed bytes: RSS 2.0, Atom, RDF, encodings, lenient recovery and non-feeds."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from watcher.errors import NotAFeed
from watcher.sources.parse import parse_feed

URL = "https://feeds.example/rss.xml"
XML_TYPE = {"content-type": "application/rss+xml"}

RSS = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel>
<title>Steppe Wire</title><link>https://steppe.example/</link><language>en-GB</language>
<item>
  <title>Hangar rebuilt at Kant</title>
  <link>https://steppe.example/news/1</link>
  <guid isPermaLink="false">steppe-1</guid>
  <description>&lt;p&gt;Workers &lt;b&gt;rebuilt&lt;/b&gt; a hangar.&lt;/p&gt;</description>
  <pubDate>Thu, 12 Oct 2023 17:43:00 +0600</pubDate>
  <author>desk@steppe.example (Desk)</author>
</item>
<item>
  <title>Second story</title>
  <link>https://steppe.example/news/2</link>
</item>
</channel></rss>"""

ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
<title>Valley Notes</title><link href="https://valley.example/"/>
<id>urn:valley</id><updated>2023-10-12T10:00:00Z</updated>
<entry>
  <id>tag:valley.example,2023:7</id>
  <title type="html">Radar &lt;em&gt;upgrade&lt;/em&gt;</title>
  <link rel="alternate" href="https://valley.example/radar"/>
  <updated>2023-10-12T10:00:00+06:00</updated>
  <published>2023-10-11T23:30:00-04:00</published>
  <summary>Short summary.</summary>
  <content type="html">&lt;p&gt;Full text of the radar story.&lt;/p&gt;</content>
</entry>
</feed>"""

RDF = b"""<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
         xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel rdf:about="https://old.example/"><title>Old School</title>
<link>https://old.example/</link><description>d</description></channel>
<item rdf:about="https://old.example/1">
  <title>RDF item</title><link>https://old.example/1</link>
  <description>Body of the RDF item.</description><dc:date>2023-10-12T08:00:00+03:00</dc:date>
</item>
</rdf:RDF>"""


def test_rss2_entries_have_every_field() -> None:
    """An RSS 2.0 item gives GUID, link, title, HTML summary, UTC date and author."""
    feed = parse_feed(RSS, XML_TYPE, URL)
    assert feed.title == "Steppe Wire"
    assert feed.link == "https://steppe.example/"
    assert feed.language == "en-GB"
    assert feed.warning is None
    assert len(feed.entries) == 2
    first = feed.entries[0]
    assert first.guid == "steppe-1"
    assert first.link == "https://steppe.example/news/1"
    assert first.title == "Hangar rebuilt at Kant"
    assert first.summary_html == "<p>Workers <b>rebuilt</b> a hangar.</p>"
    assert first.published == datetime(2023, 10, 12, 11, 43, tzinfo=UTC)
    assert first.author
    second = feed.entries[1]
    assert second.published is None
    assert second.summary_html is None


def test_atom_entry_has_content_and_published_date_in_utc() -> None:
    """Atom gives content separately from summary; published wins over updated."""
    feed = parse_feed(ATOM, {"content-type": "application/atom+xml"}, URL)
    assert feed.title == "Valley Notes"
    (entry,) = feed.entries
    assert entry.guid == "tag:valley.example,2023:7"
    assert entry.link == "https://valley.example/radar"
    assert entry.title == "Radar <em>upgrade</em>"
    assert entry.summary_html == "Short summary."
    assert entry.content_html == "<p>Full text of the radar story.</p>"
    assert entry.published == datetime(2023, 10, 12, 3, 30, tzinfo=UTC)


def test_rdf_feed_is_read() -> None:
    """RSS 1.0 (RDF) items are entries too, with their Dublin Core date."""
    feed = parse_feed(RDF, {"content-type": "application/rdf+xml"}, URL)
    assert feed.title == "Old School"
    (entry,) = feed.entries
    assert entry.title == "RDF item"
    assert entry.link == "https://old.example/1"
    assert entry.published == datetime(2023, 10, 12, 5, 0, tzinfo=UTC)


def test_script_in_feed_html_never_reaches_the_item_text() -> None:
    """Untrusted feed HTML becomes plain text: scripts and event handlers are gone from the item."""
    from watcher.normalize import normalize_entry

    body = RSS.replace(
        b"&lt;p&gt;Workers",
        b"&lt;script&gt;steal()&lt;/script&gt;&lt;p onclick='x()'&gt;Workers",
    )
    entry = parse_feed(body, XML_TYPE, URL).entries[0]
    item = normalize_entry(entry, now=datetime(2026, 11, 21, tzinfo=UTC))
    assert item is not None
    assert "steal" not in item.summary
    assert "onclick" not in item.summary
    assert "<" not in item.summary
    assert "Workers rebuilt a hangar." in item.summary


def test_ill_formed_but_readable_feed_yields_entries_with_a_warning() -> None:
    """A bare ampersand breaks XML, yet both items are still read and a warning says so."""
    body = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>Sloppy</title>'
        b"<item><title>Guns & butter</title><link>https://sloppy.example/1</link></item>"
        b"<item><title>Second</title><link>https://sloppy.example/2</link></item>"
        b"</channel></rss>"
    )
    feed = parse_feed(body, XML_TYPE, URL)
    assert [entry.link for entry in feed.entries] == [
        "https://sloppy.example/1",
        "https://sloppy.example/2",
    ]
    assert feed.warning is not None
    assert feed.warning.startswith("ill-formed feed")


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"content-type": "text/xml"},
        {"content-type": "text/html"},
        {"content-type": "text/plain"},
    ],
)
def test_well_formed_feed_with_a_careless_content_type_has_no_warning(
    headers: dict[str, str],
) -> None:
    """A missing or odd Content-Type on a valid feed is not reported as ill-formed."""
    feed = parse_feed(RSS, headers, URL)
    assert len(feed.entries) == 2
    assert feed.warning is None


def test_empty_channel_is_a_feed_with_no_entries() -> None:
    """A valid feed with no items is not an error."""
    body = b'<?xml version="1.0"?><rss version="2.0"><channel><title>Quiet</title></channel></rss>'
    feed = parse_feed(body, XML_TYPE, URL)
    assert feed.entries == ()
    assert feed.title == "Quiet"


@pytest.mark.parametrize(
    ("body", "headers", "reason"),
    [
        (
            b"<!DOCTYPE html><html><head><title>Home</title></head><body>Hi</body></html>",
            {"content-type": "text/html; charset=utf-8"},
            "HTML page",
        ),
        (b"<!-- cms --><html><body><p>Welcome</p></body></html>", {}, "HTML page"),
        (b"\x00\x01\x02 binary junk <<<", {"content-type": "application/xml"}, "not an RSS"),
        (b'{"items": []}', {"content-type": "application/json"}, "not an RSS"),
        (b"<?xml version='1.0'?><catalog><book/></catalog>", XML_TYPE, "not an RSS"),
        (b"  \n ", XML_TYPE, "empty body"),
    ],
)
def test_html_pages_and_junk_raise_not_a_feed(
    body: bytes, headers: dict[str, str], reason: str
) -> None:
    """Anything that is not RSS/Atom/RDF raises NotAFeed with a reason, never a parser error."""
    with pytest.raises(NotAFeed, match=reason) as caught:
        parse_feed(body, headers, URL)
    assert caught.value.url == URL
    assert caught.value.kind == "not_a_feed"


def test_windows_1251_declared_in_the_prolog_is_decoded() -> None:
    """A Cyrillic feed in windows-1251 comes out as readable text, with no warning."""
    body = (
        '<?xml version="1.0" encoding="windows-1251"?><rss version="2.0"><channel>'
        "<title>Вести Долины</title><language>ru</language>"
        "<item><title>Авиабаза Кант расширяется</title><link>https://vesti.example/1</link>"
        "<description>Новый ангар и «взлётная» полоса</description>"
        "<pubDate>Thu, 12 Oct 2023 09:00:00 +0300</pubDate></item></channel></rss>"
    ).encode("cp1251")
    feed = parse_feed(body, {"content-type": "text/xml"}, URL)
    assert feed.title == "Вести Долины"
    (entry,) = feed.entries
    assert entry.title == "Авиабаза Кант расширяется"
    assert entry.summary_html == "Новый ангар и «взлётная» полоса"
    assert entry.published == datetime(2023, 10, 12, 6, 0, tzinfo=UTC)
    assert feed.warning is None


def test_charset_from_the_http_header_is_used_when_the_prolog_has_none() -> None:
    """A KOI8-R body announced only by its Content-Type charset is decoded correctly."""
    body = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Лента</title>'
        "<item><title>Бишкек и Кант</title><link>https://koi.example/1</link></item>"
        "</channel></rss>"
    ).encode("koi8-r")
    feed = parse_feed(body, {"content-type": "application/rss+xml; charset=koi8-r"}, URL)
    assert feed.entries[0].title == "Бишкек и Кант"


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("Thu, 12 Oct 2023 17:43:00 GMT", datetime(2023, 10, 12, 17, 43, tzinfo=UTC)),
        ("Thu, 12 Oct 2023 17:43:00 +0600", datetime(2023, 10, 12, 11, 43, tzinfo=UTC)),
        ("Thu, 12 Oct 2023 17:43:00 EST", datetime(2023, 10, 12, 22, 43, tzinfo=UTC)),
        ("2023-10-12T17:43:00-02:00", datetime(2023, 10, 12, 19, 43, tzinfo=UTC)),
        ("not a date", None),
    ],
)
@pytest.mark.filterwarnings("error::DeprecationWarning")
def test_entry_dates_become_utc(stamp: str, expected: datetime | None) -> None:
    """RFC 822 and ISO 8601 dates with any offset become UTC; junk gives None, quietly."""
    body = RSS.replace(b"Thu, 12 Oct 2023 17:43:00 +0600", stamp.encode())
    assert parse_feed(body, XML_TYPE, URL).entries[0].published == expected


def test_atom_entry_without_published_uses_updated() -> None:
    """An Atom entry that only has <updated> is dated by it."""
    body = ATOM.replace(b"<published>2023-10-11T23:30:00-04:00</published>", b"")
    (entry,) = parse_feed(body, XML_TYPE, URL).entries
    assert entry.published == datetime(2023, 10, 12, 4, 0, tzinfo=UTC)
