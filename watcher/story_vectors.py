"""Story vectors: what dedupe level 3 compares, weighted by how much each word says.

Pure functions, no I/O. An item's vector holds the sublinear counts of its content words
and, apart, of its names and figures (capitalised words inside a sentence, numbers of two
digits or more); the headline and the first sentences (the lead, where news writing puts
who, what, where and when) count :data:`LEAD_WEIGHT` times. Every word is transliterated to a coarse Latin key first (Кант/Kant,
Жапаров/Japarov, Халвард/Halvard meet), and cut to :data:`STEM_LENGTH` characters. The
store keeps document frequencies of the keys as items arrive; similarity is the cosine of
the TF-IDF vectors, words and names weighted (``names_share``), so topic words every
item of a topic carries count for little. See docs/dedupe.md, "Stories".
"""

from __future__ import annotations

import hashlib
import math
import re
import struct
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import repeat
from typing import Final

import numpy as np
import numpy.typing as npt

from watcher.fingerprints import STOPWORDS
from watcher.lead_encoder import encoder

STEM_LENGTH: Final = 5
LEAD_WEIGHT: Final = 5
"""How many times a word of the headline or of the first :data:`LEAD_SENTENCES` sentences
counts (before the sublinear scaling). Two accounts of one event agree most in their lead;
two events of one kind (two earthquakes, two heists) differ there most, by name, place and
figure, while their bodies share the kind's vocabulary (ECB+ dev, docs/dedupe.md)."""
LEAD_SENTENCES: Final = 2
LEAD_WORDS: Final = 80
"""At most this many words of the body count as its lead (a body without full stops)."""
NAMES_SHARE: Final = 0.6
"""Default weight of the names-and-figures cosine in the similarity (the rest: all content
words); ``[dedupe] story_names_share``. Names and figures tell two events of one kind apart."""
JOIN_THRESHOLD: Final = 0.3
"""Default mean similarity to a story's members at which a new item joins it
(``[dedupe] story_threshold``; ECB+ dev sweep in docs/dedupe.md)."""
MERGE_THRESHOLD: Final = 0.3
"""Default mean similarity over all pairs of two stories' members (the item with the first)
at which two stories an item matches both are merged (``[dedupe] story_merge_threshold``)."""
MEMBERS_COMPARED: Final = 24
"""Most recent members of a story a new item is compared with."""
MIN_DOCUMENTS: Final = 50
"""Document frequencies from fewer items say little (in five texts about one air base,
every word is rare): below this many stored items only the lexical signals of
:func:`watcher.similarity.decide` group stories."""
MIN_KEYS: Final = 30
"""An item with fewer distinct keys (a headline with a sentence or two) is grouped by the
lexical rules of :func:`watcher.similarity.decide` only, and is no member a new item is
compared with: a few shared words weigh too much in so short a vector."""
CROSS_SCRIPT_SCALE: Final = 1.0
"""Factor on the names-and-figures cosine that is the similarity of two items in different
scripts (see :func:`similarities`)."""
ENCODER_WEIGHT: Final = 0.7
"""Weight of the lead encoder's rescaled cosine in the similarity of two items in
different scripts that both have a lead vector (the rest: their names-and-figures cosine);
round 4's offline figure on the invented halves, kept as a round number (docs/dedupe.md,
"Round 5")."""
ENCODER_LOW: Final = 0.25
ENCODER_HIGH: Final = 0.55
"""The encoder cosine is mapped linearly from [:data:`ENCODER_LOW`, :data:`ENCODER_HIGH`]
to [0, 1] (clipped): unrelated leads score up to about 0.4, the same event 0.2-0.55."""
LEAD_DIMENSIONS: Final = 512
INDEX_TERMS: Final = 12
"""Highest-weighted keys of an item kept in the candidate index."""

