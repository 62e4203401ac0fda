"""Benchmark of issue 3: dedupe + store per item with 10k, 100k and 1M items already stored.

    python bench/bench_dedupe.py --quick                 # 10k corpus only (about 1 minute)
    python bench/bench_dedupe.py                         # 10k, 100k and 1M (builds once, cached)
    python bench/bench_dedupe.py --sizes 10000,100000    # any sizes

Synthetic corpora are bulk-loaded once into real SQLite files under ``bench/results/dedupe/``
(git-ignored) with the rows :func:`watcher.ingest.ingest_batch` writes, texts fingerprinted by
the real code in a process pool; near-duplicate groups and stories come from the generator's
labels, tags are emulated. Items arrive at a fixed rate (1M items span two years, 10k a week),
so the time windows hold the same number of items at every size and only the corpus behind
them grows. Each size is measured in fresh processes: ``ingest_batch`` for 2,000 new items in
batches of 50, per item and by part; memory; a restart up to the first batch stored, with the
OS cache warm and cold. Every measurement removes what it added, so the corpora stay as built.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import json
import math
import mmap
import os
import pickle
import random
import re
import sqlite3
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from common import (
    ROOT,
    Load,
    Section,
    Tally,
    arguments,
    log,
    machine,
    own_mb,
    percentile,
    query,
    remove_db,
    revision,
    summary,
    time_calls,
)

RESULTS = ROOT / "bench" / "results" / "dedupe"
DOC = ROOT / "docs" / "benchmarks-dedupe.md"
CONFIG = ROOT / "config" / "watcher.toml"

GENERATOR_VERSION = 2  # 2: story vectors, index terms and frequencies
SEED = 20250630
END = dt.datetime(2025, 6, 30, 12, 0, tzinfo=dt.UTC)  # the corpus ends here; "now" after it
RATE_PER_DAY = 1370.0  # 1M items = two years
FEEDS = 400
SHARE_HEAD, SHARE_SIBLING = 0.55, 0.25  # the rest (0.20) are near-duplicates
NEW_ITEMS, BATCH = 2000, 50
GOAL_MEDIAN_MS = 2.0
GOAL_RESTART_S = 1.0
_ISO = "%Y-%m-%dT%H:%M:%SZ"

HEAD, SIBLING, COPY = 0, 1, 2


# ============================================================================ text generator

FUNCTION_WORDS = (
    "the", "of", "and", "to", "a", "in", "that", "is", "for", "on", "was", "with", "he", "it",
    "as", "at", "by", "from", "his", "said", "have", "be", "are", "has", "an", "not", "they",
    "this", "but", "had", "which", "were", "been", "who", "their", "will", "its", "also",
    "after", "would", "more", "she", "about", "than", "up", "one", "we", "there", "all",
    "over", "into", "two", "new", "when", "can", "other", "her", "some", "could", "only",
    "them", "out", "first", "three", "if", "last", "told", "says", "while", "since", "under",
)  # fmt: skip

_FUNCTION_SET = frozenset(FUNCTION_WORDS)

REAL_NAMES = (
    "Russia", "Kyrgyzstan", "Moscow", "Bishkek", "Kant", "Putin", "Japarov", "Kazakhstan",
    "China", "CSTO", "Uzbekistan", "Tajikistan", "Ukraine", "Beijing", "Astana", "Washington",
    "Tashkent", "Dushanbe", "Kremlin", "Reuters",
)  # fmt: skip

_ONSETS = (
    "b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "z", "b",
    "d", "k", "m", "p", "r", "s", "t", "br", "dr", "st", "tr", "pl", "sh",
)  # fmt: skip
_VOWELS = ["a", "e", "i", "o", "u", "a", "e", "i", "o", "ea", "ou"]
_CODAS = ["", "", "", "", "n", "r", "s", "t", "l", "nd", "st"]

TOPICAL_WORDS = (
    "military", "defence", "troops", "base", "air", "drills", "weapons", "security",
    "government", "minister", "president", "officials", "talks", "agreement", "border",
    "forces", "army", "cooperation", "ministry", "airbase",
)  # fmt: skip


def _syllables(rng: random.Random, count: int) -> str:
    return "".join(
        rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS) for _ in range(count)
    )


def _mix(*parts: int) -> int:
    value = 0x9E3779B97F4A7C15
    for part in parts:
        value = (value * 6364136223846793005 + part + 1442695040888963407) % (1 << 64)
    return value


@dataclass(frozen=True, slots=True)
class Story:
    cast: tuple[str, ...]  # names, leading first
    unique_name: str  # an invented name only this story uses
    theme: tuple[str, ...]  # content words the write-ups share
    quote: str
    background: tuple[str, ...]  # sentences several write-ups repeat
    topics: tuple[str, ...]
    keywords: tuple[str, ...]
    keyphrases: tuple[str, ...]
    places: tuple[str, ...]


class Generator:
    """Deterministic synthetic news: vocabulary, names, stories, write-ups and copies."""

    def __init__(self, seed: int, topics: Sequence[tuple[str, Sequence[str]]]) -> None:
        import numpy as np

        from watcher.similarity import STOPWORDS

        self.np = np
        self.seed = seed
        self.topics = [(name, tuple(keywords)) for name, keywords in topics]
        rng = random.Random(seed)
        words: list[str] = list(FUNCTION_WORDS)
        seen = set(words) | {w.casefold() for w in REAL_NAMES}
        for j, word in enumerate(TOPICAL_WORDS):  # real words, so the configured topics match
            words.insert(80 + 6 * j, word)
            seen.add(word)
        while len(words) < 30_000:
            rank = len(words)
            syllables = 1 if rank < 300 else 2 if rank < 8000 else rng.choice((2, 3))
            word = _syllables(rng, syllables)
            if len(word) < 3 or word in seen or word in STOPWORDS:
                continue
            seen.add(word)
            words.append(word)
        self.vocab = words
        self.vocab_arr = np.array(words, dtype=object)
        weights = 1.0 / (np.arange(len(words)) + 2.7)
        self.vcum = np.cumsum(weights) / weights.sum()
        names = list(REAL_NAMES)
        while len(names) < 20_000:
            name = _syllables(rng, rng.randint(2, 3)).capitalize()
            if name.casefold() in seen:
                continue
            seen.add(name.casefold())
            names.append(name)
        self.names = names
        nweights = 1.0 / (np.arange(len(names)) + 1.0)
        self.ncum = np.cumsum(nweights) / nweights.sum()

    # -- pieces

    def _zipf_name(self, rng: random.Random) -> str:
        return self.names[int(self.np.searchsorted(self.ncum, rng.random()))]

    def _content_word(self, rng: random.Random) -> str:
        while True:
            word = self.vocab[int(self.np.searchsorted(self.vcum, rng.random()))]
            if word not in _FUNCTION_SET:
                return word

    @lru_cache(maxsize=20_000)  # noqa: B019 - one generator per process
    def story(self, index: int) -> Story:
        rng = random.Random(_mix(self.seed, 1, index))
        cast: list[str] = []
        while len(cast) < rng.randint(2, 5):
            name = self._zipf_name(rng)
            if name not in cast:
                cast.append(name)
        unique = _syllables(rng, 3).capitalize()
        theme: list[str] = []
        while len(theme) < 40:
            word = self.vocab[rng.randint(150, 20_000)]
            if word not in theme:
                theme.append(word)
        quote = " ".join(
            rng.choice(theme) if rng.random() < 0.3 else self.vocab[rng.randint(0, 3000)]
            for _ in range(12)
        )
        background = tuple(
            " ".join(
                rng.choice(theme) if rng.random() < 0.35 else self.vocab[rng.randint(0, 5000)]
                for _ in range(rng.randint(12, 22))
            ).capitalize()
            + "."
            for _ in range(4)
        )
        n_topics = 1 if rng.random() < 0.7 else 2
        chosen = rng.sample(self.topics, min(n_topics, len(self.topics)))
        keywords = tuple(
            sorted({kw for _, kws in chosen for kw in rng.sample(kws, min(len(kws), 2))})
        )[: rng.randint(0, 2)]
        phrases = tuple(
            " ".join(theme[j : j + rng.randint(1, 3)]) for j in rng.sample(range(20), 5)
        )
        return Story(
            cast=tuple(cast),
            unique_name=unique,
            theme=tuple(theme),
            quote=quote,
            background=background,
            topics=tuple(name for name, _ in chosen),
            keywords=keywords,
            keyphrases=phrases,
            places=tuple(name for name in cast if name in REAL_NAMES[:18]),
        )

    def writeup(self, story_index: int, item_index: int) -> tuple[str, str]:
        """(title, text) of one write-up of a story: paragraphs of sentences."""
        np = self.np
        story = self.story(story_index)
        rng = random.Random(_mix(self.seed, 2, item_index))
        nrng = np.random.default_rng(_mix(self.seed, 2, item_index))
        length = rng.randint(150, 600)
        base = self.vocab_arr[np.searchsorted(self.vcum, nrng.random(length))].tolist()
        draws = nrng.random(length).tolist()
        cast = story.cast
        tokens: list[str] = []
        for j in range(length):
            x = draws[j]
            if x < 0.25:
                tokens.append(story.theme[int(x * 10_000) % len(story.theme)])
            elif x < 0.305:
                tokens.append(cast[min(int(rng.expovariate(0.8)), len(cast) - 1)])
            elif x < 0.312:
                tokens.append(story.unique_name)
            else:
                tokens.append(base[j])
        sentences: list[str] = []
        j = 0
        while j < length:
            n = rng.randint(8, 26)
            words = tokens[j : j + n]
            j += n
            words[0] = words[0][:1].upper() + words[0][1:]
            if len(words) > 6 and rng.random() < 0.3:
                words[len(words) // 2] += ","
            sentences.append(" ".join(words) + ".")
        for sentence in story.background:
            if rng.random() < 0.6:
                sentences.insert(rng.randint(0, len(sentences)), sentence)
        if rng.random() < 0.6:
            sentences.insert(
                rng.randint(0, len(sentences)),
                f'"{story.quote[:1].upper()}{story.quote[1:]}," {cast[0]} said.',
            )
        paragraphs: list[str] = []
        k = 0
        while k < len(sentences):
            n = rng.randint(2, 5)
            paragraphs.append(" ".join(sentences[k : k + n]))
            k += n
        title_words = [*rng.sample(story.theme[:8], 3), cast[0]]
        title_words += [self._content_word(rng) for _ in range(rng.randint(1, 3))]
        rng.shuffle(title_words)
        if rng.random() < 0.5:
            title_words.insert(
                rng.randint(1, len(title_words) - 1), rng.choice(("in", "after", "over", "as"))
            )
        title = " ".join(title_words)
        return title[:1].upper() + title[1:], "\n\n".join(paragraphs)

    def copy(self, title: str, text: str, item_index: int) -> tuple[str, str]:
        """A near-duplicate: a few words changed, maybe a paragraph cut, dateline, footer."""
        rng = random.Random(_mix(self.seed, 3, item_index))
        paragraphs = text.split("\n\n")
        if len(paragraphs) > 3 and rng.random() < 0.3:
            paragraphs = paragraphs[:-1]
        words = "\n\n".join(paragraphs).split(" ")
        for _ in range(max(1, int(len(words) * rng.uniform(0.005, 0.03)))):
            pos = rng.randrange(len(words))
            if words[pos].isalpha() and words[pos].islower():
                words[pos] = self._content_word(rng)
        body = " ".join(words)
        if rng.random() < 0.3:
            body = f"{rng.choice(REAL_NAMES[:18]).upper()} ({rng.choice(['AP', 'Reuters', 'AFP'])}) - {body}"
        if rng.random() < 0.3:
            body += f"\n\n(Reporting by {self._zipf_name(rng)} {self._zipf_name(rng)}; editing by {self._zipf_name(rng)})"
        if rng.random() < 0.15:
            extra = self.writeup(item_index % 997, item_index)[1].split("\n\n")[0]
            body += "\n\n" + extra
        if rng.random() < 0.5:
            parts = title.split(" ")
            if rng.random() < 0.5 and len(parts) > 3:
                i = rng.randrange(len(parts) - 1)
                parts[i], parts[i + 1] = parts[i + 1], parts[i]
            else:
                parts.append(self._content_word(rng))
            title = " ".join(parts)
            title = title[:1].upper() + title[1:]
        return title, body


# ============================================================================ corpus plan


@dataclass
class Plan:
    """Who is what in a corpus of ``size`` items (index i is item id i + 1, in time order)."""

    size: int
    role: Any  # int8: HEAD, SIBLING, COPY
    story: Any  # int64: index of the story's first item
    parent: Any  # int64: the item copied or joined (-1 for a head)
    root: Any  # int64: first item of the near-duplicate group
    feed: Any  # int16: 1..FEEDS
    seconds: Any  # float64: published time, seconds before END (positive)
    delay: Any  # float32: seconds from published to first seen

    @classmethod
    def build(cls, size: int, seed: int) -> Plan:
        import numpy as np

        rng = random.Random(_mix(seed, 4, size))
        role = np.zeros(size, dtype=np.int8)
        story = np.arange(size, dtype=np.int64)
        parent = np.full(size, -1, dtype=np.int64)
        root = np.arange(size, dtype=np.int64)
        per_hour = RATE_PER_DAY / 24.0
        for i in range(size):
            x = rng.random()
            if i < 200 or x < SHARE_HEAD:
                continue
            sibling = x < SHARE_HEAD + SHARE_SIBLING
            p = i - 1 - int(rng.expovariate(1.0 / (per_hour * (10 if sibling else 6))))
            if p < 0:
                continue
            role[i], parent[i], story[i] = (SIBLING if sibling else COPY), p, story[p]
            if not sibling:
                root[i] = root[p]
        nrng = np.random.default_rng(_mix(seed, 5, size))
        feed_weights = 1.0 / (np.arange(FEEDS) + 5.0)
        feed = nrng.choice(np.arange(1, FEEDS + 1), size=size, p=feed_weights / feed_weights.sum())
        step = 86400.0 / RATE_PER_DAY
        seconds = (size - np.arange(size)) * step - nrng.uniform(0, step, size)
        delay = nrng.uniform(60, 1800, size).astype(np.float32)
        return cls(size, role, story, parent, root, feed.astype(np.int16), seconds, delay)

    def save(self, path: Path) -> None:
        import numpy as np

        np.savez(path, **{name: getattr(self, name) for name in _PLAN_ARRAYS})

    @classmethod
    def load(cls, path: Path) -> Plan:
        import numpy as np

        data = np.load(path)
        return cls(len(data["role"]), *(data[name] for name in _PLAN_ARRAYS))


_PLAN_ARRAYS = ("role", "story", "parent", "root", "feed", "seconds", "delay")


def _iso(moment: dt.datetime) -> str:
    return moment.strftime(_ISO)


def _slug(title: str) -> str:
    return "-".join(title.lower().split()[:5])


def _summary(text: str) -> str:
    first = text.split("\n\n", 1)[0]
    end = first.find(". ")
    return first if end < 0 else first[: end + 1]


def _topic_specs() -> list[tuple[str, tuple[str, ...]]]:
    from watcher.config import load_config

    return [(topic.name, tuple(topic.keywords)) for topic in load_config(CONFIG).topics]


# ---------------------------------------------------------------- worker side of the build

_GEN: Generator | None = None
_PLAN: Plan | None = None


def _init_worker(plan_path: Path, seed: int) -> tuple[Generator, Plan]:
    global _GEN, _PLAN
    _text.cache_clear()  # texts of another plan, when a process builds or prepares a second
    _GEN = Generator(seed, _topic_specs())
    _PLAN = Plan.load(plan_path)
    return _GEN, _PLAN


@lru_cache(maxsize=30_000)
def _text(index: int) -> tuple[str, str]:
    assert _GEN is not None
    assert _PLAN is not None
    if int(_PLAN.role[index]) == COPY:
        title, text = _text(int(_PLAN.parent[index]))
        return _GEN.copy(title, text, index)
    return _GEN.writeup(int(_PLAN.story[index]), index)


def _stored_item(plan: Plan, index: int) -> tuple[Any, dt.datetime]:
    """The Item a feed gave for corpus item ``index`` (fields as make_item sets them), and
    when it was first seen."""
    from watcher.models import Item
    from watcher.normalize import canonical_url, content_hash

    title, text = _text(index)
    published = END - dt.timedelta(seconds=float(plan.seconds[index]))
    published = published.replace(microsecond=0)
    first_seen = published + dt.timedelta(seconds=int(plan.delay[index]))
    feed = int(plan.feed[index])
    url = f"https://outlet{feed:03d}.example/news/{published:%Y/%m/%d}/{_slug(title)}-{index + 1}"
    item = Item(
        title=title,
        summary=_summary(text),
        content=text,
        url=url,
        canonical_url=canonical_url(url),
        guid=url,
        published_at=_iso(published),
        lang="en",
        content_hash=content_hash(title, text),
        source=f"Outlet {feed:03d}",
    )
    return item, first_seen


def _emulated_tags(generator: Generator, story: Story, index: int) -> list[tuple[str, str, float]]:
    """Tags shaped like tag_item's on these texts: topics, 0-2 keywords, 6 keyphrases (3 of
    the story, 3 words of the item), the real place names among the story's names."""
    rng = random.Random(_mix(SEED, 6, index))
    tags = [(name, "topic", 1.0) for name in story.topics]
    tags += [(kw.casefold(), "keyword", 0.75) for kw in story.keywords]
    phrases = list(story.keyphrases[:3]) + [generator._content_word(rng) for _ in range(3)]
    tags += [(kp, "keyphrase", round(0.9 - 0.1 * j, 3)) for j, kp in enumerate(phrases)]
    tags += [(place.casefold(), "place", 0.875) for place in story.places]
    return tags


