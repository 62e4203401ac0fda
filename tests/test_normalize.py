"""Normalize: canonical URLs, HTML to text, UTC dates, language and the content hash."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from watcher.models import RawEntry
from watcher.normalize import (
    _ASCII_BLANKS,
    _OTHER_BLANKS,
    canonical_url,
    clean_text,
    content_hash,
    detect_language,
    html_to_text,
    is_http_url,
    make_item,
    normalize_entry,
    to_utc_iso,
    without_tracking,
)

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
LONG_ENGLISH = (
    "The regional government said on Tuesday that the new runway at the airfield "
    "would open to cargo flights next spring, after a long delay caused by funding."
)
LONG_RUSSIAN = (
    "Правительство региона сообщило во вторник, что новая взлётная полоса аэродрома "
    "откроется для грузовых рейсов следующей весной после долгой задержки."
)


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        ("https://news.example/a?utm_source=rss&utm_medium=x", "https://news.example/a"),
        ("https://news.example/a?fbclid=abc&id=7", "https://news.example/a?id=7"),
        ("https://news.example/a?gclid=1&UTM_Campaign=2", "https://news.example/a"),
        ("https://NEWS.Example/Path/Case", "https://news.example/Path/Case"),
        ("https://www.news.example/a", "https://news.example/a"),
        ("https://news.example:443/a", "https://news.example/a"),
        ("http://news.example:80/a", "https://news.example/a"),
        ("https://news.example:8443/a", "https://news.example:8443/a"),
        ("https://news.example/a#comments", "https://news.example/a"),
        ("https://news.example/a/", "https://news.example/a"),
        ("https://news.example/", "https://news.example"),
        ("https://news.example/a?b=2&a=1&c=", "https://news.example/a?a=1&b=2&c="),
        ("https://news.example//a//b", "https://news.example/a/b"),
        ("  https://news.example/a  ", "https://news.example/a"),
        ("https://[2001:db8::1]:8080/a/", "https://[2001:db8::1]:8080/a"),
    ],
)
def test_canonical_url_removes_what_does_not_identify_the_article(url: str, canonical: str) -> None:
    """Tracking parameters, host case, www., default port, fragment and trailing slash go."""
    assert canonical_url(url) == canonical


def test_canonical_url_folds_every_spelling_of_one_article_together() -> None:
    """All the ways outlets link one article give one canonical URL."""
    spellings = [
        "http://www.news.example/kant/story?id=5&utm_source=tw",
        "https://NEWS.EXAMPLE:443/kant/story/?fbclid=zz&id=5#top",
        "https://news.example/kant/story?gclid=q&id=5",
    ]
    assert {canonical_url(url) for url in spellings} == {"https://news.example/kant/story?id=5"}


@pytest.mark.parametrize(
    "url",
    [
        None,
        "",
        "ftp://news.example/a",
        "mailto:desk@news.example",
        "javascript:alert(1)",
        "//news.example/a",
        "/relative/path",
        "https://news.example:99999/a",
    ],
)
def test_canonical_url_of_a_non_http_url_is_none(url: str | None) -> None:
    """Only absolute http(s) URLs have a canonical form."""
    assert canonical_url(url) is None


def test_is_http_url_accepts_only_absolute_http() -> None:
    """http and https with a host pass; other schemes and relative URLs do not."""
    assert is_http_url("HTTPS://news.example/x")
    assert is_http_url("http://127.0.0.1:8000/feed")
    assert not is_http_url("https:///no-host")
    assert not is_http_url("feed://news.example/rss")
    assert not is_http_url("news.example/rss")


def test_html_to_text_decodes_entities() -> None:
    """Named, numeric and non-breaking-space entities become characters."""
    assert html_to_text(
        "<p>Fish &amp; chips&nbsp;&#8212; &eacute;t&eacute; &laquo;x&raquo;</p>"
    ) == ("Fish & chips — été «x»")


def test_html_to_text_of_plain_text_with_an_entity() -> None:
    """Text without tags but with an entity is decoded too; plain text stays as it is."""
    assert html_to_text("Salt &amp; pepper") == "Salt & pepper"
    assert html_to_text("a < b and c > d") == "a < b and c > d"


def test_html_to_text_drops_scripts_styles_and_embeds() -> None:
    """Code and styling never leak into the text."""
    html = (
        "<html><head><title>Tab title</title><style>p { color: red }</style></head><body>"
        "<p>Visible</p><script>var secret = 1;</script><noscript>enable js</noscript>"
        "<iframe src='https://ads.example/'>frame</iframe><!-- comment --></body></html>"
    )
    assert html_to_text(html) == "Visible"


def test_html_to_text_keeps_paragraphs_apart() -> None:
    """Paragraphs and list items become blank-line separated; <br> a line break."""
    html = "<p>First   paragraph</p>\n\n\n<p>Second<br>line</p><ul><li>one</li><li>two</li></ul>"
    assert html_to_text(html) == "First paragraph\n\nSecond\nline\n\none\n\ntwo"


def test_html_to_text_keeps_table_cells_apart() -> None:
    """Words in neighbouring table cells do not run together."""
    html = "<table><tr><th>Base</th><th>Country</th></tr><tr><td>Kant</td><td>Kyrgyzstan</td></tr></table>"
    assert html_to_text(html) == "Base Country\n\nKant Kyrgyzstan"


def test_html_to_text_removes_invisible_characters() -> None:
    """Soft hyphens and zero-width spaces do not split words."""
    assert html_to_text("<p>air\u00adbase\u200b and more</p>") == "airbase and more"


def test_html_to_text_of_nothing_is_empty() -> None:
    """None and empty markup give an empty string."""
    assert html_to_text(None) == ""
    assert html_to_text("<div><script>x()</script></div>") == ""


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2025, 6, 1, 12, 0, tzinfo=timezone(timedelta(hours=6))), "2025-06-01T06:00:00Z"),
        (datetime(2025, 6, 1, 1, 0, tzinfo=timezone(timedelta(hours=-5))), "2025-06-01T06:00:00Z"),
        (datetime(2025, 6, 1, 12, 0), "2025-06-01T12:00:00Z"),
        (datetime(2025, 6, 1, 12, 0, 59, 999, tzinfo=UTC), "2025-06-01T12:00:59Z"),
    ],
)
def test_dates_become_utc_iso(moment: datetime, expected: str) -> None:
    """Offsets are converted to UTC; naive times are taken as UTC."""
    assert to_utc_iso(moment, NOW) == expected


def test_future_dates_are_clamped_to_now() -> None:
    """A date far in the future (a feed's bad clock) becomes the time it was seen."""
    assert to_utc_iso(NOW + timedelta(days=400), NOW) == "2026-11-20T12:00:00Z"
    assert to_utc_iso(NOW + timedelta(minutes=30), NOW) == "2026-11-20T12:30:00Z"
    assert to_utc_iso(None, NOW) is None


def test_language_of_english_text() -> None:
    """A long English text is English whatever the feed claims."""
    assert detect_language(LONG_ENGLISH, hint="ru") == "en"


def test_language_of_cyrillic_text() -> None:
    """A long Russian text is Russian whatever the feed claims."""
    assert detect_language(LONG_RUSSIAN, hint="en") == "ru"


def test_short_text_uses_the_feed_language() -> None:
    """A headline too short to classify takes the feed's declared language."""
    assert detect_language("Kant news", hint="ru-RU") == "ru"
    assert detect_language("Kant news", hint="EN_us") == "en"
    assert detect_language("Kant news", hint=None) is None
    assert detect_language("Kant news", hint="12") is None


def test_unsure_detection_takes_the_feed_language() -> None:
    """A headline of names the detector cannot place (Dutch club names) keeps the feed's."""
    headline = "LIVESTREAM Jong FC Utrecht - La Louvière Centre\n"
    assert detect_language(headline, hint="nl-NL") == "nl"
    assert detect_language(headline, hint=None) not in (None, "nl")


def test_language_of_other_scripts_and_languages() -> None:
    """Chinese and German texts are told apart from English ones."""
    chinese = (
        "泰山康银阁 红包卡拆箱 无47 标10\n600开头号段\n\n有27个标10---19一枚\n\n100枚起包顺丰非偏远"
    )
    german = (
        "Die Landesregierung teilte am Dienstag mit, dass die neue Startbahn im Frühjahr öffnet."
    )
    assert detect_language(chinese, hint="en") == "zh"
    assert detect_language(german, hint="en") == "de"


def test_language_of_an_all_capitals_text() -> None:
    """Shouting is still English (fastText reads capitals alone as Japanese)."""
    assert detect_language(LONG_ENGLISH.upper(), hint=None) == "en"


def test_blank_characters_are_all_of_unicodes() -> None:
    """clean_text's quick tests know every character that ``str.isspace`` (and ``\\s``) accepts."""
    blanks = {chr(code) for code in range(0x110000) if chr(code).isspace()}
    assert blanks == set(_ASCII_BLANKS + _OTHER_BLANKS + " \n\r")


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("a \u200b b", "a b"),
        ("a\t\tb\x0bc\u3000d", "a b c d"),
        (" a \n \n\n  b \r\n\r\nc ", "a\n\nb\n\nc"),
        ("e\u0301\u00a0x\u2028y", "é x y"),
        ("one two\n\nthree", "one two\n\nthree"),
    ],
)
def test_clean_text_spacing(raw: str, clean: str) -> None:
    """Blanks of every kind become single spaces, lines are stripped, blank lines collapse."""
    assert clean_text(raw) == clean


