"""The story tables of migrations 0016 and 0020: vectors, document frequencies, index terms,
merges and splits.

Functions on a :class:`~watcher.store.Store`; every lookup goes through a primary key.
"""

from __future__ import annotations

import json
import weakref
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from watcher.store.database import Store

if TYPE_CHECKING:
    from watcher.story_vectors import FrequencyTable, StoryVector

DOCUMENTS_KEY = 0
"""The ``story_df`` row that counts the vectors (feature keys are odd, never 0)."""
HITS_PER_TERM = 32
"""Most recent items taken per index term."""


def document_frequencies(store: Store, keys: Sequence[int]) -> tuple[dict[int, int], int]:
    """The document frequency of each of ``keys`` (absent: 0) and the number of vectors."""
    rows = store.db.conn.execute(
        "SELECT key, df FROM story_df WHERE key IN (SELECT value FROM json_each(?))",
        [json.dumps([DOCUMENTS_KEY, *keys])],
    ).fetchall()
    found = dict(rows)
    documents = found.pop(DOCUMENTS_KEY, 0)
    return found, int(documents)


def save_vectors(
    store: Store,
    vectors: Sequence[tuple[int, str | None, bytes]],
    index_terms: Sequence[tuple[int, str | None, Sequence[int]]],
) -> None:
    """Keep items' vectors ((item id, at, bytes)) and index their terms ((item id, at,
    keys)); their keys are counted by :func:`counted`."""
    conn = store.db.conn
    conn.executemany(
        "INSERT OR REPLACE INTO story_vectors(item_id, at, vector) VALUES (?, ?, ?)",
        [(item_id, at or "", vector) for item_id, at, vector in vectors],
    )
    conn.executemany(
        "INSERT OR IGNORE INTO story_terms(key, at, item_id) VALUES (?, ?, ?)",
        [(key, at or "", item_id) for item_id, at, keys in index_terms for key in keys],
    )


def save_leads(store: Store, leads: Sequence[tuple[int, int, str | None, bytes]]) -> None:
    """Keep items' lead encoder vectors ((item id, script, at, bytes); migration 0021)."""
    store.db.conn.executemany(
        "INSERT OR REPLACE INTO story_encodings(item_id, script, at, vector) VALUES (?, ?, ?, ?)",
        [(item_id, script, at or "", vector) for item_id, script, at, vector in leads],
    )


def leads_of(store: Store, item_ids: Sequence[int]) -> list[tuple[int, bytes]]:
    """(item id, lead vector bytes) of ``item_ids`` that have one."""
    return store.db.conn.execute(
        "SELECT item_id, vector FROM story_encodings WHERE item_id IN (SELECT value FROM json_each(?))",
        [json.dumps(list(item_ids))],
    ).fetchall()


def other_script_items(
    store: Store,
    script: int,
    window: tuple[str, str] | None,
    items: int,
    *,
    settled: tuple[int, str, int] | None = None,
) -> list[tuple[int, int]]:
    """(item id, story id) of the ``items`` most recent items with a lead vector in
    ``script`` (the other one than the new item's) inside ``window`` (undated items pass),
    the most recent first: where candidates across scripts come from, since they share too
    few index terms to be found. An equality on ``script`` walks the (script, at) index
    backwards and stops at ``items``; ``script != ?`` sorted every encoding at every item.
    The window's range and the undated items are read apart, the undated after the dated
    as ``ORDER BY at DESC`` puts them: with one OR SQLite walked every newer encoding of
    the script to reach the window (twice the time where one script is most of the store).
    ``settled``: as for :func:`candidate_stories`."""
    settled_sql = " AND (item_id <= ? OR (at, item_id) < (?, ?))" if settled is not None else ""
    settled_params: tuple[object, ...] = settled or ()
    encodings = f"SELECT item_id FROM story_encodings WHERE script = ?{settled_sql}"
    if window is None:
        recent = f"{encodings} ORDER BY at DESC, item_id DESC LIMIT ?"
        params: list[object] = [script, *settled_params, items]
    else:
        recent = (
            f"SELECT item_id FROM (SELECT item_id FROM ({encodings} AND at BETWEEN ? AND ? "
            f"ORDER BY at DESC, item_id DESC LIMIT ?) UNION ALL SELECT item_id FROM "
            f"({encodings} AND at = '' ORDER BY item_id DESC LIMIT ?)) LIMIT ?"
        )
        params = [script, *settled_params, *window, items, script, *settled_params, items, items]
    rows = store.db.conn.execute(
        f"SELECT items.id, items.story_id FROM ({recent}) AS recent "
        "JOIN items ON items.id = recent.item_id "
        "WHERE items.duplicate_of IS NULL AND items.story_id IS NOT NULL",
        params,
    ).fetchall()
    return [(int(item_id), int(story_id)) for item_id, story_id in rows]


