"""The CPU-bound half of a refresh: bytes → parsed → normalized → matched → tagged → fingerprinted.

Pure and picklable so that a process pool can run it beside the event loop; the
database half (dedupe against the corpus, store) runs in the main process.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from watcher.config import TopicConfig
from watcher.dedupe import batch_identities, guids_are_trustworthy
from watcher.errors import FeedError
from watcher.match import TopicMatcher
from watcher.models import Item, KnownKeys, RawEntry, Tag
from watcher.normalize import canonical_url, is_http_url, normalize_entry, primary_language
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
    """One feed body made ready for the store.

    ``entries`` counts what the feed held; each went into ``items``, ``known`` (already
    delivered by this feed, by how it was recognised), ``off_topic`` (matched no topic,
    dropped) or ``empty`` (no title, link or text).
    """

    items: tuple[PreparedItem, ...]
    entries: int
    off_topic: int = 0
    empty: int = 0
    known: tuple[tuple[str, int], ...] = ()
    feed_title: str | None = None
    warning: str | None = None


NOTHING_KNOWN = KnownKeys()


@lru_cache(maxsize=8)
def _matcher(queries: tuple[tuple[str, str], ...]) -> TopicMatcher:
    return TopicMatcher(queries)


def prepare_items(
    items: Sequence[Item],
    topics: Sequence[TopicConfig],
    *,
    keep_unmatched: bool,
) -> tuple[list[PreparedItem], int]:
    """Match and tag clean items; drop those matching no topic unless ``keep_unmatched``.

    Returns the prepared items and how many were dropped for matching no topic.
    """
    topic_tuple = tuple(topics)
    queries = tuple((topic.name, topic.query) for topic in topic_tuple)
    matches = _matcher(queries).match([(item.title, item.text) for item in items])
    prepared: list[PreparedItem] = []
    dropped = 0
    for item, matched in zip(items, matches, strict=True):
        if not matched and not keep_unmatched:
            dropped += 1
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
    return prepared, dropped


def _normalized(
    entries: Sequence[RawEntry], *, now: datetime, language: str | None, source: str | None
) -> tuple[list[Item], int]:
    """The entries as clean items, and how many were empty (no title, link or text)."""
    items: list[Item] = []
    empty = 0
    for entry in entries:
        item = normalize_entry(entry, now=now, feed_language=language, source=source)
        if item is None:
            empty += 1
        else:
            items.append(item)
    return items, empty


def _recognised_by_guid(entries: Sequence[RawEntry], known: KnownKeys) -> set[int]:
    """Indexes of the entries known to have been delivered by their GUID alone, before their
    text is read: most entries of a feed that changed are old ones.

    Only where the batch-level identity rules (:func:`watcher.dedupe.batch_identities`)
    cannot touch the entry: its GUID occurs once in the feed and its link is one no other
    entry shares (so neither the fragment nor the shared-URL rule applies); a link also
    means the entry is not empty. The caller still has to check that the batch's GUIDs are
    trusted, which needs the other entries' clean form.
    """
    if not known.guids:
        return set()
    guids = [(entry.guid or "").strip() for entry in entries]
    counts = Counter(guid for guid in guids if guid)
    candidates = [
        index
        for index, guid in enumerate(guids)
        if guid in known.guids and counts[guid] == 1 and entries[index].link
    ]
    if not candidates:
        return set()
    pages = [_page(entry.link) for entry in entries]
    shared = Counter(page for page in pages if page)
    return {
        index for index in candidates if (page := pages[index]) is not None and shared[page] == 1
    }


def _page(link: str | None) -> str | None:
    """The canonical URL :func:`normalize_entry` gives the link, None for no http link."""
    if not link or not is_http_url(link):
        return None
    return canonical_url(link.strip())


def prepare_feed(
    body: bytes,
    headers: dict[str, str],
    url: str,
    topics: tuple[TopicConfig, ...],
    *,
    keep_unmatched: bool,
    now: datetime,
    known: KnownKeys = NOTHING_KNOWN,
) -> PreparedBatch:
    """Everything between the download and the database for one feed body.

    Entries ``known`` says this feed already delivered are counted and dropped before
    the costly stages, so a feed that changed by one entry costs one entry's work.
    """
    parsed = parse_feed(body, headers, url)
    language = primary_language(parsed.language)
    recognised: Counter[str] = Counter()
    by_guid = _recognised_by_guid(parsed.entries, known)
    items, empty = _normalized(
        [entry for index, entry in enumerate(parsed.entries) if index not in by_guid],
        now=now,
        language=language,
        source=parsed.title,
    )
    if by_guid and not guids_are_trustworthy([item.guid for item in items]):
        # the batch's GUIDs are dropped after all, so no entry may be recognised by one
        by_guid = set()
        items, empty = _normalized(parsed.entries, now=now, language=language, source=parsed.title)
    if by_guid:
        recognised["guid"] = len(by_guid)
    fresh: list[Item] = []
    for item in batch_identities(items):
        how = known.match(item)
        if how is None:
            fresh.append(item)
        else:
            recognised[how] += 1
    prepared, off_topic = prepare_items(fresh, topics, keep_unmatched=keep_unmatched)
    return PreparedBatch(
        items=tuple(prepared),
        entries=len(parsed.entries),
        off_topic=off_topic,
        empty=empty,
        known=tuple(sorted(recognised.items())),
        feed_title=parsed.title,
        warning=parsed.warning,
    )


@dataclass(frozen=True, slots=True)
class PrepareJob:
    """The picklable arguments of :func:`prepare_feed` for one feed, sent to a worker."""

    body: bytes
    headers: dict[str, str]
    url: str
    topics: tuple[TopicConfig, ...]
    keep_unmatched: bool
    now: datetime
    known: KnownKeys = NOTHING_KNOWN


@dataclass(frozen=True, slots=True)
class PrepareFailure:
    """A failure in a worker, as plain data: live exceptions do not cross the process boundary."""

    kind: str
    message: str
    error_type: str


def run_prepare_job(job: PrepareJob) -> PreparedBatch | PrepareFailure:
    """Run ``job``; every failure comes back as a :class:`PrepareFailure`, never raised."""
    try:
        return prepare_feed(
            job.body,
            job.headers,
            job.url,
            job.topics,
            keep_unmatched=job.keep_unmatched,
            now=job.now,
            known=job.known,
        )
    except FeedError as error:
        return PrepareFailure(error.kind, error.message, type(error).__name__)
    except Exception as error:  # a parser bug costs this feed only
        return PrepareFailure("internal", f"{type(error).__name__}: {error}", type(error).__name__)
