"""Find a topic's configured keywords and aliases in a text, inflections and spellings included."""

from __future__ import annotations

import re
import threading
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import ahocorasick

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
        body = "".join("[её]" if char in "её" else re.escape(char) for char in stem)
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


_LITERAL_LENGTH: Final = 3
_REGEX_SYNTAX: Final = frozenset("[](){}?*+|.^$")


def _leading_literal(source: str) -> str:
    """Up to 3 characters that every match of a phrase's regex ``source`` starts with: the
    letters before the first character class, group or optional character (lower case
    unless the phrase is a case-sensitive acronym; possibly none)."""
    if source.startswith("(?i:"):
        source = source[4:]
    literal: list[str] = []
    index = 0
    while index < len(source) and len(literal) < _LITERAL_LENGTH:
        char = source[index]
        if char == "\\":
            if index + 1 >= len(source) or source[index + 1].isalnum():
                break  # a class such as \s, not an escaped character
            literal.append(source[index + 1])
            index += 2
            continue
        if char in _REGEX_SYNTAX:
            break
        literal.append(char)
        index += 1
    if index < len(source) and source[index] in "?*{" and literal:
        literal.pop()  # the last character is optional or repeated
    return "".join(literal)


@dataclass(frozen=True, slots=True)
class _Keyword:
    name: str
    topics: frozenset[str]
    pattern: re.Pattern[str]


def _literal_automaton(literals: dict[str, set[int]]) -> Any:
    """An Aho-Corasick automaton reporting (literal length, keyword numbers) for each
    occurrence of a literal; None when there are no literals."""
    if not literals:
        return None
    automaton = ahocorasick.Automaton()
    for literal, keywords in literals.items():
        automaton.add_word(literal, (len(literal), tuple(sorted(keywords))))
    automaton.make_automaton()
    return automaton


class KeywordMatcher:
    """Compiled keyword and alias patterns for one set of topics (see :func:`build_keyword_matcher`).

    Matching is one pass over the text: an Aho-Corasick automaton finds where the leading
    letters of any keyword or alias occur, and each keyword's regex is tried only at those
    places, left to right, as ``finditer`` would (a match ends where the next may begin).
    Every match starts with the leading letters of the variant it matched, so the offsets
    are exactly those of running each regex over the whole text. Case-insensitive letters
    are found in ``str.lower()`` of the text (ё read as е); where lower-casing changes the
    text's length (a dotted capital İ) every regex scans the whole text instead.
    """

    __slots__ = ("_exact", "_folded", "_keywords", "_scan_always")

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
        keywords: list[_Keyword] = []
        exact: dict[str, set[int]] = {}  # case-sensitive leading letters -> keyword numbers
        folded: dict[str, set[int]] = {}  # lower-case leading letters -> keyword numbers
        scan_always: set[int] = set()  # keywords with a variant without leading letters
        for name, variants in phrases.items():
            sources = [p for p in (_phrase_pattern(v) for v in variants) if p]
            if not sources:
                continue
            number = len(keywords)
            for source in sources:
                literal = _leading_literal(source)
                if not literal:
                    scan_always.add(number)
                elif source.startswith("(?i:"):
                    folded.setdefault(literal.replace("ё", "е"), set()).add(number)
                else:
                    exact.setdefault(literal, set()).add(number)
            # no look-behind: find() checks the left boundary itself
            pattern = re.compile(r"(?:" + "|".join(sources) + r")(?!\w)")
            keywords.append(_Keyword(name, frozenset(owners[name]), pattern))
        self._keywords: tuple[_Keyword, ...] = tuple(keywords)
        self._exact = _literal_automaton(exact)
        self._folded = _literal_automaton(folded)
        self._scan_always = frozenset(scan_always)

    def _starts(self, text: str) -> dict[int, list[int]] | None:
        """Where each keyword's leading letters occur in ``text``, by keyword number;
        None when the text must be scanned whole (lower-casing changed its length)."""
        lowered = text.lower().replace("ё", "е")
        if len(lowered) != len(text):
            return None
        starts: dict[int, list[int]] = {}
        for automaton, haystack in ((self._folded, lowered), (self._exact, text)):
            if automaton is None:
                continue
            for end, (length, numbers) in automaton.iter(haystack):
                for number in numbers:
                    starts.setdefault(number, []).append(end - length + 1)
        return starts

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(keyword.name for keyword in self._keywords)

    def find(self, text: str, topics: Collection[str] | None = None) -> dict[str, list[int]]:
        """Start offsets of each keyword's matches (aliases included); absent ones omitted.

        ``topics`` limits the keywords to those of the named topics (None: all of them).
        """
        starts = self._starts(text)
        found: dict[str, list[int]] = {}
        for number, keyword in enumerate(self._keywords):
            if topics is not None and keyword.topics.isdisjoint(topics):
                continue
            if starts is None or number in self._scan_always:
                matches: Iterable[re.Match[str]] = keyword.pattern.finditer(text)
            elif number in starts:
                matches = _matches_at(keyword.pattern, text, starts[number])
            else:
                continue
            offsets = [
                start
                for start in (match.start() for match in matches)
                if not start or not (text[start - 1].isalnum() or text[start - 1] == "_")
            ]
            if offsets:
                found[keyword.name] = offsets
        return found

    def count(self, text: str, topics: Collection[str] | None = None) -> dict[str, int]:
        """Number of matches of each keyword found in ``text``."""
        return {name: len(offsets) for name, offsets in self.find(text, topics).items()}


def _matches_at(pattern: re.Pattern[str], text: str, starts: list[int]) -> list[re.Match[str]]:
    """The matches ``pattern.finditer(text)`` gives, trying only the offsets ``starts``."""
    matches = []
    end = 0
    for start in sorted(set(starts)):
        if start < end:
            continue  # inside the previous match
        match = pattern.match(text, start)
        if match is not None:
            matches.append(match)
            end = match.end()
    return matches


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
