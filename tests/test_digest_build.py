"""The pure digest stages: grouping, folding, ordering, escaping, headers."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy

import pytest
from hypothesis import given
from hypothesis import strategies as st

from watcher.config import DEFAULT_DIGEST_SUBJECT
from watcher.digest.build import TopicInfo, build_digest, excerpt, one_line
from watcher.digest.render import render_html, render_subject, render_text
from watcher.digest.send import compose
from watcher.models import DigestRow, Tag
from watcher.normalize import followable

NOW = "2026-03-02T07:00:00Z"
TOPICS = [TopicInfo("harbour", "Harbour news"), TopicInfo("weather", "Weather")]


def row(item_id: int, **fields: object) -> DigestRow:
    values: dict[str, object] = {
        "item_id": item_id,
        "topic": "harbour",
        "story_id": item_id,
        "duplicate_of": None,
        "title": f"Report {item_id}",
        "url": f"https://outlet{item_id}.example/{item_id}",
        "source": f"Outlet {item_id}",
        "feed_title": None,
        "feed_url": None,
        "published_at": f"2026-03-01T{item_id:02d}:00:00Z",
        "first_seen_at": "2026-03-01T23:00:00Z",
        "text": f"Body of report {item_id} with a few words in it.",
    }
    values.update(fields)
    return DigestRow(**values)  # type: ignore[arg-type]


def build(rows: list[DigestRow], max_stories: int = 30):  # type: ignore[no-untyped-def]
    return build_digest(
        rows, name="daily", topics=TOPICS, now=NOW, period_start=None, max_stories=max_stories
    )


def test_story_items_fold_into_one_entry_headed_by_the_first_report() -> None:
    """A copy and a second write-up join the first report's entry as other sources."""
    digest = build(
        [
            row(1, title="Crane arrives"),
            row(2, story_id=1, duplicate_of=1, source="Wire copy", title="Crane arrives (wire)"),
            row(3, story_id=1, source="Outlet 3", title="Second take on the crane"),
            row(4, story_id=1, duplicate_of=1, source="outlet 1"),
        ]
    )
    (entry,) = digest.sections[0].stories
    assert entry.title == "Crane arrives"
    assert entry.source == "Outlet 1"
    assert [ref.name for ref in entry.also] == ["Wire copy", "Outlet 3"]
    assert entry.also[0].url == "https://outlet2.example/2"
    assert entry.copies == 2
    assert entry.item_ids == (1, 2, 3, 4)
    assert entry.date == "2026-03-01T01:00:00Z"
    assert digest.item_ids == (1, 2, 3, 4)
    assert digest.source_count == 3


def test_stories_are_ordered_by_coverage_then_recency_and_capped() -> None:
    """More outlets first, then the latest; past max_stories only a count remains."""
    rows = [
        row(1),
        row(2, story_id=2),
        row(3, story_id=2),
        row(5),
        row(6),
    ]
    digest = build(rows, max_stories=3)
    section = digest.sections[0]
    assert [entry.story_id for entry in section.stories] == [2, 6, 5]
    assert section.more == 1
    assert 1 not in digest.item_ids


def test_a_story_in_two_topics_is_listed_once_under_the_first() -> None:
    """The weather section counts the story listed above instead of repeating it."""
    digest = build([row(1), row(1, topic="weather"), row(2, topic="weather")])
    harbour, weather = digest.sections
    assert [entry.story_id for entry in harbour.stories] == [1]
    assert [entry.story_id for entry in weather.stories] == [2]
    assert weather.elsewhere == 1


def test_only_keyword_place_and_org_tags_are_shown() -> None:
    """Keyphrases and topic tags stay out; the rest are ranked by score."""
    tags = (
        Tag("harbour", "topic", 1.0),
        Tag("odd phrase here", "keyphrase", 1.0),
        Tag("crane", "keyword", 0.5),
        Tag("velmar", "place", 0.875),
        Tag("port authority", "org", 0.75),
    )
    (entry,) = build([row(1, tags=tags)]).sections[0].stories
    assert entry.tags == ("velmar", "port authority", "crane")