_FORMAT: Final = 3
_READABLE: Final = (1, 2, 3)
"""Format 1 has the same layout, without the lead weight; format 2 without the script byte
(read as :data:`LATIN`): still compared, until a regroup."""
_HEADER = struct.Struct("<BHH")
_SCRIPT = struct.Struct("<B")
LATIN: Final = 0
CYRILLIC: Final = 1
OTHER_SCRIPT: Final = {LATIN: CYRILLIC, CYRILLIC: LATIN}
"""The script most of an item's letters are in (:attr:`StoryVector.script`). Two items in
different scripts share no ordinary word, only names and figures, so their similarity is
the cosine of those alone (:func:`similarities`): on the scale of a same-language pair."""
_WORD = re.compile(r"\w+")
_CAPITAL = r"[^\W\d_a-zß-öø-ÿα-ωа-яё]"
_NAME = re.compile(
    # a capitalised word after a word (or a comma) and one space: not a sentence's first;
    # or a figure of two digits or more. Each alternative starts with the character it
    # needs and looks back from there, which lets the engine skip to candidates (twice as
    # fast as lookbehinds first, the same matches: tests/test_stories.py)
    rf"{_CAPITAL}(?<=[\w,;] {_CAPITAL})\w+|\d(?<![\w.,]\d)[\d.,]*\d(?!\w)"
)
_CYRILLIC = dict(
    zip(
        "абвгдеёжзийклмнопрстуфхцчшщъыьэюяі",
        "a b v g d e e zh z i i k l m n o p r s t u f h c ch sh sh - i - e u a i".replace(
            "-", ""
        ).split(" "),
        strict=True,
    )
)
_SOUNDS: Final = (
    ("dzh", "j"),
    ("zh", "j"),
    ("kh", "h"),
    ("ts", "c"),
    ("tz", "c"),
    ("ck", "k"),
    ("ph", "f"),
    ("w", "v"),
    ("x", "ks"),
    ("q", "k"),
    ("y", "i"),
    ("j", "i"),
)
_DOUBLED = re.compile(r"(.)\1+")
_EXONYMS: Final = {
    # coarse key of a Russian name (any case ending) -> that of its usual English form, for
    # names that transliteration does not bring together
    "moskv": "mosco",
    "rosia": "rusia",
    "rosi": "rusia",
    "rosie": "rusia",
    "rosiu": "rusia",
    "kitai": "china",
    "pekin": "being",  # Beijing: j -> i, doubled letters single
    "turci": "turke",
    "iapon": "iapan",
    "ispan": "spain",
    "sha": "usa",  # США
    "greci": "grece",
    "kishi": "chisi",
    "vengr": "hunga",
    "polsh": "polan",
    "nider": "nethe",
    "avstr": "austr",
    "shvec": "svede",
    "finli": "finla",
    "norve": "norva",
    "egipe": "egipt",
    "izrai": "israe",
    "evrop": "europ",
    "evros": "europ",
    "tramp": "trump",
    "maska": "musk",
    "mask": "musk",
    "baide": "biden",
    "makro": "macro",
    "sholc": "schol",
}
"""Russian names whose coarse key differs from that of their English form (exonyms, vowel
changes, acronyms); applied to keys of Cyrillic words only."""
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_TOKEN = re.compile(r"\S+")


@lru_cache(maxsize=65536)
def coarse_key(word: str) -> str:
    """A case-folded word as a coarse Latin key: transliterated, spelling variants folded,
    doubled letters single, cut to :data:`STEM_LENGTH`."""
    cyrillic = not word.isascii()
    if cyrillic:
        word = "".join(_CYRILLIC.get(char, char) for char in word)
    for old, new in _SOUNDS:
        word = word.replace(old, new)
    key = _DOUBLED.sub(r"\1", word)[:STEM_LENGTH]
    if cyrillic:
        key = _EXONYMS.get(key, key)
    return key


