"""Text helpers shared by the tagging stages: word lists, Russian stems, boilerplate, stopwords."""

from __future__ import annotations

import importlib.util
import re
from functools import lru_cache
from pathlib import Path
from typing import Final


def wordset(words: str) -> frozenset[str]:
    """A frozenset from whitespace-separated words (keeps long word lists readable)."""
    return frozenset(words.split())


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
# Credit lines of news agencies, matched with their case: a dateline with the agency
# ("TOKYO, March 31 (Reuters) -", "EL PASO, Texas (AP) —"; the dateline names where the
# report was filed, not what it is about), "(Reporting by ...; Editing by ...)", photo
# credits ("Name/Reuters", "AP Photo/Name"), bylines ("Associated Press Writer"),
# copyright notices and "... contributed to this report". An agency named in a sentence
# ("told Reuters") is left alone.
_AGENCIES: Final = (
    r"(?:Reuters|AP|AFP|Xinhua|UPI|dpa|DPA|TASS|Interfax|RIA Novosti|Sputnik|Bloomberg"
    r"|Bloomberg News|HealthDay News|HealthDay|Kyodo|Yonhap|ANSA|EFE|PTI|IANS|CNN|BBC"
    r"|Associated Press|The Associated Press|Agence France-Presse|AFP-JIJI)"
)
_CREDIT_LINE = re.compile(
    r"(?:\b[A-Z][A-Z.'’\-]+(?:[ /][A-Z][A-Z.'’\-]+)*"  # TOKYO, LISBON/DUBLIN, EL PASO
    r"(?:,[ \t]+[A-Z][A-Za-z.]+(?:[ \t][A-Za-z.]+)?(?:[ \t]\d{1,2})?)?[ \t]+)?"  # , Texas / , March 31
    rf"\({_AGENCIES}\)(?:[ \t]*[-–—]{{1,2}})?"
    r"|\((?:(?:Additional )?[Rr]eporting|Writing|Editing|Compiled|Translated) by [^()]{0,200}\)"
    r"|(?:(?:Additional )?[Rr]eporting|Writing|Editing) by [A-Z][^.;\n]{0,80}; (?:[Ee]diting|[Ww]riting) by [^.\n)]{0,80}"
    rf"|\b[A-Z][\w.'’\-]*(?: [A-Z][\w.'’\-]*){{0,3}}/{_AGENCIES}\b"
    rf"|\b{_AGENCIES} Photo(?:/[A-Z][\w.'’\-]*(?: [A-Z][\w.'’\-]*){{0,3}})?"
    rf"|(?:,[ \t]*|\b)(?:{_AGENCIES}) (?:Writer|Correspondent|Medical Writer|Sports Writer"
    r"|Business Writer|Science Writer|Staff Writer|Economics Writer)\b"
    r"|(?:©[ \t]*)?\b(?:Copyright|\(c\))[ \t]+(?:©[ \t]*)?\d{4}[^.\n]{0,80}\.?"
    r"|©[ \t]*\d{4}[^.\n]{0,80}\.?"
    r"|\bThis material may not be published, broadcast, rewritten,? or redistributed\.?"
    r"|(?<=[.!?\"”] )[A-Z][^.!?\n]{0,120}\b(?:contributed to|contributed reporting to)"
    r" this (?:report|story|article)\."
)
_EN_POSSESSIVE = re.compile(r"['’]s?$", re.IGNORECASE)
# Russian case/number endings, longest first: ru_stem strips one, and RU_SUFFIX_RE accepts
# one after the stem of a Cyrillic keyword.
_RU_ENDINGS: Final = (
    *("ами", "ями", "ого", "его", "ому", "ему"),
    *("ой", "ей", "ом", "ем", "ам", "ям", "ах", "ях", "ую", "юю", "ая", "яя", "ое", "ее"),
    *("ые", "ие", "ый", "ий", "ых", "их", "ым", "им", "ов", "ев", "ью"),
    *("а", "я", "о", "е", "у", "ю", "ы", "и", "ь", "й"),
)
_RU_ENDINGS_3 = tuple(ending for ending in _RU_ENDINGS if len(ending) == 3)
_RU_ENDINGS_2 = frozenset(ending for ending in _RU_ENDINGS if len(ending) == 2)
_RU_ENDINGS_1 = frozenset(ending for ending in _RU_ENDINGS if len(ending) == 1)
RU_SUFFIX_RE: Final = "(?:" + "|".join(_RU_ENDINGS) + ")?"