def test_source_falls_back_to_feed_title_then_host() -> None:
    """Without an item source the feed's title names the outlet, then the feed's host."""
    digest = build(
        [
            row(1, source=None, feed_title="Harbour Feed"),
            row(2, source=None, feed_url="https://www.feeds.example/rss"),
            row(3, source=None, url=None),
        ]
    )
    names = {entry.story_id: entry.source for entry in digest.sections[0].stories}
    assert names == {1: "Harbour Feed", 2: "feeds.example", 3: "imported document"}


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("https://a.example/x", True),
        ("http://a.example/x?q=1", True),
        ("javascript:alert(1)", False),
        ("data:text/html,<script>alert(1)</script>", False),
        ("//a.example/x", False),
        ("https://a.example/x\r\nBcc: b@c.example", False),
        ("https://a.example/x\x00y", False),
        ("https://a.example/a b", False),
        ("https://a.example/a\u2028b", False),
        (None, False),
        (42, False),
    ],
)
def test_only_http_links_survive(url: object, kept: bool) -> None:
    """Links other than absolute http(s) on one line are dropped, so no href carries
    another scheme and no header follows a line break (digests, alerts and pages alike)."""
    assert (followable(url) is not None) is kept


def test_digest_links_carry_no_tracking_parameters() -> None:
    """The mailed link is the article's as published, less the feed's tracking parameters."""
    assert followable(" https://a.example/x?p=2&utm_source=rss ") == "https://a.example/x?p=2"


def test_one_line_removes_every_line_break_and_control_character() -> None:
    """CR, LF, Unicode line separators and NUL become spaces; bidi overrides are dropped."""
    assert one_line(" a\r\nb\u2028c\x00d\te ") == "a b c d e"
    assert one_line("safe\u202etxt.exe\u200b") == "safetxt.exe"


def test_excerpt_drops_a_repeated_headline_and_cuts_at_a_word() -> None:
    """The body's copy of the title is skipped; a long text ends at a word with an ellipsis."""
    text = "Crane arrives. " + "word " * 100
    short = excerpt(text, "Crane arrives", limit=40)
    assert short.startswith("word word")
    assert short.endswith(" …")
    assert len(short) <= 42


def test_html_escapes_feed_text_and_keeps_only_http_links() -> None:
    """Titles, sources, excerpts and tags are escaped; a javascript: link is not rendered."""
    digest = build(
        [
            row(
                1,
                title='<script>alert("t")</script>',
                source="<img src=x onerror=alert(1)>",
                text="<iframe src=https://evil.example></iframe> & more",
                url="javascript:alert(1)",
                tags=(Tag("<b>tag</b>", "keyword", 0.5),),
            )
        ]
    )
    html = render_html(digest, "subject <i>")
    assert "<script>" not in html
    assert "<img" not in html
    assert "<iframe" not in html
    assert "<b>tag" not in html
    assert "javascript:" not in html
    assert "&lt;script&gt;alert(&#34;t&#34;)&lt;/script&gt;" in html
    assert "subject &lt;i&gt;" in html
    text = render_text(digest, "subject")
    assert '* <script>alert("t")</script>\n' in text


def test_subject_counts_and_headline_are_one_line() -> None:
    """The default subject has the counts; a headline's CR/LF does not reach the header."""
    digest = build(
        [row(1, title="Crane\r\nBcc: x@y.example", published_at="2026-03-01T05:00:00Z"), row(2)]
    )
    assert render_subject(DEFAULT_DIGEST_SUBJECT, digest) == (
        "watcher daily: 2 stories, 2 items (2026-03-02)"
    )
    assert render_subject("{{ headline }}\n{{ stories }}", digest) == "Crane Bcc: x@y.example 2"


