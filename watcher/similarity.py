"""Near-duplicate and same-story maths for dedupe levels 2 and 3: fingerprints and decisions.

Pure functions only: no I/O, no database, no clock (``now`` is an argument). The store keeps
:func:`to_bytes` of each item's :class:`Fingerprint` in one BLOB column and its
:attr:`Fingerprint.band_keys` / :attr:`Fingerprint.story_keys` in an indexed key table; for a
new item it looks up the items sharing a key, wraps them as :class:`Candidate` and asks
:func:`decide`. See ``docs/dedupe.md`` for the signals, the defaults and their measured
precision and recall.

Signals (``docs/dedupe.md`` has their measured precision and the confidence to give them):

* near-duplicate: Jaccard of the word 4-gram ("shingle") sets of the bodies, exact up to
  :data:`MAX_SHINGLES` distinct shingles and a bottom-k sketch beyond; or *containment* (the
  smaller text almost entirely inside the larger) for updated versions that grew.
* same story: shared phrases (a low shingle Jaccard, from quotes and stock phrases of the same
  event), or overlap of the content-word sets (title and body, crudely stemmed); for
  title-only items, a rapidfuzz match of the headlines on the same day.
* candidate lookup: MinHash LSH band keys (datasketch's affine32 scheme) find copies; pairs of leading names and
  of headline words find write-ups of the same event. The store filters both by time.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Final, Literal

import numpy as np
import numpy.typing as npt
from rapidfuzz import fuzz

__all__ = [
    "DEFAULT_SETTINGS",
    "FORMAT_VERSION",
    "MAX_SHINGLES",
    "MAX_TERMS",
    "SHINGLE_SIZE",
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

FORMAT_VERSION: Final = 1
"""Bumped whenever :func:`fingerprint` would produce different shingles, terms, names or keys;
stored fingerprints of another version must be recomputed from the item text."""

SHINGLE_SIZE: Final = 4
"""Words per shingle. Four keeps chance overlap between unrelated texts near zero while one
changed word only breaks four shingles."""

MAX_SHINGLES: Final = 2048
"""Distinct shingles kept per item (the smallest hashes, a bottom-k sketch). Articles up to
about 2,000 words are compared exactly; longer ones through the sketch."""

MAX_TERMS: Final = 1024
"""Distinct content words kept per item (the smallest hashes)."""

STEM_LENGTH: Final = 6
"""Content words are cut to this many characters before comparison: a crude stemmer that
lets inflected forms match (Russian especially: ``Заречье``/``Заречья``)."""

NAMES_KEPT: Final = 12
"""Most frequent capitalised names kept per item."""

NAMES_FOR_KEYS: Final = 3
"""The most frequent names whose pairs become story keys (3 names: up to 3 keys)."""

TITLE_WORDS_FOR_KEYS: Final = 4
"""Headline stems whose pairs become story keys (4 stems: up to 6 keys)."""

_MIN_EXCERPT_SHINGLES: Final = 12  # below this, "contained in" can be a stock phrase

_MINHASH_SEED: Final = 20240917
_MAGIC: Final = b"WFP"
# magic, version, shingle_count, stored shingles, term_count, stored terms, perms, bands, stories
_HEADER = struct.Struct("<3sBIIIIHHH")

SignalName = Literal["shingles", "containment", "excerpt", "phrases", "terms", "title", "none"]
Confidence = Literal["high", "medium", "low", "none"]

# --------------------------------------------------------------------------------------------
# Settings and records


@dataclass(frozen=True, slots=True)
class DedupeSettings:
    """Thresholds and windows for :func:`decide`; ``bands``/``rows`` also shape the keys.

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


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """What the store keeps per item to compare it with later items (see :func:`to_bytes`)."""

    title: str
    """Normalised headline: case-folded words joined by single spaces, agency prefixes and
    a trailing ``- Outlet`` cut off."""
    words: int
    """Number of words in the body (title excluded)."""
    shingle_count: int
    """Distinct shingles in the body, before the :data:`MAX_SHINGLES` cap."""
    shingles: bytes
    """Sorted distinct 32-bit shingle hashes (little-endian uint32), at most MAX_SHINGLES."""
    terms: bytes
    """Sorted distinct 32-bit hashes of the content words of title and body (no function
    words, numbers or words under three letters; cut to :data:`STEM_LENGTH` characters), at
    most :data:`MAX_TERMS` (the smallest hashes)."""
    term_count: int
    """Distinct content words before the MAX_TERMS cap."""
    signature: bytes
    """MinHash signature (little-endian uint32 per permutation); band keys derive from it."""
    names: tuple[str, ...]
    """Most frequent capitalised names of the body, most frequent first."""
    band_keys: tuple[int, ...]
    """Signed 64-bit LSH band keys: near-duplicate candidates share at least one."""
    story_keys: tuple[int, ...]
    """Signed 64-bit keys from names and headline words: same-story candidates share one."""
    published_at: str | None = None
    """ISO 8601 UTC publication time, when known (used when the candidate gives none)."""

    def index_keys(self) -> tuple[int, ...]:
        """Band keys then story keys (disjoint by construction)."""
        return self.band_keys + self.story_keys


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
class Similarity:
    """How two fingerprints compare, signal by signal (all in 0..1)."""

    jaccard: float
    """Of the shingle (word 4-gram) sets."""
    containment: float
    """Share of the smaller shingle set found in the larger one."""
    terms: float
    """Jaccard of the content-word sets."""
    names: float
    """Shared names over the shorter name list (diagnostic only; :func:`decide` ignores it)."""
    title: float
    """Headline similarity (rapidfuzz token-sort ratio of stemmed content words)."""


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
# Text -> tokens

