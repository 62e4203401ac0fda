"""Automatic keyphrases: a fast YAKE (Campos et al., 2020), then filtered and merged."""

from __future__ import annotations

import math
import re
from bisect import bisect_left
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from itertools import accumulate, chain, compress, count, pairwise, repeat
from operator import add, and_, eq, floordiv, mod, mul, not_, or_, sub
from typing import Any, Final

from watcher.tagging.options import DEFAULT_OPTIONS, TaggingOptions
from watcher.tagging.text import (
    is_cyrillic,
    language_code,
    ru_stem,
    stopwords_for,
    strip_boilerplate,
    strip_possessive,
    truncate,
    wordset,
)

# Words that are never useful as a keyphrase on their own in news text.
_NEWS_FILLER: Final = wordset(
    """year years day days today yesterday week weeks month months time times people thing
    things way part issue issues number"""
)
_BOILERPLATE_WORDS: Final = frozenset({"click", "subscribe", "newsletter", "url"})
# English words that make a phrase a clause rather than a noun phrase, anywhere in it:
# auxiliaries and modals ("russia will station additional", "fraud case is thrown").
_EN_AUXILIARIES: Final = wordset(
    """is are was were be been being am has have had do does did will would shall should can
    could may might must"""
)
# The -s forms of verbs common in headlines that are not also plural nouns ("fda proposes",
# "move strengthens"), irregular past forms ("padawan lost"), and verb endings (-izes, -ifies): after the first word of a phrase
# they make it a clause. Forms that are also nouns ("talks", "plans", "cuts") are left.
_EN_VERB_FORMS: Final = wordset(
    """adds admits agrees allows announces appears approves argues asks becomes begins
    believes brings buys confirms considers continues decides declares defends denies
    describes dies earns expects finds gives goes grows includes joins keeps kills leaves
    lifts loses makes meets predicts prepares proposes receives rejects remains requires
    reveals says sees seeks sells sends soars spends suffers suggests takes tells tries
    urges warns withdraws strengthens weakens threatens worsens deepens widens tightens
    hardens softens broadens heightens lengthens shortens happens helps hopes faces boosts
    slams halts sparks pledges vows eyes mulls nears won lost held made took gave came went
    got grew fell sold bought paid met led kept told sent found brought began became ran
    stood struck wrote"""
)
_EN_VERB_ENDINGS: Final = ("izes", "ises", "ifies")
# Titles and abbreviations that neither start nor end a keyphrase ("president barack
# obama" gives "barack obama"; "Gen." and "Tenn." are not keyphrases).
_EN_TITLES: Final = wordset(
    """president gen rep sen gov lt col sgt capt maj adm cmdr jr sr st mt ft rev mr mrs ms dr
    prof calif tenn fla ill mass mich penn wash conn ariz colo ky md minn nev okla ore wis
    ala ark kan neb retired former"""
)
_NO_SPACE_LANGUAGES: Final = frozenset({"zh", "ja", "th", "ko", "lo", "km", "my", "bo"})

# Letter words (group 1), words with digits or underscores (2), sentence ends (3), phrase
# breaks (4). Group 2 words (numbers, "Su-25SM") never join a keyphrase.
_TOKEN = re.compile(
    r"([^\W\d_]+(?:['’][^\W\d_]+|[-‐‑][^\W\d_]+)*)(?!\w|[-‐‑'’]\w)"
    r"|(\w+(?:[-‐‑'’.,]\w+)*)"
    r"|([.!?…]+(?=[\s\"'”»)\]]|$)|\n)"
    r"|([,;:()\[\]{}\"“”«»„|/\\*#=+<>]|\s[-‐–—]\s|[–—])"
)
_TITLE_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")


def _en_singular(word: str) -> str:
    """A light English singular for merging variants (``bases`` -> ``base``)."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is", "ys")):
        return word[:-1]
    return word


def _fold(word: str) -> str:
    """Merge key of one lower-cased word: singular, spelling-neutral, Cyrillic stemmed."""
    word = word.replace("ё", "е")
    if is_cyrillic(word):
        return ru_stem(word)
    word = _en_singular(word)
    if word.endswith("ence"):
        word = word[:-4] + "ense"
    return word.replace("isation", "ization").replace("our", "or")


def _term_key(word: str, english: bool) -> str:
    """YAKE's term identity: lower case, a final "s" dropped in English."""
    lower = word.lower()
    return lower[:-1] if english and len(lower) > 3 and lower[-1] == "s" else lower