def is_cyrillic(word: str) -> bool:
    return _CYRILLIC.search(word) is not None


def ru_stem(word: str) -> str:
    """Strip one Russian case/number ending so that inflected forms share a stem."""
    if len(word) > 5 and word[-3:] in _RU_ENDINGS_3:
        return word[:-3]
    if len(word) > 4 and word[-2:] in _RU_ENDINGS_2:
        return word[:-2]
    if len(word) > 2 and word[-1] in _RU_ENDINGS_1:
        return word[:-1]
    return word


def strip_possessive(word: str) -> str:
    return _EN_POSSESSIVE.sub("", word) if ("'" in word or "’" in word) else word


def strip_boilerplate(text: str) -> str:
    """The text without URLs, link targets, news agencies' credit lines ("TOKYO (Reuters) -",
    "(Reporting by ...)") and boilerplate phrases ("File Image:", ...)."""
    text = _URL.sub(" ", text)
    if "(" in text or "/" in text or "©" in text or "Copyright" in text or "contributed" in text:
        text = _CREDIT_LINE.sub(" ", text)
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


def truncate(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, at a paragraph or sentence end if one is near."""
    if len(text) <= limit:
        return text
    cut = text.rfind("\n", limit - 2000, limit)
    if cut < 0:
        cut = text.rfind(". ", limit - 2000, limit)
    return text[: cut + 1 if cut >= 0 else limit]


# ---------------------------------------------------------------------------------------
# Languages and stopwords (from the yake package's lists, cached per language)
# ---------------------------------------------------------------------------------------

_LANGUAGE_CODE = re.compile(r"[a-z]{2,3}")


def language_code(lang: str | None) -> str:
    """The primary ISO 639 code of ``lang`` ("en-GB" -> "en"); "en" when missing or odd."""
    code = (lang or "").strip().lower().replace("_", "-").split("-")[0]
    return code if _LANGUAGE_CODE.fullmatch(code) else "en"


_FALLBACK_EN_STOPWORDS: Final = wordset(
    """a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing down during each few
    for from further had has have having he her here hers herself him himself his how i if in
    into is it its itself just me more most my myself no nor not now of off on once only or
    other our ours ourselves out over own said same she should so some such than that the
    their theirs them themselves then there these they this those through to too under until
    up very was we were what when where which while who whom why will with would you your
    yours yourself yourselves"""
)
# Reporting words that never start or end a keyphrase ("putin said"), whatever the
# language list.
_NEWS_STOPWORDS: Final = wordset(
    """said says say told according also however including mr mrs ms dr per cent percent
    monday tuesday wednesday thursday friday saturday sunday january february april june
    july august september october november december"""
)


def _yake_folder() -> Path | None:
    """Where the ``yake`` package is installed, found without importing it.

    Importing it would load its keyword extractor and networkx (13 MB per process) just
    to read word lists.
    """
    try:
        spec = importlib.util.find_spec("yake")
    except (ImportError, ValueError):
        return None
    locations = spec.submodule_search_locations if spec is not None else None
    return Path(next(iter(locations))) if locations else None


@lru_cache(maxsize=64)
def stopwords_for(lang: str) -> frozenset[str]:
    """The stopword list for ``lang`` shipped with ``yake``; English when there is none."""
    words: set[str] = set()
    folder = _yake_folder()
    for subfolder in ("core/StopwordsList", "StopwordsList"):
        if folder is None:
            break
        try:
            raw = (folder / subfolder / f"stopwords_{lang}.txt").read_bytes()
        except OSError:
            continue
        text = raw.decode("utf-8", errors="replace")
        words = {line.strip().lower() for line in text.splitlines() if line.strip()}
        break
    if not words:
        if lang != "en":
            return stopwords_for("en")
        words = set(_FALLBACK_EN_STOPWORDS)
    if lang == "en":
        words |= _FALLBACK_EN_STOPWORDS
    return frozenset(words | _NEWS_STOPWORDS)
