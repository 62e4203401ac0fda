"""The CPU-bound half of a refresh: bytes → parsed → normalized → matched → tagged → fingerprinted.

Pure and picklable so that a process pool can run it beside the event loop; the
database half (dedupe against the corpus, store) runs in the main process.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING

from watcher.config import TopicConfig
from watcher.dedupe import batch_identities, guids_are_trustworthy
from watcher.errors import FeedError
from watcher.match import TopicMatcher
from watcher.models import Item, KnownKeys, RawEntry, Tag
from watcher.normalize import (
    canonical_url,
    is_http_url,
    normalize_entry,
    primary_language,
    with_language,
)

if TYPE_CHECKING:
    from watcher.fingerprints import Fingerprint


@dataclass(frozen=True, slots=True)
class PreparedItem:
    item: Item
    topics: tuple[str, ...]
    tags: tuple[Tag, ...]
    fingerprint: Fingerprint
    story_vector: bytes = b""
    """:func:`watcher.story_vectors.vector_bytes` of the item, computed here in the pool
    worker so the single writer only looks up and decides (empty: the writer computes it)."""
    story_lead: bytes = b""
    """:func:`watcher.story_vectors.lead_vectors` of the item where it can meet another
    script (:func:`prepare_items`), computed here per feed in one batch (empty: none)."""


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
    off_topic_digests: tuple[str, ...] = ()
    """:func:`entry_digest` of each entry dropped for matching no topic (for the next
    fetch's :attr:`KnownKeys.off_topic`)."""


NOTHING_KNOWN = KnownKeys()


@lru_cache(maxsize=8)
def _matcher(queries: tuple[tuple[str, str], ...]) -> TopicMatcher:
    return TopicMatcher(queries)


def prepare_items(
    items: Sequence[Item],
    topics: Sequence[TopicConfig],
    *,
    keep_unmatched: bool,
    scripts_seen: frozenset[int] = frozenset(),
) -> tuple[list[PreparedItem], list[int]]:
    """Match and tag clean items; drop those matching no topic unless ``keep_unmatched``.

    Returns the prepared items (:func:`prepare_matched`) and the positions in ``items`` of
    those dropped for matching no topic.
    """
    matched, dropped = match_items(items, topics, keep_unmatched=keep_unmatched)
    return prepare_matched(matched, topics, scripts_seen=scripts_seen), dropped


def match_items(
    items: Sequence[Item], topics: Sequence[TopicConfig], *, keep_unmatched: bool
) -> tuple[list[tuple[Item, tuple[str, ...]]], list[int]]:
    """Each item kept with the names of the topics it matches, and the positions in
    ``items`` of those dropped for matching none (none dropped if ``keep_unmatched``)."""
    queries = tuple((topic.name, topic.query) for topic in topics)
    matches = _matcher(queries).match([(item.title, item.text) for item in items])
    kept: list[tuple[Item, tuple[str, ...]]] = []
    dropped: list[int] = []
    for position, (item, names) in enumerate(zip(items, matches, strict=True)):
        if names or keep_unmatched:
            kept.append((item, names))
        else:
            dropped.append(position)
    return kept, dropped


def prepare_matched(
    matched: Sequence[tuple[Item, tuple[str, ...]]],
    topics: Sequence[TopicConfig],
    *,
    scripts_seen: frozenset[int] = frozenset(),
) -> list[PreparedItem]:
    """Tag, fingerprint and vectorise items with the topics they matched.

    ``scripts_seen``: the scripts of the items the store holds within the story window
    (:func:`watcher.store.stories.scripts_seen`): an item's lead is encoded when that
    window or the item's own batch holds the other script, or no topic is configured (an
    import, whose corpus is the user's); the window's earlier items get theirs late
    (:mod:`watcher.late_leads`).
    """
    # imported here: the main process imports this module for its data classes, and a
    # pass that finds nothing new should not load the tagger, numpy and the encoder
    from watcher.fingerprints import fingerprint
    from watcher.story_vectors import OTHER_SCRIPT, lead_vectors, script_of, vector_bytes
    from watcher.tagging import tag_item

    topic_tuple = tuple(topics)
    prepared = [
        PreparedItem(
            item=item,
            topics=names,
            tags=tuple(tag_item(item.title, item.text, topic_tuple, names, item.lang)),
            fingerprint=fingerprint(item.title, item.text, item.published_at),
            story_vector=vector_bytes(item.title, item.text),
        )
        for item, names in matched
    ]
    scripts = [script_of(f"{entry.item.title}\n{entry.item.text}") for entry in prepared]
    present = scripts_seen | set(scripts)
    wanted = [
        number
        for number in range(len(prepared))
        if OTHER_SCRIPT[scripts[number]] in present or not topic_tuple
    ]
    if ENCODE_LEADS and wanted:
        leads = lead_vectors([(prepared[n].item.title, prepared[n].item.text) for n in wanted])
        for number, lead in zip(wanted, leads, strict=True):
            prepared[number] = replace(prepared[number], story_lead=lead)
    return prepared


def load_stages() -> None:
    """Import the stages :func:`prepare_feed` runs (feedparser, the tagger, fingerprints,
    story vectors): the pool's fork server calls this before it forks, so every worker
    shares their pages instead of importing them at its first feed."""
    import watcher.fingerprints
    import watcher.sources.parse
    import watcher.story_vectors
    import watcher.tagging  # noqa: F401


ENCODE_LEADS = True
"""Whether :func:`prepare_items` computes lead encoder vectors at all (for the items that
can meet another script). Off, the stories of two scripts meet on names and figures alone:
on the invented RU/EN halves (no shared sentence, the kind of the held-out test) F1 0.03
off against 0.79 on, with the invented translations at 0.92 (docs/dedupe.md, "Round 6");
about 6 ms of worker CPU per item encoded in a batch."""


def _normalized(
    entries: Sequence[RawEntry],
    skipped: set[int],
    *,
    now: datetime,
    language: str | None,
    source: str | None,
) -> tuple[list[tuple[int, Item]], int]:
    """The entries not ``skipped`` as clean items, each with its index, and how many were
    empty (no title, link or text). Their language is the feed's until :func:`prepare_feed`
    detects it for those that match a topic."""
    items: list[tuple[int, Item]] = []
    empty = 0
    for index, entry in enumerate(entries):
        if index in skipped:
            continue
        item = normalize_entry(entry, now=now, feed_language=language, source=source, detect=False)
        if item is None:
            empty += 1
        else:
            items.append((index, item))
    return items, empty


def entry_digest(entry: RawEntry) -> str:
    """A digest of everything :func:`normalize_entry` reads of an entry but the clock: two
    entries with the same digest give the same clean text."""
    published = entry.published.isoformat() if entry.published is not None else ""
    parts = (entry.guid, entry.link, entry.title, entry.summary_html, entry.content_html)
    text = "\x1f".join(part or "" for part in (*parts, published))
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


@dataclass(slots=True)
class _Recognised:
    """Entries of a fetch recognised from their raw form, before their text is read."""

    known: set[int] = field(default_factory=set)
    """Delivered before (their GUID is among the feed's)."""
    off_topic: set[int] = field(default_factory=set)
    """Dropped by the previous fetch for matching no topic, and unchanged since."""

    def __bool__(self) -> bool:
        return bool(self.known or self.off_topic)


def _recognised(
    entries: Sequence[RawEntry],
    digests: Sequence[str],
    *,
    guids: frozenset[str],
    off_topic: frozenset[str],
) -> _Recognised:
    """The entries whose fate is known without reading their text: most entries of a feed
    that changed are old ones.

    Only where the batch-level identity rules (:func:`watcher.dedupe.batch_identities`)
    cannot touch the entry: its GUID occurs once in the feed and its link is one no other
    entry shares (so neither the fragment nor the shared-URL rule applies); a link also
    means the entry is not empty. The caller still has to check that the batch's GUIDs are
    trusted, which needs the other entries' clean form.
    """
    found = _Recognised()
    if not guids and not off_topic:
        return found
    own = [(entry.guid or "").strip() for entry in entries]
    counts = Counter(guid for guid in own if guid)
    candidates = [
        index
        for index, guid in enumerate(own)
        if counts[guid] == 1
        and entries[index].link
        and (guid in guids or digests[index] in off_topic)
    ]
    if not candidates:
        return found
    pages = [_page(entry.link) for entry in entries]
    shared = Counter(page for page in pages if page)
    for index in candidates:
        page = pages[index]
        if page is None or shared[page] != 1:
            continue
        if own[index] in guids:
            found.known.add(index)
        else:
            found.off_topic.add(index)
    return found


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
    scripts_seen: frozenset[int] = frozenset(),
) -> PreparedBatch:
    """Everything between the download and the database for one feed body.

    Entries ``known`` says this feed already delivered are counted and dropped before
    the costly stages, so a feed that changed by one entry costs one entry's work; so are
    the entries its previous fetch dropped for matching no topic, when they are unchanged.
    """
    from watcher.sources.parse import parse_feed  # feedparser: in the workers

    parsed = parse_feed(body, headers, url)
    language = primary_language(parsed.language)
    entries = parsed.entries
    digests = [entry_digest(entry) for entry in entries]
    skip = _recognised(
        entries,
        digests,
        guids=known.guids,
        off_topic=frozenset() if keep_unmatched else known.off_topic,
    )
    indexed, empty = _normalized(
        entries, skip.known | skip.off_topic, now=now, language=language, source=parsed.title
    )
    if skip and not guids_are_trustworthy([item.guid for _, item in indexed]):
        # the batch's GUIDs are dropped after all, so no entry may be recognised by one
        skip = _Recognised()
        indexed, empty = _normalized(
            entries, set(), now=now, language=language, source=parsed.title
        )
    recognised: Counter[str] = Counter()
    if skip.known:
        recognised["guid"] = len(skip.known)
    fresh: list[Item] = []
    fresh_indexes: list[int] = []
    items = batch_identities([item for _, item in indexed])
    for (index, _), item in zip(indexed, items, strict=True):
        how = known.match(item)
        if how is None:
            fresh.append(item)
            fresh_indexes.append(index)
        else:
            recognised[how] += 1
    matched, dropped = match_items(fresh, topics, keep_unmatched=keep_unmatched)
    prepared = prepare_matched(
        [(with_language(item, language), names) for item, names in matched],
        topics,
        scripts_seen=scripts_seen,
    )
    off_topic_indexes = sorted(skip.off_topic | {fresh_indexes[p] for p in dropped})
    return PreparedBatch(
        items=tuple(prepared),
        entries=len(entries),
        off_topic=len(off_topic_indexes),
        empty=empty,
        known=tuple(sorted(recognised.items())),
        feed_title=parsed.title,
        warning=parsed.warning,
        off_topic_digests=tuple(digests[index] for index in off_topic_indexes),
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
    scripts_seen: frozenset[int] = frozenset()


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
            scripts_seen=job.scripts_seen,
        )
    except FeedError as error:
        return PrepareFailure(error.kind, error.message, type(error).__name__)
    except Exception as error:  # a parser bug costs this feed only
        return PrepareFailure("internal", f"{type(error).__name__}: {error}", type(error).__name__)