def test_content_hash_ignores_markup_case_and_spacing() -> None:
    """The same article with other markup and spacing has the same hash."""
    words = " ".join(f"word{n}" for n in range(60))
    one = html_to_text(f"<div><p>{words}</p></div>")
    two = html_to_text(f"<p>{words.upper().replace(' ', '   ')}</p>\n<br>")
    assert content_hash("A headline", one) == content_hash("Another headline", two)


def test_content_hash_of_a_long_body_ignores_the_title() -> None:
    """A changed headline on a long text is still the same text."""
    body = LONG_ENGLISH + " " + LONG_ENGLISH.replace("runway", "terminal")
    assert content_hash("Old title", body) == content_hash("New title", body)


def test_content_hash_of_a_short_body_includes_the_title() -> None:
    """Two headlines sharing a boilerplate summary are different items."""
    assert content_hash("Base opens", "Read more.") != content_hash("Base closes", "Read more.")


def test_content_hash_differs_for_different_text() -> None:
    """Different words, different hash."""
    assert content_hash("T", LONG_ENGLISH) != content_hash("T", LONG_RUSSIAN)


def test_normalize_entry_builds_a_clean_item() -> None:
    """A raw feed entry becomes an Item with text, canonical URL, UTC date and language."""
    entry = RawEntry(
        guid="  urn:x:1 ",
        link="https://www.news.example/a/?utm_source=rss",
        title="Runway &amp; hangar",
        summary_html=f"<p>{LONG_ENGLISH}</p><script>x()</script>",
        content_html=None,
        published=datetime(2026, 11, 20, 15, 0, tzinfo=timezone(timedelta(hours=6))),
    )
    item = normalize_entry(entry, now=NOW, feed_language="ru", source="News")
    assert item is not None
    assert item.title == "Runway & hangar"
    assert item.summary == LONG_ENGLISH
    assert item.url == "https://www.news.example/a/?utm_source=rss"
    assert item.canonical_url == "https://news.example/a"
    assert item.guid == "urn:x:1"
    assert item.published_at == "2026-11-20T09:00:00Z"
    assert item.lang == "en"
    assert item.source == "News"


