"""``watcher regroup``: recompute the stories of the stored corpus after a change of settings.

Two passes. First the items are taken again in the order they were stored, in batches:
their story vectors are computed batch by batch, kept with the document frequencies, and
each item is grouped as ingest groups it (near-duplicate groups, level 2, stay as they
are, and each copy follows its original's story). Then, with the document frequencies of
the whole corpus, the items are clustered window by window in time order with the same
average-link correction ingest runs after every batch (:func:`watcher.story_grouping.correct`):
each window's items together with the recent members of the stories they are in, at most
:data:`WINDOW_ITEMS` at once, so the stories are the batch result of each window.
Undated items (imports without dates) pass every window and are clustered together.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from watcher.config import Config
from watcher.dedupe_settings import DedupeSettings, from_config
from watcher.fingerprints import from_bytes
from watcher.ingest import choose_story, story_candidates
from watcher.prepare import ENCODE_LEADS
from watcher.similarity import Decision, decide
from watcher.store import Store
from watcher.store import stories as story_store
from watcher.story_grouping import (
    correct,
    forget_waiting,
    index_neighbours,
    merge,
    note_deferred,
    take_deferred,
)
from watcher.story_keeping import Keeping, Kept
from watcher.story_vectors import (
    MIN_DOCUMENTS,
    StoryVector,
    lead_vectors,
    story_vector,
)

BATCH_SIZE = 500
WINDOW_ITEMS = 2000
"""Most items of one window clustered at once (the similarity matrix of 2,000 items is
32 MB); a busier window is cut, in time order, into parts of this size."""

_ROWS = (
    "SELECT items.id, items.duplicate_of, items.feed_id, items.published_at, "
    "items.first_seen_at, items.title, "
    "CASE WHEN items.content != '' THEN items.content ELSE items.summary END, "
    "dedupe_fingerprints.fingerprint FROM items "
    "LEFT JOIN dedupe_fingerprints ON dedupe_fingerprints.item_id = items.id "
    "WHERE items.id > ? ORDER BY items.id LIMIT ?"
)


def _add_missing_leads(
    store: Store, rows: list[tuple[Any, ...]], vectors: list[StoryVector]
) -> None:
    """Encode the leads of the batch's items that have none (one encoder batch)."""
    have = {item_id for item_id, _ in story_store.leads_of(store, [row[0] for row in rows])}
    missing = [
        (row, vector) for row, vector in zip(rows, vectors, strict=True) if row[0] not in have
    ]
    leads = lead_vectors([(row[5], row[6]) for row, _ in missing])
    kept = []
    for (row, vector), lead in zip(missing, leads, strict=True):
        _, _, feed_id, published, seen = row[:5]
        at = published or (seen if feed_id is not None else None)
        kept.append((row[0], vector.script, at, lead))
    with store.transaction():
        story_store.save_leads(store, kept)