_WORD = re.compile(r"\w+")
# words starting with a letter that is not a lower-case Latin, Greek or Cyrillic one; caseless
# scripts (CJK, Arabic...) also match and are dropped by the isupper() check in _names
_CAPITALISED = re.compile(r"(?<!\w)[^\W\d_a-zß-öø-ÿα-ωа-яё]\w+")  # two letters or more
_SENTENCE_END = frozenset(".!?:;\"'«»“”„‘’()[]\n*#—–-")
_TITLE_PREFIX = re.compile(
    r"^\s*(?:(?:update|updated|corrected|refile|exclusive|breaking|обновлено|срочно|молния)"
    r"\s*\d*\s*[-:–—]\s*)+",
    re.IGNORECASE,
)
_TITLE_SUFFIX = re.compile(r"\s+[-|–—]\s+([^-|–—]{1,60})$")

_STOP_EN = """
a about above after again against all also am an and any are as at be because been before
being below between both but by can could did do does doing down during each even ever every
few for from further had has have having he her here hers herself him himself his how however
i if in into is it its itself just last later least less let like made make many may me might
more most much must my near never new next no nor not now of off often on once one only or
other our ours out over own per same she should since so some still such than that the their
them then there these they this those through to too two under until up upon us very was we
were what when where whether which while who whom whose why will with within without would
yet you your said says say told according after amid among around via mr mrs ms dr
monday tuesday wednesday thursday friday saturday sunday january february march april june
july august september october november december today yesterday tomorrow
"""
_STOP_RU = """
и в во не что он на я с со как а то все она так его но да ты к у же вы за бы по только ее её
мне было вот от меня еще ещё нет о из ему теперь когда даже ну вдруг ли если уже или ни быть
был него до вас нибудь опять уж вам ведь там потом себя ничего ей может они тут где есть надо
ней для мы тебя их чем была сам чтоб без будто чего раз тоже себе под будет ж тогда кто этот
того потому этого какой совсем ним здесь этом один почти мой тем чтобы нее сейчас были куда
зачем всех никогда можно при наконец два об другой хоть после над больше тот через эти нас про
всего них какая много разве три эту моя впрочем хорошо свою этой перед иногда лучше чуть том
нельзя такой им более всегда конечно всю между это также который которые которая которого
заявил сообщил сказал сказала отметил отметила сообщили года году год
понедельник вторник среда среду четверг пятница пятницу суббота субботу воскресенье
"""
STOPWORDS: Final = frozenset((_STOP_EN + _STOP_RU).split())
"""Function words (English and Russian), weekdays and months: left out of names, content-word
sets and headline keys."""


def _tokens(text: str) -> list[str]:
    """Case-folded words (Unicode letters and digits) in text order."""
    return _WORD.findall(text.casefold())


def normalize_title(title: str) -> str:
    """Case-folded headline words, without ``UPDATE 1-`` style prefixes or a ``- Outlet`` tail."""
    title = _TITLE_PREFIX.sub("", title.strip())
    tail = _TITLE_SUFFIX.search(title)
    if tail and len(_WORD.findall(tail.group(1))) <= 4 and len(_WORD.findall(title)) >= 8:
        title = title[: tail.start()]
    return " ".join(_tokens(title))


