"""``corpus import``: documents → normalize → match and tag → dedupe → store, in batches."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from watcher.config import Config
from watcher.corpus import expand_paths, read_documents, to_item
from watcher.dedupe_settings import from_config
from watcher.errors import CorpusImportError
from watcher.ingest import ingest_batch
from watcher.models import Item
from watcher.normalize import utc_iso
from watcher.pass_state import hold_corrections
from watcher.prepare import prepare_items
from watcher.regroup import cluster_imported
from watcher.store import Store
from watcher.store.stories import clustered_through, items_after, mark_clustered, scripts_seen
from watcher.story_vectors import script_of

BATCH_SIZE = 500


@dataclass(slots=True)
class ImportSummary:
    documents: int = 0
    new_items: int = 0
    near_duplicates: int = 0
    duplicates: int = 0
    errors: list[CorpusImportError] = field(default_factory=list)
    new_item_ids: list[int] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"{self.documents} documents: {self.new_items} new items, "
            f"{self.duplicates} already in the corpus, {len(self.errors)} errors; "
            f"{self.near_duplicates} of the new items are near-duplicates"
        )


def import_paths(
    paths: Sequence[Path],
    config: Config,
    store: Store,
    *,
    now: datetime,
    on_document: Callable[[], None] | None = None,
) -> ImportSummary:
    """Import every document under ``paths``; unreadable ones are reported, the rest stored.

    Every document is stored whatever topics it matches: the corpus is the user's,
    topics only decide which topic tags it gets.
    """
    summary = ImportSummary()
    seen_at = utc_iso(now)
    pending: list[Item] = []
    # undated documents meet across any span of time: every stored item's script counts
    scripts = set(scripts_seen(store, since=None))

    def flush() -> None:
        prepared, _unmatched = prepare_items(
            pending, config.topics, keep_unmatched=True, scripts_seen=frozenset(scripts)
        )
        scripts.update(script_of(f"{item.title}\n{item.text}") for item in pending)
        outcome = ingest_batch(
            store, prepared, feed_id=None, now=seen_at, settings=from_config(config.dedupe)
        )
        summary.new_items += outcome.new_items
        summary.near_duplicates += outcome.near_duplicates
        summary.duplicates += outcome.sightings
        summary.new_item_ids.extend(outcome.new_item_ids)
        pending.clear()

    hold_corrections(store, held=True)  # clustered as a whole below, not batch by batch
    try:
        for path in expand_paths(paths):
            for location, document in read_documents(path):
                if on_document is not None:
                    on_document()
                summary.documents += 1
                if isinstance(document, CorpusImportError):
                    summary.errors.append(document)
                    continue
                item = to_item(document, now)
                if item is None:
                    summary.errors.append(CorpusImportError(location, "no title and no text"))
                    continue
                pending.append(item)
                if len(pending) >= BATCH_SIZE:
                    flush()
        if pending:
            flush()
    finally:
        hold_corrections(store, held=False)
    # the import's items, and any an interrupted pass or import left unclustered
    last = store.last_item_id()
    waiting = items_after(store, clustered_through(store))
    if waiting:
        cluster_imported(store, waiting, from_config(config.dedupe), now=seen_at)
        with store.transaction():
            mark_clustered(store, last)
    return summary
