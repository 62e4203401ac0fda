"""The SQLite store: migrations, pragmas and the full-text index kept in step with items."""

from __future__ import annotations

from pathlib import Path

from watcher.normalize import make_item
from watcher.store import Store
from watcher.store.schema import migrations


def _store_with_item(path: Path) -> tuple[Store, int]:
    from datetime import UTC, datetime

    store = Store.open(path)
    item = make_item(
        title="Kant air base gets new hangars",
        summary="",
        content="Builders finished two hangars at the Kant air base near Bishkek this week.",
        url="https://news.example/hangars",
        guid=None,
        published=None,
        now=datetime.now(UTC),
    )
    assert item is not None
    with store.transaction():
        item_id = store.insert_item(item, feed_id=None, first_seen_at="2026-11-22T00:00:00Z")
    return store, item_id


def test_every_migration_is_applied_and_reopening_applies_none(tmp_path: Path) -> None:
    """A new database gets every migration once; opening it again changes nothing."""
    path = tmp_path / "w.db"
    Store.open(path).close()
    store = Store.open(path)
    applied = [m.name for m in migrations.applied(store.db)]
    assert applied == [m.name for m in migrations._migrations]
    assert migrations.pending(store.db) == []
    assert store.db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert store.db.execute("PRAGMA cache_size").fetchone()[0] < 0


def test_a_store_upgraded_to_the_clustering_mark_counts_as_clustered(tmp_path: Path) -> None:
    """Migration 0023 sets the mark at the last stored item: what passes before it stored
    was clustered by them (or is ``watcher regroup``'s to redo), so the first pass after
    the upgrade clusters only its own items."""
    from sqlite_utils import Database

    from watcher.store import stories

    path = tmp_path / "w.db"
    old = Database(path)
    migrations.apply(old, stop_before="0023_story_clustered")
    old.conn.execute(
        "INSERT INTO items(id, title, summary, content, content_hash, first_seen_at, story_id) "
        "VALUES (7, 't', '', 'x', 'h', '2026-11-22T00:00:00Z', 7)"
    )
    old.conn.commit()
    old.close()
    store = Store.open(path)
    assert stories.clustered_through(store) == 7
    with store.transaction():
        stories.mark_clustered(store, 5)  # another process, behind: the mark stays
    assert stories.clustered_through(store) == 7
    store.close()


def test_scripts_seen_reads_each_language_once_not_each_item(tmp_path: Path) -> None:
    """The scripts of the story window, asked once per feed a pass prepares: answered
    per language (its latest sighting), never by reading the window's items one by one,
    which made a cold pass's event loop quadratic in feeds times items."""
    from watcher.store import stories
    from watcher.story_vectors import CYRILLIC, LATIN

    store = Store.open(tmp_path / "w.db")
    rows = [
        (1, "en", "2026-12-01T00:00:00Z"),
        (2, "de", "2026-12-03T00:00:00Z"),
        (3, "ru", "2026-12-02T00:00:00Z"),
        (4, "kk", "2026-11-20T00:00:00Z"),
        (5, None, "2026-12-05T00:00:00Z"),  # no language detected: no script
        (6, "", "2026-11-01T00:00:00Z"),
    ]
    for item_id, lang, seen in rows:
        store.db.conn.execute(
            "INSERT INTO items(id, title, summary, content, content_hash, first_seen_at, lang) "
            "VALUES (?, 't', '', 'x', ?, ?, ?)",
            [item_id, f"h{item_id}", seen, lang],
        )
    store.db.conn.commit()
    seen = stories.scripts_seen
    assert seen(store, since=None) == {LATIN, CYRILLIC}
    assert seen(store, since="2026-12-02T00:00:00Z") == {LATIN, CYRILLIC}
    assert seen(store, since="2026-12-02T00:00:01Z") == {LATIN}  # "de" on the 3rd
    assert seen(store, since="2026-12-04T00:00:00Z") == set()  # only the item without one
    store.db.conn.execute("DELETE FROM items WHERE lang IS NOT 'ru'")
    assert seen(store, since=None) == {CYRILLIC}
    store.db.conn.execute("DELETE FROM items")

    def steps(expected: set[int]) -> int:
        """SQLite virtual-machine steps (in hundreds) one answer takes."""
        counted = [0]

        def count() -> int:
            counted[0] += 1
            return 0

        store.db.conn.set_progress_handler(count, 100)
        assert seen(store, since="2026-12-01T00:00:00Z") == expected
        store.db.conn.set_progress_handler(None, 100)
        return counted[0]

    insert = (
        "INSERT INTO items(title, summary, content, content_hash, first_seen_at, lang) "
        "VALUES ('t', '', 'x', ?, '2026-12-06T00:00:00Z', ?)"
    )
    for lang, script in (("en", LATIN), ("ru", CYRILLIC)):  # the other script absent
        store.db.conn.execute("DELETE FROM items")
        store.db.conn.execute(insert, [f"{lang}-first", lang])
        few = steps({script})
        store.db.conn.executemany(insert, [(f"{lang}{n}", lang) for n in range(5000)])
        assert steps({script}) <= few + 2  # the window's 5,000 items not read
    store.close()


def test_fts_index_follows_text_changes_but_not_story_changes(tmp_path: Path) -> None:
    """Setting an item's story leaves the search index alone; editing its text re-indexes it."""
    store, item_id = _store_with_item(tmp_path / "w.db")
    changes_before = store.db.conn.total_changes
    store.db.execute("UPDATE items SET story_id = 42 WHERE id = ?", [item_id])
    assert store.db.conn.total_changes - changes_before == 1, "only the items row changed"
    assert [row["id"] for row in store.search("hangars")] == [item_id]

    store.db.execute(
        "UPDATE items SET title = 'Kant air base gets new runway' WHERE id = ?", [item_id]
    )
    assert [row["id"] for row in store.search("runway")] == [item_id]
    assert [row["id"] for row in store.search("title: hangars")] == []


def test_off_topic_digests_are_replaced_per_fetch_and_kept_per_topics(tmp_path: Path) -> None:
    """Each fetch's digests replace the last; they count only under the topics they were
    matched against; removing the feed removes them."""
    store = Store.open(tmp_path / "w.db")
    store.add_feed("https://wire.example/feed", now="2026-12-01T00:00:00Z")
    feed_id = int(store._one("SELECT id FROM feeds"))
    store.replace_off_topic(feed_id, "topics-a", ["d1", "d2"])
    store.replace_off_topic(feed_id, "topics-a", ["d2", "d3"])
    assert store.off_topic_digests(feed_id, "topics-a") == {"d2", "d3"}
    assert store.off_topic_digests(feed_id, "topics-b") == frozenset()
    store.db.conn.commit()
    assert store.remove_feed("https://wire.example/feed")
    assert store.count("off_topic_entries") == 0
    store.close()
