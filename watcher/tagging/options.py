"""The knobs of the tagging stage, as one frozen, picklable value."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

KeyphraseEngine = Literal["fast", "yake"]
KeywordScope = Literal["all", "matched"]


@dataclass(frozen=True, slots=True)
class TaggingOptions:
    """Knobs for :func:`~watcher.tagging.tag_item`; the defaults are what the pipeline uses."""

    #: "all": keywords of every topic passed in; "matched": only of the matched topics.
    keyword_scope: KeywordScope = "all"
    #: Keyphrases wanted: up to ``max_keyphrases``; weaker ones are dropped below
    #: ``keyphrase_floor`` (relative to the best) once ``min_keyphrases`` are kept.
    max_keyphrases: int = 6
    min_keyphrases: int = 3
    keyphrase_floor: float = 0.15
    #: "fast": the built-in YAKE re-implementation; "yake": the ``yake`` package (slower).
    keyphrase_engine: KeyphraseEngine = "fast"
    #: Longest keyphrase, in words. Two: on 500N-KPCrowd, longer automatic phrases are
    #: mostly pieces of clauses and match what people pick far less (docs/tagging.md).
    max_phrase_words: int = 2
    #: Multiplier (< 1 favours) for the YAKE score of phrases made of headline words.
    title_boost: float = 0.25
    places: bool = True
    orgs: bool = True
    #: Keyphrases, places and organisations look at the first ``max_chars`` characters of
    #: the text only (keywords at all of it), so a huge document costs no more than a long
    #: article.
    max_chars: int = 30_000


DEFAULT_OPTIONS: Final = TaggingOptions()