def test_entry_without_title_takes_its_first_line() -> None:
    """A title-less entry is titled by the start of its text; an empty one is dropped."""
    item = make_item(
        title="",
        summary="",
        content="Hangar finished\n\nMore words follow here.",
        url="javascript:void(0)",
        guid=" ",
        published=None,
        now=NOW,
    )
    assert item is not None
    assert item.title == "Hangar finished"
    assert item.url is None
    assert item.guid is None
    empty = make_item(
        title=" ", summary="", content="", url=None, guid=None, published=None, now=NOW
    )
    assert empty is None


@pytest.mark.parametrize(
    ("url", "link"),
    [
        (
            "https://www.news.example/a/?id=5&utm_source=rss&utm_medium=feed#top",
            "https://www.news.example/a/?id=5#top",
        ),
        (
            "http://news.example/a?fbclid=x1&q=kant+base&gclid=y",
            "http://news.example/a?q=kant+base",
        ),
        ("https://news.example/a?UTM_Campaign=x", "https://news.example/a"),
        ("https://news.example/a?b=2&a=1", "https://news.example/a?b=2&a=1"),
        (
            "https://news.example/a?q=%D0%9A%D0%B0%D0%BD%D1%82",
            "https://news.example/a?q=%D0%9A%D0%B0%D0%BD%D1%82",
        ),
        ("https://news.example/a", "https://news.example/a"),
    ],
)
def test_a_link_loses_its_tracking_parameters_and_nothing_else(url: str, link: str) -> None:
    """What digests and alerts link to: the URL as published, less ``utm_*``, ``fbclid`` and
    the like; the other parameters in their order and encoding, ``www.`` and the fragment
    kept (unlike the canonical URL, an identity)."""
    assert without_tracking(url) == link
