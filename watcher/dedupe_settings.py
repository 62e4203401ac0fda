"""The thresholds and windows of dedupe levels 2 and 3 (the ``[dedupe]`` config section).

See ``docs/dedupe.md`` for every default and the precision and recall measured with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from watcher.config import DedupeConfig


@dataclass(frozen=True, slots=True)
class DedupeSettings:
    """Thresholds and windows for :func:`watcher.similarity.decide`; ``bands``/``rows`` also
    shape the keys (:func:`watcher.fingerprints.fingerprint`).

    Durations are in seconds, like the rest of the configuration. ``docs/dedupe.md`` explains
    every default and the precision/recall measured with it.
    """

    bands: int = 22
    """LSH bands (one key each). With ``rows=3`` an item with shingle Jaccard 0.45 to a stored
    item shares at least one band key with probability 0.88 (0.5: 0.95, 0.6: 0.995), at 0.3
    with 0.45, at 0.05 with 0.003."""
    rows: int = 3
    """MinHash values per band; ``bands * rows`` is the number of permutations (66)."""
    duplicate_threshold: float = 0.45
    """Shingle Jaccard at or above which two texts are near-duplicates."""
    containment_threshold: float = 0.8
    """Share of the smaller text's shingles found in the larger one. Enough for the same story
    (an excerpt or teaser); also a near-duplicate ..."""
    containment_min_jaccard: float = 0.3
    """... as long as the Jaccard is at least this (the larger text is at most ~3x longer)."""
    duplicate_window: float | None = 30 * 86400.0
    """Near-duplicates are looked for within this many seconds; ``None``: the whole corpus.
    Thirty days keeps a reused template text (next year's edition of an annual event) from
    being filed as a copy of last year's."""
    story_window: float = 3 * 86400.0
    """Seconds between two items (published, else first seen) for them to share a story."""
    phrase_threshold: float = 0.025
    """Shingle Jaccard at or above which two texts in the story window are one story ..."""
    phrase_min_terms: float = 0.1
    """... if their content words overlap this much too (shared boilerplate alone is not)."""
    terms_threshold: float = 0.175
    """Content-word Jaccard at or above which two texts in the story window are one story."""
    title_threshold: float = 0.72
    """Headline similarity (0-1) at which a title-only item joins the story of another item ..."""
    title_window: float = 86400.0
    """... within this many seconds of each other."""
    short_words: int = 35
    """A body with fewer words than this is a title-only item (headline + a sentence or two)."""
    story_threshold: float = 0.3
    """Level 3 (:mod:`watcher.story_grouping`): the mean corpus-weighted similarity of a new
    item to a story's recent members at which it joins the story."""
    story_merge_threshold: float = 0.3
    """Two stories a new item matches both are merged when the mean similarity over all pairs
    of their members (the item with the first) reaches this."""
    story_names_share: float = 0.6
    """Weight of the names-and-figures cosine in the story similarity; the rest is the cosine
    of all content words."""
    story_lexical_fallback: bool = False
    """When the corpus-weighted comparison found no story at ``story_threshold``, the loose
    story signals of :func:`decide` (phrases, terms, title) still group the item. Off: they
    join two events of one kind (docs/dedupe.md). An ``excerpt`` always counts, and below
    ``MIN_DOCUMENTS`` stored vectors the lexical signals are all there is."""

    def __post_init__(self) -> None:
        if self.bands < 1 or self.rows < 1:
            raise ValueError("bands and rows must be positive")
        if self.bands * self.rows > 1024:
            raise ValueError("bands * rows must be at most 1024")
        for name in (
            "duplicate_threshold",
            "containment_threshold",
            "containment_min_jaccard",
            "phrase_threshold",
            "phrase_min_terms",
            "terms_threshold",
            "title_threshold",
            "story_threshold",
            "story_merge_threshold",
            "story_names_share",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value!r}")
        for name in ("story_window", "title_window"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.duplicate_window is not None and self.duplicate_window < 0:
            raise ValueError("duplicate_window must not be negative")

    @property
    def num_perm(self) -> int:
        """MinHash permutations: ``bands * rows``."""
        return self.bands * self.rows


DEFAULT_SETTINGS: Final = DedupeSettings()


def from_config(config: DedupeConfig) -> DedupeSettings:
    """The similarity settings the ``[dedupe]`` config section asks for."""
    return DedupeSettings(**config.model_dump())
