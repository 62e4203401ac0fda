"""Story grouping (dedupe level 3): vectors, the store's story tables, merges, regroup."""

from __future__ import annotations

import dataclasses
import itertools
import json
import pickle
import random
import re
import struct
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from pytest_httpserver import HTTPServer

from tests.conftest import Watcher, drive_daemon, kant_story, rss, rss_item
from watcher import clustering, story_grouping
from watcher import story_vectors as sv
from watcher.config import Config
from watcher.corpus import Document, to_item
from watcher.dedupe_settings import from_config
from watcher.ingest import ingest_batch
from watcher.prepare import PreparedItem, prepare_items
from watcher.regroup import regroup
from watcher.similarity import DEFAULT_SETTINGS, DedupeSettings, fingerprint
from watcher.store import Store
from watcher.store import stories as story_store
from watcher.story_grouping import average_link, similarity_matrix
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


def ingest(
    store: Store, docs: list[dict[str, str]], settings: DedupeSettings = DEFAULT_SETTINGS
) -> None:
    prepared = []
    for doc in docs:
        item = to_item(Document(doc["title"], doc["text"], external_id=doc["id"]), NOW)
        assert item is not None
        fp = fingerprint(item.title, item.text, item.published_at)
        prepared.append(PreparedItem(item=item, topics=(), tags=(), fingerprint=fp))
    ingest_batch(store, prepared, feed_id=None, now="2024-05-01T12:00:00Z", settings=settings)


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
    assert story_store.clustered_through(store) == store.last_item_id()  # nothing left over


_FLOOD_SENTENCES = (
    "The river burst its banks after the storm and water reached the upper floors.",
    "Rescue teams in boats evacuated residents while roads stayed closed.",
    "Forecasters warned of more heavy rain, and schools were shut for the week.",
    "Emergency crews pumped water out of basements as the level slowly fell.",
    "Farmers said whole fields were lost and cattle had to be moved to higher ground.",
    "Power was cut in several streets and volunteers handed out drinking water.",
)
"""The kind's vocabulary, which every flood report shares."""


def _write_up(
    n: int, place: str, region: str, figure: str, person: str, shift: int
) -> dict[str, str]:
    """An invented flood report: two of the kind's sentences (which ones varies), the
    event's own names and figures in the headline and the lead."""
    heads = (
        f"Flood in {place} leaves {figure} homes under water",
        f"{person} visits flooded {place}",
        f"{figure} families lose homes as {region} river floods {place}",
    )
    leads = (
        f"{figure} homes in {place}, {region}, were flooded overnight, {person} said.",
        f"{person} toured {place} on Wednesday, where {figure} homes stand in the water.",
        f"In {place} the flood destroyed {figure} homes, according to {person} of {region}.",
    )
    more = (
        f"{person} asked {region} for tents and said {place} needs help for months.",
        f"Shelters in {place} took in people from the {figure} flooded homes.",
        f"The {region} authorities counted the damage in {place} at {figure} houses.",
    )
    kind = " ".join(_FLOOD_SENTENCES[(n + k + shift) % len(_FLOOD_SENTENCES)] for k in range(3))
    return {"title": heads[n], "text": f"{leads[n]} {kind} {more[n]}"}


def _flood_docs() -> list[dict[str, str]]:
    docs = []
    for n in range(3):
        a = _write_up(n, "Brennick", "Lowmarsh", "340", "Mayor Orsin Delacroy", 0)
        docs.append({**a, "id": f"a{n}", "event": "a"})
        b = _write_up(n, "Quarrow", "Eastfold", "1,250", "Governor Talia Vennholt", 3)
        docs.append({**b, "id": f"b{n}", "event": "b"})
    return docs


def test_two_floods_with_other_places_and_figures_stay_apart(tmp_path: Path) -> None:
    docs = _flood_docs()
    for order in (docs, docs[::-1], docs[::2] + docs[1::2]):
        store = Store.open(tmp_path / f"{order[0]['id']}{order[1]['id']}.db")
        ingest(store, background())
        for doc in order:  # one at a time, as a feed delivers them
            ingest(store, [doc])
        found = {key: story_store.resolve_story(store, sid) for key, sid in stories(store).items()}
        store.close()
        right, total, wrong = same_event_pairs(found, docs)
        assert wrong == 0, order
        assert right == total, order


def test_the_lead_weighs_more_than_the_body() -> None:
    body = " ".join(f"filler{n} words{n} about{n} nothing{n}." for n in range(40))
    lead_first = story_vector("Dam repairs in Orlev", "Engineers repaired the Orlev dam. " + body)
    lead_last = story_vector("Tram news", body + " Engineers repaired the Orlev dam.")
    dam = story_vector("Orlev dam repaired", "Engineers repaired the Orlev dam at last.")
    df: dict[int, int] = {}
    first, last = similarities(dam, [lead_first, lead_last], df, 100)
    assert first > last


def test_a_later_item_links_two_stories_and_they_merge(tmp_path: Path) -> None:
    one = {
        "id": "one",
        "title": "Kelvarn ferry engine fire forces evacuation",
        "text": (
            "An engine fire broke out aboard the Kelvarn ferry on Tuesday and the crew "
            "evacuated all passengers onto lifeboats. Smoke filled the lower deck while "
            "firefighters from the coast guard boarded the vessel. Captain Idris Maelan "
            "praised the calm of the travellers, who waited in blankets on the pier."
        ),
    }
    two = {
        "id": "two",
        "title": "Harbour authority suspends Vostrel line sailings",
        "text": (
            "The harbour authority suspended every sailing of the Vostrel line until "
            "inspectors finish checking its fleet. Ticket holders may claim refunds online. "
            "Director Sanne Oberlit said investigators would examine maintenance records "
            "and interview mechanics before any timetable resumes next month."
        ),
    }
    link = {
        "id": "link",
        "title": "Vostrel line halts sailings after Kelvarn ferry engine fire",
        "text": (
            "After an engine fire aboard the Kelvarn ferry forced the crew to evacuate "
            "passengers onto lifeboats, the harbour authority suspended every sailing of "
            "the Vostrel line. Captain Idris Maelan praised the passengers; director Sanne "
            "Oberlit said inspectors would check the fleet and maintenance records, and "
            "ticket holders may claim refunds while investigators interview mechanics."
        ),
    }
    config = Config.model_validate({"dedupe": {"story_merge_threshold": 0.2}})
    settings = from_config(config.dedupe)
    store = Store.open(tmp_path / "w.db")
    ingest(store, background())
    ingest(store, [one], settings)
    ingest(store, [two], settings)
    before = stories(store)
    assert before["one"] != before["two"]  # too little in common to join directly
    ingest(store, [link], settings)
    by = store.db.execute("SELECT id FROM items WHERE external_id = 'link'").fetchone()[0]
    merges = store.db.execute(
        "SELECT story_id, merged_into FROM story_merges WHERE item_id = ?", [by]
    ).fetchall()
    assert len(merges) == 1  # the background's own corrections are recorded by their items
    absorbed, into = merges[0]
    assert {absorbed, into} == {before["one"], before["two"]}
    after = stories(store)
    assert after["one"] == after["two"] == after["link"] == into
    assert story_store.resolve_story(store, absorbed) == into


def test_story_settings_come_from_the_dedupe_section() -> None:
    config = Config.model_validate({"dedupe": {"story_merge_threshold": 1.0}})
    assert from_config(config.dedupe).story_merge_threshold == 1.0
    with pytest.raises(ValueError, match="story_threshold"):
        Config.model_validate({"dedupe": {"story_threshold": 1.5}})


def test_a_cyrillic_and_a_latin_write_up_meet() -> None:
    english = story_vector(
        "Governor Ilan Morrow opens the Ardesh bridge",
        "Governor Ilan Morrow opened the new bridge over the Velna river at Ardesh on Friday.",
    )
    russian = story_vector(
        "Губернатор Илан Морроу открыл мост в Ардеше",
        "Губернатор Илан Морроу в пятницу открыл новый мост через реку Вельна в Ардеше.",
    )
    other = story_vector(
        "Governor Petra Lind opens the Dunholt tunnel",
        "Governor Petra Lind opened the new tunnel under the Sallow hills at Dunholt on Friday.",
    )
    same, different = similarities(russian, [english, other], {}, 100)
    assert same > 0.3 > different


