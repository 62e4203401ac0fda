"""Entries a feed delivered before are dropped in the pool, the cheapest way that gives the
same answer as reading them in full (docs/dedupe.md, "Every entry accounted for")."""

from __future__ import annotations

import json
import tomllib
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

import watcher.normalize
import watcher.prepare
from tests.conftest import TOPIC_TOML, kant_story, rss, rss_item
from watcher.config import TopicConfig, config_from_dict
from watcher.dedupe import batch_identities
from watcher.models import Item, KnownKeys
from watcher.normalize import detect_language, normalize_entry, primary_language
from watcher.prepare import PreparedBatch, prepare_feed
from watcher.sources.parse import parse_feed

WILD = Path(__file__).parent / "fixtures" / "wild"
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
FEED_URL = "https://news.example/feed"


def read_in_full(body: bytes, known: KnownKeys) -> tuple[list[Item], int, int]:
    """The answer of the plain path: every entry normalized, the batch rules applied, then
    matched against ``known``. Returns the fresh items, how many were known and the empty."""
    parsed = parse_feed(body, {}, FEED_URL)
    language = primary_language(parsed.language)
    items = []
    for entry in parsed.entries:
        item = normalize_entry(entry, now=NOW, feed_language=language, source=parsed.title)
        if item is not None:
            items.append(item)
    empty = len(parsed.entries) - len(items)
    fresh = []
    for item in batch_identities(items):
        if known.match(item) is None:
            fresh.append(item)
    return fresh, len(items) - len(fresh), empty


def known_from(items: Sequence[Item]) -> KnownKeys:
    """What a feed's sightings give the pool for ``items`` (see ``Store.known_keys``)."""
    return KnownKeys(
        hashes=frozenset(item.content_hash for item in items),
        guids=frozenset(item.guid for item in items if item.guid),
        urls=frozenset(item.canonical_url for item in items if item.canonical_url),
    )


def prepared(body: bytes, known: KnownKeys) -> PreparedBatch:
    return prepare_feed(body, {}, FEED_URL, (), keep_unmatched=True, now=NOW, known=known)


def identities(items: Iterable[Item]) -> Counter[tuple[str, str, str, str]]:
    return Counter(
        (item.guid or "", item.canonical_url or "", item.content_hash, item.lang or "")
        for item in items
    )


def wild_feeds() -> list[str]:
    manifest = json.loads((WILD / "manifest.json").read_text(encoding="utf-8"))
    return [str(entry["file"]) for entry in manifest if entry["kind"] == "feed"]


@pytest.mark.parametrize("name", wild_feeds())
def test_real_feeds_give_the_answer_of_reading_every_entry(name: str) -> None:
    """On each real-world fixture, with two thirds of its entries delivered before, the pool
    keeps exactly the entries the plain path keeps and counts the others alike."""
    body = (WILD / name).read_bytes()
    everything, _, _ = read_in_full(body, KnownKeys())
    known = known_from([item for index, item in enumerate(everything) if index % 3])
    fresh, known_count, empty = read_in_full(body, known)

    batch = prepared(body, known)

    assert identities(entry.item for entry in batch.items) == identities(fresh)
    assert sum(count for _, count in batch.known) == known_count
    assert batch.empty == empty
    assert batch.entries == len(batch.items) + known_count + empty


