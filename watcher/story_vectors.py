"""Story vectors: what dedupe level 3 compares, weighted by how much each word says.

Pure functions, no I/O. An item's vector holds the sublinear counts of its content words
and, apart, of its names and figures (capitalised words inside a sentence, numbers of two
digits or more). Every word is transliterated to a coarse Latin key first (Кант/Kant,
Жапаров/Japarov, Халвард/Halvard meet), and cut to :data:`STEM_LENGTH` characters. The
store keeps document frequencies of the keys as items arrive; similarity is the cosine of
the TF-IDF vectors, words and names averaged (:data:`NAMES_SHARE`), so topic words every
item of a topic carries count for little. See docs/dedupe.md, "Stories".
"""

from __future__ import annotations

import hashlib
import math
import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

import numpy as np
import numpy.typing as npt

from watcher.similarity import STOPWORDS

STEM_LENGTH: Final = 5
NAMES_SHARE: Final = 0.5
"""Weight of the names-and-figures cosine in the similarity (the rest: all content words).
Names and figures tell two events of one kind apart (two earthquakes, two elections)."""
JOIN_THRESHOLD: Final = 0.3
"""Mean similarity to a story's members at which a new item joins it (ECB+ dev sweep)."""
MERGE_THRESHOLD: Final = 0.3
"""Two stories an item matches both (at :data:`JOIN_THRESHOLD`) merge when the mean
similarity over all pairs of their members (the item with the first) reaches this."""
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
LEXICAL_FALLBACK: Final = True
"""When no story passes :data:`JOIN_THRESHOLD`, a story match of
:func:`watcher.similarity.decide` (excerpt, shared phrases, terms, headline) still counts."""
INDEX_TERMS: Final = 12
"""Highest-weighted keys of an item kept in the candidate index."""

_FORMAT: Final = 1
_HEADER = struct.Struct("<BHH")
_WORD = re.compile(r"\w+")
_NAME = re.compile(r"(?<=[\w,;] )[^\W\d_a-zß-öø-ÿα-ωа-яё]\w+|(?<![\w.,])\d[\d.,]*\d(?![\w])")
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


@lru_cache(maxsize=65536)
def coarse_key(word: str) -> str:
    """A case-folded word as a coarse Latin key: transliterated, spelling variants folded,
    doubled letters single, cut to :data:`STEM_LENGTH`."""
    if not word.isascii():
        word = "".join(_CYRILLIC.get(char, char) for char in word)
    for old, new in _SOUNDS:
        word = word.replace(old, new)
    return _DOUBLED.sub(r"\1", word)[:STEM_LENGTH]


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

    def __len__(self) -> int:
        return len(self.keys)


def _figure(text: str) -> str:
    return text.replace(",", ".")


def story_vector(title: str, text: str) -> StoryVector:
    """The story vector of a headline and body."""
    counts: dict[int, float] = {}
    for word in _WORD.findall(f"{title}\n{text}".casefold()):
        if word in STOPWORDS or len(word) < 3 or word.isdigit():
            continue
        key = _hash("w", coarse_key(word))
        counts[key] = counts.get(key, 0.0) + 1.0
    names: dict[int, float] = {}
    for match in _NAME.finditer(f"{title}\n{text}"):
        word = match.group().casefold()
        if word in STOPWORDS:
            continue
        key = _hash("n", _figure(word) if word[0].isdigit() else coarse_key(word))
        names[key] = names.get(key, 0.0) + 1.0
    return _vector(counts, names)


def _vector(words: Mapping[int, float], names: Mapping[int, float]) -> StoryVector:
    keys = np.fromiter([*words, *names], dtype=np.int64, count=len(words) + len(names))
    counts = np.fromiter(
        (1.0 + math.log(value) for value in [*words.values(), *names.values()]),
        dtype=np.float32,
        count=len(keys),
    )
    flags = np.zeros(len(keys), dtype=np.bool_)
    flags[len(words) :] = True
    order = np.argsort(keys, kind="stable")
    return StoryVector(keys[order], counts[order], flags[order])


def to_bytes(vector: StoryVector) -> bytes:
    names = int(np.count_nonzero(vector.names))
    words = len(vector) - names
    order = np.argsort(vector.names, kind="stable")  # words first, then names
    return (
        _HEADER.pack(_FORMAT, words, names)
        + vector.keys[order].astype("<i8").tobytes()
        + vector.counts[order].astype("<f4").tobytes()
    )


def from_bytes(data: bytes) -> StoryVector:
    """The vector :func:`to_bytes` wrote; ``ValueError`` for another format."""
    version, words, names = _HEADER.unpack_from(data)
    if version != _FORMAT:
        raise ValueError(f"story vector format {version} is not {_FORMAT}")
    size = words + names
    keys = np.frombuffer(data, dtype="<i8", count=size, offset=_HEADER.size).astype(np.int64)
    counts = np.frombuffer(data, dtype="<f4", count=size, offset=_HEADER.size + 8 * size)
    flags = np.zeros(size, dtype=np.bool_)
    flags[words:] = True
    order = np.argsort(keys, kind="stable")
    return StoryVector(keys[order], counts[order].astype(np.float32), flags[order])


def idf(df: npt.NDArray[np.float64], documents: int) -> npt.NDArray[np.float64]:
    """Smoothed inverse document frequency (scikit-learn's ``smooth_idf``)."""
    result: npt.NDArray[np.float64] = np.log((documents + 1.0) / (df + 1.0)) + 1.0
    return result


def _weighted(
    vector: StoryVector, df: Mapping[int, int], documents: int
) -> tuple[npt.NDArray[np.float64], float, float]:
    """TF-IDF weights of ``vector`` and the norms of its word and name parts."""
    counts = np.fromiter((df.get(key, 0) for key in vector.keys.tolist()), np.float64, len(vector))
    weights = vector.counts * idf(counts, documents)
    squares = weights * weights
    names = float(squares[vector.names].sum())
    return weights, math.sqrt(float(squares.sum()) - names), math.sqrt(names)


def similarities(
    new: StoryVector, others: Sequence[StoryVector], df: Mapping[int, int], documents: int
) -> list[float]:
    """Similarity of ``new`` with each of ``others``: the TF-IDF cosine of the content
    words and that of the names and figures, averaged (:data:`NAMES_SHARE`)."""
    mine, word_norm, name_norm = _weighted(new, df, documents)
    result = []
    for other in others:
        theirs, other_words, other_names = _weighted(other, df, documents)
        _, here, there = np.intersect1d(
            new.keys, other.keys, assume_unique=True, return_indices=True
        )
        products = mine[here] * theirs[there]
        is_name = new.names[here]
        name_dot = float(products[is_name].sum())
        word_dot = float(products.sum()) - name_dot
        words = word_dot / (word_norm * other_words) if word_norm and other_words else 0.0
        names = name_dot / (name_norm * other_names) if name_norm and other_names else 0.0
        result.append((1.0 - NAMES_SHARE) * words + NAMES_SHARE * names)
    return result


def top_keys(vector: StoryVector, df: Mapping[int, int], documents: int, count: int) -> list[int]:
    """The ``count`` keys of ``vector`` with the highest TF-IDF weight: its index terms."""
    weights, _, _ = _weighted(vector, df, documents)
    order = np.argsort(-weights, kind="stable")[:count]
    return [int(key) for key in vector.keys[order].tolist()]