def without_leads(store: Store, *, since: str, limit: int) -> list[tuple[int, str, str, str]]:
    """(item id, vector time: '' undated, title, text) of at most ``limit`` items first
    seen since ``since``, the newest first, that have a story vector and no lead vector
    (near-duplicates left out: they follow their originals)."""
    return store.db.conn.execute(
        "SELECT items.id, story_vectors.at, items.title, "
        "CASE WHEN items.content != '' THEN items.content ELSE items.summary END "
        "FROM items JOIN story_vectors ON story_vectors.item_id = items.id "
        "LEFT JOIN story_encodings ON story_encodings.item_id = items.id "
        "WHERE items.first_seen_at >= ? AND items.duplicate_of IS NULL "
        "AND story_encodings.item_id IS NULL "
        "ORDER BY items.first_seen_at DESC, items.id DESC LIMIT ?",
        [since, limit],
    ).fetchall()


def candidate_stories(
    store: Store,
    keys: Sequence[int],
    window: tuple[str, str] | None,
    limit: int,
    *,
    settled: tuple[int, str, int] | None = None,
) -> list[int]:
    """Stories with items that share an index term with ``keys`` within ``window``
    (undated items pass every window), the most shared terms first. ``settled`` (item id,
    at, item id): only items up to the first id, or before the (at, item id) pair, count:
    those a clustering has already taken (:func:`watcher.regroup.cluster_pending_part`)."""
    if not keys:
        return []
    settled_sql = " AND (item_id <= ? OR (at, item_id) < (?, ?))" if settled is not None else ""
    settled_params: tuple[object, ...] = settled or ()
    term = f"SELECT item_id FROM story_terms WHERE key = ?{settled_sql}"
    if window is None:
        per_key = f"SELECT item_id FROM ({term} ORDER BY at DESC LIMIT {HITS_PER_TERM})"
    else:
        # the window's range and the undated items apart, the undated after the dated as
        # ORDER BY at DESC puts them: one OR made SQLite read every item of the term, the
        # whole corpus's for a common one
        per_key = (
            f"SELECT item_id FROM (SELECT item_id FROM (SELECT item_id FROM ({term} AND at "
            f"BETWEEN ? AND ? ORDER BY at DESC LIMIT {HITS_PER_TERM}) UNION ALL SELECT item_id "
            f"FROM ({term} AND at = '' ORDER BY item_id DESC LIMIT {HITS_PER_TERM})) "
            f"LIMIT {HITS_PER_TERM})"
        )
    params: list[object] = []
    for key in keys:
        if window is None:
            params.extend((key, *settled_params))
        else:
            params.extend((key, *settled_params, *window, key, *settled_params))
    sql = (
        f"WITH hits AS ({' UNION ALL '.join(per_key for _ in keys)}) "
        "SELECT items.story_id FROM hits JOIN items ON items.id = hits.item_id "
        "GROUP BY items.story_id ORDER BY COUNT(*) DESC, items.story_id DESC LIMIT ?"
    )
    return [row[0] for row in store.db.conn.execute(sql, [*params, limit]).fetchall()]


def any_settled(store: Store, settled: tuple[int, str, int]) -> bool:
    """Whether any item with a vector is ``settled`` (as for :func:`candidate_stories`)."""
    through, first_at, first_id = settled
    row = store.db.conn.execute(
        "SELECT EXISTS (SELECT 1 FROM story_vectors WHERE item_id <= ?) "
        "OR EXISTS (SELECT 1 FROM story_vectors WHERE (at, item_id) < (?, ?))",
        [through, first_at, first_id],
    ).fetchone()
    return bool(row[0])


def members_of_stories(
    store: Store, story_ids: Sequence[int], limit: int
) -> dict[int, list[tuple[int, str]]]:
    """(item id, at) of the most recent ``limit`` members of each of ``story_ids`` that
    have a vector (decoded through :func:`vector_cache`), near-duplicates included."""
    found: dict[int, list[tuple[int, str]]] = {}
    for item_id, story_id, at in _latest_members(store, story_ids, limit, copies=True):
        found.setdefault(story_id, []).append((item_id, at))
    return found


