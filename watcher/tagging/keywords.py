"""Find a topic's configured keywords and aliases in a text, inflections and spellings included."""

from __future__ import annotations

import re
import threading
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from watcher.config import TopicConfig
from watcher.tagging.text import RU_SUFFIX_RE, is_cyrillic, ru_stem

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
    if is_cyrillic(word):
        stem = ru_stem(word.lower()) if len(word) > 3 else word.lower()
        body = re.escape(stem).replace("е", "[её]").replace("ё", "[её]")
        return body + (RU_SUFFIX_RE if len(word) > 3 else "")
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