def _build_chunk(bounds: tuple[int, int]) -> list[tuple[Any, ...]]:
    """Rows for items [start, stop): everything ingest_batch would write for each."""
    from watcher.similarity import fingerprint, to_bytes
    from watcher.story_vectors import vector_bytes

    assert _GEN is not None
    assert _PLAN is not None
    plan = _PLAN
    rows = []
    for index in range(*bounds):
        item, first_seen = _stored_item(plan, index)
        fp = fingerprint(item.title, item.text, item.published_at)
        role = int(plan.role[index])
        story_id = int(plan.story[index]) + 1
        duplicate_of: int | None = None
        signal, score = {COPY: ("shingles", 0.8), SIBLING: ("terms", 0.2)}.get(role, (None, None))
        if role == COPY:
            duplicate_of = int(plan.root[int(plan.parent[index])]) + 1
        story = _GEN.story(int(plan.story[index]))
        row = (index + 1, item.url, item.canonical_url, item.guid, item.external_id, item.title,
               item.summary, item.content, item.published_at, _iso(first_seen),
               int(plan.feed[index]), item.source, item.lang, item.content_hash, duplicate_of,
               story_id, signal, score)  # fmt: skip
        tags = _emulated_tags(_GEN, story, index)
        vector = vector_bytes(item.title, item.text)
        rows.append((row, to_bytes(fp), fp.band_keys, fp.story_keys, story.topics, tags, vector))
    return rows