def regroup(config: Config, store: Store, *, on_batch: Callable[[int], None] | None = None) -> int:
    """Forget every story and group the stored items again, in batches of one transaction
    each; returns how many items were regrouped. ``on_batch`` gets each batch's size."""
    settings = from_config(config.dedupe)
    last = store.last_item_id()  # what is stored meanwhile is clustered by its own pass
    with store.transaction():
        story_store.clear(store)
        store.db.conn.execute("UPDATE items SET story_id = id")
    # a corpus large enough for document frequencies is clustered whole afterwards: the
    # first pass then only keeps vectors (each copy in its original's story)
    originals = store.db.conn.execute(
        "SELECT COUNT(*) FROM items WHERE duplicate_of IS NULL"
    ).fetchone()[0]
    clustered = originals >= MIN_DOCUMENTS
    # items stored before the other script first showed up have no lead vector yet
    encode = ENCODE_LEADS and len(story_store.scripts_seen(store, since=None)) == 2
    done, last = 0, 0
    while True:
        rows = store.db.conn.execute(_ROWS, [last, BATCH_SIZE]).fetchall()
        if not rows:
            break
        vectors = [story_vector(row[5], row[6]) for row in rows]  # the batch's vectors first
        if encode:
            _add_missing_leads(store, rows, vectors)
        keeping = Keeping(store)
        with store.transaction():
            for row, vector in zip(rows, vectors, strict=True):
                item_id, duplicate_of, feed_id, published, seen, _, _, blob = row
                at = published or (seen if feed_id is not None else None)
                if clustered:
                    if duplicate_of is not None:
                        store.db.conn.execute(
                            "UPDATE items SET story_id = "
                            "(SELECT story_id FROM items WHERE id = ?) WHERE id = ?",
                            [duplicate_of, item_id],
                        )
                elif duplicate_of is not None:
                    store.db.conn.execute(
                        "UPDATE items SET story_id = ? WHERE id = ?",
                        [_story(store, item_id, duplicate_of, vector, at, blob, settings), item_id],
                    )
                else:
                    keeping.flush()  # the story is chosen among the items kept before it
                    _story(store, item_id, duplicate_of, vector, at, blob, settings)
                keeping.add(Kept(item_id, vector, at, copy=duplicate_of is not None))
            keeping.flush()
            story_store.flush_frequencies(store)
        last = rows[-1][0]
        done += len(rows)
        if on_batch is not None:
            on_batch(len(rows))
    cluster_windows(store, settings, now=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    with store.transaction():
        story_store.mark_clustered(store, last)
    return done


_TIMED = (
    "SELECT story_vectors.item_id, story_vectors.at FROM story_vectors "
    "JOIN items ON items.id = story_vectors.item_id "
    "WHERE items.duplicate_of IS NULL AND (story_vectors.at, story_vectors.item_id) > (?, ?) "
    "ORDER BY story_vectors.at, story_vectors.item_id LIMIT ?"
)


def cluster_windows(store: Store, settings: DedupeSettings, *, now: str = "") -> int:
    """Cluster every stored item (no near-duplicate) with average link, window by window in
    time order (undated items first, all together); returns how many windows were
    clustered. Each window is ``story_window`` long, at most :data:`WINDOW_ITEMS` items."""
    windows = 0
    part: list[tuple[int, str | None]] = []
    start: str | None = None
    end = ""
    after: tuple[str, int] = ("", -1)
    undated = True
    while True:
        rows = store.db.conn.execute(_TIMED, [*after, WINDOW_ITEMS]).fetchall()
        for item_id, at in rows:
            if at and undated:  # the undated items (at = '') come first: they end here
                undated = False
                windows += cluster_part(store, part, settings, now=now)
                part, start = [], None
            if part and (len(part) >= WINDOW_ITEMS or (at and start is not None and at > end)):
                windows += cluster_part(store, part, settings, now=now)
                part, start = [], None
            if start is None and at:
                start, end = at, _after(at, settings.story_window)
            part.append((item_id, at or None))
        if len(rows) < WINDOW_ITEMS:
            windows += cluster_part(store, part, settings, now=now)
            return windows
        after = (rows[-1][1], rows[-1][0])


def cluster_imported(
    store: Store, item_ids: Sequence[int], settings: DedupeSettings, *, now: str
) -> int:
    """Cluster the items one import stored as :func:`cluster_windows` clusters a window:
    in parts of at most :data:`WINDOW_ITEMS` (time order, undated first), each with the
    recent members of the stories its items are in. Ingest corrected the neighbourhood
    of each batch as it arrived; this gives the whole import the batch result (ECB+ dev:
    pairwise F1 0.899-0.908 over ten arrival orders without it, see docs/dedupe.md).
    Returns how many parts were clustered."""
    forget_waiting(store, item_ids)  # clustered here, with the rest of the import
    return sum(
        cluster_part(store, part, settings, now=now)
        for part in story_store.parts(store, item_ids, WINDOW_ITEMS)
    )


def cluster_pending(
    store: Store, settings: DedupeSettings, *, now: str, size: int, members: int
) -> int:
    """Cluster every pending part (:func:`cluster_pending_part`, a transaction each, of
    :func:`~watcher.store.stories.pending`) and
    move the mark past them; returns how many parts were clustered. The writer's jobs
    (:meth:`watcher.poll.Poller.cluster_pending`) do the same one part at a time."""
    found = story_store.pending(store, size)
    done = sum(
        cluster_pending_part(store, part, settings, through=found.through, now=now, members=members)
        for part in found.parts
    )
    with store.transaction():
        story_store.mark_clustered(store, found.last)
    return done


def cluster_part(
    store: Store,
    part: list[tuple[int, str | None]],
    settings: DedupeSettings,
    *,
    now: str,
    members: int = WINDOW_ITEMS // 2,
) -> int:
    """Cluster one of :func:`parts` with up to ``members`` recent members of its stories,
    in a transaction of its own; 1 if it was clustered (2 items or more), else 0."""
    if len(part) < 2:
        return 0
    with store.transaction():
        correct(store, part, (), settings, now=now, limit=len(part) + members)
    return 1


def cluster_pending_part(
    store: Store,
    part: list[tuple[int, str | None]],
    settings: DedupeSettings,
    *,
    through: int,
    now: str,
    members: int,
) -> int:
    """:func:`cluster_part` for one of :func:`~watcher.store.stories.pending`'s parts (``through``: the clustering
    mark they were taken after). The items ingest left undecided
    (:func:`~watcher.story_grouping.matching_deferred`) are in no story yet, so the stories
    they could join come from the index: for each, the candidate stories of its index
    terms among the items already clustered (up to ``through``, or in an earlier part), and
    for one that got its lead late (:mod:`watcher.late_leads`) the stories across scripts
    that lead is near; every item's best candidate first, then every item's second, and so
    on."""
    fresh = take_deferred(store, [item_id for item_id, _ in part])
    if len(part) < 2 and not fresh:  # one undecided item may still join an old story
        return 0
    try:
        neighbours = (
            index_neighbours(store, fresh, part, (through, part[0][1] or "", part[0][0]), settings)
            if fresh
            else []
        )
        with store.transaction():
            correct(
                store, part, neighbours, settings, now=now, limit=len(part) + members, fresh=fresh
            )
    except BaseException:
        note_deferred(store, fresh)  # still undecided: the next clustering takes them
        raise
    return 1


def _after(at: str, seconds: float) -> str:
    """The ISO time ``seconds`` after ``at``."""
    moment = datetime.fromisoformat(at.replace("Z", "+00:00")).astimezone(UTC)
    return (moment + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _story(
    store: Store,
    item_id: int,
    duplicate_of: int | None,
    vector: StoryVector,
    at: str | None,
    blob: bytes | None,
    settings: DedupeSettings,
) -> int:
    """The story of a stored item among the items stored before it."""
    if duplicate_of is not None:
        row = store.db.conn.execute(
            "SELECT story_id FROM items WHERE id = ?", [duplicate_of]
        ).fetchone()
        return int(row[0]) if row is not None else item_id
    decision = Decision(duplicate_of=None, story_id=None)
    if blob is not None:
        try:
            fingerprint = from_bytes(blob)
        except ValueError:
            pass  # another fingerprint version: content signals only
        else:
            earlier = [
                candidate
                for candidate in story_candidates(store, fingerprint, at, settings)
                if candidate.item_id < item_id and candidate.duplicate_of is None
            ]
            decision = decide(fingerprint, earlier, settings)
    story_id, signal, score, match = choose_story(store, decision, vector, at, settings)
    if story_id is None:
        story_id = item_id
    store.db.conn.execute(
        "UPDATE items SET story_id = ?, dedupe_signal = ?, dedupe_score = ? WHERE id = ?",
        [story_id, signal, score, item_id],
    )
    if match is not None and match.also:
        story_id = merge(store, story_id, match.also, item_id=item_id, at=at or "")
    return story_id