def test_the_story_vector_is_prepared_in_the_worker_and_pickles() -> None:
    item = to_item(
        Document("Quake hits Velmora", "A quake hit Velmora and Ardesh, killing 14 people."), NOW
    )
    assert item is not None
    (prepared,), _ = prepare_items([item], (), keep_unmatched=True)
    assert prepared.story_vector == to_bytes(story_vector(item.title, item.text))
    again = pickle.loads(pickle.dumps(prepared))
    assert (
        from_bytes(again.story_vector).keys.tolist()
        == story_vector(item.title, item.text).keys.tolist()
    )


def test_the_writer_uses_the_prepared_vector(tmp_path: Path) -> None:
    item = to_item(Document("Bridge opens", "The Ardesh bridge opened on Friday."), NOW)
    assert item is not None
    (prepared,), _ = prepare_items([item], (), keep_unmatched=True)
    marked = dataclasses.replace(prepared, story_vector=to_bytes(story_vector("Other", "x y z")))
    store = Store.open(tmp_path / "w.db")
    ingest_batch(store, [marked], feed_id=None, now="2024-05-01T12:00:00Z")
    (blob,) = store.db.execute("SELECT vector FROM story_vectors").fetchone()
    assert blob == marked.story_vector


def _flood_reports(
    count: int, names: tuple[str, str, str, str], shift: int, template: int
) -> list[dict[str, str]]:
    """``count`` write-ups of one invented flood: headline and lead template ``n +
    template`` and the kind's sentences from ``n + shift`` on vary by report (two events
    with templates one apart and shifts three apart never share both)."""
    place, region, figure, person = names
    return [
        {
            **_write_up((n + template) % 3, place, region, figure, person, shift + n),
            "id": f"{place}-{n}",
        }
        for n in range(count)
    ]


_A = ("Brennick", "Lowmarsh", "340", "Mayor Orsin Delacroy")
_B = ("Quarrow", "Eastfold", "1,250", "Governor Talia Vennholt")


def _group_of(store: Store, external_ids: list[str]) -> set[int]:
    marks = ",".join("?" for _ in external_ids)
    return {
        row[0]
        for row in store.db.execute(
            f"SELECT story_id FROM items WHERE external_id IN ({marks})", external_ids
        )
    }


