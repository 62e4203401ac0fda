"""Stored rows → a digest: topics, then one entry per story with its sources; no I/O."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from watcher.models import DigestRow
from watcher.normalize import followable

EXCERPT_CHARS = 280
TAGS_PER_STORY = 8
SHOWN_TAG_KINDS = ("keyword", "place", "org")
"""Keyphrases are left out: they summarise one item and read oddly next to each other."""

UNKNOWN_SOURCE = "imported document"
"""What a story whose first item names no outlet and came from no feed (an imported
document without a source or URL) shows as its source."""

_SPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class TopicInfo:
    name: str
    title: str


@dataclass(frozen=True, slots=True)
class SourceRef:
    """An outlet that carried the story, linked to its own copy when the link is http(s)."""

    name: str
    url: str | None


@dataclass(frozen=True, slots=True)
class StoryEntry:
    """One story: the headline of its first original report and every outlet that carried it."""

    story_id: int
    title: str
    url: str | None
    source: str
    also: tuple[SourceRef, ...]
    date: str | None
    latest: str
    excerpt: str
    tags: tuple[str, ...]
    item_ids: tuple[int, ...]
    copies: int

    @property
    def sources(self) -> int:
        return 1 + len(self.also)

    @property
    def reports(self) -> int:
        """Items of the story that are not copies of another."""
        return len(self.item_ids) - self.copies


@dataclass(frozen=True, slots=True)
class TopicSection:
    name: str
    title: str
    stories: tuple[StoryEntry, ...]
    more: int
    """Stories left out over ``max_stories``."""
    elsewhere: int = 0
    """Stories of this topic already listed under an earlier topic."""
    left_out_ids: tuple[int, ...] = ()
    """Items of the stories left out: covered by this send, never offered again."""

    @property
    def total(self) -> int:
        """Every story of the topic in this period: shown, cut, or listed earlier."""
        return len(self.stories) + self.more + self.elsewhere


@dataclass(frozen=True, slots=True)
class Digest:
    """What one send contains. ``period_start`` None means everything stored until the end."""

    name: str
    generated_at: str
    period_start: str | None
    period_end: str
    sections: tuple[TopicSection, ...]

    @property
    def item_ids(self) -> tuple[int, ...]:
        return tuple(
            sorted({i for s in self.sections for story in s.stories for i in story.item_ids})
        )

    @property
    def left_out_ids(self) -> tuple[int, ...]:
        """Items of stories cut by ``max_stories``, minus any also listed elsewhere."""
        listed = set(self.item_ids)
        return tuple(sorted({i for s in self.sections for i in s.left_out_ids if i not in listed}))

    @property
    def story_count(self) -> int:
        return sum(len(section.stories) for section in self.sections)

    @property
    def item_count(self) -> int:
        return len(self.item_ids)

    @property
    def source_count(self) -> int:
        names = {
            name.casefold()
            for section in self.sections
            for story in section.stories
            for name in (story.source, *(ref.name for ref in story.also))
            if name != UNKNOWN_SOURCE
        }
        return len(names)

    @property
    def is_empty(self) -> bool:
        return self.story_count == 0


def one_line(text: str) -> str:
    """Text on one line: CR, LF, tabs and other control characters become single spaces.

    Invisible format characters (bidi overrides, zero-width spaces) are dropped, so a
    title cannot reorder what a reader sees.
    """
    cleaned = "".join(
        " " if category in ("Cc", "Zl", "Zp") else char
        for char in text
        if (category := unicodedata.category(char)) != "Cf"
    )
    return _SPACE.sub(" ", cleaned).strip()


def source_name(row: DigestRow) -> str | None:
    """The outlet: the item's own source, else the feed's title, else a host name; None if unknown."""
    for name in (row.source, row.feed_title):
        if name and one_line(name):
            return one_line(name)
    for url in (row.feed_url, row.url):
        try:
            host = urlsplit(url or "").hostname
        except ValueError:
            continue
        if host:
            return host.removeprefix("www.")
    return None


def excerpt(text: str, title: str, limit: int = EXCERPT_CHARS) -> str:
    """The start of the text on one line, without a repeated headline, cut at a word."""
    body = one_line(text)
    if title and body.casefold().startswith(title.casefold()):
        body = body[len(title) :].lstrip(" .:—-–")
    if len(body) <= limit:
        return body
    cut = body[:limit].rsplit(" ", 1)[0].rstrip(" ,;:.—-–")
    return f"{cut} …"


def _when(row: DigestRow) -> str:
    return row.published_at or row.first_seen_at


def _published(row: DigestRow) -> str | None:
    """When the item was published: its date, else when a feed first gave it; None for an
    undated imported document (its import time says nothing of the news)."""
    return row.published_at or (row.first_seen_at if row.feed_url is not None else None)


def _lead_order(row: DigestRow) -> tuple[bool, str, int]:
    published = _published(row)
    return (published is None, published or "", row.item_id)


def _tags(rows: Iterable[DigestRow]) -> tuple[str, ...]:
    best: dict[tuple[str, str], float] = {}
    for row in rows:
        for tag in row.tags:
            if tag.kind in SHOWN_TAG_KINDS:
                key = (tag.name, tag.kind)
                best[key] = max(best.get(key, 0.0), tag.score)
    ranked = sorted(best.items(), key=lambda pair: (-pair[1], pair[0][0]))
    names: list[str] = []
    for (name, _kind), _score in ranked:
        if name not in names:
            names.append(name)
    return tuple(names[:TAGS_PER_STORY])


def story_entry(rows: Sequence[DigestRow]) -> StoryEntry:
    """Fold the items of one story, near-duplicates included, into one entry.

    The headline is the story's lead: its earliest published original report (undated
    imports after every dated item, then the first stored); the date is the earliest
    publication date the story's items give, none for a story of undated imports.
    """
    unique = sorted({row.item_id: row for row in rows}.values(), key=lambda row: row.item_id)
    originals = [row for row in unique if row.duplicate_of is None]
    head = min(originals or unique, key=_lead_order)
    head_source = source_name(head)
    seen = {head_source.casefold()} if head_source else set()
    also: list[SourceRef] = []
    for row in sorted(unique, key=lambda row: (_when(row), row.item_id)):
        name = source_name(row)
        if name and name.casefold() not in seen:
            seen.add(name.casefold())
            also.append(SourceRef(name, followable(row.url)))
    published = [row.published_at for row in unique if row.published_at]
    title = one_line(head.title) or "(untitled)"
    return StoryEntry(
        story_id=head.story_id,
        title=title,
        url=followable(head.url),
        source=head_source or UNKNOWN_SOURCE,
        also=tuple(also),
        date=min(published) if published else _published(head),
        latest=max(_when(row) for row in unique),
        excerpt=excerpt(head.text, title),
        tags=_tags(unique),
        item_ids=tuple(row.item_id for row in unique),
        copies=sum(1 for row in unique if row.duplicate_of is not None),
    )


def _coverage_then_recency(story: StoryEntry) -> tuple[int, str, int]:
    return (story.sources, story.latest, story.story_id)


def build_digest(
    rows: Sequence[DigestRow],
    *,
    name: str,
    topics: Sequence[TopicInfo],
    now: str,
    period_start: str | None,
    max_stories: int,
) -> Digest:
    """Group ``rows`` by topic (in ``topics`` order), then by story.

    A story with items in several topics is listed once, under the first of them, with
    all its items. Stories are ordered by how many outlets carried them, then by their
    latest item; past ``max_stories`` a topic only counts what it left out (and the send
    records those items as covered, so later digests do not bring them back).
    """
    stories: dict[int, list[DigestRow]] = {}
    topics_of_story: dict[int, set[str]] = {}
    for row in rows:
        stories.setdefault(row.story_id, []).append(row)
        topics_of_story.setdefault(row.story_id, set()).add(row.topic)
    placed: set[int] = set()
    sections: list[TopicSection] = []
    for topic in topics:
        mine = [sid for sid in stories if topic.name in topics_of_story[sid]]
        ids = [sid for sid in mine if sid not in placed]
        placed.update(ids)
        entries = sorted(
            (story_entry(stories[sid]) for sid in ids), key=_coverage_then_recency, reverse=True
        )
        kept = tuple(entries[:max_stories])
        cut = tuple(i for entry in entries[max_stories:] for i in entry.item_ids)
        sections.append(
            TopicSection(
                topic.name,
                topic.title,
                kept,
                len(entries) - len(kept),
                len(mine) - len(ids),
                cut,
            )
        )
    return Digest(
        name=name,
        generated_at=now,
        period_start=period_start,
        period_end=now,
        sections=tuple(sections),
    )
