"""`watcher retag` recomputes topics and tags from the stored text after a config change."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from tests.conftest import TOPIC_TOML

DOCUMENTS = [
    {
        "id": "one",
        "title": "Kant air base in Kyrgyzstan gets a new runway",
        "text": "Engineers at the Kant air base near Bishkek finished a runway for heavy transport "
        "aircraft, the Kyrgyz defence ministry said. The Manas airport nearby stays civilian.",
    },
    {
        "id": "two",
        "title": "Kant airbase hosts joint drills",
        "text": "Pilots from Kyrgyzstan and Russia trained together at the Kant airbase this week, "
        "practising air defence drills over the Chuy valley.",
    },
    {
        "id": "three",
        "title": "Bishkek opens a new concert hall",
        "text": "The city of Bishkek opened a concert hall with room for two thousand people.",
    },
]


def tags_of(db: Path, kind: str) -> dict[str, set[str]]:
    with sqlite3.connect(db) as connection:
        rows = connection.execute(
            "SELECT items.external_id, tags.name FROM item_tags "
            "JOIN tags ON tags.id = item_tags.tag_id JOIN items ON items.id = item_tags.item_id "
            "WHERE tags.kind = ?",
            [kind],
        ).fetchall()
    found: dict[str, set[str]] = {}
    for external_id, name in rows:
        found.setdefault(external_id, set()).add(name)
    return found


def imported(make_watcher, tmp_path: Path):  # type: ignore[no-untyped-def]
    corpus = tmp_path / "docs.jsonl"
    corpus.write_text("".join(json.dumps(d) + "\n" for d in DOCUMENTS), encoding="utf-8")
    watcher = make_watcher()
    assert watcher("corpus", "import", str(corpus)).exit_code == 0
    return watcher


def test_retag_after_adding_a_keyword_tags_only_the_items_that_contain_it(
    make_watcher, tmp_path: Path
) -> None:
    """A keyword added to the config reaches the stored items that mention it, and no others."""
    watcher = imported(make_watcher, tmp_path)
    before = tags_of(watcher.db, "keyword")
    assert all("manas" not in names for names in before.values())

    text = watcher.config.read_text(encoding="utf-8")
    watcher.config.write_text(
        text.replace('keywords = ["Kant",', 'keywords = ["Manas", "Kant",'), encoding="utf-8"
    )
    result = watcher("retag")
    assert result.exit_code == 0, result.output
    assert "retagged 3 items" in result.output

    after = tags_of(watcher.db, "keyword")
    assert {key for key, names in after.items() if "manas" in names} == {"one"}
    for key in ("two", "three"):
        assert after.get(key, set()) == before.get(key, set())


def test_retag_recomputes_topic_membership_when_a_query_changes(
    make_watcher, tmp_path: Path
) -> None:
    """Widening a topic query moves matching stored items into the topic."""
    watcher = imported(make_watcher, tmp_path)
    assert set(tags_of(watcher.db, "topic")) == {"one", "two"}
    text = watcher.config.read_text(encoding="utf-8")
    assert TOPIC_TOML.strip().splitlines()[3] in text
    watcher.config.write_text(
        text.replace("query = '(Kant OR Кант*) AND", "query = 'concert OR (Kant OR Кант*) AND"),
        encoding="utf-8",
    )
    assert watcher("retag", "--topic", "kant-air-base").exit_code == 0
    assert set(tags_of(watcher.db, "topic")) == {"one", "two", "three"}
    with sqlite3.connect(watcher.db) as connection:
        assert connection.execute("SELECT count(*) FROM item_topics").fetchone() == (3,)


def test_retag_rejects_an_unknown_topic(make_watcher, tmp_path: Path) -> None:
    """A misspelt --topic is an error naming the topic, and nothing changes."""
    watcher = imported(make_watcher, tmp_path)
    before = tags_of(watcher.db, "keyword")
    result = watcher("retag", "--topic", "kant-airbase")
    assert result.exit_code != 0
    assert "kant-airbase" in result.output
    assert tags_of(watcher.db, "keyword") == before


def test_tag_view_lists_one_row_per_item_and_tag_for_faceting(make_watcher, tmp_path: Path) -> None:
    """The item_tag_names view spells out every tag of every item with its kind."""
    watcher = imported(make_watcher, tmp_path)
    with sqlite3.connect(watcher.db) as connection:
        from_view = connection.execute("SELECT count(*) FROM item_tag_names").fetchone()[0]
        from_table = connection.execute("SELECT count(*) FROM item_tags").fetchone()[0]
        kant = connection.execute(
            "SELECT DISTINCT title FROM item_tag_names WHERE kind = 'keyword' AND tag = 'kant'"
        ).fetchall()
    assert from_view == from_table > 0
    assert {row[0] for row in kant} == {DOCUMENTS[0]["title"], DOCUMENTS[1]["title"]}
