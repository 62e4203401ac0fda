"""Near-duplicates and stories through the real pipeline: feeds, imports, SQLite, restarts."""

from __future__ import annotations

import itertools
import json
import sqlite3
from datetime import datetime
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from tests.conftest import SEEDS, rss, rss_item

LABELLED = Path(__file__).parent / "fixtures" / "dedupe" / "labelled.jsonl"
KEEP_ALL = "keep_unmatched = true\n"


def labelled() -> dict[str, dict[str, str]]:
    rows = [json.loads(line) for line in LABELLED.read_text(encoding="utf-8").splitlines()]
    return {row["id"]: row for row in rows}


def grouping(db: Path) -> dict[str, tuple[int, int | None]]:
    """external_id → (story_id, duplicate group root) of every stored item."""
    with sqlite3.connect(db) as connection:
        rows = connection.execute(
            "SELECT external_id, story_id, COALESCE(duplicate_of, id) FROM items"
        ).fetchall()
    return {row[0]: (row[1], row[2]) for row in rows}


def as_rss_item(row: dict[str, str], link: str) -> str:
    paragraphs = "".join(f"<p>{p}</p>" for p in row["text"].split("\n\n"))
    return rss_item(
        row["title"],
        link,
        paragraphs,
        guid=row["id"],
        published=datetime.fromisoformat(row["published"]),
    )


def pairs(groups: dict[str, object]) -> set[frozenset[str]]:
    return {
        frozenset((a, b))
        for a, b in itertools.combinations(sorted(groups), 2)
        if groups[a] == groups[b]
    }


def test_labelled_set_imported_as_jsonl_groups_copies_exactly_and_never_merges_stories(
    make_watcher, tmp_path: Path
) -> None:
    """Copies land in their original's group; stories are never merged across events."""
    watcher = make_watcher()
    result = watcher("corpus", "import", str(LABELLED))
    assert result.exit_code == 0, result.output
    rows = labelled()
    stored = grouping(watcher.db)
    assert set(stored) == set(rows)

    expected_dups = pairs({key: row["dup_group"] for key, row in rows.items()})
    found_dups = pairs({key: value[1] for key, value in stored.items()})
    assert found_dups == expected_dups

    expected_stories = pairs({key: row["story"] for key, row in rows.items()})
    found_stories = pairs({key: value[0] for key, value in stored.items()})
    assert found_stories <= expected_stories, "an item joined the story of another event"
    assert len(found_stories) >= 0.85 * len(expected_stories)


def test_syndicated_copy_followup_and_unrelated_item_across_feeds(
    httpserver: HTTPServer, make_watcher
) -> None:
    """Across two feeds: a wire copy is a duplicate, a follow-up joins the story, a decoy does not."""
    rows = labelled()
    first = [as_rss_item(rows["brackenford-flood-orig"], "https://one.example/flood")]
    second = [
        as_rss_item(rows["brackenford-flood-wire"], "https://two.example/wire-flood"),
        as_rss_item(rows["brackenford-flood-followup"], "https://two.example/flood-day-two"),
        as_rss_item(rows["brackenford-flood-decoy"], "https://two.example/council"),
    ]
    httpserver.expect_request("/one.xml").respond_with_data(rss(first), content_type="text/xml")
    httpserver.expect_request("/two.xml").respond_with_data(rss(second), content_type="text/xml")
    watcher = make_watcher([httpserver.url_for("/one.xml")], poll=KEEP_ALL)
    watcher("poll", "--all")
    watcher("feeds", "add", httpserver.url_for("/two.xml"))
    result = watcher("poll", "--all")
    assert result.exit_code == 0, result.output

    with sqlite3.connect(watcher.db) as connection:
        items = {
            row[0]: row[1:]
            for row in connection.execute(
                "SELECT url, id, duplicate_of, story_id, dedupe_signal FROM items"
            )
        }
    original = items["https://one.example/flood"]
    wire = items["https://two.example/wire-flood"]
    followup = items["https://two.example/flood-day-two"]
    decoy = items["https://two.example/council"]
    assert wire[1] == original[0]
    assert wire[2] == original[2]
    assert followup[1] is None
    assert followup[2] == original[2]
    assert decoy[1] is None
    assert decoy[2] == decoy[0]


