"""Frozen records passed between the pipeline stages; no I/O happens here."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class FeedState:
    """What the store remembers about one feed between fetches."""

    id: int
    url: str
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    error_count: int = 0
    topics: tuple[str, ...] = ()
    interval_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class FetchResult:
    """The outcome of one successful HTTP exchange (errors are raised as FeedError)."""

    url: str
    final_url: str
    status: int
    body: bytes
    headers: dict[str, str]
    not_modified: bool = False
    permanent_url: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    elapsed_ms: int = 0


@dataclass(frozen=True, slots=True)
class RawEntry:
    """One feed entry as the feed gave it, before any cleaning."""

    guid: str | None
    link: str | None
    title: str | None
    summary_html: str | None
    content_html: str | None
    published: datetime | None
    author: str | None = None


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    title: str | None
    link: str | None
    language: str | None
    entries: tuple[RawEntry, ...]
    warning: str | None = None


@dataclass(frozen=True, slots=True)
class Item:
    """A cleaned document, ready for topic matching, dedupe, tagging and storage.

    ``text`` is the body used for matching and fingerprints: ``content`` when the
    source had it, else ``summary``.
    """

    title: str
    summary: str
    content: str
    url: str | None
    canonical_url: str | None
    guid: str | None
    published_at: str | None
    lang: str | None
    content_hash: str
    source: str | None = None
    external_id: str | None = None
    shared_url: bool = False
    """Several entries of the same fetch, with different text, have this canonical URL: within
    its feed the URL does not identify this entry (a link blog's posts about one page)."""
    full_text_status: str | None = None
    """What fetching the article page gave (``extracted``, ``robots``, ``failed:<reason>``,
    ``skipped:<reason>``; docs/fulltext.md); None when full text was not asked for."""
    author: str | None = None
    """The author found on the article page."""

    @property
    def text(self) -> str:
        return self.content or self.summary


@dataclass(frozen=True, slots=True)
class ArticlePage:
    """One article URL as fetched and extracted once: a row of the ``article_pages`` cache.

    ``url`` is the canonical URL (the cache key); ``status`` is ``extracted``, ``robots`` or
    ``failed:<reason>``; ``text`` is empty unless extracted.
    """

    url: str
    fetched_at: str
    status: str
    http_status: int | None = None
    final_url: str | None = None
    text: str = ""
    author: str | None = None
    published_at: str | None = None
    lang: str | None = None


@dataclass(frozen=True, slots=True)
class Tag:
    name: str
    kind: str
    score: float


@dataclass(frozen=True, slots=True)
class KnownKeys:
    """Identity keys of what one feed delivered lately: entries matching them skip the costly
    stages. URLs only count for entries without a GUID, so that two posts of one feed that
    link the same page are not taken for one."""

    hashes: frozenset[str] = frozenset()
    guids: frozenset[str] = frozenset()
    urls: frozenset[str] = frozenset()
    off_topic: frozenset[str] = frozenset()
    """Digests (:func:`watcher.prepare.entry_digest`) of the entries the feed's previous
    fetch dropped for matching no topic, under the same topics: unchanged, they would be
    dropped again."""

    def match(self, item: Item) -> str | None:
        """How ``item`` is recognised as already delivered (``hash``, ``guid``, ``url``), or None."""
        if item.content_hash in self.hashes:
            return "hash"
        if item.guid:
            return "guid" if item.guid in self.guids else None
        if item.canonical_url and not item.shared_url and item.canonical_url in self.urls:
            return "url"
        return None


@dataclass(slots=True)
class BatchOutcome:
    """What ``ingest_batch`` did with one feed's or one import batch's items.

    ``sightings`` counts the items that were already stored; ``matches`` says how each was
    recognised (``url``, ``guid``, ``hash``, ``external_id``).
    """

    entries: int = 0
    new_items: int = 0
    sightings: int = 0
    near_duplicates: int = 0
    new_item_ids: list[int] = field(default_factory=list)
    matches: Counter[str] = field(default_factory=Counter)


@dataclass(slots=True)
class EntryCounts:
    """Where every entry of a feed went; the parts add up to ``entries`` (see :meth:`balanced`).

    ``new_items`` are stored rows, ``near_duplicates`` among them; ``duplicates`` are entries
    the corpus already held, by how they were recognised; ``off_topic`` matched no topic and
    were not stored (``keep_unmatched = false``); ``empty`` had no title, link or text.
    """

    entries: int = 0
    new_items: int = 0
    near_duplicates: int = 0
    duplicates: Counter[str] = field(default_factory=Counter)
    off_topic: int = 0
    empty: int = 0

    @property
    def duplicate_total(self) -> int:
        return sum(self.duplicates.values())

    def balanced(self) -> bool:
        return self.entries == self.new_items + self.duplicate_total + self.off_topic + self.empty

    def add(self, other: EntryCounts) -> None:
        self.entries += other.entries
        self.new_items += other.new_items
        self.near_duplicates += other.near_duplicates
        self.duplicates.update(other.duplicates)
        self.off_topic += other.off_topic
        self.empty += other.empty

    def line(self) -> str:
        """``120 entries: 45 new items (5 near-duplicates), 60 duplicates (url 30, ...), ...``"""
        how = ", ".join(f"{kind} {count}" for kind, count in sorted(self.duplicates.items()))
        return (
            f"{self.entries} entries: {self.new_items} new items "
            f"({self.near_duplicates} near-duplicates), {self.duplicate_total} duplicates"
            f"{f' ({how})' if how else ''}, {self.off_topic} off-topic, {self.empty} empty"
        )


@dataclass(frozen=True, slots=True)
class DigestRow:
    """One stored item as a digest sees it: in one topic, with its story, source and tags.

    ``tags`` holds only the kinds a digest shows (keyword, place, org).
    """

    item_id: int
    topic: str
    story_id: int
    duplicate_of: int | None
    title: str
    url: str | None
    source: str | None
    feed_title: str | None
    feed_url: str | None
    published_at: str | None
    first_seen_at: str
    text: str
    tags: tuple[Tag, ...] = ()