# ============================================================================ building


def corpus_path(size: int) -> Path:
    return RESULTS / f"corpus-{size}.db"


def _plan_path(size: int) -> Path:
    return RESULTS / f"plan-{size}.npz"


def build_bulk(size: int, seed: int) -> dict[str, Any]:
    """Bulk-load a corpus of ``size`` items; returns its metadata (also written as JSON)."""
    import multiprocessing as mp

    from watcher.store import Store

    path = corpus_path(size)
    remove_db(path, ".json")
    RESULTS.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    Plan.build(size, seed).save(_plan_path(size))
    log(f"{size}: plan ready ({time.perf_counter() - t_start:.1f} s)")
    store = Store.open(path)
    conn = store.db.conn
    for pragma in (
        "journal_mode = OFF",
        "synchronous = OFF",
        "temp_store = MEMORY",
        "cache_size = -4000000",
    ):  # 4 GB while building only
        conn.execute(f"PRAGMA {pragma}")  # fmt: skip
    with conn:
        conn.executemany(
            "INSERT INTO feeds(id, url, title, origin, created_at) VALUES (?, ?, ?, 'config', ?)",
            [(f, f"https://outlet{f:03d}.example/rss", f"Outlet {f:03d}", "2023-01-01T00:00:00Z")
             for f in range(1, FEEDS + 1)],
        )  # fmt: skip
    tag_ids: dict[tuple[str, str], int] = {}
    frequencies: dict[int, int] = {}  # story_df as ingest would leave it
    bounds = [(s, min(s + 500, size)) for s in range(0, size, 500)]
    done = 0
    insert_seconds = 0.0
    last_report = time.perf_counter()
    workers = len(os.sched_getaffinity(0))
    with mp.get_context("fork").Pool(
        workers, initializer=_init_worker, initargs=(_plan_path(size), seed)
    ) as pool:
        pending: list[tuple[Any, ...]] = []
        for rows in pool.imap(_build_chunk, bounds):
            pending.extend(rows)
            done += len(rows)
            if len(pending) >= 5000 or done == size:
                t0 = time.perf_counter()
                _write_rows(conn, pending, tag_ids, frequencies)
                insert_seconds += time.perf_counter() - t0
                pending = []
            if time.perf_counter() - last_report > 30 or done == size:
                last_report = time.perf_counter()
                elapsed = last_report - t_start
                log(
                    f"{size}: {done:,}/{size:,} items, {elapsed:.0f} s, {done / elapsed:.0f} "
                    f"items/s, eta {elapsed / done * (size - done):.0f} s"
                )
    with conn:
        conn.executemany("INSERT INTO story_df(key, df) VALUES (?, ?)", frequencies.items())
        conn.execute("UPDATE story_clustered SET item_id = ?", [size])  # as after a clustering
    conn.execute("PRAGMA journal_mode = WAL")
    store.close()
    meta = {"size": size, "generator": GENERATOR_VERSION, "seed": seed,
            "rate_per_day": RATE_PER_DAY, "build_seconds": round(time.perf_counter() - t_start, 1),
            "insert_seconds": round(insert_seconds, 1), "workers": workers,
            "built_at": dt.datetime.now(dt.UTC).strftime(_ISO), **_db_stats(path)}  # fmt: skip
    Path(f"{path}.json").write_text(json.dumps(meta, indent=1))
    return meta


