"""Automatic keyphrases: a fast YAKE (Campos et al., 2020), then filtered and merged."""

from __future__ import annotations

import math
import re
from collections.abc import Collection
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
                word = strip_possessive(word)
            lower = word.lower()
            # _term_key, inlined: this loop runs once per word of the text
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