def test_unchanged_entries_with_known_guids_are_not_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """A feed that gained one entry costs one entry's text work: the others are recognised
    by their GUID (not by their text hash, which is never computed)."""
    old = [kant_story(n) for n in range(1, 6)]
    everything, _, _ = read_in_full(rss(old), KnownKeys())
    read: list[str | None] = []

    def counting(entry: object, **kwargs: object) -> Item | None:
        read.append(getattr(entry, "guid", None))
        return normalize_entry(entry, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(watcher.prepare, "normalize_entry", counting)
    batch = prepared(rss([kant_story(0), *old]), known_from(everything))

    assert read == ["kant-0"]
    assert batch.known == (("guid", 5),)
    assert [entry.item.guid for entry in batch.items] == ["kant-0"]


def test_untrusted_guids_send_every_entry_through_the_text() -> None:
    """When the rest of the fetch has blank GUIDs, the batch's GUIDs are dropped, so a known
    GUID no longer identifies an entry: an unchanged entry is recognised by its text and
    one whose text and link changed is new."""
    delivered = [kant_story(1), kant_story(2)]
    everything, _, _ = read_in_full(rss(delivered), KnownKeys())
    rewritten = rss_item(
        "Kant air base: a different report",
        "https://news.example/kant/2-rewritten",
        "<p>Quite another text about Kyrgyzstan's Kant base, its radar and its runway.</p>",
        guid="kant-2",
    )
    blank = [
        rss_item(f"Bishkek note {n}", f"https://news.example/note/{n}", f"<p>Note {n}.</p>")
        for n in range(3)
    ]
    body = rss([kant_story(1), rewritten, *blank])
    fresh, _, _ = read_in_full(body, known_from(everything))

    batch = prepared(body, known_from(everything))

    assert batch.known == (("hash", 1),)
    assert identities(entry.item for entry in batch.items) == identities(fresh)
    assert "https://news.example/kant/2-rewritten" in {entry.item.url for entry in batch.items}


def test_an_entry_sharing_its_link_goes_the_whole_way() -> None:
    """Two posts of a link blog point at one page: the known one is matched only after its
    text is read, as the shared-URL rule needs, and the new one is kept."""
    page = "https://outside.example/kant-radar"
    first = rss_item(
        "Kant radar", page, "<p>The Kant base in Kyrgyzstan got a radar.</p>", guid="a"
    )
    second = rss_item(
        "Kant radar, again", page, "<p>A second post on the radar at Kant.</p>", guid="b"
    )
    everything, _, _ = read_in_full(rss([first]), KnownKeys())

    batch = prepared(rss([first, second]), known_from(everything))

    assert batch.known == (("hash", 1),)
    assert [entry.item.guid for entry in batch.items] == ["b"]


def test_a_known_guid_repeated_in_the_fetch_identifies_neither_entry() -> None:
    """A feed that gives one GUID to two posts (the Taverncast case): the GUID is dropped for
    both, so the post already delivered is recognised by its text and the other is new."""
    first = kant_story(1)
    everything, _, _ = read_in_full(rss([first]), KnownKeys())
    other = rss_item(
        "Kant air base gets a new runway",
        "https://news.example/kant/runway",
        "<p>Work on a second runway at the Kant air base in Kyrgyzstan began in May.</p>",
        guid="kant-1",
    )

    batch = prepared(rss([first, other]), known_from(everything))

    assert batch.known == (("hash", 1),)
    assert [entry.item.url for entry in batch.items] == ["https://news.example/kant/runway"]


# --- entries the previous fetch dropped for matching no topic ------------------------------


def off_topic_story(number: int) -> str:
    return rss_item(
        f"Harvest report {number}",
        f"https://news.example/harvest/{number}",
        f"<p>Farmers in region {number} brought in the wheat early this year.</p>",
        guid=f"harvest-{number}",
    )


def kant_topics() -> tuple[TopicConfig, ...]:
    return tuple(config_from_dict(tomllib.loads(TOPIC_TOML)).topics)


def prepared_for_topics(body: bytes, known: KnownKeys) -> PreparedBatch:
    return prepare_feed(
        body, {}, FEED_URL, kant_topics(), keep_unmatched=False, now=NOW, known=known
    )


def test_unchanged_off_topic_entries_are_dropped_again_unread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The second fetch of a feed about everything reads only its new entry: the ones the
    first fetch dropped for matching no topic are recognised by their digest."""
    first = prepared_for_topics(rss([off_topic_story(n) for n in range(4)]), KnownKeys())
    assert first.off_topic == 4
    assert len(first.off_topic_digests) == 4
    read: list[str | None] = []

    def counting(entry: object, **kwargs: object) -> Item | None:
        read.append(getattr(entry, "guid", None))
        return normalize_entry(entry, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(watcher.prepare, "normalize_entry", counting)
    second = prepared_for_topics(
        rss([kant_story(0), *(off_topic_story(n) for n in range(4))]),
        KnownKeys(off_topic=frozenset(first.off_topic_digests)),
    )

    assert read == ["kant-0"]
    assert second.off_topic == 4
    assert sorted(second.off_topic_digests) == sorted(first.off_topic_digests)
    assert [entry.item.guid for entry in second.items] == ["kant-0"]


def test_an_off_topic_entry_rewritten_onto_the_topic_is_read_and_kept() -> None:
    """An update that turns a dropped entry into one about the topic changes its digest, so
    it goes the whole way and is kept: nothing is lost to the memory."""
    first = prepared_for_topics(rss([off_topic_story(1), off_topic_story(2)]), KnownKeys())
    rewritten = rss_item(
        "Harvest report 2",
        "https://news.example/harvest/2",
        "<p>Update: the harvest was flown out through the Kant air base in Kyrgyzstan.</p>",
        guid="harvest-2",
    )

    second = prepared_for_topics(
        rss([off_topic_story(1), rewritten]),
        KnownKeys(off_topic=frozenset(first.off_topic_digests)),
    )

    assert second.off_topic == 1
    assert [entry.item.guid for entry in second.items] == ["harvest-2"]


def test_only_entries_that_match_a_topic_have_their_language_detected(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Language detection is most of what normalising an entry costs; an entry dropped for
    matching no topic (most of a wire service's) skips it, and a kept one gets the language
    the plain path gives it."""
    body = rss([off_topic_story(1), kant_story(0), off_topic_story(2)])
    plain, _, _ = read_in_full(body, KnownKeys())
    detected: list[str] = []

    def counting(text: str, hint: str | None = None) -> str | None:
        detected.append(text.split("\n", 1)[0])
        return detect_language(text, hint)

    monkeypatch.setattr(watcher.normalize, "detect_language", counting)
    batch = prepared_for_topics(body, KnownKeys())

    assert batch.off_topic == 2
    [kept] = [entry.item for entry in batch.items]
    assert detected == [kept.title]
    assert kept.lang == "en"
    assert kept == next(item for item in plain if item.guid == kept.guid)


def test_keeping_unmatched_entries_reads_them_all() -> None:
    """With ``keep_unmatched`` nothing is dropped for its topics, so the memory is not used."""
    body = rss([off_topic_story(1), off_topic_story(2)])
    first = prepared_for_topics(body, KnownKeys())

    batch = prepare_feed(
        body,
        {},
        FEED_URL,
        kant_topics(),
        keep_unmatched=True,
        now=NOW,
        known=KnownKeys(off_topic=frozenset(first.off_topic_digests)),
    )

    assert batch.off_topic == 0
    assert len(batch.items) == 2


@pytest.mark.parametrize("name", wild_feeds())
def test_real_feeds_dropped_again_give_the_answer_of_reading_every_entry(name: str) -> None:
    """On each real-world fixture, a second fetch with the first one's off-topic digests
    keeps the same items and counts the same entries as off-topic."""
    body = (WILD / name).read_bytes()
    first = prepared_for_topics(body, KnownKeys())

    again = prepared_for_topics(body, KnownKeys(off_topic=frozenset(first.off_topic_digests)))

    assert identities(entry.item for entry in again.items) == identities(
        entry.item for entry in first.items
    )
    assert (again.off_topic, again.empty, again.known) == (
        first.off_topic,
        first.empty,
        first.known,
    )
    assert sorted(again.off_topic_digests) == sorted(first.off_topic_digests)