def merge_stories(store: Store, into: int, absorbed: int, *, item_id: int, at: str) -> None:
    """Move every item of story ``absorbed`` into story ``into`` and record it."""
    conn = store.db.conn
    conn.execute("UPDATE items SET story_id = ? WHERE story_id = ?", [into, absorbed])
    conn.execute("UPDATE story_merges SET merged_into = ? WHERE merged_into = ?", [into, absorbed])
    conn.execute(
        "INSERT OR REPLACE INTO story_merges(story_id, merged_into, item_id, merged_at) "
        "VALUES (?, ?, ?, ?)",
        [absorbed, into, item_id, at],
    )


def resolve_story(store: Store, story_id: int) -> int:
    """The story a (possibly merged or split) story id belongs to now: the story of its
    first item, which follows every merge and split; for a deleted item, the recorded
    merge."""
    row = store.db.conn.execute("SELECT story_id FROM items WHERE id = ?", [story_id]).fetchone()
    if row is not None and row[0] is not None:
        return int(row[0])
    row = store.db.conn.execute(
        "SELECT merged_into FROM story_merges WHERE story_id = ?", [story_id]
    ).fetchone()
    return story_id if row is None else int(row[0])


def clear(store: Store) -> None:
    """Forget all story state (before a regroup); inside the caller's transaction."""
    for table in ("story_vectors", "story_df", "story_terms", "story_merges", "story_splits"):
        store.db.conn.execute(f"DELETE FROM {table}")
    forget_frequencies(store)  # story_encodings stay: they depend on the text alone


def clustered_through(store: Store) -> int:
    """The item id up to which every stored item has been clustered (migration 0023)."""
    return int(store.db.conn.execute("SELECT item_id FROM story_clustered").fetchone()[0])


def mark_clustered(store: Store, item_id: int) -> None:
    """Record that every item up to ``item_id`` has been clustered; the mark never moves
    back (two processes clustering at once)."""
    store.db.conn.execute("UPDATE story_clustered SET item_id = MAX(item_id, ?)", [item_id])


def items_after(store: Store, item_id: int) -> list[int]:
    """The items stored after item ``item_id`` (a pass's new items) that have a story
    vector, near-duplicates included, as an import clusters them."""
    rows = store.db.conn.execute(
        "SELECT item_id FROM story_vectors WHERE item_id > ? ORDER BY item_id", [item_id]
    ).fetchall()
    return [int(row[0]) for row in rows]


def parts(store: Store, item_ids: Sequence[int], size: int) -> list[list[tuple[int, str | None]]]:
    """``item_ids`` (those with a story vector), as (item id, time: None undated) in time
    order, undated first, cut into parts of ``size``."""
    rows = store.db.conn.execute(
        "SELECT item_id, at FROM story_vectors WHERE item_id IN (SELECT value FROM json_each(?)) "
        "ORDER BY at, item_id",
        [json.dumps(list(item_ids))],
    ).fetchall()
    return [
        [(item_id, at or None) for item_id, at in rows[start : start + size]]
        for start in range(0, len(rows), size)
    ]


@dataclass(frozen=True, slots=True)
class Pending:
    """What :func:`pending` found."""

    parts: list[list[tuple[int, str | None]]]
    through: int
    """The clustering mark they come after."""
    last: int
    """The item id the mark moves to once they are clustered."""


def pending(store: Store, size: int) -> Pending:
    """The items no clustering has taken yet (stored after the mark of migration 0023:
    a pass's, an import's, a daemon window's, or one that was interrupted) as
    :func:`parts` of ``size``, and the item id the mark moves to once they are clustered
    (:func:`mark_clustered`)."""
    last = store.last_item_id()
    through = clustered_through(store)
    return Pending(parts(store, items_after(store, through), size), through, last)


class _Frequencies:
    """Document frequencies read or written through one Store, valid while no other
    connection has committed (``PRAGMA data_version``)."""

    def __init__(self) -> None:
        from watcher.story_vectors import FrequencyTable  # numpy: not for every command

        self.df = FrequencyTable()
        self.version: int | None = None
        self.loaded: set[int] = set()
        """Items whose every key is in ``df`` (:func:`member_frequencies`)."""
        self.pending: Counter[int] = Counter()
        """Counts not yet written to ``story_df`` (:func:`flush_frequencies`): added to
        what the table says of a key read meanwhile."""


_frequencies: weakref.WeakKeyDictionary[Store, _Frequencies] = weakref.WeakKeyDictionary()
FREQUENCIES_CACHED = 200_000