def _names(text: str) -> tuple[str, ...]:
    """The most frequent capitalised words seen at least once inside a sentence.

    A word seen capitalised only at the start of sentences ("Police", "However") is not a name.
    """
    counts: dict[str, int] = {}
    mid_sentence: set[str] = set()
    for match in _CAPITALISED.finditer(text):
        word = match.group()
        if not word[0].isupper():
            continue
        key = word.casefold()
        if key in STOPWORDS:
            continue
        counts[key] = counts.get(key, 0) + 1
        if key in mid_sentence:
            continue
        i = match.start() - 1
        while i >= 0 and text[i] != "\n" and text[i].isspace():
            i -= 1
        if i >= 0 and text[i] not in _SENTENCE_END:
            mid_sentence.add(key)
    # dicts keep first-seen order, and sorted() is stable: ties go to the earlier name
    keep = sorted((key for key in counts if key in mid_sentence), key=lambda key: -counts[key])
    return tuple(keep[:NAMES_KEPT])


# --------------------------------------------------------------------------------------------
# Hashing


_WORD_HASHES: dict[str, int] = {}
"""64-bit hash of each word seen lately: a plain dict, whose lookups cost a third of an
``lru_cache`` hit; emptied when it reaches :data:`_WORD_HASHES_MAX` words."""
_WORD_HASHES_MAX: Final = 200_000


def _blake_word(word: str) -> int:
    return int.from_bytes(hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest(), "little")


def _remember(words: Iterable[str]) -> None:
    """Hash the words not in :data:`_WORD_HASHES` yet."""
    new = set(words).difference(_WORD_HASHES)
    if not new:
        return
    if len(_WORD_HASHES) + len(new) > _WORD_HASHES_MAX:
        _WORD_HASHES.clear()
        new = set(words)
    _WORD_HASHES.update(zip(new, map(_blake_word, new), strict=True))


def _word_hash(word: str) -> int:
    value = _WORD_HASHES.get(word)
    if value is None:
        _remember((word,))
        value = _WORD_HASHES[word]
    return value


def _word_hashes(words: Sequence[str] | set[str]) -> npt.NDArray[np.uint64]:
    """:func:`_word_hash` of each word, in order."""
    _remember(words)
    return np.fromiter(map(_WORD_HASHES.__getitem__, words), dtype=np.uint64, count=len(words))


@lru_cache(maxsize=8)
def _key_hasher(kind: bytes) -> hashlib.blake2b:
    """An empty keyed BLAKE2b for ``kind``: copying it is cheaper than a new one each time."""
    return hashlib.blake2b(digest_size=8, person=kind.ljust(16, b"\0"))


def _key_of(kind: bytes, data: bytes) -> int:
    hasher = _key_hasher(kind).copy()
    hasher.update(data)
    return int.from_bytes(hasher.digest(), "little", signed=True)


def _key(kind: bytes, *parts: str | bytes) -> int:
    """A signed 64-bit key (fits an SQLite INTEGER) for one band or one story feature."""
    data = b"".join(
        (part.encode("utf-8") if isinstance(part, str) else part) + b"\x1f" for part in parts
    )
    return _key_of(kind, data)


def _sorted_unique(values: npt.NDArray[np.uint32]) -> npt.NDArray[np.uint32]:
    """``np.unique`` for a small array in a few operations (its general path costs more)."""
    values = np.sort(values)
    keep = np.empty(len(values), dtype=bool)
    keep[:1] = True
    np.not_equal(values[1:], values[:-1], out=keep[1:])
    return values[keep]


_M1: Final = np.uint64(0x9E3779B97F4A7C15)
_M2: Final = np.uint64(0xBF58476D1CE4E5B9)
_M3: Final = np.uint64(0x94D049BB133111EB)


def _shingle_hashes(words: Sequence[str]) -> npt.NDArray[np.uint32]:
    """Sorted distinct 32-bit hashes of the word ``SHINGLE_SIZE``-grams (one gram if shorter)."""
    if not words:
        return np.empty(0, dtype=np.uint32)
    hashes = _word_hashes(words)
    size = min(SHINGLE_SIZE, len(hashes))
    count = len(hashes) - size + 1
    combined = hashes[:count].copy()
    for offset in range(1, size):
        combined *= _M1
        combined += hashes[offset : offset + count]
    # splitmix64 finaliser so that every output bit depends on every input bit
    combined ^= combined >> np.uint64(30)
    combined *= _M2
    combined ^= combined >> np.uint64(27)
    combined *= _M3
    combined ^= combined >> np.uint64(31)
    combined >>= np.uint64(32)
    return _sorted_unique(combined.astype(np.uint32))


