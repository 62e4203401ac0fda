"""Near-duplicate and same-story decisions for dedupe levels 2 and 3.

Pure functions only: no I/O, no database, no clock (``now`` is an argument). Three stages,
one module each: :mod:`watcher.fingerprints` turns an item's text into the
:class:`Fingerprint` the store keeps (and its band and story keys, which the store indexes);
:mod:`watcher.overlap` compares two fingerprints signal by signal; this module takes a new
item's fingerprint and the stored items sharing a key with it (:class:`Candidate`) and
:func:`decide` says whether it is a copy and which story it joins. The public names of the
other two (and :class:`~watcher.dedupe_settings.DedupeSettings`) are re-exported here.

Signals (``docs/dedupe.md`` has their measured precision and the confidence to give them):

* near-duplicate: Jaccard of the word 4-gram ("shingle") sets of the bodies, exact up to
  :data:`MAX_SHINGLES` distinct shingles and a bottom-k sketch beyond; or *containment* (the
  smaller text almost entirely inside the larger) for updated versions that grew.
* same story: shared phrases (a low shingle Jaccard, from quotes and stock phrases of the same
  event), or overlap of the content-word sets (title and body, crudely stemmed); for
  title-only items, a rapidfuzz match of the headlines on the same day.
* candidate lookup: MinHash LSH band keys (datasketch's affine32 scheme) find copies; pairs
  of leading names and of headline words find write-ups of the same event. The store filters
  both by time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from watcher.dedupe_settings import DEFAULT_SETTINGS, DedupeSettings
from watcher.fingerprints import (
    FORMAT_VERSION,
    MAX_SHINGLES,
    MAX_TERMS,
    SHINGLE_SIZE,
    STOPWORDS,
    Fingerprint,
    band_keys,
    fingerprint,
    from_bytes,
    normalize_title,
    to_bytes,
)
from watcher.overlap import (
    Similarity,
    compare,
    compare_many,
    names_similarity,
    overlap_arrays,
    title_similarity,
)

__all__ = [
    "DEFAULT_SETTINGS",
    "FORMAT_VERSION",
    "MAX_SHINGLES",
    "MAX_TERMS",
    "SHINGLE_SIZE",
    "STOPWORDS",
    "Candidate",
    "Decision",
    "DedupeSettings",
    "Fingerprint",
    "Similarity",
    "band_keys",
    "compare",
    "compare_many",
    "decide",
    "fingerprint",
    "from_bytes",
    "normalize_title",
    "to_bytes",
]

_MIN_EXCERPT_SHINGLES: Final = 12  # below this, "contained in" can be a stock phrase

SignalName = Literal["shingles", "containment", "excerpt", "phrases", "terms", "title", "none"]
Confidence = Literal["high", "medium", "low", "none"]


@dataclass(frozen=True, slots=True)
class Candidate:
    """A stored item that shares a key with the new one."""

    item_id: int
    fingerprint: Fingerprint
    duplicate_of: int | None
    """The first-seen item of this candidate's near-duplicate group, or None if it is one."""
    story_id: int
    published_at: str | None = None
    """Published time of the stored item, or its first-seen time when it had none."""


@dataclass(frozen=True, slots=True)
class Decision:
    """What :func:`decide` concluded for a new item.

    ``duplicate_of`` is the first-seen item of the near-duplicate group (None: not a copy);
    ``story_id`` is the story to join (None: start a new story). ``signal`` names the evidence
    and ``confidence`` how far it can be trusted (see docs/dedupe.md).
    """

    duplicate_of: int | None
    story_id: int | None
    score: float = 0.0
    signal: SignalName = "none"
    confidence: Confidence = "none"
    matched_item: int | None = None
    reason: str = "no similar item"
    similarity: Similarity | None = field(default=None, compare=False)


# --------------------------------------------------------------------------------------------
# Decision


