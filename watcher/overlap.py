"""How two fingerprints compare, signal by signal: shingle Jaccard and containment,
content-word Jaccard, shared names and headline similarity; one against many at once."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

import numpy as np
import numpy.typing as npt
from rapidfuzz import fuzz

from watcher.fingerprints import Fingerprint, stems


@dataclass(frozen=True, slots=True)
class Similarity:
    """How two fingerprints compare, signal by signal (all in 0..1)."""

    jaccard: float
    """Of the shingle (word 4-gram) sets."""
    containment: float
    """Share of the smaller shingle set found in the larger one."""
    terms: float
    """Jaccard of the content-word sets."""
    names: float
    """Shared names over the shorter name list (diagnostic only;
    :func:`watcher.similarity.decide` ignores it)."""
    title: float
    """Headline similarity (rapidfuzz token-sort ratio of stemmed content words)."""


def _array(blob: bytes) -> npt.NDArray[np.uint32]:
    return np.frombuffer(blob, dtype="<u4")


def _shared(sa: npt.NDArray[np.uint32], sb: npt.NDArray[np.uint32]) -> int:
    """How many values two sorted distinct arrays have in common (binary search, no copies)."""
    if len(sa) > len(sb):
        sa, sb = sb, sa
    positions = np.searchsorted(sb, sa)
    positions[positions == len(sb)] = 0
    return int(np.count_nonzero(sb[positions] == sa))


def _jaccard(
    sa: npt.NDArray[np.uint32], count_a: int, sb: npt.NDArray[np.uint32], count_b: int
) -> float:
    """Exact Jaccard of two hash sets, or the bottom-k estimate when either was capped."""
    if not len(sa) or not len(sb):
        return 0.0
    if len(sa) == count_a and len(sb) == count_b:
        shared = _shared(sa, sb)
        return shared / (len(sa) + len(sb) - shared)
    k = min(len(sa), len(sb))
    union_bottom = np.union1d(sa, sb)[:k]
    in_both = np.intersect1d(
        np.intersect1d(union_bottom, sa, assume_unique=True), sb, assume_unique=True
    )
    return in_both.size / k


def names_similarity(a: Sequence[str], b: Sequence[str]) -> float:
    """Overlap of the two name lists relative to the shorter one (0 when either has < 2)."""
    if len(a) < 2 or len(b) < 2:
        return 0.0
    shared = len(set(a) & set(b))
    return shared / min(len(a), len(b))


@lru_cache(maxsize=4096)
def _title_stems(title: str) -> tuple[int, str]:
    """How many content-word stems a normalised headline has, and the stems joined."""
    found = stems(title.split())
    return len(found), " ".join(found)


def title_similarity(a: str, b: str) -> float:
    """rapidfuzz token-sort similarity of the stemmed headline content words (0..1).

    Headlines with fewer than three content words must match almost letter for letter.
    """
    if not a or not b:
        return 0.0
    (count_a, stems_a), (count_b, stems_b) = _title_stems(a), _title_stems(b)
    if min(count_a, count_b) < 3:
        return float(fuzz.ratio(a, b)) / 100.0
    return float(fuzz.token_sort_ratio(stems_a, stems_b)) / 100.0


def _containment(jaccard: float, count_a: int, count_b: int) -> float:
    smaller = min(count_a, count_b)
    if smaller and jaccard:
        shared = jaccard * (count_a + count_b) / (1.0 + jaccard)
        return min(1.0, shared / smaller)
    return 0.0


def compare(a: Fingerprint, b: Fingerprint) -> Similarity:
    """Every signal between two fingerprints (symmetric)."""
    jaccard = _jaccard(_array(a.shingles), a.shingle_count, _array(b.shingles), b.shingle_count)
    return Similarity(
        jaccard=jaccard,
        containment=_containment(jaccard, a.shingle_count, b.shingle_count),
        terms=_jaccard(_array(a.terms), a.term_count, _array(b.terms), b.term_count),
        names=names_similarity(a.names, b.names),
        title=title_similarity(a.title, b.title),
    )


_BUCKET_BITS_SPARE: Final = 3
"""A bucket table has about 2**3 slots per hash it holds, so a bucket holds at most a few."""
_BUCKET_BITS_MAX: Final = 20


def _members(mine: npt.NDArray[np.uint32], values: npt.NDArray[np.uint32]) -> npt.NDArray[np.bool_]:
    """Which of ``values`` are in ``mine`` (sorted, non-empty).

    A bucket table instead of a binary search per value: the top bits of a hash name its
    bucket, ``first`` holds where each bucket starts in ``mine``, and a value is looked for
    in the ``run`` places from there (``run``: the fullest bucket, usually 2 or 3). Looking past
    the end of a bucket only meets other buckets' hashes, which never equal the value; the
    copies of the last hash appended keep the look inside the array.
    """
    bits = min(len(mine).bit_length() + _BUCKET_BITS_SPARE, _BUCKET_BITS_MAX)
    shift = 32 - bits
    counts = np.bincount(mine >> shift, minlength=1 << bits)
    first = np.zeros(len(counts) + 1, dtype=np.intp)
    np.cumsum(counts, out=first[1:])
    run = int(counts.max())
    padded = np.concatenate((mine, np.full(run, mine[-1], dtype=mine.dtype)))
    positions = first.take((values >> shift).astype(np.intp))
    found: npt.NDArray[np.bool_] = padded.take(positions) == values
    for _ in range(1, run):
        positions += 1
        found |= padded.take(positions) == values
    return found


def _shared_many(new: bytes, others: Sequence[bytes]) -> npt.NDArray[np.intp]:
    """For each of ``others``, how many hashes it has in common with ``new`` (all sorted and
    distinct): one pass of :func:`_members` over all of them at once instead of one per pair."""
    mine = _array(new)
    values = _array(b"".join(others))
    if not len(mine) or not len(values):
        return np.zeros(len(others), dtype=np.intp)
    hits = np.flatnonzero(_members(mine, values))
    ends = np.fromiter(
        itertools.accumulate(len(blob) >> 2 for blob in others), dtype=np.intp, count=len(others)
    )
    return np.bincount(np.searchsorted(ends, hits, side="right"), minlength=len(others))


def _jaccard_many(
    new: bytes, new_count: int, others: Sequence[bytes], counts: npt.NDArray[np.intp]
) -> npt.NDArray[np.float64]:
    """:func:`_jaccard` of ``new`` with each of ``others`` (hash sets, before-cap ``counts``),
    in the same float operations."""
    shared = _shared_many(new, others)
    size = len(new) >> 2
    sizes = np.fromiter((len(blob) >> 2 for blob in others), dtype=np.intp, count=len(others))
    result = np.zeros(len(others))
    if not size:
        return result
    exact = (sizes == counts) & (size == new_count) & (sizes > 0)
    np.divide(shared, size + sizes - shared, out=result, where=exact)
    for i in np.flatnonzero(~exact & (sizes > 0)).tolist():
        result[i] = _jaccard(_array(new), new_count, _array(others[i]), int(counts[i]))
    return result


def _containment_many(
    jaccard: npt.NDArray[np.float64], count: int, counts: npt.NDArray[np.intp]
) -> npt.NDArray[np.float64]:
    """:func:`_containment` of one shingle count with each of ``counts``, in the same float
    operations."""
    smaller = np.minimum(counts, count)
    shared = jaccard * (counts + count) / (1.0 + jaccard)
    result = np.zeros(len(counts))
    np.divide(shared, smaller, out=result, where=(smaller > 0) & (jaccard != 0.0))
    return np.minimum(result, 1.0)


def overlap_arrays(
    new: Fingerprint, others: Sequence[Fingerprint], *, terms: bool = True
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Shingle Jaccard, containment and term Jaccard of ``new`` with each of ``others``
    (``terms`` False: the term Jaccards left at 0)."""
    shingle_counts = np.fromiter((o.shingle_count for o in others), np.intp, len(others))
    jaccards = _jaccard_many(
        new.shingles, new.shingle_count, [o.shingles for o in others], shingle_counts
    )
    if not terms:
        return (
            jaccards,
            _containment_many(jaccards, new.shingle_count, shingle_counts),
            np.zeros(len(others)),
        )
    term_counts = np.fromiter((o.term_count for o in others), np.intp, len(others))
    terms_found = _jaccard_many(new.terms, new.term_count, [o.terms for o in others], term_counts)
    return jaccards, _containment_many(jaccards, new.shingle_count, shingle_counts), terms_found


def _overlaps(new: Fingerprint, others: Sequence[Fingerprint]) -> list[tuple[float, float, float]]:
    """(shingle Jaccard, containment, term Jaccard) of ``new`` with each of ``others``."""
    if not others:
        return []
    jaccards, containments, terms = overlap_arrays(new, others)
    return list(zip(jaccards.tolist(), containments.tolist(), terms.tolist(), strict=True))


def compare_many(new: Fingerprint, others: Sequence[Fingerprint]) -> list[Similarity]:
    """``[compare(new, other) for other in others]``, the set overlaps computed in one go."""
    return [
        Similarity(
            jaccard=jaccard,
            containment=containment,
            terms=terms,
            names=names_similarity(new.names, other.names),
            title=title_similarity(new.title, other.title),
        )
        for other, (jaccard, containment, terms) in zip(others, _overlaps(new, others), strict=True)
    ]