def _write_rows(
    conn: sqlite3.Connection,
    rows: list[tuple[Any, ...]],
    tag_ids: dict[tuple[str, str], int],
    frequencies: dict[int, int],
) -> None:
    """Write ``rows`` as ingest would, the story vectors with their index terms chosen under
    ``frequencies`` as they stand (then counted in them, near-duplicates not)."""
    from watcher.store.stories import DOCUMENTS_KEY
    from watcher.story_vectors import INDEX_TERMS, from_bytes, top_keys

    table_rows: dict[str, list[tuple[Any, ...]]] = {name: [] for name in _BULK_INSERTS}
    for item, blob, band_keys, story_keys, item_topics, item_tags, vector_blob in rows:
        item_id = item[0]
        at = item[8] or item[9]  # published, else first seen (feed items)
        vector = from_bytes(vector_blob)
        documents = frequencies.get(DOCUMENTS_KEY, 0)
        index = top_keys(vector, frequencies, documents + 1, INDEX_TERMS)
        if item[14] is None:  # duplicate_of: a copy's words are not counted
            for key in (DOCUMENTS_KEY, *vector.keys.tolist()):
                frequencies[key] = frequencies.get(key, 0) + 1
        table_rows["story_vectors"].append((item_id, at, vector_blob))
        table_rows["story_terms"].extend((key, at, item_id) for key in index)
        table_rows["items"].append(item)
        table_rows["dedupe_fingerprints"].append((item_id, blob))
        table_rows["dedupe_keys"].extend((key, 0, at, item_id) for key in band_keys)
        table_rows["dedupe_keys"].extend((key, 1, at, item_id) for key in story_keys)
        table_rows["item_topics"].extend((item_id, topic) for topic in item_topics)
        for name, kind, score in item_tags:
            tag_id = tag_ids.get((name, kind))
            if tag_id is None:
                tag_id = tag_ids[(name, kind)] = len(tag_ids) + 1
                conn.execute(
                    "INSERT INTO tags(id, name, kind) VALUES (?, ?, ?)", (tag_id, name, kind)
                )
            table_rows["item_tags"].append((item_id, tag_id, score))
        table_rows["sightings"].append((item_id, item[10], item[1], item[9]))
    table_rows["dedupe_keys"].sort()  # B-tree locality; the rows are the same
    with conn:
        for name, sql in _BULK_INSERTS.items():
            conn.executemany(sql, table_rows[name])


_BULK_INSERTS = {
    "items": "INSERT INTO items(id, url, canonical_url, guid, external_id, title, summary, "
    "content, published_at, first_seen_at, feed_id, source, lang, content_hash, duplicate_of, "
    "story_id, dedupe_signal, dedupe_score) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "dedupe_fingerprints": "INSERT INTO dedupe_fingerprints(item_id, fingerprint) VALUES (?, ?)",
    "dedupe_keys": "INSERT OR IGNORE INTO dedupe_keys(key, kind, at, item_id) VALUES (?, ?, ?, ?)",
    "item_topics": "INSERT OR IGNORE INTO item_topics(item_id, topic) VALUES (?, ?)",
    "item_tags": "INSERT OR IGNORE INTO item_tags(item_id, tag_id, score) VALUES (?, ?, ?)",
    "sightings": "INSERT OR IGNORE INTO sightings(item_id, feed_id, url, seen_at, match) "
    "VALUES (?, ?, ?, ?, 'first')",
    "story_vectors": "INSERT INTO story_vectors(item_id, at, vector) VALUES (?, ?, ?)",
    "story_terms": "INSERT OR IGNORE INTO story_terms(key, at, item_id) VALUES (?, ?, ?)",
}
"""The rows ingest writes for an item, table by table, in the order they are written."""


def _db_stats(path: Path) -> dict[str, Any]:
    ((first, last, items),) = query(
        path, "SELECT min(published_at), max(published_at), max(id) FROM items"
    )
    return {
        "file_mb": round(path.stat().st_size / 1e6, 1),
        "items": items or 0,
        "tags": query(path, "SELECT count(*) FROM tags")[0][0],
        "dedupe_keys": query(path, "SELECT count(*) FROM dedupe_keys")[0][0],
        "published_from": first,
        "published_to": last,
    }


# ============================================================================ new items


def _new_path(size: int) -> Path:
    return RESULTS / f"new-{size}-{NEW_ITEMS}-{BATCH}.pkl"