def test_a_wrongly_merged_story_is_split_again_when_later_items_show_two_events(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 141 background items (78 counted, copies are not): fewer than the correction waits for
    monkeypatch.setattr(story_grouping, "CORRECTION_MIN_DOCUMENTS", 50)
    monkeypatch.setattr(story_grouping, "CORRECT_EVERY", 1)  # each one-item batch corrected
    a = _flood_reports(4, _A, 0, 0)
    b = _flood_reports(4, _B, 3, 1)
    store = Store.open(tmp_path / "w.db")
    ingest(store, background())
    ingest(store, [a[0]])
    ingest(store, [b[0]])
    first_a, first_b = (
        store.db.execute("SELECT id FROM items WHERE external_id = ?", [doc["id"]]).fetchone()[0]
        for doc in (a[0], b[0])
    )
    with store.transaction():  # a wrong merge, as the one-pass decision once made them
        story_store.merge_stories(store, first_a, first_b, item_id=first_b, at="t")
    assert _group_of(store, [a[0]["id"], b[0]["id"]]) == {first_a}
    for doc_a, doc_b in zip(
        a[1:], b[1:], strict=True
    ):  # later reports of both, as a feed brings them
        ingest(store, [doc_a])
        ingest(store, [doc_b])
    assert _group_of(store, [doc["id"] for doc in a]) == {first_a}  # keeps its id
    assert _group_of(store, [doc["id"] for doc in b]) == {first_b}  # its first item's id
    split = store.db.execute("SELECT story_id, split_from FROM story_splits").fetchall()
    assert (first_b, first_a) in split
    # the old id resolves again to the story of its own item, its merge record is gone
    assert story_store.resolve_story(store, first_b) == first_b
    assert story_store.resolve_story(store, first_a) == first_a
    gone = "SELECT COUNT(*) FROM story_merges WHERE story_id = ?"
    assert store.db.execute(gone, [first_b]).fetchone()[0] == 0
    leads = {row[0] for row in store.db.execute("SELECT story_id FROM story_leads")}
    assert {first_a, first_b} <= leads


def test_an_old_story_id_resolves_after_a_split(tmp_path: Path) -> None:
    """A story merged into another, then split off again with other items: every id
    recorded follows its first item's story."""
    store = Store.open(tmp_path / "w.db")
    for title in ("one", "two", "three", "four"):
        store.insert_item(
            to_item(Document(title, f"{title} text"), NOW),  # type: ignore[arg-type]
            feed_id=None,
            first_seen_at="t",
        )
    one, two, three, four = (row[0] for row in store.db.execute("SELECT id FROM items"))
    with store.transaction():
        story_store.merge_stories(store, one, two, item_id=two, at="t")
        story_store.merge_stories(store, one, three, item_id=three, at="t")
        story_store.move_items(store, [(two, two), (three, two)])  # two and three split off
        story_store.record_split(store, two, one, item_id=four, at="t")
    assert story_store.resolve_story(store, two) == two
    assert story_store.resolve_story(store, three) == two
    assert story_store.resolve_story(store, one) == one
    assert store.db.execute("SELECT story_id FROM story_merges").fetchall() == [(three,)]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_a_large_import_of_two_same_kind_events_ends_as_two_stories(
    tmp_path: Path, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(story_grouping, "CORRECTION_MIN_DOCUMENTS", 50)
    a = _flood_reports(9, _A, 0, 0)
    b = _flood_reports(9, _B, 3, 1)
    docs = a + b
    random.Random(seed).shuffle(docs)
    store = Store.open(tmp_path / "w.db")
    ingest(store, background())
    for start in range(0, len(docs), 6):  # an import sends batches
        ingest(store, docs[start : start + 6])
    story_a = _group_of(store, [doc["id"] for doc in a])
    story_b = _group_of(store, [doc["id"] for doc in b])
    assert len(story_a) == len(story_b) == 1
    assert story_a != story_b


def test_the_correction_clusters_like_batch_average_link() -> None:
    """The matrix of all pairs is :func:`similarities`, pair by pair."""
    docs = rows()[:12]
    vectors = [story_vector(doc["title"], doc["text"]) for doc in docs]
    df: dict[int, int] = {}
    for vector in vectors:
        for key in vector.keys.tolist():
            df[key] = df.get(key, 0) + 1
    matrix = similarity_matrix(vectors, df, len(vectors), 0.6)
    for n, vector in enumerate(vectors):
        expected = similarities(vector, vectors, df, len(vectors), 0.6)
        assert matrix[n] == pytest.approx(expected, abs=1e-6)
    labels = average_link(matrix, 0.3)
    assert len(labels) == len(vectors)
    assert len(set(labels)) > 1
    reused = matrix.copy()
    assert average_link(reused, 0.3, in_place=True) == labels  # the same clusters
    assert not np.array_equal(reused, matrix)  # worked in, no copy made


@pytest.mark.parametrize(
    ("russian", "english"),
    [("Москве", "Moscow"), ("России", "Russia"), ("Трампа", "Trump"), ("Пекине", "Beijing")],
)
def test_exonyms_and_case_endings_meet_their_english_names(russian: str, english: str) -> None:
    assert coarse_key(russian.casefold()) == coarse_key(english.casefold())


def test_the_script_is_kept_in_the_vector_and_older_formats_read_as_latin() -> None:
    russian = story_vector("Наводнение в Орске", "Вода затопила дома в Орске, сообщил Паслер.")
    english = story_vector("Orsk flood", "Water flooded homes in Orsk, Governor Pasler said.")
    assert (russian.script, english.script) == (sv.CYRILLIC, sv.LATIN)
    assert from_bytes(to_bytes(russian)).script == sv.CYRILLIC
    data = to_bytes(russian)
    words, names = int((~russian.names).sum()), int(russian.names.sum())
    format2 = struct.pack("<BHH", 2, words, names) + data[6:]  # no script byte
    assert from_bytes(format2).script == sv.LATIN


def test_across_scripts_only_names_and_figures_count_on_the_same_scale() -> None:
    """A Russian and an English half of one event share no word, only names: their
    similarity is the names cosine alone, not diluted by the words that cannot meet; the
    batch matrix says the same."""
    ru = story_vector(
        "Набиуллина объявила о повышении ставки",
        "Банк России повысил ставку, глава ЦБ Эльвира Набиуллина сослалась на инфляцию.",
    )
    en = story_vector(
        "Analysts had expected less",
        "Governor Elvira Nabiullina said the bank could tighten again, analysts at Sberbank said.",
    )
    other = story_vector(
        "Lagarde keeps rates on hold",
        "President Christine Lagarde said in Frankfurt that a cut was premature.",
    )
    vectors = [ru, en, other]
    df = {int(key): 1 for vector in vectors for key in vector.keys}
    ru_en, ru_other = similarities(ru, [en, other], df, 3, 0.6)
    assert ru_en > 0.2
    assert ru_other == 0.0
    matrix = similarity_matrix(vectors, df, 3, 0.6)
    for n, vector in enumerate(vectors):
        assert matrix[n] == pytest.approx(similarities(vector, vectors, df, 3, 0.6), abs=1e-6)


HALVES = Path(__file__).parent / "fixtures" / "stories" / "halves.jsonl"


def test_lead_vectors_mix_with_names_across_scripts_only() -> None:
    """The real encoder: a lead vector is 512 float16; two items in different scripts with
    both leads score names and encoder mixed (sv.across), the same in the correction
    matrix; a pair in one script scores as without leads."""
    texts = [
        ("Наводнение затопило пригороды Валенсии", "Вода поднялась на два метра за ночь."),
        ("Floods swamp the suburbs of Valencia", "Water rose by two metres overnight."),
        ("Central bank holds its key rate", "The board voted to keep borrowing costs."),
    ]
    blobs = sv.lead_vectors(texts)
    assert [len(blob) for blob in blobs] == [2 * sv.LEAD_DIMENSIONS] * 3
    plain = [story_vector(title, text) for title, text in texts]
    leads = [sv.lead_from_bytes(blob) for blob in blobs]
    vectors = [dataclasses.replace(v, lead=lead) for v, lead in zip(plain, leads, strict=True)]
    df: dict[int, int] = {}
    flood_ru, flood_en, bank = vectors
    assert flood_ru.lead is not None
    assert flood_en.lead is not None
    assert bank.lead is not None
    same, other = similarities(flood_ru, [flood_en, bank], df, 10)
    cosine = float(flood_ru.lead @ flood_en.lead)
    assert cosine > float(flood_ru.lead @ bank.lead)
    assert same > other
    assert same == pytest.approx(sv.across(similarities(plain[0], [plain[1]], df, 10)[0], cosine))
    assert similarities(flood_en, [bank], df, 10) == similarities(plain[1], [plain[2]], df, 10)
    matrix = similarity_matrix(vectors, df, 10, sv.NAMES_SHARE)
    for n, vector in enumerate(vectors):
        assert matrix[n] == pytest.approx(similarities(vector, vectors, df, 10), abs=1e-6)
    for split in (1, 2):  # two stories' average link reads one block, across scripts too
        block = similarity_matrix(vectors, df, 10, sv.NAMES_SHARE, split=split)
        assert block.shape == (split, 3 - split)
        assert block == pytest.approx(matrix[:split, split:], abs=1e-6)


def test_the_matrix_multiplies_common_keys_densely_with_the_same_figures() -> None:
    """Keys most rows hold (a topic's words) are multiplied as dense columns, the rest as
    sparse ones: the matrix is still :func:`similarities` pair by pair, and its blocks
    the whole's, on 80 items where both kinds of key occur."""
    rng = random.Random(7)
    common = ["Kant", "airbase", "Kyrgyzstan", "Russia", "defence", "ministry", "Bishkek"]
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocabulary = ["".join(rng.choices(letters, k=8)) for _ in range(400)]  # rare words
    vectors = []
    for n in range(80):
        words = rng.sample(common, 6) + rng.sample(vocabulary, 40)
        text = ". ".join(" ".join(words[i : i + 8]) for i in range(0, len(words), 8))
        vectors.append(story_vector(f"Report {n} on {rng.choice(common)}", text))
    df: dict[int, int] = {}
    for vector in vectors:
        for key in vector.keys.tolist():
            df[key] = df.get(key, 0) + 1
    held = sorted(df.values())
    assert held[-1] >= clustering.DENSE_SHARE > held[len(held) // 2]  # both kinds of key
    matrix = similarity_matrix(vectors, df, 200, sv.NAMES_SHARE)
    for n, vector in enumerate(vectors):
        assert matrix[n] == pytest.approx(similarities(vector, vectors, df, 200), abs=1e-9)
    block = similarity_matrix(vectors, df, 200, sv.NAMES_SHARE, split=30)
    assert block == pytest.approx(matrix[:30, 30:], abs=1e-12)


def test_leads_are_encoded_only_where_the_other_script_is_in_sight() -> None:
    """A topic written in both scripts no longer makes every item pay for the encoder: only
    the other script in the store's window or in the item's batch does (or an import that
    no topic describes)."""
    from watcher.config import TopicConfig

    kant = TopicConfig(name="kant", title="Kant", query="Kant OR Кант*")
    english = to_item(Document("Kant air base gets drones", "Kant will host drones."), NOW)
    russian = to_item(Document("На авиабазу Кант прибыли дроны", "Кант получит дроны."), NOW)
    assert english is not None
    assert russian is not None

    def leads(items: list, seen: frozenset[int]) -> list[bool]:
        prepared, _ = prepare_items(items, (kant,), keep_unmatched=False, scripts_seen=seen)
        return [bool(entry.story_lead) for entry in prepared]

    assert leads([english], frozenset({sv.LATIN})) == [False]
    assert leads([english], frozenset({sv.LATIN, sv.CYRILLIC})) == [True]
    assert leads([english, russian], frozenset()) == [True, True]
    unmatched, _ = prepare_items([english], (), keep_unmatched=True)
    assert unmatched[0].story_lead


def test_items_stored_before_the_other_script_get_their_leads_late(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """English halves stored while the window held no Russian have no lead, so the Russian
    halves that come later cannot meet them; the late catch-up encodes them and corrects
    their stories: each event's two halves end in one story, and the two rate decisions
    (one topic) stay apart."""
    from watcher import late_leads, prepare
    from watcher.config import TopicConfig

    halves = [json.loads(line) for line in HALVES.read_text(encoding="utf-8").splitlines()]
    chosen = [row for row in halves if row["event"] in {"rates-ecb", "rates-cbr"}]
    others = [row for row in halves if row["topic"] != "rates"]
    topic = TopicConfig(name="none", title="None", query="zzzqqq")  # configured, matches none
    store = Store.open(tmp_path / "w.db")

    def store_docs(docs: list[dict[str, str]], seen: frozenset[int]) -> None:
        items = [to_item(Document(d["title"], d["text"], external_id=d["id"]), NOW) for d in docs]
        for start in range(0, len(items), 25):
            prepared, _ = prepare_items(
                [item for item in items[start : start + 25] if item is not None],
                (topic,),
                keep_unmatched=True,
                scripts_seen=seen,
            )
            ingest_batch(store, prepared, feed_id=None, now="2024-05-01T12:00:00Z")

    # the store holds 177 counted vectors; one in use holds more than the 200 the
    # correction waits for
    monkeypatch.setattr(story_grouping, "CORRECTION_MIN_DOCUMENTS", 150)
    monkeypatch.setattr(prepare, "ENCODE_LEADS", False)  # stored before: no leads
    store_docs([*background(), *rows(), *others], frozenset())
    monkeypatch.setattr(prepare, "ENCODE_LEADS", True)
    english = [row for row in chosen if row["lang"] == "en"]
    store_docs(english, frozenset({sv.LATIN}))  # only English in sight: no lead either
    store_docs([row for row in chosen if row["lang"] == "ru"], frozenset({sv.LATIN}))
    right, total, _ = same_event_pairs(stories(store), chosen)
    assert right < total
    waiting = late_leads.pending(store, since="2024-01-01T00:00:00Z")
    assert {item.item_id for item in waiting} >= {
        store.db.execute("SELECT id FROM items WHERE external_id = ?", [row["id"]]).fetchone()[0]
        for row in english
    }
    for chunk in late_leads.chunks(waiting):
        leads = sv.lead_vectors(late_leads.documents(chunk))
        with store.transaction():
            late_leads.apply(store, chunk, leads, DEFAULT_SETTINGS, now="2024-05-01T13:00:00Z")
    right, total, wrong = same_event_pairs(stories(store), chosen)
    assert (right, wrong) == (total, 0)
    assert late_leads.pending(store, since="2024-01-01T00:00:00Z") == []


def test_encoded_halves_of_one_event_join_across_scripts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With lead vectors on, the Russian and the English half of one invented event (no
    shared name or sentence) end in one story; the halves of another event stay apart."""
    from watcher import prepare

    monkeypatch.setattr(prepare, "ENCODE_LEADS", True)
    halves = [json.loads(line) for line in HALVES.read_text(encoding="utf-8").splitlines()]
    chosen = [row for row in halves if row["event"] in {"quake-malatya", "rates-cbr"}]
    assert len(chosen) == 4
    store = Store.open(tmp_path / "w.db")
    ingest_prepared = []
    for doc in [*background(), *chosen]:
        item = to_item(Document(doc["title"], doc["text"], external_id=doc["id"]), NOW)
        assert item is not None
        ingest_prepared.append(item)
    for start in range(0, len(ingest_prepared), 50):
        prepared, _ = prepare_items(ingest_prepared[start : start + 50], (), keep_unmatched=True)
        ingest_batch(store, prepared, feed_id=None, now="2024-05-01T12:00:00Z")
    found = stories(store)
    assert store.db.execute("SELECT COUNT(*) FROM story_encodings").fetchone()[0] == len(
        ingest_prepared
    )
    right, total, wrong = same_event_pairs(found, chosen)
    assert wrong == 0
    assert right == total


def test_imports_off_every_topic_are_encoded_only_when_both_scripts_are_there(
    tmp_path: Path,
) -> None:
    """An import that matches no topic still gets lead vectors when it (or the store) holds
    the other script, so a Russian and an English write-up can meet; an English-only
    corpus with an English-only topic pays nothing for the encoder."""
    from tests.conftest import Watcher, write_config

    config = write_config(tmp_path)
    config.write_text(
        config.read_text(encoding="utf-8")
        .replace(
            "query = '(Kant OR Кант*) AND (Kyrgyz* OR Bishkek OR \"air base\" OR airbase OR Киргиз*)'",
            "query = 'Kant AND Kyrgyzstan'",
        )
        .replace('"ОДКБ"', '"CSTO bloc"'),
        encoding="utf-8",
    )
    english = tmp_path / "english.jsonl"
    english.write_text(
        json.dumps(
            {
                "title": "Harbour cranes arrive in Varna",
                "text": "Two harbour cranes arrived in Varna on Monday, the port authority said.",
            }
        )
        + "\n",
        encoding="utf-8",
    )
    watcher = Watcher(tmp_path, config)
    assert watcher("corpus", "import", str(english)).exit_code == 0

    def encoded() -> int:
        store = Store.open(watcher.db)
        try:
            return int(store.db.execute("SELECT count(*) FROM story_encodings").fetchone()[0])
        finally:
            store.close()

    assert encoded() == 0
    russian = tmp_path / "russian.jsonl"
    russian.write_text(
        json.dumps(
            {
                "title": "В порт Варны прибыли два портовых крана",
                "text": "В понедельник в порт Варны прибыли два крана, сообщила администрация.",
            },
            ensure_ascii=False,
        )
        + "\n",
        encoding="utf-8",
    )
    assert watcher("corpus", "import", str(russian)).exit_code == 0
    assert encoded() == 1  # the Russian item: the store already held the English one
    assert watcher("regroup").exit_code == 0
    assert encoded() == 2  # regroup encodes what was stored before


def test_frequency_table_weighs_as_a_dict_of_the_same_counts_as_they_change() -> None:
    texts = [
        "Floods in Bavaria: the Danube rose 4 metres at Passau on Monday.",
        "An earthquake of magnitude 6.1 struck Sumatra near Padang.",
        "Kyrgyzstan and Russia agreed on air defence at the Kant base near Bishkek.",
        "Наводнение в Баварии: Дунай поднялся на 4 метра в Пассау.",
        "",
    ]
    vectors = [story_vector(f"Report {n}", text) for n, text in enumerate(texts)]
    counts: dict[int, int] = {}
    for vector in vectors[:3]:
        for key in vector.keys.tolist():
            counts[key] = counts.get(key, 0) + 1
    table = sv.FrequencyTable()
    table.set(counts)
    new = vectors[0]
    for documents in (3, 4):
        expected = [similarities(new, [other], counts, documents)[0] for other in vectors]
        weighted = sv.Weights(table, documents)
        assert similarities(new, vectors, table, documents, weights=weighted) == pytest.approx(
            expected, abs=1e-12
        )
        table.add(vectors[1].keys.tolist())  # the remembered places see the new counts
        for key in vectors[1].keys.tolist():
            counts[key] += 1
    assert table[int(vectors[1].keys[0])] == counts[int(vectors[1].keys[0])]
    assert table.of_vectors(vectors[:3]).tolist() == [
        counts.get(key, 0) for vector in vectors[:3] for key in vector.keys.tolist()
    ]
    key = int(vectors[2].keys[0])
    before = table[key]
    table.add([key, key, 12345])  # a key given twice counts twice; one not held is skipped
    assert table[key] == before + 2
    assert 12345 not in table


_TEXT = st.text(
    st.sampled_from(list("Kant база Бишкек 2024 ½² ЁёІі_,.; \nAB ß Ωω 1.5,3 the и")), max_size=300
)


_NAMES_LOOKING_BACK_FIRST = re.compile(
    r"(?<=[\w,;] )[^\W\d_a-zß-öø-ÿα-ωа-яё]\w+|(?<![\w.,])\d[\d.,]*\d(?![\w])"
)
"""The names-and-figures pattern of story vectors as first written: the lookbehinds first."""


@given(_TEXT | st.text(max_size=60))
@hypothesis_settings(max_examples=500, deadline=None)
def test_names_and_figures_are_what_the_lookbehind_first_pattern_found(text: str) -> None:
    """The faster form of the pattern (each alternative starts with its character) finds
    the same names and figures, so story vectors do not change."""
    assert sv._NAME.findall(text) == _NAMES_LOOKING_BACK_FIRST.findall(text)


@given(_TEXT)
@hypothesis_settings(max_examples=300, deadline=None)
def test_script_of_counts_letters_as_the_letter_pattern_does(text: str) -> None:
    sample = text[:2000]
    cyrillic = len(re.findall(r"[а-яёА-ЯЁіІ]", sample))
    letters = len(re.findall(r"[^\W\d_]", sample))
    expected = sv.CYRILLIC if 2 * cyrillic > letters else sv.LATIN
    assert sv.script_of(text) == expected


@given(_TEXT, _TEXT)
@hypothesis_settings(max_examples=300, deadline=None)
def test_story_vector_counts_every_occurrence_once_and_the_lead_again(
    title: str, text: str
) -> None:
    """Each word and name weighs 1 per occurrence and LEAD_WEIGHT - 1 more in the lead,
    counted one occurrence at a time here."""
    words: dict[int, float] = {}
    names: dict[int, float] = {}
    for source, weight in (
        (f"{title}\n{text}", 1.0),
        (sv._lead(title, text), sv.LEAD_WEIGHT - 1.0),
    ):
        for word in sv._WORD.findall(source.casefold()):
            key = sv._word_key(word)
            if key:
                words[key] = words.get(key, 0.0) + weight
        for match in sv._NAME.finditer(source):
            key = sv._name_key(match.group())
            if key:
                names[key] = names.get(key, 0.0) + weight
    expected = sv._vector(words, names, sv.script_of(f"{title}\n{text}"))
    vector = story_vector(title, text)
    assert to_bytes(vector) == to_bytes(expected)


@given(
    st.lists(st.tuples(_TEXT, _TEXT), min_size=1, max_size=sv.MEMBERS_COMPARED + 1),
    st.lists(
        st.lists(st.tuples(_TEXT, _TEXT), min_size=1, max_size=sv.MEMBERS_COMPARED), max_size=4
    ),
)
@hypothesis_settings(max_examples=60, deadline=None)
def test_links_to_several_stories_are_each_the_link_to_that_story_alone(
    one: list[tuple[str, str]], others: list[list[tuple[str, str]]]
) -> None:
    """A new item above the join threshold of several stories is linked to all of them by
    one matrix; each link is, to the last bit, the mean of that story's block alone."""
    joined = [story_vector(title, text) for title, text in one]
    stories = [[story_vector(title, text) for title, text in members] for members in others]
    df = {key: 1 + key % 5 for v in joined for key in v.keys.tolist()}
    weights = sv.Weights(df, 20)
    alone = [
        float(similarity_matrix([*joined, *members], df, 20, 0.6, split=len(joined)).mean())
        for members in stories
    ]
    assert story_grouping._links(joined, stories, weights, 0.6) == alone


def _kant_feeds() -> tuple[bytes, bytes]:
    """An English feed of three items about the Kant base, a Russian one of two."""
    from tests.conftest import kant_story, rss, rss_item

    english = rss([kant_story(number) for number in range(3)])
    russian = rss(
        [
            rss_item(
                f"Авиабаза Кант в Киргизии получит новую технику, план {number}",
                f"https://ru.example/kant/{number}",
                f"<p>В Бишкеке сообщили, что российская авиабаза Кант в Киргизии получит "
                f"новую технику по плану {number}.</p>",
                guid=f"ru-kant-{number}",
            )
            for number in range(2)
        ],
        language="ru",
    )
    return english, russian


def _items_and_leads(db: Path) -> tuple[int, int]:
    with closing(Store.open(db)) as store:
        items = store.db.execute("SELECT count(*) FROM items").fetchone()[0]
        leads = store.db.execute("SELECT count(*) FROM story_encodings").fetchone()[0]
        return int(items), int(leads)


def test_a_poll_that_brings_the_other_script_encodes_the_earlier_items(
    httpserver: HTTPServer, make_watcher: Callable[..., Watcher]
) -> None:
    """Through ``watcher poll`` with the worker pool: English items alone get no lead (the
    topic is written in both scripts, but only English is in sight); the pass that brings
    the first Russian items encodes those as they are prepared and the English ones late."""
    english, russian = _kant_feeds()
    httpserver.expect_request("/en").respond_with_data(english, content_type="application/rss+xml")
    watcher = make_watcher([httpserver.url_for("/en")])
    assert watcher("poll", "--all").exit_code == 0
    assert _items_and_leads(watcher.db) == (3, 0)
    httpserver.expect_request("/ru").respond_with_data(russian, content_type="application/rss+xml")
    watcher.config.write_text(
        watcher.config.read_text(encoding="utf-8")
        + f'\n[[feeds]]\nurl = "{httpserver.url_for("/ru")}"\n',
        encoding="utf-8",
    )
    assert watcher("poll", "--all").exit_code == 0
    assert _items_and_leads(watcher.db) == (5, 5)


def test_the_daemon_encodes_the_earlier_items_in_its_story_job(
    httpserver: HTTPServer, make_watcher: Callable[..., Watcher]
) -> None:
    """``watcher run`` polls each feed on its own schedule; its "stories" job (every 5
    minutes) corrects what waits and encodes the leads the window lacks."""
    from watcher.config import load_config
    from watcher.daemon.service import Daemon

    english, russian = _kant_feeds()
    httpserver.expect_request("/en").respond_with_data(english, content_type="application/rss+xml")
    httpserver.expect_request("/ru").respond_with_data(russian, content_type="application/rss+xml")
    watcher = make_watcher(
        [httpserver.url_for("/en")],
        extra='\n[daemon]\njitter = "0s"\nwatch_config = "off"\n',
    )
    assert watcher("poll", "--all").exit_code == 0  # English only, no leads
    watcher.config.write_text(
        watcher.config.read_text(encoding="utf-8")
        + f'\n[[feeds]]\nurl = "{httpserver.url_for("/ru")}"\n',
        encoding="utf-8",
    )
    daemon = Daemon(load_config(watcher.config), config_path=watcher.config, db_path=watcher.db)
    seen: dict[str, object] = {}

    async def tidy() -> None:
        seen["every"] = daemon.scheduler.get_job("stories").trigger.interval.total_seconds()
        seen["before"] = _items_and_leads(watcher.db)
        await daemon._tidy_stories()

    drive_daemon(
        daemon,
        until=lambda: _items_and_leads(watcher.db)[0] >= 5,
        then=tidy,
        waiting_for="poll the Russian feed",
    )
    assert seen["every"] == 300
    assert seen["before"] == (5, 2)  # the Russian items, encoded as they were prepared
    assert _items_and_leads(watcher.db) == (5, 5)


def test_small_batches_wait_for_one_correction_and_big_ones_do_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A feed that brings two new items does not pay for a whole correction: batches below
    CORRECT_EVERY items wait and are corrected together; a large batch at once."""
    monkeypatch.setattr(story_grouping, "CORRECTION_MIN_DOCUMENTS", 0)
    store = Store.open(tmp_path / "w.db")
    docs = rows()  # 48 distinct write-ups: no near-duplicate among them
    ingest(store, docs[:2])
    ingest(store, docs[2:5])
    waited = story_grouping.correct_waiting(store)
    assert waited.items == 5  # the five items of both batches
    assert story_grouping.correct_waiting(store).items == 0
    ingest(store, docs[5 : 5 + story_grouping.CORRECT_EVERY])
    assert story_grouping.correct_waiting(store).items == 0  # corrected as it was stored


def _record_corrections(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The batch size of every correction from now on (the real one runs), whether ingest
    (:func:`story_grouping.correct_soon`) or a clustering at the end runs it."""
    from watcher import regroup

    sizes: list[int] = []
    real = story_grouping.correct

    def recorded(store: Store, batch: Any, *args: Any, **kwargs: Any) -> Any:
        sizes.append(len(batch))
        return real(store, batch, *args, **kwargs)

    monkeypatch.setattr(story_grouping, "correct", recorded)
    monkeypatch.setattr(regroup, "correct", recorded)
    return sizes


def _served(httpserver: HTTPServer, feeds: dict[str, list[str]]) -> list[str]:
    """Serve each path's RSS items as a feed on 127.0.0.1; the feeds' URLs."""
    for path, items in feeds.items():
        httpserver.expect_request(path).respond_with_data(
            rss(items), content_type="application/rss+xml"
        )
    return [httpserver.url_for(path) for path in feeds]


def _three_feeds(httpserver: HTTPServer) -> list[str]:
    """Three feeds of 25 new Kant items each, served on 127.0.0.1; their URLs."""
    return _served(
        httpserver,
        {
            f"/f{feed}": [
                kant_story(100 * feed + n, f"https://news{feed}.example") for n in range(25)
            ]
            for feed in range(3)
        },
    )


def test_a_poll_pass_clusters_its_items_once_at_its_end(
    httpserver: HTTPServer, make_watcher: Callable[..., Watcher], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three feeds of 25 new items each through ``watcher poll`` with the worker pool: no
    correction while the batches are stored (each would have run one before), then one
    clustering of the pass's 75 items; the next pass clusters only its own."""
    sizes = _record_corrections(monkeypatch)
    urls = _three_feeds(httpserver)
    watcher = make_watcher(urls)
    assert watcher("poll", "--all").exit_code == 0
    assert sizes == [75]
    httpserver.clear()
    items = [kant_story(900 + n, "https://later.example") for n in range(4)]
    httpserver.expect_request("/f0").respond_with_data(
        rss(items), content_type="application/rss+xml"
    )
    sizes.clear()
    assert watcher("poll", "--all").exit_code == 0
    assert sizes == [4]


def test_what_an_interrupted_pass_stored_is_clustered_by_the_next_one(
    httpserver: HTTPServer, make_watcher: Callable[..., Watcher], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C after a pass stored its items and before its clustering leaves them to the
    next pass (the mark of migration 0023 stays where it was), which clusters them with
    its own."""
    sizes = _record_corrections(monkeypatch)
    watcher = _interrupted_pass(httpserver, make_watcher, monkeypatch)
    assert sizes == []

    httpserver.clear()
    items = [kant_story(900 + n, "https://later.example") for n in range(4)]
    httpserver.expect_request("/f0").respond_with_data(
        rss(items), content_type="application/rss+xml"
    )
    assert watcher("poll", "--all").exit_code == 0
    assert sizes == [79]
    assert _clustered_through(watcher.db) == _items_and_leads(watcher.db)[0] == 79
    assert watcher("poll", "--all").exit_code == 0  # nothing new, nothing left over
    assert sizes == [79]


def test_what_an_interrupted_pass_stored_is_clustered_by_the_next_import(
    httpserver: HTTPServer,
    make_watcher: Callable[..., Watcher],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    sizes = _record_corrections(monkeypatch)
    watcher = _interrupted_pass(httpserver, make_watcher, monkeypatch)
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(
        "".join(
            json.dumps({"title": row["title"], "text": row["text"]}, ensure_ascii=False) + "\n"
            for row in rows()[:10]
        ),
        encoding="utf-8",
    )
    assert watcher("corpus", "import", str(corpus)).exit_code == 0
    stored = _items_and_leads(watcher.db)[0]
    assert stored == 85
    assert sizes == [stored]
    assert _clustered_through(watcher.db) == stored


def _interrupted_pass(
    httpserver: HTTPServer, make_watcher: Callable[..., Watcher], monkeypatch: pytest.MonkeyPatch
) -> Watcher:
    """A ``watcher poll`` over :func:`_three_feeds` interrupted (Ctrl-C) once it stored
    its 75 items, before their clustering."""
    from watcher.poll import Poller

    watcher = make_watcher(_three_feeds(httpserver))

    async def interrupted(self: Poller, *, everything: bool = False) -> int:
        raise KeyboardInterrupt

    with monkeypatch.context() as patched:
        patched.setattr(Poller, "tidy_stories", interrupted)
        result = watcher("poll", "--all")
    assert result.exit_code == 130
    assert "interrupted: what was stored is kept" in result.output
    assert "Traceback" not in result.output
    assert _items_and_leads(watcher.db)[0] == 75
    assert _clustered_through(watcher.db) == 0
    return watcher


def _clustered_through(db: Path) -> int:
    with closing(Store.open(db)) as store:
        return story_store.clustered_through(store)


def test_an_import_is_clustered_once_at_its_end(
    tmp_path: Path, make_watcher: Callable[..., Watcher], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``corpus import`` stores its batches without correcting them one by one, then
    clusters everything it stored together."""
    sizes = _record_corrections(monkeypatch)
    monkeypatch.setattr("watcher.importer.BATCH_SIZE", 20)
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(
        "".join(
            json.dumps({"title": row["title"], "text": row["text"]}, ensure_ascii=False) + "\n"
            for row in rows()
        ),
        encoding="utf-8",
    )
    watcher = make_watcher()
    assert watcher("corpus", "import", str(corpus)).exit_code == 0
    stored = _items_and_leads(watcher.db)[0]
    assert stored > 40
    assert sizes == [stored]


def test_a_pass_is_clustered_in_parts_of_the_size_asked_in_time_order(tmp_path: Path) -> None:

    store = Store.open(tmp_path / "w.db")
    ingest(store, rows())
    ids = story_store.items_after(store, 0)
    assert len(ids) > 25
    parts = story_store.parts(store, ids, 10)
    assert [len(part) for part in parts[:-1]] == [10] * (len(parts) - 1)
    assert 0 < len(parts[-1]) <= 10
    flat = [item_id for part in parts for item_id, _ in part]
    assert sorted(flat) == sorted(ids)
    times = [at or "" for part in parts for _, at in part]
    assert times == sorted(times)
    assert story_store.items_after(store, max(ids)) == []


def _candidate_stories_with_one_or(
    store: Store,
    keys: list[int],
    window: tuple[str, str] | None,
    limit: int,
    settled: tuple[int, str, int] | None,
) -> list[int]:
    """The candidate query as first written (the window and the undated items in one OR),
    the reference for the one SQLite answers with two range scans."""
    per_key = (
        "SELECT item_id FROM (SELECT item_id FROM story_terms WHERE key = ?"
        + (" AND (at BETWEEN ? AND ? OR at = '')" if window is not None else "")
        + (" AND (item_id <= ? OR (at, item_id) < (?, ?))" if settled is not None else "")
        + f" ORDER BY at DESC, item_id DESC LIMIT {story_store.HITS_PER_TERM})"
    )
    params: list[object] = []
    for key in keys:
        params.extend((key, *(window or ()), *(settled or ())))
    sql = (
        f"WITH hits AS ({' UNION ALL '.join(per_key for _ in keys)}) "
        "SELECT items.story_id FROM hits JOIN items ON items.id = hits.item_id "
        "GROUP BY items.story_id ORDER BY COUNT(*) DESC, items.story_id DESC LIMIT ?"
    )
    return [row[0] for row in store.db.conn.execute(sql, [*params, limit])]


def test_candidate_stories_read_the_window_and_the_undated_items_apart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The candidate stories of an item's index terms, in a store of dated and undated
    items, are those of the query that read both in one OR (which made SQLite read every
    item of a term, the whole corpus's for a common one), for windows that hold many, few
    and no dated items, with and without a settled bound, and each term's hits still cut
    at ``HITS_PER_TERM`` (here 3, so that the cut matters)."""
    monkeypatch.setattr(story_store, "HITS_PER_TERM", 3)
    store = Store.open(tmp_path / "w.db")
    ingest(store, background()[:60])  # undated
    dated = []
    for n, doc in enumerate(background()[60:]):
        day = datetime(2024, 4, 1 + n % 20, 12, tzinfo=UTC)
        item = to_item(
            Document(doc["title"], doc["text"], external_id=f"d-{n}", published=day), NOW
        )
        assert item is not None
        fp = fingerprint(item.title, item.text, item.published_at)
        dated.append(PreparedItem(item=item, topics=(), tags=(), fingerprint=fp))
    ingest_batch(store, dated, feed_id=None, now="2024-05-01T12:00:00Z")
    assert store.db.execute("SELECT COUNT(*) FROM story_terms WHERE at = ''").fetchone()[0]
    assert store.db.execute("SELECT COUNT(*) FROM story_terms WHERE at != ''").fetchone()[0]
    last = store.last_item_id()
    windows = [
        None,
        ("2024-04-01T00:00:00Z", "2024-04-30T00:00:00Z"),
        ("2024-04-05T00:00:00Z", "2024-04-06T00:00:00Z"),
        ("2030-01-01T00:00:00Z", "2030-01-02T00:00:00Z"),
    ]
    compared = 0
    for item_id in range(1, last + 1, 7):
        keys = [
            row[0]
            for row in store.db.execute("SELECT key FROM story_terms WHERE item_id = ?", [item_id])
        ]
        for window in windows:
            for settled in (None, (item_id - 1, "", 0), (item_id // 2, "2024-04-10T00:00:00Z", 5)):
                expected = _candidate_stories_with_one_or(store, keys, window, 8, settled)
                found = story_store.candidate_stories(store, keys, window, 8, settled=settled)
                assert found == expected, (item_id, window, settled)
                compared += bool(expected)
    assert compared > 50
    store.close()


def test_decoded_vectors_never_evicts_what_it_was_asked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full cache made room by dropping its oldest entries, asked-for ones included, which
    then came back missing: members silently left out of a comparison once a store held
    more vectors than the cache (the writer replay of 200 generated feeds, 8,000 items,
    grouped differently with a cache of 6,000 than of 20,000)."""
    store = Store.open(tmp_path / "w.db")
    ingest(store, rows()[:8])
    ids = [row[0] for row in store.db.execute("SELECT item_id FROM story_vectors ORDER BY item_id")]
    assert len(ids) >= 6
    monkeypatch.setattr(story_store, "VECTORS_CACHED", 3)
    story_store.vector_cache(store).clear()
    story_grouping.decoded_vectors(store, ids[:3])  # the cache is full
    assert set(story_grouping.decoded_vectors(store, ids[:4])) == set(ids[:4])
    assert set(story_grouping.decoded_vectors(store, ids[3:6])) == set(ids[3:6])
    assert len(story_store.vector_cache(store)) <= 4  # the unasked made room


def test_the_daemon_clusters_what_each_window_stored(
    httpserver: HTTPServer, make_watcher: Callable[..., Watcher], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``watcher run`` refreshes feed by feed and corrects each batch as it is stored
    (alerts go out on what that leaves); its "stories" job then clusters what was stored
    since the last one, as a pass ends; a job with nothing new clusters nothing."""
    from watcher.config import load_config
    from watcher.daemon.service import Daemon

    sizes = _record_corrections(monkeypatch)
    urls = _three_feeds(httpserver)
    watcher = make_watcher(urls, extra='\n[daemon]\njitter = "0s"\nwatch_config = "off"\n')
    daemon = Daemon(load_config(watcher.config), config_path=watcher.config, db_path=watcher.db)
    seen: dict[str, list[int]] = {}

    async def tidy() -> None:
        seen["before"] = list(sizes)
        await daemon._tidy_stories()
        seen["job"] = list(sizes)
        await daemon._tidy_stories()

    drive_daemon(
        daemon,
        until=lambda: _items_and_leads(watcher.db)[0] >= 75,
        then=tidy,
        waiting_for="poll the three feeds",
    )
    assert seen["before"] == [25, 25, 25]  # each batch corrected as it was stored
    assert seen["job"] == [25, 25, 25, 75]
    assert sizes == [25, 25, 25, 75]  # the second job, and the stop, found nothing new


def _count_matches(monkeypatch: pytest.MonkeyPatch) -> list[None]:
    """One entry per call of ``match_story`` by ingest from now on (the real one runs)."""
    from watcher import ingest as ingest_module

    counted: list[None] = []
    real = story_grouping.match_story

    def spy(*args: Any, **kwargs: Any) -> Any:
        counted.append(None)
        return real(*args, **kwargs)

    monkeypatch.setattr(ingest_module, "match_story", spy)
    return counted


def _ids(docs: list[dict[str, str]]) -> list[str]:
    return [doc["id"] for doc in docs]


@pytest.mark.parametrize("part_size", [1000, 1])
def test_a_pass_leaves_its_items_stories_to_its_clustering_which_finds_their_old_stories(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, part_size: int
) -> None:
    """Items a pass stores once the store holds enough vectors are not matched one by one
    (:func:`story_grouping.matching_deferred`): each waits alone in a story of its own, and
    the clustering at the pass's end puts it into the old story its index terms point to,
    with the signal ``story`` and a score, recording no merge or split. In parts of one
    item (a pass that brings one), later parts find the stories earlier parts joined."""
    from watcher import poll, regroup

    monkeypatch.setattr(story_grouping, "CORRECTION_MIN_DOCUMENTS", 50)
    a = _flood_reports(6, _A, 0, 0)
    b = _flood_reports(6, _B, 3, 1)
    store = Store.open(tmp_path / "w.db")
    ingest(store, background())
    ingest(store, a[:3])  # stored by earlier runs, each item matched as it came
    ingest(store, b[:3])
    regroup.cluster_pending(store, DEFAULT_SETTINGS, now="t0", size=1000, members=500)
    old_a, old_b = _group_of(store, _ids(a[:3])), _group_of(store, _ids(b[:3]))
    assert len(old_a) == len(old_b) == 1
    assert old_a != old_b
    records = "SELECT (SELECT COUNT(*) FROM story_merges), (SELECT COUNT(*) FROM story_splits)"
    before = store.db.execute(records).fetchone()

    matched = _count_matches(monkeypatch)
    poll._begin_pass(store)
    new = [*a[3:], *b[3:]]
    random.Random(part_size).shuffle(new)
    for doc in new:  # one item a feed
        ingest(store, [doc])
    assert matched == []
    alone = store.db.execute(
        f"SELECT COUNT(*) FROM items WHERE story_id = id AND dedupe_signal IS NULL "
        f"AND external_id IN ({','.join('?' for _ in new)})",
        _ids(new),
    ).fetchone()[0]
    assert alone == len(new)

    poll._end_pass(store)
    regroup.cluster_pending(store, DEFAULT_SETTINGS, now="t1", size=part_size, members=50)
    assert _group_of(store, _ids(a)) == old_a
    assert _group_of(store, _ids(b)) == old_b
    signals = store.db.execute(
        f"SELECT dedupe_signal, dedupe_score FROM items "
        f"WHERE external_id IN ({','.join('?' for _ in new)})",
        _ids(new),
    ).fetchall()
    assert {signal for signal, _ in signals} == {"story"}
    assert all(score > story_grouping.CLUSTER_THRESHOLD for _, score in signals)
    assert store.db.execute(records).fetchone() == before
    assert story_grouping.take_deferred(store, range(10_000)) == {}  # all decided
    store.close()


@pytest.mark.parametrize("batch", [22, 3])
def test_a_large_batch_outside_a_pass_is_clustered_as_it_is_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch: int
) -> None:
    """Outside a pass (the daemon's refreshes), a batch of at least ``CORRECT_EVERY`` items
    without a lead is not matched item by item: its items are clustered with the stories
    their index terms point to before the batch commits, so what is committed (and alerted
    on) is in its old story already, with the signal ``story``. A smaller batch is matched
    item by item, as before."""
    monkeypatch.setattr(story_grouping, "CORRECTION_MIN_DOCUMENTS", 50)
    a = _flood_reports(14, _A, 0, 0)
    b = _flood_reports(14, _B, 3, 1)
    store = Store.open(tmp_path / "w.db")
    ingest(store, background())
    ingest(store, a[:3])
    ingest(store, b[:3])
    story_grouping.correct_waiting(store, DEFAULT_SETTINGS, now="t0")
    old_a, old_b = _group_of(store, _ids(a[:3])), _group_of(store, _ids(b[:3]))
    assert len(old_a) == len(old_b) == 1
    assert old_a != old_b

    new = [*a[3:], *b[3:]][:batch]
    random.Random(batch).shuffle(new)
    matched = _count_matches(monkeypatch)
    ingest(store, new)
    in_a = [doc for doc in new if doc in a]
    in_b = [doc for doc in new if doc in b]
    if batch >= story_grouping.CORRECT_EVERY:
        assert matched == []
        assert story_grouping.take_deferred(store, range(10_000)) == {}  # none left waiting
    else:
        assert len(matched) == batch
    assert _group_of(store, _ids(in_a)) == old_a
    assert not in_b or _group_of(store, _ids(in_b)) == old_b
    signals = store.db.execute(
        f"SELECT DISTINCT dedupe_signal FROM items WHERE duplicate_of IS NULL "
        f"AND external_id IN ({','.join('?' for _ in new)})",
        _ids(new),
    ).fetchall()
    assert signals == [("story",)]
    store.close()


def _partition(db: Path) -> set[frozenset[str]]:
    """The stories of ``db``, each as the content hashes of its items (the same text from
    two feeds is one item, whichever feed brought it first)."""
    with closing(Store.open(db)) as store:
        groups: dict[int, set[str]] = {}
        for digest, story_id in store.db.execute("SELECT content_hash, story_id FROM items"):
            groups.setdefault(story_id, set()).add(digest)
    return {frozenset(group) for group in groups.values()}


def _flood_feeds(httpserver: HTTPServer) -> list[str]:
    """Three feeds of invented flood reports near the Kant base (two events, nine reports
    each, some the same text again; long enough to be compared), served on 127.0.0.1; their
    URLs."""
    near = " Helicopters from the Kant air base in Kyrgyzstan joined the rescue."
    reports = {
        "a": _flood_reports(9, _A, 0, 0),
        "b": _flood_reports(9, _B, 3, 1),
    }
    feeds = (
        [("a", n) for n in range(6)],
        [("b", n) for n in range(6)],
        [(event, n) for n in range(6, 9) for event in "ab"],
    )
    return _served(
        httpserver,
        {
            f"/floods{number}": [
                rss_item(
                    reports[event][n]["title"],
                    f"https://floods.example/{event}/{n}",
                    reports[event][n]["text"] + near,
                    guid=f"{event}-{n}",
                )
                for event, n in entries
            ]
            for number, entries in enumerate(feeds)
        },
    )


def test_a_poll_pass_that_defers_its_matching_ends_with_the_stories_of_one_that_does_not(
    httpserver: HTTPServer, make_watcher: Callable[..., Watcher], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``watcher poll`` over three feeds of flood reports, with the worker pool: once the
    store holds the vectors the clustering needs, the writer matches no item, and the pass
    ends with the same stories as when every item is matched as it is stored (one part
    holds the whole pass)."""
    from watcher import ingest as ingest_module

    monkeypatch.setattr(story_grouping, "CORRECTION_MIN_DOCUMENTS", 6)
    calls = _count_matches(monkeypatch)
    watcher = make_watcher(_flood_feeds(httpserver))
    assert watcher("poll", "--all").exit_code == 0
    assert len(calls) <= 6  # the items stored before the store held 6 vectors

    monkeypatch.setattr(ingest_module, "matching_deferred", lambda store, vector, **_: False)
    calls = _count_matches(monkeypatch)
    matching = Watcher(watcher.directory, watcher.config)
    matching.db = watcher.directory / "matching.db"
    assert matching("poll", "--all").exit_code == 0
    with closing(Store.open(matching.db)) as store:
        originals = store.db.execute(
            "SELECT COUNT(*) FROM items WHERE duplicate_of IS NULL"
        ).fetchone()[0]
    assert len(calls) == originals > 6  # each matched as it was stored
    deferred = _partition(watcher.db)
    assert deferred == _partition(matching.db)
    assert len(deferred) < sum(len(group) for group in deferred)  # reports grouped together


def _fetched_feeds(db: Path) -> int:
    with closing(Store.open(db)) as store:
        return int(
            store.db.execute(
                "SELECT COUNT(DISTINCT feed_id) FROM fetches WHERE outcome = 'ok'"
            ).fetchone()[0]
        )


def test_the_daemon_clusters_each_large_batch_as_it_stores_it(
    httpserver: HTTPServer, make_watcher: Callable[..., Watcher], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``watcher run`` over three feeds of flood reports, with the worker pool: once the
    store holds the vectors a clustering needs, a feed's batch (here of 6, with
    ``CORRECT_EVERY`` 5) is not matched item by item but clustered as it is stored, before
    the daemon's stories job: each event's reports end in one story of their own, the
    items of the third feed (both events) in the stories the first two feeds began."""
    from watcher.config import load_config
    from watcher.daemon.service import Daemon

    monkeypatch.setattr(story_grouping, "CORRECTION_MIN_DOCUMENTS", 6)
    monkeypatch.setattr(story_grouping, "CORRECT_EVERY", 5)
    calls = _count_matches(monkeypatch)
    watcher = make_watcher(
        _flood_feeds(httpserver), extra='\n[daemon]\njitter = "0s"\nwatch_config = "off"\n'
    )
    daemon = Daemon(load_config(watcher.config), config_path=watcher.config, db_path=watcher.db)
    partition: set[frozenset[str]] = set()

    async def look() -> None:
        partition.update(_partition(watcher.db))

    drive_daemon(
        daemon,
        until=lambda: _fetched_feeds(watcher.db) == 3,
        then=look,
        waiting_for="poll the three feeds",
    )
    with closing(Store.open(watcher.db)) as store:
        event_of = {
            digest: "a" if "/a/" in url else "b"
            for digest, url in store.db.execute("SELECT content_hash, url FROM items")
        }
    assert len(calls) <= 6  # the items stored before the store held 6 vectors
    assert len(partition) == 2
    assert {frozenset(event_of[digest] for digest in story) for story in partition} == {
        frozenset("a"),
        frozenset("b"),
    }


@pytest.mark.parametrize("across", [True, False])
def test_an_undecided_item_given_its_lead_late_finds_its_story_across_scripts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, across: bool
) -> None:
    """An English report a pass left undecided, whose lead is encoded only at the pass's end
    (the window had no Russian item yet when it was stored), meets the Russian report of its
    event stored before: the pass's clustering takes the stories across scripts its lead is
    near as neighbours (without them, ``across`` False, it stays alone: the index terms of
    two scripts do not meet)."""
    from watcher import poll, prepare, regroup

    monkeypatch.setattr(prepare, "ENCODE_LEADS", True)
    monkeypatch.setattr(story_grouping, "CORRECTION_MIN_DOCUMENTS", 50)
    if not across:
        monkeypatch.setattr(story_grouping, "across_candidates", lambda *args, **kwargs: [])
    halves = [json.loads(line) for line in HALVES.read_text(encoding="utf-8").splitlines()]
    events = ("quake-malatya", "election-moldova")
    russian = [row for row in halves if row["event"] in events and row["lang"] == "ru"]
    english = [row for row in halves if row["event"] in events and row["lang"] == "en"]
    store = Store.open(tmp_path / "w.db")
    ingest(store, background())
    items = [
        to_item(Document(row["title"], row["text"], external_id=row["id"]), NOW) for row in russian
    ]
    prepared, _ = prepare_items(
        [item for item in items if item is not None], (), keep_unmatched=True
    )
    ingest_batch(store, prepared, feed_id=None, now="2024-05-01T12:00:00Z")
    regroup.cluster_pending(store, DEFAULT_SETTINGS, now="t0", size=1000, members=500)

    poll._begin_pass(store)
    ingest(store, english)  # no lead: the pass leaves their stories undecided
    ids = {
        row["id"]: store.db.execute(
            "SELECT id FROM items WHERE external_id = ?", [row["id"]]
        ).fetchone()[0]
        for row in english
    }
    assert all(story_store.current_stories(store, [i])[i] == i for i in ids.values())
    leads = sv.lead_vectors([(row["title"], row["text"]) for row in english])
    with store.transaction():  # as watcher.late_leads keeps them at the pass's end
        story_store.save_leads(
            store,
            [
                (ids[row["id"]], sv.LATIN, None, lead)
                for row, lead in zip(english, leads, strict=True)
            ],
        )
        for item_id in ids.values():
            story_store.vector_cache(store).pop(item_id, None)
    poll._end_pass(store)
    regroup.cluster_pending(store, DEFAULT_SETTINGS, now="t1", size=1000, members=500)

    found = stories(store)
    for event in events:
        pair = [found[f"{event}-{lang}"] for lang in ("ru", "en")]
        assert (pair[0] == pair[1]) is across, event
    assert found["quake-malatya-ru"] != found["election-moldova-ru"]
    store.close()


def test_a_pass_clustering_that_fails_leaves_its_undecided_items_to_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The clustering at a pass's end fails (a full disk, say): the items it was to decide
    stay undecided, with their index terms, and the next clustering puts them into their
    old story."""
    from watcher import poll, regroup

    monkeypatch.setattr(story_grouping, "CORRECTION_MIN_DOCUMENTS", 50)
    a = _flood_reports(6, _A, 0, 0)
    store = Store.open(tmp_path / "w.db")
    ingest(store, background())
    ingest(store, a[:3])
    regroup.cluster_pending(store, DEFAULT_SETTINGS, now="t0", size=1000, members=500)
    old_a = _group_of(store, _ids(a[:3]))
    poll._begin_pass(store)
    for doc in a[3:]:
        ingest(store, [doc])
    poll._end_pass(store)

    def failing(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("disk full")

    with monkeypatch.context() as patched:
        patched.setattr(regroup, "correct", failing)
        with pytest.raises(RuntimeError):
            regroup.cluster_pending(store, DEFAULT_SETTINGS, now="t1", size=1000, members=500)
    assert _group_of(store, _ids(a[3:])) != old_a
    regroup.cluster_pending(store, DEFAULT_SETTINGS, now="t2", size=1000, members=500)
    assert _group_of(store, _ids(a)) == old_a
    store.close()


def test_a_batch_kept_together_gets_the_index_terms_of_items_kept_one_by_one() -> None:
    """:func:`story_keeping.running_index_terms` weights each vector of a batch under the
    frequencies as they stood when it came (the items before it counted, near-duplicates
    not), as keeping them one at a time did: the same terms, in the same order."""
    from watcher.story_keeping import running_index_terms

    generator = random.Random(7)
    vectors = [story_vector(doc["title"], doc["text"]) for doc in background()]
    vectors.append(dataclasses.replace(vectors[3]))  # a copy of an earlier one
    vectors.append(story_vector("", ""))  # no keys at all
    copies = [generator.random() < 0.2 for _ in vectors]
    every_key = sorted({key for vector in vectors for key in vector.keys.tolist()})
    stored = {key: generator.randrange(0, 40) for key in generator.sample(every_key, 400)}

    one_by_one = sv.FrequencyTable()
    one_by_one.set({**dict.fromkeys(every_key, 0), **stored})
    documents = 350
    expected = []
    for vector, copy in zip(vectors, copies, strict=True):
        expected.append(sv.top_keys(vector, one_by_one, documents + 1, sv.INDEX_TERMS))
        if not copy:
            one_by_one.add(vector.keys.tolist())
            documents += 1

    together = sv.FrequencyTable()
    together.set({**dict.fromkeys(every_key, 0), **stored})
    counted = [not copy for copy in copies]
    found = running_index_terms(vectors, np.array(counted), together, 350 + 1, sv.INDEX_TERMS)
    assert found == expected
    assert sum(map(len, found)) > 10 * len(vectors)  # the comparison had terms to compare
