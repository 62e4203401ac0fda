"""Dedupe prepared items against the stored corpus and write the new ones, in one transaction."""

from __future__ import annotations

from collections.abc import Sequence

from watcher.models import BatchOutcome
from watcher.prepare import PreparedItem
from watcher.store import Store


def ingest_batch(
    store: Store,
    prepared: Sequence[PreparedItem],
    *,
    feed_id: int | None,
    now: str,
) -> BatchOutcome:
    """Store what is new; record a sighting for what the corpus already holds.

    The whole batch commits or rolls back together, so an interrupted batch leaves
    nothing half-written.
    """
    outcome = BatchOutcome(entries=len(prepared))
    try:
        with store.transaction():
            for entry in prepared:
                item = entry.item
                existing = store.find_exact(item, feed_id)
                if existing is not None:
                    item_id, match = existing
                    store.add_sighting(
                        item_id, feed_id=feed_id, url=item.url, seen_at=now, match=match
                    )
                    outcome.sightings += 1
                    continue
                item_id = store.insert_item(item, feed_id=feed_id, first_seen_at=now)
                store.set_topics(item_id, entry.topics)
                store.set_tags(item_id, entry.tags)
                store.add_sighting(
                    item_id, feed_id=feed_id, url=item.url, seen_at=now, match="first"
                )
                outcome.new_items += 1
                outcome.new_item_ids.append(item_id)
    except BaseException:
        store.forget_cached_ids()
        raise
    return outcome