def prepare_new(size: int, seed: int, rebuild: bool) -> Path:
    """Pickle the feed batches a measurement ingests: PreparedItems as the workers hand them
    over, each with what its items were made as (kind, the stored item made from)."""
    from watcher.config import load_config
    from watcher.normalize import content_hash, make_item
    from watcher.prepare import prepare_items

    out = _new_path(size)
    if out.exists() and not rebuild:
        return out
    generator, plan = _init_worker(_plan_path(size), seed)
    config = load_config(CONFIG)
    rng = random.Random(_mix(seed, 7, size))
    per_hour = RATE_PER_DAY / 24.0
    batches = []
    serial = size
    for k in range(math.ceil(NEW_ITEMS / BATCH)):
        n = min(BATCH, NEW_ITEMS - k * BATCH)
        now = END + dt.timedelta(seconds=60 * (k + 1))
        feed = rng.randint(1, FEEDS)
        kinds = ["fresh"] * (n // 2) + ["copy"] * ((n - n // 2) // 2)
        kinds += ["sibling"] * (n - len(kinds))
        rng.shuffle(kinds)
        items = []
        expect: list[tuple[str, int | None]] = []
        for kind in kinds:
            serial += 1
            if kind == "fresh":
                title, text = generator.writeup(serial, serial)
                expect.append((kind, None))
            elif kind == "copy":
                parent = max(0, size - 1 - int(rng.expovariate(1.0 / (per_hour * 6))))
                title, text = generator.copy(*_text(parent), serial)
                salt = 0
                while content_hash(title, text) == content_hash(*_text(parent)):
                    salt += 1  # an unchanged body would be the same item again (level 1)
                    title, text = generator.copy(*_text(parent), serial + salt * 10_000_000)
                expect.append((kind, parent + 1))  # a corpus item's id is its index + 1
            else:
                parent = max(0, size - 1 - int(rng.expovariate(1.0 / (per_hour * 10))))
                title, text = generator.writeup(int(plan.story[parent]), serial)
                expect.append((kind, parent + 1))
            published = (now - dt.timedelta(seconds=rng.uniform(0, 6 * 3600))).replace(
                microsecond=0
            )
            url = f"https://outlet{feed:03d}.example/news/{published:%Y/%m/%d}/{_slug(title)}-n{serial}"
            item = make_item(title=title, summary=_summary(text), content=text, url=url,
                             guid=url, published=published, now=now,
                             source=f"Outlet {feed:03d}")  # fmt: skip
            assert item is not None
            items.append(item)
        prepared, _ = prepare_items(items, config.topics, keep_unmatched=True)
        batches.append({"feed": feed, "now": _iso(now), "items": prepared, "expect": expect})
    out.write_bytes(pickle.dumps({"main": batches}, protocol=pickle.HIGHEST_PROTOCOL))
    return out


# ============================================================================ measuring


def _sqlite_peak_mb() -> float | None:
    """The high-water mark of SQLite's allocator in MB, when the library says."""
    try:
        lib = ctypes.CDLL("libsqlite3.so.0")
    except OSError:
        return None
    lib.sqlite3_memory_highwater.restype = ctypes.c_int64
    lib.sqlite3_memory_highwater.argtypes = [ctypes.c_int]
    return float(lib.sqlite3_memory_highwater(0) / 1e6)


def resident_fraction(path: Path) -> float | None:
    """Share of a file's pages in the OS page cache (mincore), None if unknown."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return None
    if size == 0:
        return 1.0
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                          ctypes.c_int, ctypes.c_long]  # fmt: skip
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
    page = mmap.PAGESIZE
    pages = (size + page - 1) // page
    fd = os.open(path, os.O_RDONLY)
    try:
        addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        if addr in (None, ctypes.c_void_p(-1).value):
            return None
        try:
            vec = (ctypes.c_ubyte * pages)()
            if libc.mincore(addr, size, vec) != 0:
                return None
            return sum(1 for b in bytes(vec) if b & 1) / pages
        finally:
            libc.munmap(addr, size)
    finally:
        os.close(fd)


def evict(path: Path) -> None:
    """Drop the database files from the OS page cache (this file only; nothing system-wide)."""
    for suffix in ("", "-wal", "-shm"):
        file = Path(f"{path}{suffix}")
        if not file.exists():
            continue
        fd = os.open(file, os.O_RDWR)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


_MARKS = {
    "item": "SELECT max(id) FROM items",
    "sighting": "SELECT max(id) FROM sightings",
    "tag": "SELECT max(id) FROM tags",
    "clustered": "SELECT item_id FROM story_clustered",
}


def _marks(conn: sqlite3.Connection) -> dict[str, int]:
    return {name: conn.execute(sql).fetchone()[0] or 0 for name, sql in _MARKS.items()}


def _marks_path(db: Path) -> Path:
    return Path(f"{db}.marks.json")


def _mark(db: Path, conn: sqlite3.Connection) -> dict[str, int]:
    """Where the corpus ends before a measurement adds to it, also kept on disk until
    :func:`_remove_added`: after a crash, :func:`ensure_corpus` cleans up."""
    marks = _marks(conn)
    _marks_path(db).write_text(json.dumps(marks))
    return marks


def _remove_added(db: Path, marks: dict[str, int]) -> None:
    cleanup(db, marks)
    _marks_path(db).unlink()


def _stories_path(db: Path) -> Path:
    return Path(f"{db}.stories.pkl")


def _save_stories(db: Path) -> None:
    """Keep what a measurement's story step may change in the corpus (a correction moves
    stored items between stories and records merges and splits): cleanup puts it back.
    Run by the parent before a child measures: a million rows in the child would show in
    its peak memory."""
    state = {
        "items": query(db, "SELECT id, story_id, dedupe_signal, dedupe_score FROM items"),
        "merges": [row[0] for row in query(db, "SELECT story_id FROM story_merges")],
        "splits": [row[0] for row in query(db, "SELECT story_id FROM story_splits")],
    }
    _stories_path(db).write_bytes(pickle.dumps(state))


def cleanup(path: Path, marks: dict[str, int]) -> None:
    """Remove every row a measurement added, so that the cached corpus stays as built.

    Foreign keys are off for this: ON DELETE CASCADE into dedupe_keys would scan the whole
    key table once per deleted item (no index on dedupe_keys.item_id); the keys are deleted
    by key instead. The FTS rows go through the delete trigger.
    """
    from watcher.similarity import from_bytes

    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA foreign_keys = OFF")
        conn.execute("BEGIN IMMEDIATE")
        m = marks["item"]
        keys = []
        for item_id, blob in conn.execute(
            "SELECT item_id, fingerprint FROM dedupe_fingerprints WHERE item_id > ?", [m]
        ).fetchall():
            fp = from_bytes(blob)
            keys += [(k, 0, item_id) for k in fp.band_keys]
            keys += [(k, 1, item_id) for k in fp.story_keys]
        conn.executemany("DELETE FROM dedupe_keys WHERE key = ? AND kind = ? AND item_id = ?", keys)
        _restore_stories(conn, path, m, marks["clustered"])
        for sql, mark in (
            ("DELETE FROM dedupe_fingerprints WHERE item_id > ?", m),
            ("DELETE FROM item_topics WHERE item_id > ?", m),
            ("DELETE FROM item_tags WHERE item_id > ?", m),
            ("DELETE FROM sightings WHERE id > ?", marks["sighting"]),
            ("DELETE FROM items WHERE id > ?", m),
            ("DELETE FROM tags WHERE id > ?", marks["tag"]),
        ):
            conn.execute(sql, [mark])
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        left = _marks(conn)
        assert left == marks, (left, marks)
    finally:
        conn.close()


def _restore_stories(conn: sqlite3.Connection, path: Path, mark: int, clustered: int) -> None:
    """Take a measurement's story rows out again (its items' vectors, index terms and
    counts in the frequencies) and put back what it changed of the stored items' stories
    (:func:`_save_stories`); inside cleanup's transaction."""
    from watcher.store.stories import DOCUMENTS_KEY
    from watcher.story_vectors import from_bytes as vector_from_bytes

    counted: Counter[int] = Counter()
    for blob, duplicate_of in conn.execute(
        "SELECT story_vectors.vector, items.duplicate_of FROM story_vectors "
        "JOIN items ON items.id = story_vectors.item_id WHERE story_vectors.item_id > ?",
        [mark],
    ):
        if duplicate_of is None:
            counted.update((DOCUMENTS_KEY, *vector_from_bytes(blob).keys.tolist()))
    conn.executemany(
        "UPDATE story_df SET df = df - ? WHERE key = ?", [(n, k) for k, n in counted.items()]
    )
    conn.execute("DELETE FROM story_df WHERE df <= 0")
    for name in ("story_vectors", "story_terms", "story_encodings"):
        conn.execute(f"DELETE FROM {name} WHERE item_id > ?", [mark])
    conn.execute("UPDATE story_clustered SET item_id = ?", [clustered])
    saved = _stories_path(path)
    if not saved.exists():
        return
    state = pickle.loads(saved.read_bytes())
    now = {row[0]: row for row in conn.execute(
        "SELECT id, story_id, dedupe_signal, dedupe_score FROM items WHERE id <= ?", [mark]
    )}  # fmt: skip
    conn.executemany(
        "UPDATE items SET story_id = ?, dedupe_signal = ?, dedupe_score = ? WHERE id = ?",
        [(story, signal, score, item_id)
         for item_id, story, signal, score in state["items"]
         if now.get(item_id) != (item_id, story, signal, score)],
    )  # fmt: skip
    for name, kept in (("story_merges", state["merges"]), ("story_splits", state["splits"])):
        conn.execute(
            f"DELETE FROM {name} WHERE story_id NOT IN (SELECT value FROM json_each(?))",
            [json.dumps(kept)],
        )
    saved.unlink()


@dataclass
class Probe:
    """Where ``ingest_batch`` spends its time, item by item: an item runs from its level-1
    lookup to the next item's (the batch's last, to its last lookup or fingerprint write)."""

    starts: list[tuple[float, float]] = field(default_factory=list)  # (wall, CPU) per item
    end: tuple[float, float] = (0.0, 0.0)  # (wall, CPU) as the last item's last call returned
    buckets: list[Tally] = field(default_factory=list)  # seconds per part, per item
    candidates: list[int] = field(default_factory=list)  # candidate rows per item looked up


# The parts of ingest_batch timed item by item: Store methods, and functions it calls by their
# names in watcher.ingest (one level each, so that nothing counts twice). Topics, tags,
# sightings and the text index are written for the whole batch after its last item: they
# count with the commit, spread over the batch's items, as does the batch's story correction.
PARTS = [
    ("store", "find_exact", "level-1 lookups"),
    ("store", "dedupe_candidates", "candidate query"),
    ("ingest", "_decode", "decode fingerprints"),
    ("ingest", "decide", "decide"),
    ("ingest", "choose_story", "story step"),
    ("ingest", "remember", "story step"),  # before story_keeping
    ("keeping", "flush", "story step"),
    ("store", "insert_item", "insert item"),
    ("store", "save_fingerprint", "fingerprint + keys"),
]
BUCKETS = tuple(dict.fromkeys(label for _, _, label in PARTS))  # the report's columns


