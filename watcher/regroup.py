"""``watcher regroup``: recompute the stories of the stored corpus after a change of settings.

Items are taken again in the order they were stored; near-duplicate groups (level 2) stay
as they are, and each copy follows its original's story.
"""

from __future__ import annotations

from collections.abc import Callable

from watcher.config import Config
from watcher.ingest import choose_story, dedupe_settings, story_candidates
from watcher.similarity import Decision, DedupeSettings, decide, from_bytes
from watcher.store import Store
from watcher.store import stories as story_store
from watcher.story_grouping import merge, remember
from watcher.story_vectors import StoryVector, story_vector

BATCH_SIZE = 500

_ROWS = (
    "SELECT items.id, items.duplicate_of, items.feed_id, items.published_at, "
    "items.first_seen_at, items.title, "
    "CASE WHEN items.content != '' THEN items.content ELSE items.summary END, "
    "dedupe_fingerprints.fingerprint FROM items "
    "LEFT JOIN dedupe_fingerprints ON dedupe_fingerprints.item_id = items.id "
    "WHERE items.id > ? ORDER BY items.id LIMIT ?"
)


def regroup(config: Config, store: Store, *, on_batch: Callable[[int], None] | None = None) -> int:
    """Forget every story and group the stored items again, in batches of one transaction
    each; returns how many items were regrouped. ``on_batch`` gets each batch's size."""
    settings = dedupe_settings(config.dedupe)
    with store.transaction():
        story_store.clear(store)
        store.db.conn.execute("UPDATE items SET story_id = id")
    done, last = 0, 0
    while True:
        rows = store.db.conn.execute(_ROWS, [last, BATCH_SIZE]).fetchall()
        if not rows:
            return done
        with store.transaction():
            for item_id, duplicate_of, feed_id, published, seen, title, text, blob in rows:
                at = published or (seen if feed_id is not None else None)
                vector = story_vector(title, text)
                if duplicate_of is not None:
                    store.db.conn.execute(
                        "UPDATE items SET story_id = ? WHERE id = ?",
                        [_story(store, item_id, duplicate_of, vector, at, blob, settings), item_id],
                    )
                else:
                    _story(store, item_id, duplicate_of, vector, at, blob, settings)
                remember(store, item_id, vector, at, copy=duplicate_of is not None)
        last = rows[-1][0]
        done += len(rows)
        if on_batch is not None:
            on_batch(len(rows))


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