@dataclass(frozen=True, slots=True)
class _Words:
    """The words of a text as YAKE sees them, each numbered by its term.

    A term is a lower-case word, without a final "s" in English; terms are numbered in
    order of first occurrence. A segment is a run of words that one candidate phrase may
    span: it ends at a sentence end, at a number or punctuation, and after a word with an
    apostrophe.
    """

    lowers: list[str]
    capitalised: list[bool]
    terms: list[int]  # the term of each word
    keys: list[str]  # each term
    first_spellings: list[str]  # each term's first word, lower case ("this" for "thi")
    segments: list[int]  # the segment of each word
    sentences: list[int]  # the sentence of each word
    sentence_starts: list[int]  # the first word of each sentence, then len(lowers)


def _split_words(text: str, english: bool) -> _Words:
    """One regex pass over ``text``; numbers and codes break phrases without being words."""
    words: list[str] = []
    cuts: list[int] = []  # segment ends, besides sentence ends
    starts = [0]
    for word, other, end, _punct in _TOKEN.findall(text):
        if word:
            words.append(word)
        elif other or not end:
            cuts.append(len(words))
        elif len(words) > starts[-1]:
            starts.append(len(words))
    if len(words) > starts[-1]:
        starts.append(len(words))
    if "'" in text or "’" in text:
        for index, word in enumerate(words):
            if "'" in word or "’" in word:
                words[index] = strip_possessive(word)
                cuts.append(index + 1)
    lowers = list(map(str.lower, words))
    keys = [w[:-1] if w[-1] == "s" and len(w) > 3 else w for w in lowers] if english else lowers
    numbers = {key: number for number, key in enumerate(dict.fromkeys(keys))}
    first_spelling = dict(zip(reversed(keys), reversed(lowers), strict=True))
    ends = sorted({*cuts, *starts[1:]})
    return _Words(
        lowers,
        [w[0].isupper() for w in words],
        list(map(numbers.__getitem__, keys)),
        list(numbers),
        list(map(first_spelling.__getitem__, numbers)),
        _numbered_runs(ends),
        _numbered_runs(starts[1:]),
        starts,
    )


def _numbered_runs(ends: list[int]) -> list[int]:
    """0 for each item before ``ends[0]``, 1 up to ``ends[1]``, and so on."""
    lengths = map(sub, ends, [0, *ends])
    return list(chain.from_iterable(map(repeat, count(), lengths)))


class _Terms:
    """YAKE's figures for the terms of one text; a term's score is worked out when asked for.

    The arithmetic is YAKE's, in the same order, so that scores are bit for bit those of
    a plain loop over every term; the counting runs in C (``Counter``, ``map``,
    ``compress``).
    """

    def __init__(self, words: _Words, stop: list[bool], content_tfs: list[int]) -> None:
        ids = words.terms
        self.size = size = len(stop)
        self.stop = stop
        self.tf = list(Counter(ids).values())  # terms are numbered in order of first occurrence
        self._max_tf = max(self.tf)
        mean = sum(content_tfs) / len(content_tfs)
        squares = {c: (c - mean) ** 2 for c in set(content_tfs)}
        std = math.sqrt(sum(map(squares.__getitem__, content_tfs)) / len(content_tfs))
        self._frequency_norm = mean + std
        self._tf_case = _capitalised_counts(words)
        # the distinct sentences each term occurs in, ordered by term and sentence
        self._sentences = sentences = len(words.sentence_starts) - 1
        self._pairs = sorted(set(map(add, map(mul, ids, repeat(sentences)), words.sentences)))
        self._spread = list(Counter(map(floordiv, self._pairs, repeat(sentences))).values())
        self._offsets = list(accumulate(self._spread, initial=0))
        neighbours = list(map(eq, words.segments, words.segments[1:]))
        lefts = list(compress(ids, neighbours))
        rights = list(compress(ids[1:], neighbours))
        #: left * size + right -> how often term right directly follows term left
        self.edges = Counter(map(add, map(mul, lefts, repeat(size)), rights))
        self._out_degree = Counter(map(floordiv, self.edges, repeat(size)))
        self._in_degree = Counter(map(mod, self.edges, repeat(size)))
        self._out_weight = Counter(lefts)
        self._in_weight = Counter(rights)
        self._h: dict[int, float] = {}

    def h(self, term: int) -> float:
        """YAKE's score of a term that is not a stopword (lower is better)."""
        h = self._h.get(term)
        if h is None:
            h = self._h[term] = self._score(term)
        return h

    def _score(self, key: int) -> float:
        count = self.tf[key]
        ratio = count / self._max_tf
        in_weight, out_weight = self._in_weight, self._out_weight
        pwl = self._in_degree[key] / in_weight[key] if key in in_weight else 0.0
        pwr = self._out_degree[key] / out_weight[key] if key in out_weight else 0.0
        rel = (0.5 + pwl * ratio) + (0.5 + pwr * ratio)
        freq = count / self._frequency_norm
        spread = self._spread[key]
        case = self._tf_case.get(key, 0) / (1.0 + math.log(count))
        middle = self._offsets[key] + spread // 2
        pairs, sentences = self._pairs, self._sentences
        if spread % 2:
            median: float = pairs[middle] % sentences
        else:
            median = (pairs[middle - 1] % sentences + pairs[middle] % sentences) / 2
        position = math.log(math.log(3.0 + median))
        return position * rel / (case + freq / rel + spread / sentences / rel)


