"""The CPU-bound half of a refresh: bytes → parsed → normalized → matched → tagged → fingerprinted.

Pure and picklable so that a process pool can run it beside the event loop; the
database half (dedupe against the corpus, store) runs in the main process.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from watcher.config import TopicConfig
from watcher.dedupe import with_trusted_guids
from watcher.match import TopicMatcher
from watcher.models import Item, Tag
from watcher.normalize import normalize_entry, primary_language
from watcher.similarity import Fingerprint, fingerprint
from watcher.sources.parse import parse_feed
from watcher.tagging import tag_item


@dataclass(frozen=True, slots=True)
class PreparedItem:
    item: Item
    topics: tuple[str, ...]
    tags: tuple[Tag, ...]
    fingerprint: Fingerprint


@dataclass(frozen=True, slots=True)
class PreparedBatch:
    items: tuple[PreparedItem, ...]
    entries: int
    unmatched: int
    feed_title: str | None = None
    warning: str | None = None
    skipped: int = 0
    known: int = 0


@lru_cache(maxsize=8)
def _matcher(queries: tuple[tuple[str, str], ...]) -> TopicMatcher:
    return TopicMatcher(queries)


def prepare_items(
    items: Sequence[Item],
    topics: Sequence[TopicConfig],
    *,
    keep_unmatched: bool,
) -> tuple[list[PreparedItem], int]:
    """Match and tag clean items; drop those matching no topic unless ``keep_unmatched``."""
    topic_tuple = tuple(topics)
    queries = tuple((topic.name, topic.query) for topic in topic_tuple)
    matches = _matcher(queries).match([(item.title, item.text) for item in items])
    prepared: list[PreparedItem] = []
    unmatched = 0
    for item, matched in zip(items, matches, strict=True):
        if not matched:
            unmatched += 1
            if not keep_unmatched:
                continue
        tags = tag_item(item.title, item.text, topic_tuple, matched, item.lang)
        prepared.append(
            PreparedItem(
                item=item,
                topics=matched,
                tags=tuple(tags),
                fingerprint=fingerprint(item.title, item.text, item.published_at),
            )
        )
    return prepared, unmatched


def prepare_feed(
    body: bytes,
    headers: dict[str, str],
    url: str,
    topics: tuple[TopicConfig, ...],
    *,
    keep_unmatched: bool,
    now: datetime,
    known: frozenset[str] = frozenset(),
) -> PreparedBatch:
    """Everything between the download and the database for one feed body.

    ``known`` holds canonical URLs and content hashes this feed already delivered: those
    entries are counted and dropped before the costly stages, so a feed that changed by
    one entry costs one entry's work.
    """
    parsed = parse_feed(body, headers, url)
    language = primary_language(parsed.language)
    source = parsed.title
    items: list[Item] = []
    skipped = 0
    for entry in parsed.entries:
        item = normalize_entry(entry, now=now, feed_language=language, source=source)
        if item is None:
            skipped += 1
        else:
            items.append(item)
    items = with_trusted_guids(items)
    fresh = [
        item for item in items if item.canonical_url not in known and item.content_hash not in known
    ]
    prepared, unmatched = prepare_items(fresh, topics, keep_unmatched=keep_unmatched)
    return PreparedBatch(
        items=tuple(prepared),
        entries=len(parsed.entries),
        unmatched=unmatched,
        feed_title=parsed.title,
        warning=parsed.warning,
        skipped=skipped,
        known=len(items) - len(fresh),
    )
