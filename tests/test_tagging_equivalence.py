"""The fast keyphrase scorer against a plain-loop reference (the scorer before it was sped up)."""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Collection

from hypothesis import given, settings
from hypothesis import strategies as st

from watcher.config import TopicConfig
from watcher.tagging import keyphrases
from watcher.tagging.keywords import KeywordMatcher
from watcher.tagging.text import stopwords_for, strip_possessive

# The reference below is the straightforward version of the same algorithm: one tuple
# per candidate occurrence, one dictionary update per count.


def _reference_yake(
    text: str,
    stopwords: frozenset[str],
    max_words: int,
    lang: str,
    boost_terms: Collection[str] = (),
    boost: float = 1.0,
) -> list[tuple[str, float]]:
    """What ``keyphrases._yake_fast`` returns, computed the plain way."""
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

    for word, other, end, _punct in keyphrases._TOKEN.findall(text):
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


_VOCABULARY = "Kant air base Air Base Kyrgyzstan Russia's Russian Putin said the of and a to in defence cooperation bases base Bishkek CSTO it's don't Moscow Moscow's forces авиабаза Кант России Россия и в".split()  # noqa: SIM905
_SEPARATORS = (" ", " ", " ", ", ", ". ", "! ", "\n", " - ", " 25 ", "; ", " (", ") ", "? ")

texts = st.lists(
    st.tuples(st.sampled_from(_VOCABULARY), st.sampled_from(_SEPARATORS)), max_size=80
).map(lambda pairs: "".join(word + separator for word, separator in pairs))


@settings(max_examples=300, deadline=None)
@given(texts, st.sampled_from(["en", "ru"]), st.integers(min_value=1, max_value=5))
def test_fast_scorer_ranks_exactly_as_the_reference(text: str, lang: str, words: int) -> None:
    stopwords = stopwords_for(lang)
    boost = {"kant", "base"}
    expected = _reference_yake(text, stopwords, words, lang, boost, 0.25)
    assert keyphrases._yake_fast(text, stopwords, words, lang, boost, 0.25) == expected


def test_stopwords_do_not_import_yake() -> None:
    """Reading the word lists leaves yake's extractor (and networkx) unloaded."""
    code = (
        "import sys; from watcher.tagging.text import stopwords_for; "
        "assert len(stopwords_for('ru')) > 100 and 'the' in stopwords_for('en'); "
        "print('yake' in sys.modules, 'networkx' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["False", "False"]


# ------------------------------------------------------------------ keyword prefilter

_KEYWORD_TOPICS = (
    TopicConfig(
        name="kant-air-base",
        title="Kant",
        query="Kant",
        keywords=(
            "Kant", "Kyrgyzstan", "CSTO", "air defence", "air base", "military base",
            "Collective Rapid Deployment Force", "joint air defence system", "Issyk-Kul",
        ),
        aliases={
            "Kant": ("Кант",),
            "Kyrgyzstan": ("Kyrgyz Republic", "Kirghizia", "Киргизия", "Кыргызстан"),
            "CSTO": ("Collective Security Treaty Organization", "ОДКБ"),
            "air defence": ("air defense", "ПВО"),
            "air base": ("airbase", "авиабаза"),
        },
    ),
    TopicConfig(
        name="shipping",
        title="Shipping",
        query="icebreaker",
        keywords=(
            "icebreaker", "Northern Sea Route", "centre", "organisation", "NSR", "Бишкек",
            "ёлка", "isation", "our base",
        ),
    ),
)  # fmt: skip
_KEYWORD_PIECES = (
    "Kant", "KANT", "kant", "Kant's", "Кант", "Канте", "кантом", "Kyrgyzstan", "Kyrgyz",
    "Republic", "Kirghizia", "Киргизии", "Кыргызстана", "CSTO", "CSTOs", "csto", "ОДКБ",
    "air", "Air", "defence", "defense", "defences", "base", "bases", "airbase", "air-base",
    "авиабазу", "авиабазы", "ПВО", "пво", "Issyk", "Kul", "Issyk-Kul", "military", "Force",
    "Collective", "Rapid", "Deployment", "joint", "system", "icebreakers", "Northern", "Sea",
    "Route", "center", "centre", "organization", "organisation", "NSR", "nsr", "ё", "Ё",
    "ёлка", "елки", "Бишкеке", "Бишкёк", "БИШКЕК", "isation", "ization", "our", "or", "ur",
    "the", "x", "_", "İ", "ß",
)  # fmt: skip
_KEYWORD_GLUE = ("", " ", " ", " ", "-", "\n", ", ", "'", "’s ", "_", "1", "ё")

keyword_texts = st.lists(
    st.tuples(st.sampled_from(_KEYWORD_PIECES), st.sampled_from(_KEYWORD_GLUE)), max_size=60
).map(lambda pairs: "".join(piece + glue for piece, glue in pairs))


def _every_regex(matcher: KeywordMatcher, text: str) -> dict[str, list[int]]:
    """What ``find`` returns when every keyword's regex runs on the text, none skipped."""
    found: dict[str, list[int]] = {}
    for keyword in matcher._keywords:
        offsets = [
            match.start()
            for match in keyword.pattern.finditer(text)
            if not match.start()
            or not (text[match.start() - 1].isalnum() or text[match.start() - 1] == "_")
        ]
        if offsets:
            found[keyword.name] = offsets
    return found


@settings(max_examples=400, deadline=None)
@given(keyword_texts)
def test_keyword_offsets_are_those_of_every_regex_over_the_whole_text(text: str) -> None:
    """Trying each regex only where the automaton saw its leading letters finds every match
    a scan of the whole text finds, and no other."""
    matcher = KeywordMatcher(_KEYWORD_TOPICS)
    everywhere = _every_regex(matcher, text)
    assert matcher.find(text) == everywhere
    shipping = {keyword.lower() for keyword in _KEYWORD_TOPICS[1].keywords}
    assert matcher.find(text, ["shipping"]) == {
        name: offsets for name, offsets in everywhere.items() if name in shipping
    }