def test_same_article_in_another_feed_an_hour_later_is_level_one_not_level_two(
    httpserver: HTTPServer, make_watcher
) -> None:
    """A republished identical article is a sighting of the stored item, not a new row."""
    rows = labelled()
    item = as_rss_item(rows["tessaly-recall-orig"], "https://one.example/recall?utm_source=x")
    again = as_rss_item(rows["tessaly-recall-orig"], "https://other.example/copied-recall")
    httpserver.expect_request("/a.xml").respond_with_data(rss([item]), content_type="text/xml")
    httpserver.expect_request("/b.xml").respond_with_data(rss([again]), content_type="text/xml")
    watcher = make_watcher(
        [httpserver.url_for("/a.xml"), httpserver.url_for("/b.xml")], poll=KEEP_ALL
    )
    watcher("poll", "--all")
    with sqlite3.connect(watcher.db) as connection:
        assert connection.execute("SELECT count(*) FROM items").fetchone() == (1,)
        matches = connection.execute("SELECT match FROM sightings ORDER BY id").fetchall()
    assert matches == [("first",), ("hash",)]


def test_dedupe_state_survives_a_restart(
    httpserver: HTTPServer, make_watcher, tmp_path: Path
) -> None:
    """A copy polled by a later process is recognised against what an import stored before."""
    rows = labelled()
    original = rows["tessaly-recall-orig"]
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(json.dumps(original) + "\n", encoding="utf-8")
    watcher = make_watcher([httpserver.url_for("/copy.xml")], poll=KEEP_ALL)
    assert watcher("corpus", "import", str(corpus)).exit_code == 0

    copy = as_rss_item(rows["tessaly-recall-wire"], "https://wire.example/kettles")
    httpserver.expect_request("/copy.xml").respond_with_data(rss([copy]), content_type="text/xml")
    watcher("poll", "--all")
    with sqlite3.connect(watcher.db) as connection:
        rows_found = connection.execute(
            "SELECT external_id, duplicate_of, story_id FROM items ORDER BY id"
        ).fetchall()
    assert rows_found == [("tessaly-recall-orig", None, 1), (None, 1, 1)]


def test_copy_two_years_later_starts_a_new_story(make_watcher, tmp_path: Path) -> None:
    """Outside the duplicate and story windows the same text is a new story, not a copy."""
    rows = labelled()
    original = dict(rows["tessaly-recall-orig"])
    later = dict(rows["tessaly-recall-wire"], id="later", published="2026-02-19T09:00:00Z")
    corpus = tmp_path / "two-years.jsonl"
    corpus.write_text(json.dumps(original) + "\n" + json.dumps(later) + "\n", encoding="utf-8")
    watcher = make_watcher()
    watcher("corpus", "import", str(corpus))
    stored = grouping(watcher.db)
    assert stored["later"][0] != stored["tessaly-recall-orig"][0]
    assert stored["later"][1] != stored["tessaly-recall-orig"][1]


def test_seed_corpus_forms_the_expected_stories(make_watcher) -> None:
    """Seeds 000, 002, 003 are one story; 001 and 004 their own; none is a copy."""
    if not SEEDS.is_dir():
        pytest.skip(f"seed corpus not found at {SEEDS} (../shared is not beside the repo)")
    watcher = make_watcher()
    assert watcher("corpus", "import", str(SEEDS)).exit_code == 0
    with sqlite3.connect(watcher.db) as connection:
        rows = connection.execute(
            "SELECT title, story_id, duplicate_of FROM items ORDER BY id"
        ).fetchall()
    assert len(rows) == 5
    assert all(row[2] is None for row in rows)
    stories = [row[1] for row in rows]
    assert stories[0] == stories[2] == stories[3]
    assert len({stories[0], stories[1], stories[4]}) == 3

    listing = watcher("stories")
    assert listing.exit_code == 0
    assert "Kant" in listing.output


def test_stories_command_lists_items_and_sources_per_story(make_watcher, tmp_path: Path) -> None:
    """`watcher stories` shows one line per story with its item count and sources."""
    rows = labelled()
    picked = [
        dict(rows["brackenford-flood-orig"], source="Northern Press"),
        dict(rows["brackenford-flood-followup"], source="Valley Courier"),
        dict(rows["tessaly-recall-orig"], source="Appliance Weekly"),
    ]
    corpus = tmp_path / "three.jsonl"
    corpus.write_text("".join(json.dumps(row) + "\n" for row in picked), encoding="utf-8")
    watcher = make_watcher()
    watcher("corpus", "import", str(corpus))
    result = watcher("stories", "--limit", "5")
    assert result.exit_code == 0, result.output
    lines = [
        line for line in result.output.splitlines() if "Brackenford" in line or "Tessaly" in line
    ]
    flood = next(line for line in lines if "Brackenford" in line)
    assert "│ 2 " in flood
    assert "Northern Press" in flood
    assert "Valley Courier" in flood
    assert len(lines) == 2


def test_dedupe_section_defaults_are_the_similarity_defaults() -> None:
    """An empty [dedupe] section gives exactly the settings docs/dedupe.md explains."""
    from watcher.config import DedupeConfig
    from watcher.dedupe_settings import from_config
    from watcher.similarity import DEFAULT_SETTINGS

    assert from_config(DedupeConfig()) == DEFAULT_SETTINGS