def _term_hashes(words: Sequence[str]) -> npt.NDArray[np.uint32]:
    """Sorted distinct 32-bit hashes of the content words."""
    stems = {
        word[:STEM_LENGTH]
        for word in set(words) - STOPWORDS
        if len(word) > 2 and not word.isdigit()
    }
    hashes = _word_hashes(stems)
    hashes >>= np.uint64(32)
    return _sorted_unique(hashes.astype(np.uint32))


@lru_cache(maxsize=8)
def _permutations(num_perm: int) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint32]]:
    """The permutation parameters (a, b) of datasketch's affine32 scheme for our seed.

    They are drawn as datasketch 2.0 draws them: from ``RandomState(seed)``, first every
    ``a`` as an odd 32-bit number, then every ``b``. Drawing them here keeps stored band
    keys valid whatever a later datasketch does, and spares each pool worker the import of
    datasketch and scipy (about 0.7 s of CPU and 30 MB); a test compares them with
    datasketch's own.
    """
    generator = np.random.RandomState(_MINHASH_SEED)
    a = generator.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = generator.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return a, b


_FMIX1: Final = np.uint32(0x85EBCA6B)
_FMIX2: Final = np.uint32(0xC2B2AE35)
_SIGNATURE_CHUNK: Final = 1024


def _signature(shingles: npt.NDArray[np.uint32], num_perm: int) -> npt.NDArray[np.uint32]:
    """datasketch's affine32 MinHash of the shingle hashes (``MinHash.update_batch`` with an
    identity hash), in a few numpy operations over the whole set.

    Each value is pre-mixed by the 32-bit MurmurHash3 finaliser, then permuted by
    ``a * h + b`` modulo 2**32 (uint32 arithmetic wraps); the signature keeps the minimum
    per permutation, all ones for an empty set. ``tests/test_similarity_batch.py`` checks
    it against datasketch itself.
    """
    a, b = _permutations(num_perm)
    signature = np.full(num_perm, 0xFFFFFFFF, dtype=np.uint32)
    for start in range(0, len(shingles), _SIGNATURE_CHUNK):
        hv = shingles[start : start + _SIGNATURE_CHUNK].astype(np.uint32)
        hv ^= hv >> np.uint32(16)
        hv *= _FMIX1
        hv ^= hv >> np.uint32(13)
        hv *= _FMIX2
        hv ^= hv >> np.uint32(16)
        np.minimum(signature, (hv[:, None] * a + b).min(axis=0), out=signature)
    return signature


def band_keys(signature: bytes, bands: int, rows: int) -> tuple[int, ...]:
    """LSH band keys of a MinHash signature: one signed 64-bit key per band of ``rows`` values.

    Two items share the key of band ``i`` when their signatures agree on all ``rows`` values of
    that band, which happens with probability ``jaccard ** rows``.
    """
    if len(signature) < 4 * bands * rows:
        raise ValueError("signature too short for bands * rows")
    values = np.frombuffer(signature, dtype="<u4")
    if bool(np.all(values == np.uint32(0xFFFFFFFF))):
        return ()  # empty text: no shingles, nothing to be a copy of
    width = 4 * rows
    # the bytes _key(b"band", bytes([band, rows]), values) hashes, built directly
    return tuple(
        _key_of(
            b"band",
            bytes([band, rows, 0x1F]) + signature[band * width : (band + 1) * width] + b"\x1f",
        )
        for band in range(bands)
    )


def _stems(words: Iterable[str]) -> list[str]:
    """Content words cut to :data:`STEM_LENGTH` characters, function words dropped."""
    return [word[:STEM_LENGTH] for word in words if word not in STOPWORDS and len(word) > 1]


