"""``watcher retag``: recompute topics and tags of stored items after a config change."""

from __future__ import annotations

from collections.abc import Callable

from watcher.config import Config
from watcher.models import Item
from watcher.prepare import prepare_items
from watcher.store import Store

BATCH_SIZE = 500


def _as_item(title: str, text: str, lang: str | None) -> Item:
    return Item(
        title=title,
        summary="",
        content=text,
        url=None,
        canonical_url=None,
        guid=None,
        published_at=None,
        lang=lang,
        content_hash="",
    )


def retag(
    config: Config,
    store: Store,
    *,
    topic: str | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """Rematch and retag stored items in batches, one transaction each; returns the count.

    With ``topic``, only the items that are in that topic or now match its query.
    Nothing is fetched and no item text changes.
    """
    query = config.topic(topic).query if topic is not None else None
    item_ids = store.item_ids(topic=topic, query=query)
    done = 0
    for start in range(0, len(item_ids), BATCH_SIZE):
        rows = store.items_text(item_ids[start : start + BATCH_SIZE])
        items = [_as_item(title, text, lang) for _id, title, text, lang in rows]
        prepared, _unmatched = prepare_items(items, config.topics, keep_unmatched=True)
        with store.transaction():
            for (item_id, *_rest), entry in zip(rows, prepared, strict=True):
                store.set_topics(item_id, entry.topics)
                store.set_tags(item_id, entry.tags)
        done += len(rows)
        if on_batch is not None:
            on_batch(len(rows))
    return done