def cached_frequencies(store: Store, keys: Iterable[int]) -> FrequencyTable:
    """:func:`document_frequencies` of ``keys`` (and of :data:`DOCUMENTS_KEY`) from memory
    where they still hold; the returned dict is the cache itself: read it, never write it."""
    cache = _frequencies.get(store)
    if cache is None:
        cache = _frequencies[store] = _Frequencies()
    version = int(store.db.conn.execute("PRAGMA data_version").fetchone()[0])
    if version != cache.version or len(cache.df) > FREQUENCIES_CACHED:
        cache.df.clear()
        cache.loaded.clear()
        cache.version = version
    missing = cache.df.missing(keys)
    if DOCUMENTS_KEY not in cache.df and DOCUMENTS_KEY not in missing:
        missing.append(DOCUMENTS_KEY)
    if missing:
        found, documents = document_frequencies(store, missing)
        counts = dict.fromkeys(missing, 0)
        counts.update(found)
        if DOCUMENTS_KEY in missing:
            counts[DOCUMENTS_KEY] = documents
        if cache.pending:
            for key in missing:
                counts[key] += cache.pending.get(key, 0)
        cache.df.set(counts)
    return cache.df


def member_frequencies(store: Store, members: Iterable[tuple[int, StoryVector]]) -> FrequencyTable:
    """:func:`cached_frequencies` of the keys of stored items' vectors ((item id, vector)
    pairs): the keys of an item already read since the cache was last emptied are not
    looked at again (recent stories' members are compared item after item)."""
    df = cached_frequencies(store, ())
    cache = _frequencies[store]
    fresh = [(item_id, vector) for item_id, vector in members if item_id not in cache.loaded]
    if not fresh:
        return df
    keys: set[int] = set()
    for _, vector in fresh:
        keys.update(vector.keys.tolist())
    df = cached_frequencies(store, keys)
    cache.loaded.update(item_id for item_id, _ in fresh)
    return df


def counted(store: Store, keys: Sequence[int], *, documents: int) -> None:
    """Count ``documents`` more vectors, with ``keys`` (theirs laid end to end), in the
    cached frequencies and in those :func:`flush_frequencies` writes."""
    cache = _frequencies.get(store)
    if cache is None:
        cache = _frequencies[store] = _Frequencies()
    counts = [*keys, *(DOCUMENTS_KEY,) * documents]
    cache.df.add(counts)
    cache.pending.update(counts)  # Counter: counted in C


def flush_frequencies(store: Store) -> None:
    """Write the counts :func:`counted` kept pending into ``story_df``, one row per key
    (a batch of one topic shares most keys); inside the caller's transaction."""
    cache = _frequencies.get(store)
    if cache is None or not cache.pending:
        return
    store.db.conn.executemany(
        "INSERT INTO story_df(key, df) VALUES (?, ?) "
        "ON CONFLICT(key) DO UPDATE SET df = df + excluded.df",
        list(cache.pending.items()),
    )
    cache.pending = Counter()


def forget_frequencies(store: Store) -> None:
    """Drop the caches of ``store`` (after a rolled-back transaction, or a regroup)."""
    _frequencies.pop(store, None)
    _vectors.pop(store, None)


_vectors: weakref.WeakKeyDictionary[Store, dict[int, StoryVector]] = weakref.WeakKeyDictionary()
VECTORS_CACHED = 20_000
"""Decoded story vectors kept per Store (recent stories' members are clustered again and
again, batch after batch)."""


def vector_cache(store: Store) -> dict[int, StoryVector]:
    """Decoded vectors by item id, kept for ``store`` (item vectors change only in a
    regroup, which drops the cache); the caller evicts past :data:`VECTORS_CACHED`."""
    cache = _vectors.get(store)
    if cache is None:
        cache = _vectors[store] = {}
    return cache


def current_stories(store: Store, story_ids: Iterable[int]) -> dict[int, int]:
    """The story each of ``story_ids`` belongs to now: a story id is its first item's id,
    and that item's ``story_id`` follows every merge and split."""
    rows = store.db.conn.execute(
        "SELECT id, story_id FROM items WHERE id IN (SELECT value FROM json_each(?))",
        [json.dumps(sorted(set(story_ids)))],
    ).fetchall()
    return {int(item_id): int(story_id) for item_id, story_id in rows if story_id is not None}


STORIES_PER_QUERY = 100
"""Stories per compound SELECT in :func:`recent_members` (SQLite allows 500 terms)."""


def recent_members(
    store: Store, story_ids: Sequence[int], window: tuple[str, str] | None, limit: int
) -> list[tuple[int, int, str]]:
    """(item id, story id, time: '' undated) of at most ``limit`` most recent members of
    each story that have a vector, are no near-duplicate and fall inside ``window`` (undated
    items pass)."""
    return _latest_members(store, story_ids, limit, window=window, copies=False)