def _story_keys(title: str, names: Sequence[str]) -> tuple[int, ...]:
    """Keys shared by write-ups of one event: pairs of leading names and of headline words.

    Pairs rather than single words keep a key selective: ``putin`` alone is in thousands of
    items a week, ``kant|putin`` in few. The headline words paired are the
    :data:`TITLE_WORDS_FOR_KEYS` stems with the smallest hashes (a min-hash sample), so a
    reworded or reordered headline that keeps most words still shares a pair.
    """
    keys: list[int] = []
    top = sorted(set(_stems(names[:NAMES_FOR_KEYS])))
    keys.extend(_key(b"names", a, b) for a, b in itertools.combinations(top, 2))
    stems = sorted(set(_stems(title.split())), key=_word_hash)[:TITLE_WORDS_FOR_KEYS]
    keys.extend(_key(b"title", a, b) for a, b in itertools.combinations(sorted(stems), 2))
    return tuple(dict.fromkeys(keys))


# --------------------------------------------------------------------------------------------
# Fingerprints


def fingerprint(
    title: str,
    text: str,
    published_at: str | None,
    settings: DedupeSettings = DEFAULT_SETTINGS,
) -> Fingerprint:
    """Everything later comparisons need from one item (``published_at``: ISO 8601 UTC)."""
    text_words = _tokens(text)
    words = text_words if text_words else _tokens(title)
    shingles = _shingle_hashes(words)
    norm_title = normalize_title(title)
    terms = _term_hashes(norm_title.split() + text_words)
    signature = _signature(shingles, settings.num_perm).astype("<u4").tobytes()
    names = _names(text)
    return Fingerprint(
        title=norm_title,
        words=len(text_words),
        shingle_count=len(shingles),
        shingles=shingles[:MAX_SHINGLES].astype("<u4").tobytes(),
        terms=terms[:MAX_TERMS].astype("<u4").tobytes(),
        term_count=len(terms),
        signature=signature,
        names=names,
        band_keys=band_keys(signature, settings.bands, settings.rows),
        story_keys=_story_keys(norm_title, names),
        published_at=published_at,
    )


