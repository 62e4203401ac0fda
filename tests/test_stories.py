"""Story grouping (dedupe level 3): vectors, the store's story tables, merges, regroup."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from watcher.config import Config
from watcher.corpus import Document, to_item
from watcher.ingest import ingest_batch
from watcher.prepare import PreparedItem
from watcher.regroup import regroup
from watcher.similarity import fingerprint
from watcher.store import Store
from watcher.store import stories as story_store
from watcher.story_vectors import coarse_key, from_bytes, similarities, story_vector, to_bytes

CROSS = Path(__file__).parent / "fixtures" / "stories" / "crosslang.jsonl"
LABELLED = Path(__file__).parent / "fixtures" / "dedupe" / "labelled.jsonl"
NOW = datetime(2024, 5, 1, 12, tzinfo=UTC)


def rows() -> list[dict[str, str]]:
    return [json.loads(line) for line in CROSS.read_text(encoding="utf-8").splitlines()]


def background() -> list[dict[str, str]]:
    """The labelled dedupe fixtures, undated: other news in the store."""
    lines = LABELLED.read_text(encoding="utf-8").splitlines()
    return [{**json.loads(line), "id": f"bg-{n}"} for n, line in enumerate(lines)]


def ingest(store: Store, docs: list[dict[str, str]]) -> None:
    prepared = []
    for doc in docs:
        item = to_item(Document(doc["title"], doc["text"], external_id=doc["id"]), NOW)
        assert item is not None
        fp = fingerprint(item.title, item.text, item.published_at)
        prepared.append(PreparedItem(item=item, topics=(), tags=(), fingerprint=fp))
    ingest_batch(store, prepared, feed_id=None, now="2024-05-01T12:00:00Z")


def stories(store: Store) -> dict[str, int]:
    return dict(store.db.execute("SELECT external_id, story_id FROM items").fetchall())


def same_event_pairs(story: dict[str, int], docs: list[dict[str, str]]) -> tuple[int, int, int]:
    """(pairs of one event grouped, pairs of one event, pairs of one topic wrongly grouped)."""
    right = total = wrong = 0
    for a, b in itertools.combinations(docs, 2):
        together = story[a["id"]] == story[b["id"]]
        if a["event"] == b["event"]:
            total += 1
            right += together
        elif together:
            wrong += 1
    return right, total, wrong


@pytest.mark.parametrize(
    ("russian", "english"),
    [("Кант", "Kant"), ("Жапаров", "Japarov"), ("Халвард", "Halvard"), ("Коврина", "Kovrin")],
)
def test_names_meet_across_scripts(russian: str, english: str) -> None:
    assert coarse_key(russian.casefold()) == coarse_key(english.casefold())


def test_vector_round_trip_and_rare_words_weigh_more() -> None:
    a = story_vector("Quake hits Velmora", "A quake hit Velmora and Ardesh, killing 14 people.")
    b = from_bytes(to_bytes(a))
    assert b.keys.tolist() == a.keys.tolist()
    assert b.names.tolist() == a.names.tolist()
    c = story_vector("Quake hits Dunholt", "A quake hit Dunholt and Sallow, nobody was hurt.")
    d = story_vector("Velmora counts dead", "Rescuers in Velmora and Ardesh found 14 dead.")
    common = {key: 50 for key in c.keys.tolist() if key in set(a.keys.tolist())}
    same, other = similarities(a, [d, c], common, 60)
    assert same > other


def test_russian_and_english_halves_join_and_topics_stay_apart(tmp_path: Path) -> None:
    docs = rows()
    store = Store.open(tmp_path / "w.db")
    ingest(store, background())  # document frequencies need a corpus
    ingest(store, [doc for doc in docs if doc["lang"] == "en"])
    store.close()
    store = Store.open(tmp_path / "w.db")  # the state survives a restart
    ingest(store, [doc for doc in docs if doc["lang"] == "ru"])
    found = stories(store)
    right, total, wrong = same_event_pairs(found, docs)
    assert wrong == 0
    assert right >= 0.6 * total


def test_merge_is_recorded_and_old_ids_resolve(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "w.db")
    ingest(store, rows()[:3])
    first, second, third = (row[0] for row in store.db.execute("SELECT id FROM items"))
    with store.transaction():
        story_store.merge_stories(store, first, second, item_id=third, at="t")
        story_store.merge_stories(store, third, first, item_id=third, at="t")
    assert story_store.resolve_story(store, second) == third
    assert story_store.resolve_story(store, first) == third
    assert {row[0] for row in store.db.execute("SELECT story_id FROM items")} == {third}


def test_regroup_gives_the_grouping_of_a_fresh_import(tmp_path: Path) -> None:
    docs = rows()
    store = Store.open(tmp_path / "w.db")
    ingest(store, docs)
    before = stories(store)
    batches: list[int] = []
    assert regroup(Config(), store, on_batch=batches.append) == len(docs)
    assert sum(batches) == len(docs)
    assert stories(store) == before
    lead = store.db.execute("SELECT COUNT(*) FROM story_leads").fetchone()[0]
    assert lead == len(set(before.values()))