def _keeping_class() -> Any:
    """:class:`watcher.story_keeping.Keeping` where the code has it (None: skipped)."""
    try:
        from watcher.story_keeping import Keeping
    except ImportError:
        return None
    return Keeping


def _instrument(store: Any, ingest_module: Any) -> Probe:
    probe = Probe()
    owners = {"store": store, "ingest": ingest_module, "keeping": _keeping_class()}
    time_calls(
        [(owners[owner], name, label) for owner, name, label in PARTS],
        lambda label, seconds: probe.buckets[-1].add(label, seconds),
    )
    find_exact, candidates, save = store.find_exact, store.dedupe_candidates, store.save_fingerprint

    def ended(result: Any) -> Any:
        probe.end = (time.perf_counter(), time.process_time())
        return result

    def begin(*args: Any, **kwargs: Any) -> Any:  # an item begins with its level-1 lookup
        probe.starts.append((time.perf_counter(), time.process_time()))
        probe.buckets.append(Tally())
        return ended(find_exact(*args, **kwargs))

    def counted(*args: Any, **kwargs: Any) -> Any:
        rows = candidates(*args, **kwargs)
        probe.candidates.append(len(rows))
        return rows

    store.find_exact, store.dedupe_candidates = begin, counted
    store.save_fingerprint = lambda *args, **kwargs: ended(save(*args, **kwargs))
    return probe


def _run_batches(
    store: Any, probe: Probe, batches: Sequence[dict[str, Any]], settings: Any
) -> dict[str, Any]:
    """Ingest the batches; per item ms (wall and CPU) with the batch's closing writes and
    commit spread over its items."""
    from watcher.ingest import ingest_batch

    per_item: tuple[list[float], list[float]] = ([], [])  # wall, CPU
    commits: list[float] = []
    buckets: list[Tally] = []
    new_ids: list[int] = []
    for entry in batches:
        probe.starts.clear()
        probe.buckets.clear()
        outcome = ingest_batch(
            store, entry["items"], feed_id=entry["feed"], now=entry["now"], settings=settings
        )
        done = (time.perf_counter(), time.process_time())
        n = len(entry["items"])
        assert len(probe.starts) == n, (len(probe.starts), n)
        for k in (0, 1):
            closing = done[k] - probe.end[k]  # the batch's closing writes and commit
            bounds = [start[k] for start in probe.starts[1:]] + [probe.end[k]]
            for start, stop in zip(probe.starts, bounds, strict=True):
                per_item[k].append((stop - start[k] + closing / n) * 1000)
        commits.append((done[0] - probe.end[0]) * 1000)
        buckets.extend(probe.buckets)
        new_ids.extend(outcome.new_item_ids)
    return {
        "per_item_ms": per_item[0],
        "per_item_cpu_ms": per_item[1],
        "commit_ms": commits,
        "buckets": buckets,
        "new_ids": new_ids,
    }


def _filed(conn: sqlite3.Connection, batches: Sequence[dict[str, Any]], new_ids: list[int]) -> Any:
    """What the new items were filed as, by kind, against the stored item each was made
    from: near-duplicates of its group, joined to its story, new stories attached."""

    def filed_as(item_id: int) -> tuple[Any, ...]:  # (duplicate_of, story_id)
        sql = "SELECT duplicate_of, story_id FROM items WHERE id = ?"
        return tuple(conn.execute(sql, [item_id]).fetchone())

    expect = [e for entry in batches for e in entry["expect"]]
    filed: dict[str, dict[str, int]] = {}
    for (kind, parent), item_id in zip(expect, new_ids, strict=True):
        duplicate_of, story_id = filed_as(item_id)
        slot = filed.setdefault(
            kind, dict.fromkeys(("n", "right_group", "in_story", "right_story"), 0)
        )
        slot["n"] += 1
        slot["in_story"] += story_id != item_id
        if parent is not None:
            parent_copy_of, parent_story = filed_as(parent)
            slot["right_group"] += duplicate_of == (parent_copy_of or parent)
            slot["right_story"] += story_id == parent_story
    return filed


def measure_child(db: Path, pickle_path: Path, out: Path) -> None:
    """One size, in a fresh process: timings, candidate sets, memory; then clean up."""
    batches = pickle.loads(pickle_path.read_bytes())["main"]
    import watcher.ingest as ingest_module
    from watcher.config import load_config
    from watcher.dedupe_settings import from_config
    from watcher.store import Store

    settings = from_config(load_config(CONFIG).dedupe)
    rss_before_open = own_mb("VmRSS")
    load = Load()
    store = Store.open(db)
    conn = store.db.conn
    pragmas = {
        name: conn.execute(f"PRAGMA {name}").fetchone()[0]
        for name in ("cache_size", "page_size", "mmap_size", "journal_mode", "synchronous")
    }
    marks = _mark(db, conn)
    probe = _instrument(store, ingest_module)
    main = _run_batches(store, probe, batches, settings)
    rss_after_main = own_mb("VmRSS")
    other_load = load.others()
    sqlite_peak = _sqlite_peak_mb()
    filed = _filed(conn, batches, main["new_ids"])
    store.close()
    peak_rss = own_mb("VmHWM")  # before cleanup, which reads the corpus's stories back
    _remove_added(db, marks)
    result = {
        "pragmas": pragmas,
        "main": main,
        "candidates": probe.candidates,
        "rss_before_open_mb": rss_before_open,
        "rss_after_main_mb": rss_after_main,
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across exec
        "peak_rss_mb": peak_rss,
        "sqlite_peak_mb": sqlite_peak,
        "other_load": other_load,
        "filed": filed,
        "cap": ingest_module._MAX_CANDIDATES,
    }
    out.write_text(json.dumps(result))


def restart_child(db: Path, pickle_path: Path, out: Path, cold: bool, spawned_at: float) -> None:
    """A fresh process: imports, Store.open (migrations check), the first feed batch."""
    started = time.time()
    t0 = time.perf_counter()
    import watcher.cli  # noqa: F401  # everything `watcher poll` imports
    from watcher.config import load_config
    from watcher.dedupe_settings import from_config
    from watcher.ingest import ingest_batch
    from watcher.store import Store

    imports = time.perf_counter() - t0
    settings = from_config(load_config(CONFIG).dedupe)
    first = pickle.loads(pickle_path.read_bytes())["main"][0]
    if cold:
        evict(db)
    resident = resident_fraction(db)
    t1 = time.perf_counter()
    store = Store.open(db)
    t2 = time.perf_counter()
    marks = _mark(db, store.db.conn)  # outside the timed span
    t3 = time.perf_counter()
    ingest_batch(store, first["items"], feed_id=first["feed"], now=first["now"], settings=settings)
    t4 = time.perf_counter()
    store.close()
    _remove_added(db, marks)
    figures = {"interpreter_s": started - spawned_at, "imports_s": imports, "open_s": t2 - t1,
               "first_batch_s": t4 - t3, "resident_before": resident, "cold": cold}  # fmt: skip
    out.write_text(json.dumps(figures))


# ============================================================================ orchestration


def _in_child(name: str, size: int, *argv: str) -> Any:
    """A measurement of ``size`` in a fresh process of this script, told when it was
    started; what it wrote."""
    db, out = corpus_path(size), RESULTS / f"{name.strip('_')}-{size}.json"
    _save_stories(db)  # for the child's cleanup, kept here: not in its memory
    command = [sys.executable, str(Path(__file__).resolve()), name, str(db), str(_new_path(size))]
    if subprocess.run([*command, str(out), repr(time.time()), *argv], check=False).returncode:
        sys.exit(f"child {name} of {size} failed")
    return json.loads(out.read_text())