def _capitalised_counts(words: _Words) -> Counter[int]:
    """How often each term is capitalised other than first in its sentence.

    Headline-style capitalisation ("Russia To Reinforce Kant Air Base") does not count.
    """
    counts: Counter[int] = Counter()
    starts = words.sentence_starts
    capitalised = words.capitalised
    for start, end in pairwise(starts):
        capitals = sum(capitalised[start:end])
        if capitals and not (end - start >= 3 and capitals * 2 > end - start):
            counts.update(compress(words.terms[start + 1 : end], capitalised[start + 1 : end]))
    return counts


class _Level:
    """The valid runs of one length: within one segment, first and last word usable.

    Runs are coded as numbers in base (number of terms + 1), one digit per word, so that
    a run's two shorter parts are its code without its first or its last digit.
    """

    __slots__ = ("codes", "counts", "length", "valid")

    def __init__(
        self, codes: list[int], usable: list[bool], segments: list[int], length: int
    ) -> None:
        self.codes = codes
        self.length = length
        self.valid = list(
            map(
                and_,
                map(and_, usable, usable[length - 1 :]),
                map(eq, segments, segments[length - 1 :]),
            )
        )
        self.counts = Counter(compress(codes, self.valid))

    def first(self, code: int) -> int:
        """Where the run ``code`` first occurs validly."""
        index = self.codes.index(code)
        while not self.valid[index]:
            index = self.codes.index(code, index + 1)
        return index

    def repeated(self) -> list[tuple[int, int]]:
        """(code, count) of the runs found more than once."""
        ranked = self.counts.most_common()
        return ranked[: bisect_left(ranked, -1, key=lambda item: -item[1])]