def to_bytes(fp: Fingerprint) -> bytes:
    """A compact, versioned byte form of ``fp`` for one BLOB column (see :func:`from_bytes`)."""
    meta = json.dumps(
        [fp.title, fp.words, list(fp.names), fp.published_at],
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode("utf-8")
    n_shingles = len(fp.shingles) // 4
    perms = len(fp.signature) // 4
    header = _HEADER.pack(
        _MAGIC,
        FORMAT_VERSION,
        fp.shingle_count,
        n_shingles,
        fp.term_count,
        len(fp.terms) // 4,
        perms,
        len(fp.band_keys),
        len(fp.story_keys),
    )
    keys = struct.pack(f"<{len(fp.band_keys) + len(fp.story_keys)}q", *fp.index_keys())
    return header + fp.shingles + fp.terms + fp.signature + keys + meta


def from_bytes(data: bytes) -> Fingerprint:
    """The fingerprint :func:`to_bytes` wrote; ``ValueError`` for another format or version."""
    if len(data) < _HEADER.size:
        raise ValueError("not a watcher fingerprint: too short")
    (magic, version, count, n_shingles, term_count, n_terms, perms, n_bands, n_stories) = (
        _HEADER.unpack_from(data)
    )
    if magic != _MAGIC:
        raise ValueError("not a watcher fingerprint: bad magic")
    if version != FORMAT_VERSION:
        raise ValueError(f"fingerprint format {version} is not {FORMAT_VERSION}: re-fingerprint")
    offset = _HEADER.size
    shingles = data[offset : offset + 4 * n_shingles]
    offset += 4 * n_shingles
    terms = data[offset : offset + 4 * n_terms]
    offset += 4 * n_terms
    signature = data[offset : offset + 4 * perms]
    offset += 4 * perms
    n_keys = n_bands + n_stories
    keys = struct.unpack_from(f"<{n_keys}q", data, offset)
    offset += 8 * n_keys
    try:
        title, words, names, published_at = json.loads(data[offset:].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError) as error:
        raise ValueError(f"corrupt fingerprint metadata: {error}") from None
    return Fingerprint(
        title=str(title),
        words=int(words),
        shingle_count=int(count),
        shingles=shingles,
        terms=terms,
        term_count=int(term_count),
        signature=signature,
        names=tuple(str(name) for name in names),
        band_keys=tuple(keys[:n_bands]),
        story_keys=tuple(keys[n_bands:]),
        published_at=None if published_at is None else str(published_at),
    )


# --------------------------------------------------------------------------------------------
# Comparison


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


def _names_similarity(a: Sequence[str], b: Sequence[str]) -> float:
    """Overlap of the two name lists relative to the shorter one (0 when either has < 2)."""
    if len(a) < 2 or len(b) < 2:
        return 0.0
    shared = len(set(a) & set(b))
    return shared / min(len(a), len(b))


@lru_cache(maxsize=4096)
def _title_stems(title: str) -> tuple[int, str]:
    """How many content-word stems a normalised headline has, and the stems joined."""
    stems = _stems(title.split())
    return len(stems), " ".join(stems)


def _title_similarity(a: str, b: str) -> float:
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
        names=_names_similarity(a.names, b.names),
        title=_title_similarity(a.title, b.title),
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


def _overlap_arrays(
    new: Fingerprint, others: Sequence[Fingerprint]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Shingle Jaccard, containment and term Jaccard of ``new`` with each of ``others``."""
    shingle_counts = np.fromiter((o.shingle_count for o in others), np.intp, len(others))
    term_counts = np.fromiter((o.term_count for o in others), np.intp, len(others))
    jaccards = _jaccard_many(
        new.shingles, new.shingle_count, [o.shingles for o in others], shingle_counts
    )
    terms = _jaccard_many(new.terms, new.term_count, [o.terms for o in others], term_counts)
    return jaccards, _containment_many(jaccards, new.shingle_count, shingle_counts), terms


def _overlaps(new: Fingerprint, others: Sequence[Fingerprint]) -> list[tuple[float, float, float]]:
    """(shingle Jaccard, containment, term Jaccard) of ``new`` with each of ``others``."""
    if not others:
        return []
    jaccards, containments, terms = _overlap_arrays(new, others)
    return list(zip(jaccards.tolist(), containments.tolist(), terms.tolist(), strict=True))


def compare_many(new: Fingerprint, others: Sequence[Fingerprint]) -> list[Similarity]:
    """``[compare(new, other) for other in others]``, the set overlaps computed in one go."""
    return [
        Similarity(
            jaccard=jaccard,
            containment=containment,
            terms=terms,
            names=_names_similarity(new.names, other.names),
            title=_title_similarity(new.title, other.title),
        )
        for other, (jaccard, containment, terms) in zip(others, _overlaps(new, others), strict=True)
    ]


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
        (jaccards >= settings.duplicate_threshold)
        | (containments >= settings.containment_threshold)
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
        names=_names_similarity(new.names, old.names),
        title=_title_similarity(new.title, old.title),
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
) -> Decision:
    """Near-duplicate group and story of ``new`` among ``candidates`` (earlier items).

    ``now`` stands in for the publication time of a new item that has none (pass the time it
    was first seen); a time that is unknown on either side passes every window. A
    near-duplicate joins the story of the item it copies (the most similar copy; the oldest on
    a tie). Otherwise the best story match within :attr:`DedupeSettings.story_window` gives
    the story: text matches (``phrases``/``terms``) rank above headline matches (``title``).
    Otherwise ``story_id`` is None: the store starts a new story.
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
    olds = [cand.fingerprint for cand, *_ in in_window]
    jaccards, containments, terms = _overlap_arrays(new, olds)
    for index in _worth_a_look(new, in_window, jaccards, containments, terms, settings):
        cand, gap, in_dup_window, in_story_window = in_window[index]
        old = olds[index]
        # the headline is only read for a short text near in time; the names never (the
        # winner's full Similarity is computed below)
        close = _near(gap, settings.title_window)
        short = new.words < settings.short_words or old.words < settings.short_words
        title = _title_similarity(new.title, old.title) if close and short else 0.0
        sim = Similarity(
            float(jaccards[index]), float(containments[index]), float(terms[index]), 0.0, title
        )
        signal = _is_duplicate(sim, new, old, settings) if in_dup_window else None
        if signal is not None:
            rank = (sim.jaccard, -cand.item_id)
            if best_dup is None or rank > best_dup[0]:
                best_dup = (rank, cand, sim, signal)
            continue
        if best_dup is not None or not in_story_window:
            continue
        signal = _story_signal(sim, new, old, close, settings)
        if signal is not None:
            score = sim.title if signal == "title" else 1.0 + sim.terms + sim.containment
            rank = (score, -cand.item_id)
            if best_story is None or rank > best_story[0]:
                best_story = (rank, cand, sim, signal)
    if best_dup is not None:
        _, cand, partial, signal = best_dup
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
