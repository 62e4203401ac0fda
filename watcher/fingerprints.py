"""Fingerprints: what dedupe levels 2 and 3 keep of an item to compare it with later ones.

Pure functions only. An item's body becomes word 4-gram ("shingle") hashes, its content
words (crudely stemmed) become term hashes, its most frequent capitalised names are kept,
and a MinHash signature of the shingles gives the LSH band keys (datasketch's affine32
scheme) that find copies; pairs of leading names and of headline words give the story keys
that find write-ups of the same event. :func:`to_bytes` packs it all into one BLOB.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

import numpy as np
import numpy.typing as npt

from watcher.dedupe_settings import DEFAULT_SETTINGS, DedupeSettings

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

_MINHASH_SEED: Final = 20240917
_MAGIC: Final = b"WFP"
# magic, version, shingle_count, stored shingles, term_count, stored terms, perms, bands, stories
_HEADER = struct.Struct("<3sBIIIIHHH")


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


def stems(words: Iterable[str]) -> list[str]:
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
    top = sorted(set(stems(names[:NAMES_FOR_KEYS])))
    keys.extend(_key(b"names", a, b) for a, b in itertools.combinations(top, 2))
    headline = sorted(set(stems(title.split())), key=_word_hash)[:TITLE_WORDS_FOR_KEYS]
    keys.extend(_key(b"title", a, b) for a, b in itertools.combinations(sorted(headline), 2))
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
