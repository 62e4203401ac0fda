"""Leads encoded late: when the story window first holds both scripts, the items stored
before (no lead vector: nothing could meet them across scripts yet) are encoded, and their
neighbourhood is corrected so that they meet their other-language write-ups.

An item's lead is encoded as it is prepared only when the store's story window or its own
batch already holds the other script (:func:`watcher.prepare.prepare_items`), so a corpus
in one language never pays the encoder. The first item in the other script then finds the
window's items without leads; :class:`~watcher.poll.Poller` runs this after every pass
(``watcher poll``) and the daemon every :data:`CATCH_UP_EVERY` seconds: the leads in the
pool's workers, the rest in the writer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from watcher.dedupe_settings import DedupeSettings
from watcher.store import Store
from watcher.store import stories as story_store
from watcher.story_grouping import Correction, correct, decoded_vectors, match_story

CATCH_UP_ITEMS = 400
"""Most items encoded by one catch-up, the newest first (about 20 ms of worker CPU each);
a window with more waits for the next one."""
CATCH_UP_EVERY = 300
"""Seconds between the daemon's catch-ups."""
CHUNK = 25
"""Items encoded per worker job, and corrected together (an ingest batch's size)."""


@dataclass(frozen=True, slots=True)
class Applied:
    """What one :func:`apply` did: leads kept, and the correction that followed."""

    items: int
    correction: Correction


@dataclass(frozen=True, slots=True)
class Pending:
    """An item of the story window without a lead vector."""

    item_id: int
    at: str | None
    title: str
    text: str


def pending(store: Store, *, since: str, limit: int = CATCH_UP_ITEMS) -> list[Pending]:
    """The items first seen since ``since`` that have a story vector but no lead, when the
    items of that window are in both scripts (else none: there is nothing to meet)."""
    if len(story_store.scripts_seen(store, since=since)) < 2:
        return []
    return [
        Pending(item_id, at or None, title, text)
        for item_id, at, title, text in story_store.without_leads(store, since=since, limit=limit)
    ]


def chunks(items: Sequence[Pending]) -> list[list[Pending]]:
    return [list(items[start : start + CHUNK]) for start in range(0, len(items), CHUNK)]


def documents(items: Sequence[Pending]) -> list[tuple[str, str]]:
    """What the encoder reads of each item (:func:`watcher.story_vectors.lead_vectors`)."""
    return [(item.title, item.text) for item in items]


def apply(
    store: Store,
    items: Sequence[Pending],
    leads: Sequence[bytes],
    settings: DedupeSettings,
    *,
    now: str,
) -> Applied:
    """Keep ``leads`` (one per item) and correct the items' stories together with the
    stories across scripts their leads are near; inside the caller's transaction."""
    ids = [item.item_id for item in items]
    vectors = decoded_vectors(store, ids)
    cache = story_store.vector_cache(store)
    batch: list[tuple[int, str | None]] = []
    kept = []
    for item, lead in zip(items, leads, strict=True):
        vector = vectors.get(item.item_id)
        if vector is None:
            continue  # another vector format: a regroup recomputes it
        kept.append((item.item_id, vector.script, item.at, lead))
        cache.pop(item.item_id, None)  # decoded again below, with its lead
        batch.append((item.item_id, item.at))
    story_store.save_leads(store, kept)
    with_leads = decoded_vectors(store, [item_id for item_id, _ in batch])
    neighbours: list[tuple[int, float]] = []
    for item_id, at in batch:
        match = match_story(store, with_leads[item_id], at, settings, across_only=True)
        neighbours.extend(match.candidates)
    return Applied(len(batch), correct(store, batch, neighbours, settings, now=now))