def _phrases(words: _Words, stop: list[bool], max_words: int) -> list[tuple[int, int, int]]:
    """Candidate phrases that are not fragments of a longer one: (first word, words, count).

    A candidate is a run of at most ``max_words`` words within one segment that neither
    starts nor ends with a stopword and, if longer than two words, holds at most one
    stopword. It is a fragment when the same run with one more word on either side (up
    to ``max_words + 1`` words) occurs at least as often: "kant air" when every "kant
    air" is "kant air base". A longer run never occurs more often than its parts, so a
    run found once is a fragment exactly when that occurrence extends to a valid run,
    and only runs found more than once need their extensions counted.
    """
    ids, segments = words.terms, words.segments
    base = len(stop) + 1
    usable = list(map(not_, map(stop.__getitem__, ids)))
    digits = [term + 1 for term in ids]
    found: list[tuple[int, int, int]] = []
    level = _Level(digits, usable, segments, 1)
    for length in range(1, min(max_words, len(ids)) + 1):
        codes = list(map(add, map(mul, level.codes, repeat(base)), digits[length:]))
        longer = _Level(codes, usable, segments, length + 1)
        # once: the runs that extend neither way
        extends = map(or_, [*longer.valid, False], [False, *longer.valid])
        alone = compress(count(), map(and_, level.valid, map(not_, extends)))
        counts, level_codes = level.counts, level.codes
        starts = [start for start in alone if counts[level_codes[start]] == 1]
        found.extend((start, length, 1) for start in starts)
        # more than once: compared with the most frequent extension on either side
        longest: dict[int, int] = {}
        power = base**length
        for code, frequency in longer.repeated():
            for part in (code // base, code % power):
                if frequency > longest.get(part, 0):
                    longest[part] = frequency
        for code, frequency in level.repeated():
            if longest.get(code, 0) < frequency:
                found.append((level.first(code), length, frequency))
        level = longer
    return [
        (start, length, frequency)
        for start, length, frequency in found
        if length <= 2 or sum(map(stop.__getitem__, ids[start : start + length])) <= 1
    ]


def _yake_fast(
    text: str,
    stopwords: frozenset[str],
    max_words: int,
    lang: str,
    boost_terms: Collection[str] = (),
    boost: float = 1.0,
) -> list[tuple[str, float]]:
    """Candidates ranked by YAKE's H score, best (lowest) first: (lower-case phrase, h).

    The features and formulas are YAKE's (casing, position, frequency, relatedness to
    context, spread over sentences; stopwords inside a phrase weighted by their
    neighbours); the tokenizer is a single regex pass, and a candidate that is always
    followed (or preceded) by the same word is dropped as a fragment of a longer phrase.
    """
    words = _split_words(text, lang == "en")
    if not words.lowers:
        return []
    stop = [
        key in stopwords or spelling in stopwords or len(key) < 3
        for key, spelling in zip(words.keys, words.first_spellings, strict=True)
    ]
    content_tfs = list(compress(Counter(words.terms).values(), map(not_, stop)))
    if not content_tfs:
        return []
    terms = _Terms(words, stop, content_tfs)
    lowers, ids, tf, edges, size = words.lowers, words.terms, terms.tf, terms.edges, terms.size
    boosted = [key in boost_terms or s for key, s in zip(words.keys, stop, strict=True)]
    ranked: list[tuple[float, str]] = []
    for start, length, frequency in _phrases(words, stop, max_words):
        gram = ids[start : start + length]
        product = 1.0
        total = 0.0
        last = length - 1
        for index, term in enumerate(gram):
            if not stop[term]:
                h = terms.h(term)
                product *= h
                total += h
                continue
            # a stopword inside the phrase: YAKE's "bi" weighting by its neighbours
            p1 = p2 = 0.0
            if index:
                before = gram[index - 1]
                p1 = edges.get(before * size + term, 0) / tf[before]
            if index < last:
                after = gram[index + 1]
                p2 = edges.get(term * size + after, 0) / tf[after]
            probability = p1 * p2
            product *= 2.0 - probability
            total -= 1.0 - probability
        score = product / ((total + 1.0) * frequency)
        if boost_terms and all(map(boosted.__getitem__, gram)):
            score *= boost  # the headline names the subject
        ranked.append((score, " ".join(lowers[start : start + length])))
    ranked.sort()
    return [(surface, h) for h, surface in ranked]


_YAKE_EXTRACTORS: dict[tuple[str, int], Any] = {}


def _yake_package(
    text: str,
    stopwords: frozenset[str],
    max_words: int,
    lang: str,
    boost_terms: Collection[str] = (),
    boost: float = 1.0,
) -> list[tuple[str, float]]:
    """The same ranking from the ``yake`` package itself (several times slower)."""
    extractor = _YAKE_EXTRACTORS.get((lang, max_words))
    if extractor is None:
        import yake

        extractor = yake.KeywordExtractor(
            lan=lang, n=max_words, top=40, dedup_lim=1.0, stopwords=set(stopwords)
        )
        _YAKE_EXTRACTORS[(lang, max_words)] = extractor
    english = lang == "en"
    ranked = []
    for phrase, score in extractor.extract_keywords(text):
        lower = str(phrase).lower()
        keys = [_term_key(w, english) for w in lower.split()]
        if boost_terms and all(k in boost_terms or k in stopwords for k in keys):
            score *= boost
        ranked.append((float(score), lower))
    ranked.sort()
    return [(phrase, score) for score, phrase in ranked]


def extract_keyphrases(
    title: str,
    text: str,
    lang: str | None = None,
    *,
    options: TaggingOptions = DEFAULT_OPTIONS,
    exclude: Collection[str] = (),
) -> list[tuple[str, float]]:
    """Up to ``options.max_keyphrases`` normalised keyphrases with scores in (0, 1], best first.

    ``exclude`` holds names already tagged otherwise (keywords, places, organisations); a
    keyphrase that only repeats one of them is skipped in favour of the next.
    """
    return select_keyphrases(
        strip_boilerplate(title[: options.max_chars]),
        strip_boilerplate(truncate(text, options.max_chars)),
        lang,
        options,
        exclude,
    )


def select_keyphrases(
    title: str, text: str, lang: str | None, options: TaggingOptions, exclude: Collection[str]
) -> list[tuple[str, float]]:
    """:func:`extract_keyphrases` for a title and text already truncated and cleaned."""
    code = language_code(lang)
    if code in _NO_SPACE_LANGUAGES or options.max_keyphrases <= 0:
        return []
    stopwords = stopwords_for(code)
    body = f"{title}\n{text}" if title else text
    engine = _yake_package if options.keyphrase_engine == "yake" else _yake_fast
    english = code == "en"
    title_terms = {_term_key(w, english) for w in _TITLE_WORD.findall(title)}
    ranked = engine(
        body, stopwords, options.max_phrase_words, code, title_terms, options.title_boost
    )
    excluded = {" ".join(_fold(w) for w in name.lower().split()) for name in exclude}
    excluded |= {key.replace(" ", "").replace("-", "") for key in excluded}
    chosen: list[tuple[str, float, str, str, frozenset[str]]] = []
    for phrase, h in ranked:
        words = strip_possessive(phrase).replace("’", "'").split()
        if english:
            while words and words[0] in _EN_TITLES:
                words = words[1:]  # "president barack obama" -> "barack obama"
        if not words or words[0] in stopwords or words[-1] in stopwords:
            continue
        if english and _is_clause(words):
            continue
        if any(w in _BOILERPLATE_WORDS for w in words) or any(c.isdigit() for c in phrase):
            continue
        if len(words) == 1 and (len(words[0]) < 3 or words[0] in _NEWS_FILLER):
            continue
        if english and len(words[-1]) > 4 and words[-1].endswith("ed"):
            continue  # "changed", "status to be changed": participles make poor tags
        phrase = " ".join(words)
        folded = " ".join(_fold(w) for w in words)
        squashed = folded.replace(" ", "").replace("-", "")
        if folded in excluded or squashed in excluded:
            continue
        if len(words) > 1 and all(w in stopwords or _fold(w) in excluded for w in words):
            continue  # "russia and kyrgyzstan": only names already tagged
        padded = f" {folded} "
        word_set = frozenset(folded.split())
        if any(
            # near-identical variants ("kant airbase" / "kant air bases"), phrases that
            # contain or sit inside one already kept ("kant air" / "russian kant air base"),
            # and phrases that share most of their words with one ("shared air defense
            # system" / "create shared air defense")
            squashed == other_squashed
            or _squashed_overlap(squashed, other_squashed)
            or padded in f" {other} "
            or f" {other} " in padded
            or len(word_set & other_set) * 5 >= len(word_set | other_set) * 2
            for _, _, other, other_squashed, other_set in chosen
        ):
            continue
        chosen.append((" ".join(words), h, folded, squashed, word_set))
        if len(chosen) >= options.max_keyphrases:
            break
    if not chosen:
        return []
    # YAKE scores span orders of magnitude: 1.0 for the best, 0.5 at e times its score
    best = max(chosen[0][1], 1e-12)
    result: list[tuple[str, float]] = []
    for index, (phrase, h, *_) in enumerate(chosen):
        score = round(1.0 / (1.0 + math.log(max(h, best) / best)), 3)
        if index >= options.min_keyphrases and score < options.keyphrase_floor:
            break
        result.append((phrase, max(score, 0.001)))
    return result


def _is_clause(words: list[str]) -> bool:
    """Whether English words are a piece of a clause rather than a noun phrase: they hold
    an auxiliary or modal, a verb form after the first word ("fda proposes calorie
    counts", "move strengthens", "figures released yesterday"), or end on a title."""
    if words[-1] in _EN_TITLES:
        return True
    for index, word in enumerate(words):
        if word in _EN_AUXILIARIES:
            return True
        if index and (
            word in _EN_VERB_FORMS
            or word.endswith(_EN_VERB_ENDINGS)
            or (len(word) > 4 and word.endswith("ed"))
        ):
            return True
    return False


def _squashed_overlap(one: str, other: str) -> bool:
    """Whether one phrase, spaces removed, contains the other ("kantairbase" variants)."""
    shorter, longer = (one, other) if len(one) <= len(other) else (other, one)
    return len(shorter) >= 6 and shorter in longer