@lru_cache(maxsize=65536)
def _hash(kind: str, key: str) -> int:
    digest = hashlib.blake2b(f"{kind}{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True) | 1


@dataclass(frozen=True, slots=True)
class StoryVector:
    """Sorted feature keys (signed 64-bit, words and names in one key space) and their
    sublinear counts; ``names`` tells the names-and-figures keys apart."""

    keys: npt.NDArray[np.int64]
    counts: npt.NDArray[np.float32]
    names: npt.NDArray[np.bool_]
    script: int = LATIN
    """:data:`LATIN` or :data:`CYRILLIC`: the script of most of the item's letters."""
    lead: npt.NDArray[np.float32] | None = None
    """The unit-length multilingual encoder vector of the lead (:func:`lead_vectors`),
    where one was computed; kept apart from the bytes of :func:`to_bytes`."""

    def __len__(self) -> int:
        return len(self.keys)


def _figure(text: str) -> str:
    return text.replace(",", ".")


def _lead(title: str, text: str) -> str:
    """The headline and the first :data:`LEAD_SENTENCES` sentences of the body."""
    lead = " ".join(_SENTENCE_END.split(text.strip(), maxsplit=LEAD_SENTENCES)[:LEAD_SENTENCES])
    for number, word in enumerate(_TOKEN.finditer(lead), start=1):
        if number == LEAD_WORDS:
            lead = lead[: word.end()]
            break
    return f"{title}\n{lead}"


@lru_cache(maxsize=131072)
def _word_key(word: str) -> int:
    """The key of a case-folded word; 0 for one left out (a function word, a number, under
    three letters)."""
    if word in STOPWORDS or len(word) < 3 or word.isdigit():
        return 0
    return _hash("w", coarse_key(word))


@lru_cache(maxsize=65536)
def _name_key(name: str) -> int:
    """The key of a name or figure as it is written; 0 for a function word."""
    word = name.casefold()
    if word in STOPWORDS:
        return 0
    return _hash("n", _figure(word) if word[0].isdigit() else coarse_key(word))


def _count(text: str, weight: float, words: dict[int, float], names: dict[int, float]) -> None:
    """Add ``weight`` per occurrence of each word and each name of ``text`` (the words
    counted by ``Counter``, in C, one cached key per distinct word)."""
    for found, counts in (
        (Counter(map(_word_key, _WORD.findall(text.casefold()))), words),
        (Counter(map(_name_key, _NAME.findall(text))), names),
    ):
        found.pop(0, None)
        for key, times in found.items():
            counts[key] = counts.get(key, 0.0) + weight * times


_CYRILLIC_LETTER = re.compile(r"[а-яёА-ЯЁіІ]")


def script_of(text: str) -> int:
    """:data:`CYRILLIC` when most letters of ``text`` are Cyrillic, else :data:`LATIN`.

    A letter is what ``[^\\W\\d_]`` matches: alphanumeric (``\\w`` but the underscore)
    and no decimal digit (``\\d``), counted by ``str`` methods in C (the pattern built a
    list of one-letter strings: a third of a story vector's cost)."""
    sample = text[:2000]
    cyrillic = len(_CYRILLIC_LETTER.findall(sample))
    if not cyrillic:
        return LATIN
    letters = sum(map(str.isalnum, sample)) - sum(map(str.isdecimal, sample))
    return CYRILLIC if 2 * cyrillic > letters else LATIN


def story_vector(title: str, text: str) -> StoryVector:
    """The story vector of a headline and body: every word once, the lead's
    :data:`LEAD_WEIGHT` times in all."""
    words: dict[int, float] = {}
    names: dict[int, float] = {}
    _count(f"{title}\n{text}", 1.0, words, names)
    _count(_lead(title, text), LEAD_WEIGHT - 1.0, words, names)
    return _vector(words, names, script_of(f"{title}\n{text}"))


def lead_vectors(documents: Sequence[tuple[str, str]]) -> list[bytes]:
    """The encoder vectors of the leads (headline and :data:`LEAD_SENTENCES` sentences)
    of (title, text) pairs, in one batch: :data:`LEAD_DIMENSIONS` little-endian float16
    each (1 KB)."""
    if not documents:
        return []
    leads = [_lead(title, text) for title, text in documents]
    matrix = np.asarray(encoder().encode(leads), dtype=np.float32)
    return [row.astype("<f2").tobytes() for row in matrix]


def lead_from_bytes(data: bytes) -> npt.NDArray[np.float32] | None:
    """The unit-length vector :func:`lead_vectors` wrote (None: not one)."""
    if len(data) != 2 * LEAD_DIMENSIONS:
        return None
    lead = np.frombuffer(data, dtype="<f2").astype(np.float32)
    norm = float(np.linalg.norm(lead))
    return lead / norm if norm else None


def across(names: float, cosine: float | None) -> float:
    """The similarity of two items in different scripts: their names-and-figures cosine
    (times :data:`CROSS_SCRIPT_SCALE`) alone, or with both lead vectors (``cosine``) that
    mixed with the rescaled encoder cosine (:data:`ENCODER_WEIGHT`)."""
    if cosine is None:
        return min(1.0, CROSS_SCRIPT_SCALE * names)
    scaled = min(1.0, max(0.0, (cosine - ENCODER_LOW) / (ENCODER_HIGH - ENCODER_LOW)))
    return (1.0 - ENCODER_WEIGHT) * min(1.0, names) + ENCODER_WEIGHT * scaled


def vector_bytes(title: str, text: str) -> bytes:
    """:func:`to_bytes` of :func:`story_vector`: what a pool worker hands the writer."""
    return to_bytes(story_vector(title, text))


def _vector(
    words: Mapping[int, float], names: Mapping[int, float], script: int = LATIN
) -> StoryVector:
    keys = np.fromiter([*words, *names], dtype=np.int64, count=len(words) + len(names))
    counts = np.fromiter(
        (1.0 + math.log(value) for value in [*words.values(), *names.values()]),
        dtype=np.float32,
        count=len(keys),
    )
    flags = np.zeros(len(keys), dtype=np.bool_)
    flags[len(words) :] = True
    order = np.argsort(keys, kind="stable")
    return StoryVector(keys[order], counts[order], flags[order], script)


def to_bytes(vector: StoryVector) -> bytes:
    names = int(np.count_nonzero(vector.names))
    words = len(vector) - names
    order = np.argsort(vector.names, kind="stable")  # words first, then names
    return (
        _HEADER.pack(_FORMAT, words, names)
        + _SCRIPT.pack(vector.script)
        + vector.keys[order].astype("<i8").tobytes()
        + vector.counts[order].astype("<f4").tobytes()
    )


def from_bytes(data: bytes) -> StoryVector:
    """The vector :func:`to_bytes` wrote; ``ValueError`` for another format."""
    version, words, names = _HEADER.unpack_from(data)
    if version not in _READABLE:
        raise ValueError(f"story vector format {version} is not {_FORMAT}")
    size = words + names
    start = _HEADER.size
    script = LATIN
    if version >= 3:
        (script,) = _SCRIPT.unpack_from(data, start)
        start += _SCRIPT.size
    keys = np.frombuffer(data, dtype="<i8", count=size, offset=start).astype(np.int64)
    counts = np.frombuffer(data, dtype="<f4", count=size, offset=start + 8 * size)
    flags = np.zeros(size, dtype=np.bool_)
    flags[words:] = True
    order = np.argsort(keys, kind="stable")
    return StoryVector(keys[order], counts[order].astype(np.float32), flags[order], script)


def idf(
    df: npt.NDArray[np.float64], documents: int | npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Smoothed inverse document frequency (scikit-learn's ``smooth_idf``); ``documents``
    may be one count per frequency."""
    result: npt.NDArray[np.float64] = np.log((documents + 1.0) / (df + 1.0)) + 1.0
    return result


class FrequencyTable(Mapping[int, int]):
    """Document frequencies by key, kept in one numpy array: a vector's keys are resolved
    to their places in it once (:meth:`of_vector`), so weighting the same stored vectors
    item after item, while the counts keep changing, is one fancy index per vector
    instead of a dict lookup per key."""

    __slots__ = ("_memo", "_places", "_values")

    def __init__(self) -> None:
        self._places: dict[int, int] = {}
        self._values = np.zeros(1024, np.float64)  # place 0: every absent key, always 0
        self._memo: dict[int, tuple[StoryVector, npt.NDArray[np.intp]]] = {}

    def __getitem__(self, key: int) -> int:
        return int(self._values[self._places[key]])

    def __contains__(self, key: object) -> bool:
        return key in self._places

    def __iter__(self) -> Iterator[int]:
        return iter(self._places)

    def __len__(self) -> int:
        return len(self._places)

    def missing(self, keys: Iterable[int]) -> list[int]:
        """Those of ``keys`` the table does not hold."""
        return list(set(keys).difference(self._places))

    def _place(self, key: int) -> int:
        place = self._places.get(key)
        if place is None:
            place = self._places[key] = len(self._places) + 1
            if place >= len(self._values):
                self._values = np.concatenate([self._values, np.zeros_like(self._values)])
        return place

    def set(self, counts: Mapping[int, int]) -> None:
        """Hold ``counts`` (key: document frequency), replacing what it held of them."""
        for key, count in counts.items():
            place = self._place(key)  # may grow the array
            self._values[place] = count

    def add(self, keys: Iterable[int], amount: int = 1) -> None:
        """Count ``amount`` more for each of ``keys`` the table holds (the others are read
        from the store, counts included, when first needed)."""
        found = np.fromiter(map(self._places.get, keys, repeat(0)), np.intp)
        np.add.at(self._values, found[found > 0], amount)  # a key given twice counts twice

    def clear(self) -> None:
        self._places.clear()
        self._memo.clear()

    def lookup(self, keys: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        """The frequency of each of ``keys`` (absent: 0)."""
        found = map(self._places.get, keys.tolist(), repeat(0))
        return self._values[np.fromiter(found, np.intp, len(keys))]

    def of_vector(self, vector: StoryVector) -> npt.NDArray[np.float64]:
        """:meth:`lookup` of ``vector``'s keys, their places remembered once all are held."""
        return self._values[self._places_of(vector)]

    def of_vectors(self, vectors: Sequence[StoryVector]) -> npt.NDArray[np.float64]:
        """:meth:`of_vector` of each of ``vectors``, laid end to end: one fancy index."""
        places: npt.NDArray[np.intp] = np.concatenate([self._places_of(v) for v in vectors])
        return self._values[places]

    def _places_of(self, vector: StoryVector) -> npt.NDArray[np.intp]:
        memo = self._memo.get(id(vector))
        if memo is not None and memo[0] is vector:
            return memo[1]
        found = map(self._places.get, vector.keys.tolist(), repeat(0))
        places = np.fromiter(found, np.intp, len(vector))
        if places.all():
            if len(self._memo) >= MEMO_VECTORS:
                self._memo.clear()
            self._memo[id(vector)] = (vector, places)
        return places


MEMO_VECTORS: Final = 40_000
"""Vectors whose places a :class:`FrequencyTable` remembers (the store caches 20,000)."""


def frequencies(df: Mapping[int, int], keys: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """The document frequency of each of ``keys`` (absent: 0), as floats: one C-level
    ``dict.get`` per key (``map``), no Python frame per key."""
    if isinstance(df, FrequencyTable):
        return df.lookup(keys)
    found = map(df.get, keys.tolist(), repeat(0))
    return np.fromiter(found, np.float64, len(keys))


def _frequencies_of(df: Mapping[int, int], vector: StoryVector) -> npt.NDArray[np.float64]:
    if isinstance(df, FrequencyTable):
        return df.of_vector(vector)
    return frequencies(df, vector.keys)


Weighted = tuple[npt.NDArray[np.float64], float, float]
"""TF-IDF weights of a vector and the norms of its word and name parts."""


def _weighted(vector: StoryVector, df: Mapping[int, int], documents: int) -> Weighted:
    """TF-IDF weights of ``vector`` and the norms of its word and name parts."""
    weights = vector.counts * idf(_frequencies_of(df, vector), documents)
    squares = weights * weights
    names = float(squares[vector.names].sum())
    return weights, math.sqrt(float(squares.sum()) - names), math.sqrt(names)


def _segments(lengths: npt.NDArray[np.intp]) -> npt.NDArray[np.intp]:
    """For keys of vectors laid end to end, the number of the vector each key is from."""
    return np.repeat(np.arange(len(lengths)), lengths)


class Weights:
    """:func:`_weighted` of vectors under one set of document frequencies, each vector
    weighted once (a new item is compared with a story's members, then the members of two
    stories with each other): valid while ``df`` and ``documents`` do not change."""

    __slots__ = ("_memo", "df", "documents")

    def __init__(self, df: Mapping[int, int], documents: int) -> None:
        self.df = df
        self.documents = documents
        self._memo: dict[int, tuple[StoryVector, Weighted]] = {}

    def of(self, vector: StoryVector) -> Weighted:
        found = self._memo.get(id(vector))
        if found is not None and found[0] is vector:
            return found[1]
        weighted = _weighted(vector, self.df, self.documents)
        self._memo[id(vector)] = (vector, weighted)
        return weighted

    def many(self, vectors: Sequence[StoryVector]) -> list[Weighted]:
        """:meth:`of` each of ``vectors``, those not weighted yet all at once."""
        memo = self._memo
        fresh = [
            vector
            for vector in vectors
            if (found := memo.get(id(vector))) is None or found[0] is not vector
        ]
        if fresh:
            lengths = np.fromiter(map(len, fresh), np.intp, len(fresh))
            counts = np.concatenate([vector.counts for vector in fresh])
            names = np.concatenate([vector.names for vector in fresh])
            if isinstance(self.df, FrequencyTable):
                df = self.df.of_vectors(fresh)
            else:
                df = np.concatenate([frequencies(self.df, vector.keys) for vector in fresh])
            weights = counts * idf(df, self.documents)
            squares = weights * weights
            segment = _segments(lengths)
            name_sums = np.bincount(segment, squares * names, len(fresh))
            word_sums = np.bincount(segment, squares, len(fresh)) - name_sums
            ends = np.cumsum(lengths).tolist()
            parts = [weights[start:end] for start, end in zip([0, *ends], ends, strict=False)]
            word_norms = np.sqrt(np.maximum(word_sums, 0.0)).tolist()
            name_norms = np.sqrt(name_sums).tolist()
            for vector, part, word_norm, name_norm in zip(
                fresh, parts, word_norms, name_norms, strict=True
            ):
                memo[id(vector)] = (vector, (part, word_norm, name_norm))
        return [memo[id(vector)][1] for vector in vectors]


def similarities(
    new: StoryVector,
    others: Sequence[StoryVector],
    df: Mapping[int, int],
    documents: int,
    names_share: float = NAMES_SHARE,
    weights: Weights | None = None,
) -> list[float]:
    """Similarity of ``new`` with each of ``others``: the TF-IDF cosine of the content
    words and that of the names and figures, weighted (``names_share`` the names'); for
    two items in different scripts the names-and-figures cosine alone (their words cannot
    meet), times :data:`CROSS_SCRIPT_SCALE`, or mixed with their lead vectors'
    (:func:`across`). ``weights``: a :class:`Weights` of the same ``df`` and ``documents``
    shared between calls (each vector weighted once). All of ``others`` are compared at
    once: their keys laid end to end, the shared ones found by one ``searchsorted`` in
    ``new``'s sorted keys."""
    if weights is None:
        weights = Weights(df, documents)
    mine, word_norm, name_norm = weights.of(new)
    if not others:
        return []
    weighted = weights.many(others)
    lengths = np.fromiter(map(len, others), np.intp, len(others))
    keys = np.concatenate([other.keys for other in others])
    theirs = np.concatenate([weight for weight, _, _ in weighted])
    is_name = np.concatenate([other.names for other in others])
    if len(new):
        where = np.minimum(np.searchsorted(new.keys, keys), len(new) - 1)
        products = np.where(new.keys[where] == keys, mine[where] * theirs, 0.0)
    else:
        products = np.zeros(len(keys))
    segment = _segments(lengths)
    name_dots = np.bincount(segment, products * is_name, len(others))
    word_dots = np.bincount(segment, products, len(others)) - name_dots
    other_words = np.array([words for _, words, _ in weighted])
    other_names = np.array([names for _, _, names in weighted])
    with np.errstate(divide="ignore", invalid="ignore"):
        words = np.where(other_words > 0, word_dots / (word_norm * other_words), 0.0)
        names = np.where(other_names > 0, name_dots / (name_norm * other_names), 0.0)
    if not word_norm:
        words[:] = 0.0
    if not name_norm:
        names[:] = 0.0
    result: list[float] = ((1.0 - names_share) * words + names_share * names).tolist()
    for number, other in enumerate(others):
        if other.script != new.script:
            cosine = (
                None
                if new.lead is None or other.lead is None
                else float(np.dot(new.lead, other.lead))
            )
            result[number] = across(float(names[number]), cosine)
    return result


def top_keys(
    vector: StoryVector,
    df: Mapping[int, int],
    documents: int,
    count: int,
    weighted: Weighted | None = None,
) -> list[int]:
    """The ``count`` keys of ``vector`` with the highest TF-IDF weight: its index terms
    (``weighted``: its :func:`_weighted` under ``df`` and ``documents``, where known)."""
    weights, _, _ = _weighted(vector, df, documents) if weighted is None else weighted
    order = np.argsort(-weights, kind="stable")[:count]
    return [int(key) for key in vector.keys[order].tolist()]
