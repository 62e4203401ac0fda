"""Everything that reads or writes SQLite; the only sqlite-utils importer."""

from watcher.store.database import FeedRow, FeedSchedule, Store

__all__ = ["FeedRow", "FeedSchedule", "Store"]
