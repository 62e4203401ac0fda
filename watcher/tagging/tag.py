"""Assemble one item's tags from the topic, keyword, keyphrase, place and organisation finders."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Final

from watcher.config import TopicConfig
from watcher.models import Tag
from watcher.tagging.gazetteer import known_org_names, name_index
from watcher.tagging.keyphrases import select_keyphrases
from watcher.tagging.keywords import build_keyword_matcher
from watcher.tagging.names import find_names
from watcher.tagging.options import DEFAULT_OPTIONS, TaggingOptions
from watcher.tagging.text import language_code, stopwords_for, strip_boilerplate, truncate

#: Tag kinds in the order :func:`tag_item` returns them.
TAG_KINDS: Final = ("topic", "keyword", "keyphrase", "place", "org")
_KIND_RANK: Final = {kind: index for index, kind in enumerate(TAG_KINDS)}


def _salience(mentions: int, in_title: bool) -> float:
    """Occurrence-based score in (0, 1]: ``1 - 0.5 ** (body mentions + 2 if in the title)``."""
    weight = mentions + (2 if in_title else 0)
    return round(1.0 - 0.5**weight, 3) if weight > 0 else 0.0


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

    clean_title = strip_boilerplate(title[: options.max_chars])
    clean_text = strip_boilerplate(truncate(text, options.max_chars))
    surfaces: set[str] = set()
    if options.places or options.orgs:
        clean = f"{clean_title}\n{clean_text}"
        clean_title_end = len(clean_title)
        names = find_names(clean, stopwords_for(language_code(lang)), orgs=options.orgs)
        surfaces = names.surfaces
        keyword_things = _keyword_things(topics, {n for (n, k) in tags if k == "keyword"})
        for kind, found in (("place", names.places), ("org", names.orgs)):
            if kind == "place" and not options.places:
                continue
            for name, offsets in found.items():
                if _names_of(name) & keyword_things:
                    continue  # one tag per thing: the configured keyword ("csto") names it
                in_title = offsets[0] < clean_title_end
                body_hits = sum(1 for o in offsets if o > clean_title_end)
                put(name, kind, _salience(body_hits, in_title))

    exclude = [name for (name, kind) in tags if kind != "topic"] + sorted(surfaces)
    for phrase, score in select_keyphrases(clean_title, clean_text, lang, options, exclude):
        put(phrase, "keyphrase", score)

    ordered = sorted(tags.items(), key=lambda item: (_KIND_RANK[item[0][1]], -item[1], item[0][0]))
    return [Tag(name=name, kind=kind, score=score) for (name, kind), score in ordered]


def _keyword_things(topics: Sequence[TopicConfig], tagged: Collection[str]) -> set[str]:
    """Every spelling (lower case) of the keywords tagged: each keyword and its aliases."""
    if not tagged:
        return set()
    spellings: set[str] = set()
    for topic in topics:
        for keyword in (*topic.keywords, *topic.aliases):
            if keyword.lower() in tagged:
                spellings.add(keyword.lower())
                spellings.update(a.lower() for a in topic.aliases.get(keyword, ()))
    return {" ".join(s.split()) for s in spellings}


def _names_of(name: str) -> set[str]:
    """A place's or organisation's tag name and the names the index knows it by."""
    return {name, *known_org_names(name)}


def warm_up(lang: str | None = "en") -> None:
    """Build the place/organisation index and load stopwords now (e.g. in a worker initializer)."""
    name_index()
    stopwords_for(language_code(lang))
