"""Keeping new items' story vectors: the vector, its index terms and the document frequencies.

Each item's index terms are its highest-weighted keys under the frequencies of every item
kept before it. Ingest keeps a batch's items together (:class:`Keeping`): the vectors are
weighted all at once, each under the frequencies as they stood when it came, so the terms
are those item-by-item keeping would give, for a few numpy calls and three statements a
batch instead of a dozen calls and statements an item.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from watcher import story_vectors as sv
from watcher.store import Store
from watcher.store import stories as story_store
from watcher.story_vectors import StoryVector, to_bytes


@dataclass(frozen=True, slots=True)
class Kept:
    """One item's vector to keep. ``copy``: a near-duplicate, not counted in the frequencies
    (ten copies of one wire story would make its own words look common). ``blob``: the
    vector's bytes where the caller has them (from the pool worker). ``lead``: the bytes of
    its lead encoder vector, kept with it."""

    item_id: int
    vector: StoryVector
    at: str | None
    copy: bool = False
    blob: bytes | None = None
    lead: bytes | None = None


def running_index_terms(
    vectors: Sequence[StoryVector],
    counted: npt.NDArray[np.bool_],
    df: sv.FrequencyTable,
    documents: int,
    count: int,
) -> list[list[int]]:
    """:func:`~watcher.story_vectors.top_keys` of each of ``vectors`` kept one after
    another: each weighted under ``df`` and ``documents`` plus the earlier vectors that are
    ``counted``. ``df`` must hold every key of ``vectors``; the weights are the same floats
    as one vector at a time."""
    lengths = np.fromiter((len(vector) for vector in vectors), np.intp, len(vectors))
    if not lengths.sum():
        return [[] for _ in vectors]
    keys = np.concatenate([vector.keys for vector in vectors])
    item = np.repeat(np.arange(len(vectors)), lengths)
    # for each key of each vector, how many earlier counted vectors have it (a vector's
    # keys are distinct): a count along the runs of equal keys, in order of arrival
    order = np.lexsort((item, keys))
    adds = counted[item[order]].astype(np.intp)
    before = np.cumsum(adds) - adds
    starts = np.flatnonzero(np.r_[True, keys[order][1:] != keys[order][:-1]])
    runs = np.diff(np.r_[starts, len(order)])
    earlier = np.empty(len(keys), np.intp)
    earlier[order] = before - np.repeat(before[starts], runs)
    frequencies = df.lookup(keys) + earlier
    counted_before: npt.NDArray[np.intp] = np.cumsum(counted, dtype=np.intp) - counted
    totals = (counted_before + documents).astype(np.float64)
    weights = np.concatenate([vector.counts for vector in vectors]) * sv.idf(
        frequencies, totals[item]
    )
    ranked = np.lexsort((-weights, item))  # by vector, then weight; ties in key order
    firsts = np.r_[0, np.cumsum(lengths)[:-1]]
    rank = np.arange(len(ranked)) - np.repeat(firsts, lengths)
    chosen = ranked[rank < count].tolist()
    top = keys.tolist()
    terms: list[list[int]] = [[] for _ in vectors]
    for place, number in zip(chosen, item[chosen].tolist(), strict=True):
        terms[number].append(top[place])
    return terms


def keep_vectors(store: Store, kept: Sequence[Kept]) -> dict[int, list[int]]:
    """Keep ``kept`` in this order, with index terms (returned by item id) and frequencies.
    The frequencies are counted in memory and written by
    :func:`~watcher.store.stories.flush_frequencies` before the transaction ends."""
    if not kept:
        return {}
    vectors = [entry.vector for entry in kept]
    every_key: set[int] = set()
    for vector in vectors:
        every_key.update(vector.keys.tolist())
    df = story_store.cached_frequencies(store, every_key)
    documents = df[story_store.DOCUMENTS_KEY] + 1
    counted = np.fromiter((not entry.copy for entry in kept), np.bool_, len(kept))
    terms = running_index_terms(vectors, counted, df, documents, sv.INDEX_TERMS)
    story_store.save_vectors(
        store,
        [
            (entry.item_id, entry.at, to_bytes(entry.vector) if entry.blob is None else entry.blob)
            for entry in kept
        ],
        [(entry.item_id, entry.at, index) for entry, index in zip(kept, terms, strict=True)],
    )
    counted_keys = [
        entry.vector.keys for entry, counts in zip(kept, counted.tolist(), strict=True) if counts
    ]
    if counted_keys:
        story_store.counted(
            store, np.concatenate(counted_keys).tolist(), documents=len(counted_keys)
        )
    leads = [
        (entry.item_id, entry.vector.script, entry.at, entry.lead)
        for entry in kept
        if entry.lead is not None
    ]
    if leads:
        story_store.save_leads(store, leads)
    return {entry.item_id: index for entry, index in zip(kept, terms, strict=True)}


class Keeping:
    """A batch's vectors waiting to be kept together (:func:`keep_vectors`). Whatever reads
    the story tables or the frequencies of the kept items (matching an item with the
    stored stories, the batch's clustering) must :meth:`flush` first."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.waiting: list[Kept] = []
        self.uncounted = 0
        """Vectors waiting that the frequencies will count (no near-duplicates)."""
        self.terms: dict[int, list[int]] = {}
        """Index terms of the items kept so far, by item id."""

    def add(self, entry: Kept) -> None:
        self.waiting.append(entry)
        self.uncounted += not entry.copy

    def flush(self) -> None:
        if self.waiting:
            self.terms.update(keep_vectors(self.store, self.waiting))
            self.waiting = []
            self.uncounted = 0