def ensure_corpus(size: int, seed: int, rebuild: bool) -> dict[str, Any]:
    path = corpus_path(size)
    meta_path = Path(f"{path}.json")
    if path.exists() and meta_path.exists() and not rebuild:
        if _marks_path(path).exists():  # a measurement died before removing its rows
            log(f"{path.name}: removing the rows of an interrupted measurement")
            _remove_added(path, json.loads(_marks_path(path).read_text()))
        meta = json.loads(meta_path.read_text())
        built = meta.get("generator"), meta.get("seed"), meta.get("rate_per_day")
        if built == (GENERATOR_VERSION, seed, RATE_PER_DAY):
            log(f"{size}: reusing {path.name}")
            return dict(meta)
    log(f"{size}: building {path.name}")
    return build_bulk(size, seed)


def measure_size(size: int, seed: int, restarts: int, rebuild: bool) -> dict[str, Any]:
    meta = ensure_corpus(size, seed, rebuild)
    prepare_new(size, seed, rebuild)
    log(f"{size}: measuring ingest_batch")
    # a first pass warms the OS page cache for the corpus (discarded): the measured run
    # starts from the same state at every size; the cold case is the restart test's
    _in_child("_measure", size)
    measured = _in_child("_measure", size)
    runs = []
    for cold in [False] * restarts + [True] * restarts:
        log(f"{size}: restart ({'cold' if cold else 'warm'} OS cache)")
        runs.append(_in_child("_restart", size, "cold" if cold else "warm"))
    batches = pickle.loads(_new_path(size).read_bytes())["main"]
    return {
        "size": size,
        "meta": meta,
        "measure": measured,
        "restarts": runs,
        "categories": [kind for entry in batches for kind, _ in entry["expect"]],
    }


# ============================================================================ report


