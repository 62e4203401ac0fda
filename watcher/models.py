"""Frozen records passed between the pipeline stages; no I/O happens here."""

from __future__ import annotations

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

    @property
    def text(self) -> str:
        return self.content or self.summary


@dataclass(frozen=True, slots=True)
class Tag:
    name: str
    kind: str
    score: float


@dataclass(slots=True)
class BatchOutcome:
    """What ``ingest_batch`` did with one feed's or one import batch's items."""

    entries: int = 0
    new_items: int = 0
    sightings: int = 0
    near_duplicates: int = 0
    new_item_ids: list[int] = field(default_factory=list)


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