def test_composed_mail_is_multipart_alternative_with_encoded_headers() -> None:
    """Text then HTML alternative, a Date and Message-ID, RFC 2047 for non-ASCII, no header injection."""
    message = compose(
        subject="Сводка\r\nBcc: x@y.example",
        sender="Наблюдатель <watcher@news.example>",
        to=["a@news.example"],
        text="plain",
        html="<p>html</p>",
        now=datetime(2026, 3, 2, 7, 0, tzinfo=UTC),
        msgid="<1@news.example>",
    )
    raw = message.as_bytes(policy=policy.SMTP)
    head = raw.split(b"\r\n\r\n", 1)[0]
    head.decode("ascii")
    assert b"=?utf-8?" in head.lower()
    assert b"\r\nBcc:" not in head
    assert b"Date: Mon, 02 Mar 2026 07:00:00 +0000" in head
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["Subject"] == "Сводка Bcc: x@y.example"
    assert parsed.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in parsed.iter_parts()] == [
        "text/plain",
        "text/html",
    ]


@st.composite
def story_rows(draw: st.DrawFn) -> list[DigestRow]:
    """Rows of a few stories over two topics; some items are copies, some in both topics."""
    count = draw(st.integers(min_value=0, max_value=25))
    rows: list[DigestRow] = []
    for item_id in range(1, count + 1):
        story = draw(st.integers(min_value=1, max_value=item_id))
        story_id = story if any(r.item_id == story for r in rows) else item_id
        copy = draw(st.booleans()) and story_id != item_id
        hour = draw(st.integers(min_value=0, max_value=23))
        for topic in draw(st.sampled_from([["harbour"], ["weather"], ["harbour", "weather"]])):
            rows.append(
                row(
                    item_id,
                    topic=topic,
                    story_id=story_id,
                    duplicate_of=story_id if copy else None,
                    source=draw(st.sampled_from(["A", "B", "C", None])),
                    published_at=f"2026-03-01T{hour:02d}:00:00Z",
                )
            )
    return rows


@given(rows=story_rows(), max_stories=st.integers(min_value=1, max_value=5))
def test_every_item_is_listed_once_or_left_out(rows: list[DigestRow], max_stories: int) -> None:
    """Each item lands in exactly one entry or among the left-out ones; no story is listed twice."""
    digest = build(rows, max_stories=max_stories)
    listed = [i for s in digest.sections for entry in s.stories for i in entry.item_ids]
    assert len(listed) == len(set(listed))
    assert set(listed) | set(digest.left_out_ids) == {r.item_id for r in rows}
    assert not set(listed) & set(digest.left_out_ids)
    story_ids = [entry.story_id for s in digest.sections for entry in s.stories]
    assert len(story_ids) == len(set(story_ids))
    for section in digest.sections:
        assert len(section.stories) <= max_stories
        keys = [(e.sources, e.latest) for e in section.stories]
        assert keys == sorted(keys, reverse=True)


def test_a_story_is_headed_by_its_earliest_published_report() -> None:
    """The report published first leads, whichever was stored first (poll order)."""
    digest = build(
        [
            row(1, title="Later analysis", published_at="2026-03-01T12:00:00Z"),
            row(2, story_id=1, title="First news", published_at="2026-03-01T08:00:00Z"),
            row(3, story_id=1, title="Undated import", published_at=None),
        ]
    )
    (entry,) = digest.sections[0].stories
    assert entry.title == "First news"
    assert entry.date == "2026-03-01T08:00:00Z"


def test_a_story_of_undated_imports_has_no_date() -> None:
    """An imported document without a date is not dated by its import time."""
    digest = build([row(1, published_at=None, source=None)])
    (entry,) = digest.sections[0].stories
    assert entry.date is None
    assert "imported document ·" not in render_text(digest, "subject")
    fed = build([row(1, published_at=None, feed_url="https://feed.example/rss")])
    assert fed.sections[0].stories[0].date == "2026-03-01T23:00:00Z"