def _fmt(value: float | None, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"


def _cells(stats: dict[str, float], keys: str, digits: int = 2) -> list[str]:
    """The figures ``keys`` of a :func:`common.summary`, formatted."""
    return [_fmt(stats[key], digits) for key in keys.split()]


def _stats(stats: dict[str, float], keys: str = "median p95 max", digits: int = 2) -> str:
    """The figures ``keys`` (median / p95 / max) of a :func:`common.summary` in one cell."""
    return " / ".join(_cells(stats, keys, digits))


def _median_p95(values: Sequence[float]) -> str:
    return f"{_fmt(statistics.median(values))} / {_fmt(percentile(values, 95, nearest_rank=True))}"


def _median_of(runs: Sequence[dict[str, Any]], *keys: str) -> float:
    """The median over ``runs`` of the sum of ``keys`` (a missing figure counts 0)."""
    return float(statistics.median(sum(run[key] or 0.0 for key in keys) for run in runs))


def _bucket_ms(main: dict[str, Any], label: str) -> float:
    """Mean ms per item spent in one part of ingest_batch (one of :data:`BUCKETS`)."""
    spent = float(sum(buckets.get(label, 0.0) for buckets in main["buckets"]))
    return spent * 1000 / len(main["per_item_ms"])


def _gb(mb: float) -> str:
    return f"{mb / 1000:.2f} GB"


def _span_days(meta: dict[str, Any]) -> float:
    first = dt.datetime.strptime(meta["published_from"], _ISO)
    last = dt.datetime.strptime(meta["published_to"], _ISO)
    return (last - first).total_seconds() / 86400


def _size_label(result: dict[str, Any]) -> str:
    size = result["size"]
    return f"{size // 1_000_000}M" if size >= 1_000_000 else f"{size // 1000}k"


def render(results: list[dict[str, Any]], argv: Sequence[str], findings: str) -> str:
    head, dirty = revision("%h %s")
    code = f"watcher at `{head[:80]}`" + (" with uncommitted changes" if dirty else "")
    loads = [max(0.0, r["measure"]["other_load"]) for r in results]
    doc = Section("# Dedupe + store at scale (issue 3)")
    doc.add(
        f"Measured with `python bench/bench_dedupe.py {' '.join(argv)}`".rstrip()
        + f" on {dt.date.today().isoformat()}.",
        f"Code: {code if head else 'unknown revision'}. "
        f"Machine: {machine(f'SQLite {sqlite3.sqlite_version}')}.",
        f"Other processes used at most {max(loads):.1f} cores during the measurements."
        if max(loads) < 0.3
        else f"Other processes kept {min(loads):.1f}-{max(loads):.1f} cores busy during the "
        "measurements (the machine was shared): wall-clock figures include waiting for a "
        "core; the CPU columns do not.",
    )
    doc.add(
        f"Goal: median under {GOAL_MEDIAN_MS:g} ms per item at 1M items, memory not growing with "
        f"the corpus beyond the SQLite page cache, first poll after a restart under "
        f"{GOAL_RESTART_S:g} s."
    )
    _per_item(doc, results)
    _memory(doc, results)
    _restarts(doc, results)
    _corpora(doc, results)
    if findings:
        doc.add(findings.strip())
    doc.add("## How to run")
    doc.add(
        "```sh",
        ". .venv/bin/activate",
        "python bench/bench_dedupe.py --quick             # 10k only, about a minute",
        "python bench/bench_dedupe.py                     # 10k, 100k, 1M; builds the corpora once",
        "```",
    )
    doc.add(
        "Corpora, prepared batches and raw results are cached in `bench/results/dedupe/` "
        "(git-ignored; the 1M corpus takes 18 GB and about 40 minutes to build on 2 busy "
        "cores); `--rebuild` starts over. Each measurement deletes what it added and puts back "
        "the stories its corrections moved, so the cached corpora stay as built (logically: "
        "free pages and the FTS segment layout drift a little). Other options: `--sizes`, "
        "`--restarts`, `--seed`, `--no-write`."
    )
    return str(doc).rstrip("\n") + "\n"


def _per_item(doc: Section, results: list[dict[str, Any]]) -> None:
    doc.add("## Per item: `ingest_batch` (dedupe + store)")
    doc.add(
        f"{len(results[0]['measure']['main']['per_item_ms']):,} new items in feed batches of "
        f"{BATCH} (half new stories, a quarter near-duplicates and a quarter other write-ups of "
        "stored items from the last days), one transaction per batch; per item = its own time "
        "plus its share of the batch's commit. Fingerprints come precomputed, as from the parse "
        "workers. Wall clock, and CPU time of the process (user + system; what the item costs "
        "without waiting for a core or a disk)."
    )
    rows = []
    for r in results:
        m = r["measure"]
        s, cpu, commit = (
            summary(m["main"][k]) for k in ("per_item_ms", "per_item_cpu_ms", "commit_ms")
        )
        candidates = summary(m["candidates"])
        capped = sum(1 for x in m["candidates"] if x >= m["cap"]) / max(1, candidates["n"])
        goal = "met" if s["median"] < GOAL_MEDIAN_MS else "**missed**"
        rows.append([
            _size_label(r), f"{_span_days(r['meta']):.0f} days", _gb(r["meta"]["file_mb"]),
            *_cells(s, "median p95 p99 max"),
            _stats(cpu, "median p95 p99"), f"{_fmt(commit['median'], 1)}, {_fmt(commit['max'], 1)}",
            _stats(candidates, digits=0), f"{capped:.1%} of {m['cap']}",
            goal + (" (goal is for 1M)" if r["size"] < 1_000_000 else ""),
        ])  # fmt: skip
    doc.table(
        ["stored items", "corpus span", "db size", "median ms", "p95 ms", "p99 ms", "max ms",
         "CPU ms median / p95 / p99", "batch writes + commit ms/batch (median, max)",
         "candidates median / p95 / max", "at the cap", "goal"],
        rows, "l" + "r" * 10 + "l",
    )  # fmt: skip
    doc.add("Where the time goes (mean ms per item; commit per item = batch commit / batch size):")
    rows = []
    for r in results:
        m = r["measure"]["main"]
        means = [_bucket_ms(m, label) for label in BUCKETS]
        commit_ms = sum(m["commit_ms"]) / len(m["per_item_ms"])
        total = statistics.fmean(m["per_item_ms"])
        other = total - sum(means) - commit_ms
        rows.append([_size_label(r), *(_fmt(x, 3) for x in [*means, commit_ms, other, total])])
    doc.table(["stored items", *BUCKETS, "batch writes + commit", "other", "total"], rows)
    doc.add("By kind of item (median / p95 ms; median candidates; how `decide` filed them):")
    rows = []
    for r in results:
        m, kinds = r["measure"], r["categories"]
        cells = [_size_label(r)]
        for kind in ("fresh", "copy", "sibling"):
            times = [t for t, k in zip(m["main"]["per_item_ms"], kinds, strict=True) if k == kind]
            cands = [c for c, k in zip(m["candidates"], kinds, strict=False) if k == kind]
            cells.append(f"{_median_p95(times)} ({statistics.median(cands):.0f} cand.)")
        filed = m["filed"]
        cells += [
            f"{filed['copy']['right_group']}/{filed['copy']['n']}",
            f"{filed['sibling']['right_story']}/{filed['sibling']['n']}",
            f"{filed['fresh']['in_story']}/{filed['fresh']['n']}",
        ]
        rows.append(cells)
    doc.table(
        ["stored items", "new story", "near-duplicate", "other write-up",
         "copies filed as copies of the right group", "write-ups joined to the story",
         "new stories attached to a stored one"],
        rows,
    )  # fmt: skip


def _memory(doc: Section, results: list[dict[str, Any]]) -> None:
    doc.add("## Memory")
    pr = results[0]["measure"]["pragmas"]
    cache = (
        f"{-pr['cache_size'] / 1024:.0f} MB"
        if pr["cache_size"] < 0
        else f"{pr['cache_size']} pages"
    )
    doc.add(
        f"After `Store.open`: `PRAGMA cache_size` = {pr['cache_size']} ({cache} per connection), "
        f"page size {pr['page_size']} B, `mmap_size` {pr['mmap_size']}, "
        f"journal {pr['journal_mode']}, synchronous {pr['synchronous']} (1 = NORMAL).",
        "Measuring process only (fresh per size; the prepared items it ingests are loaded "
        "before the database is opened):",
    )
    rows = []
    for r in results:
        m = r["measure"]
        growth = m["peak_rss_mb"] - m["rss_before_open_mb"]
        figures = [m["rss_before_open_mb"], m["rss_after_main_mb"], m["peak_rss_mb"], growth]
        rows.append([_size_label(r), *(_fmt(x, 1) for x in [*figures, m["sqlite_peak_mb"]])])
    doc.table(
        ["stored items", "RSS before open MB", "RSS after 2,000 items MB", "peak RSS MB",
         "growth over baseline MB", "SQLite heap high-water MB"],
        rows,
    )  # fmt: skip


def _restarts(doc: Section, results: list[dict[str, Any]]) -> None:
    doc.add("## Restart: a fresh process up to the first batch stored")
    doc.add(
        "Each run is a new process: interpreter start, `import watcher.cli` (what `watcher poll` "
        "imports), `Store.open` (connect, pragmas, migrations check), then `ingest_batch` of the "
        f'first feed batch ({BATCH} new items). "Cold": the database files evicted from the '
        'OS page cache first (`posix_fadvise(DONTNEED)` on those files only); "warm": right after '
        "other runs. Median of the runs; goal: open + first batch under 1 s."
    )
    parts = ("interpreter_s", "imports_s", "open_s", "first_batch_s")
    rows = []
    for r in results:
        for cold in (False, True):
            runs = [x for x in r["restarts"] if x["cold"] == cold]
            if not runs:
                continue
            total = _median_of(runs, "open_s", "first_batch_s")
            resident = _median_of(runs, "resident_before")
            rows.append([
                _size_label(r), f"{'cold' if cold else 'warm'} ({resident:.0%} resident)",
                len(runs), *(_fmt(_median_of(runs, part), 3) for part in parts), _fmt(total, 3),
                _fmt(_median_of(runs, *parts), 3),
                "met" if total < GOAL_RESTART_S else "**missed**",
            ])  # fmt: skip
    doc.table(
        ["stored items", "OS cache", "runs", "interpreter start s", "imports s", "Store.open s",
         "first batch s", "open + first batch s", "all, from process start s", "goal"],
        rows, "ll" + "r" * 7 + "l",
    )  # fmt: skip


def _corpora(doc: Section, results: list[dict[str, Any]]) -> None:
    doc.add("## The corpora")
    doc.add(
        f"Synthetic, deterministic (seed {results[0]['meta']['seed']}), at {RATE_PER_DAY:,.0f} "
        f"items a day, ending {_iso(END)}; {FEEDS} feeds. 55 % of items start a story, 25 % are "
        "other write-ups of a recent story, 20 % near-duplicates of a recent item. Texts of "
        "150-600 words: a 30,000-word vocabulary with Zipfian frequencies (function words at "
        "the top, a few real topical words), 20,000 invented capitalised names with Zipfian "
        "popularity (a few real ones such as Russia, Kyrgyzstan, Kant at the top) and story "
        "themes. Bulk-loaded corpora: fingerprints by the real code in a process pool, rows "
        "written in big transactions with what `ingest_batch` writes; groups and stories from "
        "the generator's labels; tags emulated (about 8 per item, as the tagger gives on these "
        "texts)."
    )
    rows = []
    for r in results:
        meta = r["meta"]
        how = (
            f"bulk, {meta['build_seconds'] / 60:.1f} min on {meta['workers']} workers "
            f"(writes {meta['insert_seconds'] / 60:.1f} min)"
        )
        rows.append([
            _size_label(r), f"{meta['items']:,}", f"{_span_days(meta):.0f} days",
            _gb(meta["file_mb"]), f"{meta['dedupe_keys']:,}", f"{meta['tags']:,}", how,
        ])  # fmt: skip
    doc.table(
        ["corpus", "items", "span", "file", "dedupe_keys rows", "distinct tags", "build"],
        rows, "l" + "r" * 5 + "l",
    )  # fmt: skip


_FINDINGS = re.compile(r"<!-- findings -->.*?<!-- /findings -->", re.S)


def main() -> None:
    if sys.argv[1:2] == ["_measure"]:
        measure_child(*map(Path, sys.argv[2:5]))
        return
    if sys.argv[1:2] == ["_restart"]:
        db, pkl, out, spawned_at, cache = sys.argv[2:7]
        restart_child(Path(db), Path(pkl), Path(out), cache == "cold", float(spawned_at))
        return
    parser = arguments(__doc__, quick="10k only", write=str(DOC.relative_to(ROOT)), seed=SEED)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--restarts", type=int, default=3, help="runs per OS cache state")
    parser.add_argument("--rebuild", action="store_true", help="build corpora and batches anew")
    args = parser.parse_args()
    sizes = [10_000] if args.quick else [int(x) for x in args.sizes.split(",")]
    results = []
    for size in sizes:
        results.append(measure_size(size, args.seed, args.restarts, args.rebuild))
        (RESULTS / "results.json").write_text(json.dumps(results))
    found = _FINDINGS.search(DOC.read_text(encoding="utf-8")) if DOC.exists() else None
    report = render(results, args.argv, found.group(0) if found else "")
    print(report)
    if not args.no_write:
        DOC.write_text(report, encoding="utf-8")


if __name__ == "__main__":
    main()