@lru_cache(maxsize=4096)
def _moment(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _within(a: datetime | None, b: datetime | None, window: float | None) -> bool:
    """True when ``a`` and ``b`` are at most ``window`` seconds apart or either is unknown."""
    return _near(_gap(a, b), window)


def _gap(a: datetime | None, b: datetime | None) -> float | None:
    """Seconds between ``a`` and ``b``; None when either is unknown."""
    if a is None or b is None:
        return None
    return abs((a - b).total_seconds())


def _near(gap: float | None, window: float | None) -> bool:
    """:func:`_within` for a :func:`_gap` already taken: one subtraction serves every window."""
    return window is None or gap is None or gap <= window


def _is_duplicate(
    sim: Similarity, new: Fingerprint, old: Fingerprint, settings: DedupeSettings
) -> SignalName | None:
    if new.shingle_count < SHINGLE_SIZE or old.shingle_count < SHINGLE_SIZE:
        return None  # too little text to call it a copy
    new_short, old_short = new.words < settings.short_words, old.words < settings.short_words
    if new_short != old_short:
        return None  # a headline with its lead sentence is not a copy of the whole article
    if sim.jaccard >= settings.duplicate_threshold:
        return "shingles"
    if (
        not new_short
        and sim.containment >= settings.containment_threshold
        and sim.jaccard >= settings.containment_min_jaccard
    ):
        return "containment"
    return None


def _worth_a_look(
    new: Fingerprint,
    in_window: Sequence[tuple[Candidate, float | None, bool, bool]],
    jaccards: npt.NDArray[np.float64],
    containments: npt.NDArray[np.float64],
    terms: npt.NDArray[np.float64],
    settings: DedupeSettings,
) -> list[int]:
    """Which candidates (indexes, in order) can give a signal; :func:`decide` looks at those
    only, and most fail. A text signal of :func:`_is_duplicate` or :func:`_story_signal`
    needs one of these overlaps at its threshold; ``title`` needs a short text near in time.
    """
    if not in_window:
        return []
    text = (
        _duplicate_mask(jaccards, containments, settings)
        | (terms >= settings.terms_threshold)
        | ((jaccards >= settings.phrase_threshold) & (terms >= settings.phrase_min_terms))
    ).tolist()
    new_short = new.words < settings.short_words
    return [
        index
        for index, ((cand, gap, _, _), by_text) in enumerate(zip(in_window, text, strict=True))
        if by_text
        or (
            (new_short or cand.fingerprint.words < settings.short_words)
            and _near(gap, settings.title_window)
        )
    ]


def _duplicate_mask(
    jaccards: npt.NDArray[np.float64],
    containments: npt.NDArray[np.float64],
    settings: DedupeSettings,
) -> npt.NDArray[np.bool_]:
    """Which candidates' overlaps can make a near-duplicate (:func:`_is_duplicate`)."""
    mask: npt.NDArray[np.bool_] = (jaccards >= settings.duplicate_threshold) | (
        containments >= settings.containment_threshold
    )
    return mask


def _story_signal(
    sim: Similarity, new: Fingerprint, old: Fingerprint, close: bool, settings: DedupeSettings
) -> SignalName | None:
    if (
        sim.containment >= settings.containment_threshold
        and min(new.shingle_count, old.shingle_count) >= _MIN_EXCERPT_SHINGLES
    ):
        return "excerpt"  # one text is (nearly) inside the other: a teaser of the same article
    if new.words >= settings.short_words and old.words >= settings.short_words:
        if sim.jaccard >= settings.phrase_threshold and sim.terms >= settings.phrase_min_terms:
            return "phrases"
        if sim.terms >= settings.terms_threshold:
            return "terms"
        return None  # two full texts: their headlines alone prove nothing
    if close and sim.title >= settings.title_threshold:
        return "title"
    return None


def _completed(partial: Similarity, new: Fingerprint, old: Fingerprint) -> Similarity:
    """``compare(new, old)`` for a pair whose set overlaps are in ``partial`` already (the
    batched overlaps equal the pairwise ones): only the names and headline are left."""
    return Similarity(
        jaccard=partial.jaccard,
        containment=partial.containment,
        terms=partial.terms,
        names=names_similarity(new.names, old.names),
        title=title_similarity(new.title, old.title),
    )


_CONFIDENCE: Final[dict[SignalName, Confidence]] = {
    "shingles": "high",
    "containment": "medium",
    "excerpt": "high",
    "phrases": "medium",
    "terms": "medium",
    "title": "low",
    "none": "none",
}


def decide(
    new: Fingerprint,
    candidates: Iterable[Candidate],
    settings: DedupeSettings = DEFAULT_SETTINGS,
    now: datetime | None = None,
    *,
    duplicates_only: bool = False,
) -> Decision:
    """Near-duplicate group and story of ``new`` among ``candidates`` (earlier items).

    ``now`` stands in for the publication time of a new item that has none (pass the time it
    was first seen); a time that is unknown on either side passes every window. A
    near-duplicate joins the story of the item it copies (the most similar copy; the oldest on
    a tie). Otherwise the best story match within :attr:`DedupeSettings.story_window` gives
    the story: text matches (``phrases``/``terms``) rank above headline matches (``title``).
    Otherwise ``story_id`` is None: the store starts a new story.

    ``duplicates_only``: the story is not asked for (the pass's clustering decides it,
    :func:`watcher.story_grouping.matching_deferred`): the content-word overlap and the
    story signals are not worked out, and the near-duplicate decision is the same.
    """
    when = _moment(new.published_at)
    if when is None and now is not None:
        when = now.astimezone(UTC) if now.tzinfo else now.replace(tzinfo=UTC)
    best_dup: tuple[tuple[float, int], Candidate, Similarity, SignalName] | None = None
    best_story: tuple[tuple[float, int], Candidate, Similarity, SignalName] | None = None
    in_window: list[tuple[Candidate, float | None, bool, bool]] = []
    for cand in candidates:
        gap = _gap(when, _moment(cand.published_at) or _moment(cand.fingerprint.published_at))
        in_dup_window = _near(gap, settings.duplicate_window)
        in_story_window = _near(gap, settings.story_window)
        if in_dup_window or in_story_window:
            in_window.append((cand, gap, in_dup_window, in_story_window))
    if duplicates_only:
        in_window = [entry for entry in in_window if entry[2]]
    olds = [cand.fingerprint for cand, *_ in in_window]
    jaccards, containments, terms = overlap_arrays(new, olds, terms=not duplicates_only)
    if duplicates_only:
        looked = np.flatnonzero(_duplicate_mask(jaccards, containments, settings)).tolist()
    else:
        looked = _worth_a_look(new, in_window, jaccards, containments, terms, settings)
    for index in looked:
        cand, gap, in_dup_window, in_story_window = in_window[index]
        old = olds[index]
        # the headline is only read for a short text near in time; the names never (the
        # winner's full Similarity is computed below)
        close = _near(gap, settings.title_window)
        short = new.words < settings.short_words or old.words < settings.short_words
        reads_title = close and short and not duplicates_only
        title = title_similarity(new.title, old.title) if reads_title else 0.0
        sim = Similarity(
            float(jaccards[index]), float(containments[index]), float(terms[index]), 0.0, title
        )
        signal = _is_duplicate(sim, new, old, settings) if in_dup_window else None
        if signal is not None:
            rank = (sim.jaccard, -cand.item_id)
            if best_dup is None or rank > best_dup[0]:
                best_dup = (rank, cand, sim, signal)
            continue
        if best_dup is not None or not in_story_window or duplicates_only:
            continue
        signal = _story_signal(sim, new, old, close, settings)
        if signal is not None:
            score = sim.title if signal == "title" else 1.0 + sim.terms + sim.containment
            rank = (score, -cand.item_id)
            if best_story is None or rank > best_story[0]:
                best_story = (rank, cand, sim, signal)
    if best_dup is not None:
        _, cand, partial, signal = best_dup
        if duplicates_only:  # its content-word overlap was not worked out
            sim = compare(new, cand.fingerprint)
        else:
            sim = _completed(partial, new, cand.fingerprint)
        return Decision(
            duplicate_of=cand.duplicate_of if cand.duplicate_of is not None else cand.item_id,
            story_id=cand.story_id,
            score=sim.jaccard,
            signal=signal,
            confidence=_CONFIDENCE[signal],
            matched_item=cand.item_id,
            reason=(
                f"near-duplicate of item {cand.item_id} ({signal}: jaccard "
                f"{sim.jaccard:.2f}, containment {sim.containment:.2f})"
            ),
            similarity=sim,
        )
    if best_story is not None:
        _, cand, partial, signal = best_story
        sim = _completed(partial, new, cand.fingerprint)
        if signal == "title":
            detail, score = f"headline similarity {sim.title:.2f}", sim.title
        elif signal == "excerpt":
            detail, score = f"containment {sim.containment:.2f}", sim.containment
        else:
            detail, score = f"shingle jaccard {sim.jaccard:.3f}, terms {sim.terms:.3f}", sim.terms
        return Decision(
            duplicate_of=None,
            story_id=cand.story_id,
            score=score,
            signal=signal,
            confidence=_CONFIDENCE[signal],
            matched_item=cand.item_id,
            reason=f"same story as item {cand.item_id} ({signal}: {detail})",
            similarity=sim,
        )
    return Decision(duplicate_of=None, story_id=None)
