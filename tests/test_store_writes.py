"""The batch writes of a new item: its id and story in one insert, topics, tags, sightings."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from watcher.models import Item, Tag
from watcher.normalize import make_item
from watcher.store import Store


def _item(n: int) -> Item:
    item = make_item(
        title=f"Kant air base story {n}",
        summary="",
        content=f"Report number {n} about the Kant air base near Bishkek.",
        url=f"https://news.example/{n}",
        guid=None,
        published=None,
        now=datetime(2026, 11, 22, tzinfo=UTC),
    )
    assert item is not None
    return item


def test_a_new_item_gets_the_id_sqlite_picks_and_starts_its_own_story(tmp_path: Path) -> None:
    """Ids run on from the largest (also after the last row was deleted); story_id defaults to it."""
    store = Store.open(tmp_path / "w.db")
    with store.transaction():
        first = store.insert_item(_item(1), feed_id=None, first_seen_at="2026-11-22T00:00:00Z")
        second = store.insert_item(_item(2), feed_id=None, first_seen_at="2026-11-22T00:00:00Z")
        joined = store.insert_item(
            _item(3), feed_id=None, first_seen_at="2026-11-22T00:00:00Z", story_id=first
        )
    assert (first, second, joined) == (1, 2, 3)
    with store.transaction():
        store.db.execute("DELETE FROM items WHERE id = 3")
        again = store.insert_item(_item(4), feed_id=None, first_seen_at="2026-11-22T00:00:00Z")
    assert again == 3
    stories = store.db.execute("SELECT id, story_id FROM items ORDER BY id").fetchall()
    assert stories == [(1, 1), (2, 2), (3, 3)]
    assert store.search("Kant")[0]["id"] in {1, 2, 3}


def test_batch_topics_tags_and_sightings_are_stored_like_one_by_one(tmp_path: Path) -> None:
    """add_topics/add_tags/add_sightings store what set_topics/set_tags/add_sighting would."""
    one, many = Store.open(tmp_path / "one.db"), Store.open(tmp_path / "many.db")
    tags = (Tag("Kant", "keyword", 0.5), Tag("Kant", "keyword", 0.75), Tag("base", "keyphrase", 1))
    for store in (one, many):
        with store.transaction():
            for n in (1, 2):
                store.insert_item(_item(n), feed_id=None, first_seen_at="2026-11-22T00:00:00Z")
    with one.transaction():
        for item_id in (1, 2):
            one.set_topics(item_id, ("kant", "kyrgyz"))
            one.set_tags(item_id, tags[: item_id + 1])
            one.add_sighting(item_id, feed_id=None, url="u", seen_at="t", match="first")
        one.add_sighting(1, feed_id=None, url="u", seen_at="t", match="url")
    with many.transaction():
        many.add_topics([(1, ("kant", "kyrgyz")), (2, ("kant", "kyrgyz"))])
        many.add_tags([(1, tags[:2]), (2, tags[:3])])
        many.add_sightings(
            [(i, None, "u", "t", m) for i, m in ((1, "first"), (2, "first"), (1, "url"))]
        )
    for sql in (
        "SELECT item_id, topic FROM item_topics ORDER BY 1, 2",
        "SELECT item_id, name, kind, score FROM item_tags JOIN tags ON tags.id = tag_id ORDER BY 1, 2",
        "SELECT id, item_id, feed_id, url, seen_at, match FROM sightings ORDER BY id",
    ):
        assert one.db.execute(sql).fetchall() == many.db.execute(sql).fetchall(), sql
    assert many.db.execute("SELECT count(*) FROM sightings").fetchone() == (2,)