def _latest_members(
    store: Store,
    story_ids: Sequence[int],
    limit: int,
    *,
    window: tuple[str, str] | None = None,
    copies: bool,
) -> list[tuple[int, int, str]]:
    """(item id, story id, at) of the ``limit`` most recent members with a vector of each
    story, one indexed lookup per story in one compound query per
    :data:`STORIES_PER_QUERY` stories."""
    per_story = (
        "SELECT * FROM (SELECT items.id, items.story_id, story_vectors.at FROM items "
        "JOIN story_vectors ON story_vectors.item_id = items.id "
        "WHERE items.story_id = ?"
        + ("" if copies else " AND items.duplicate_of IS NULL")
        + (" AND (story_vectors.at BETWEEN ? AND ? OR story_vectors.at = '')" if window else "")
        + f" ORDER BY items.id DESC LIMIT {int(limit)})"
    )
    found: list[tuple[int, int, str]] = []
    for start in range(0, len(story_ids), STORIES_PER_QUERY):
        part = story_ids[start : start + STORIES_PER_QUERY]
        params: list[object] = []
        for story_id in part:
            params.append(story_id)
            if window is not None:
                params.extend(window)
        sql = " UNION ALL ".join(per_story for _ in part)
        found.extend(store.db.conn.execute(sql, params).fetchall())
    return found


def vectors_of(store: Store, item_ids: Sequence[int]) -> list[tuple[int, bytes]]:
    """(item id, vector bytes) of ``item_ids`` that have a vector."""
    return store.db.conn.execute(
        "SELECT item_id, vector FROM story_vectors "
        "WHERE item_id IN (SELECT value FROM json_each(?))",
        [json.dumps(list(item_ids))],
    ).fetchall()


def set_signals(store: Store, signal: str, scored: Sequence[tuple[float, int]]) -> None:
    """Record ``signal`` and the score as what put each (score, item id) item in its story."""
    store.db.conn.executemany(
        "UPDATE items SET dedupe_signal = ?, dedupe_score = ? WHERE id = ?",
        [(signal, score, item_id) for score, item_id in scored],
    )


def move_items(store: Store, moves: Sequence[tuple[int, int]]) -> None:
    """Put each (item id, story id) item, and its near-duplicates, into that story."""
    store.db.conn.executemany(
        "UPDATE items SET story_id = ? WHERE id = ? OR duplicate_of = ?",
        [(story_id, item_id, item_id) for item_id, story_id in moves],
    )


def record_split(
    store: Store, story_id: int, split_from: int, *, item_id: int | None, at: str
) -> None:
    """Record that story ``story_id`` (its first item's id) was split off ``split_from``; a
    story id that had been merged away lives again (its merge record goes)."""
    conn = store.db.conn
    conn.execute("DELETE FROM story_merges WHERE story_id = ?", [story_id])
    conn.execute(
        "INSERT OR REPLACE INTO story_splits(story_id, split_from, item_id, split_at) "
        "VALUES (?, ?, ?, ?)",
        [story_id, split_from, item_id, at],
    )


CYRILLIC_LANGUAGES = ("ru", "uk", "be", "bg", "sr", "mk", "kk", "ky", "tg", "mn", "ba", "tt")
"""Languages written in Cyrillic, by the code language detection gives."""


def scripts_seen(store: Store, *, since: str | None) -> frozenset[int]:
    """The scripts (:data:`~watcher.story_vectors.LATIN`, :data:`~watcher.story_vectors.
    CYRILLIC`) of the items first seen since ``since`` (None: of any stored item), by their
    detected language: whether a new item can meet a write-up in the other script.

    Each language stored is visited once through the index ``items_lang`` (the next
    language after the last, then its latest sighting), so the cost follows the number
    of languages, not of items."""
    from watcher.story_vectors import CYRILLIC, LATIN

    found: set[int] = set()
    rows = store.db.conn.execute(
        """
        WITH RECURSIVE languages(lang) AS (
            SELECT MIN(lang) FROM items
            UNION ALL
            SELECT (SELECT MIN(lang) FROM items WHERE lang > languages.lang)
            FROM languages WHERE languages.lang IS NOT NULL
        )
        SELECT lang, (SELECT MAX(first_seen_at) FROM items WHERE items.lang = languages.lang)
        FROM languages WHERE lang IS NOT NULL
        """
    ).fetchall()
    for lang, latest in rows:
        if since is None or (latest is not None and latest >= since):
            found.add(CYRILLIC if lang in CYRILLIC_LANGUAGES else LATIN)
    return frozenset(found)
