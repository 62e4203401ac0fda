"""Level-1 identity rules that need a whole batch: untrustworthy GUIDs, daily-page anchors.

Some feeds repeat one GUID for different entries or give none; then the GUID is
dropped for the whole batch and identity falls back to the canonical URL, then to
the hash of the title and text. Some blogs give every post an ``#anchor`` on one
daily page; when entries of one fetch differ only by their fragment, the fragment
stays in their canonical URL so the posts do not collapse into one.
"""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict
from collections.abc import Sequence
from urllib.parse import urlsplit

from watcher.models import Item
from watcher.normalize import canonical_url

UNTRUSTED_GUID_LIMIT = 2


def guids_are_trustworthy(guids: Sequence[str | None]) -> bool:
    """False when more than a few GUIDs in one fetch are blank or repeated."""
    blank = sum(1 for guid in guids if not guid)
    repeats = sum(count - 1 for guid, count in Counter(g for g in guids if g).items() if count > 1)
    return blank + repeats <= UNTRUSTED_GUID_LIMIT and repeats == 0


def with_trusted_guids(items: Sequence[Item]) -> list[Item]:
    """The items, with every GUID removed when the batch's GUIDs cannot be trusted."""
    if guids_are_trustworthy([item.guid for item in items]):
        return list(items)
    return [dataclasses.replace(item, guid=None) for item in items]


def _fragment(url: str | None) -> str:
    try:
        return urlsplit(url or "").fragment
    except ValueError:
        return ""


def with_distinct_fragments(items: Sequence[Item]) -> list[Item]:
    """The items, with ``#fragment`` kept in the canonical URLs that differ only by it.

    Only within one batch: a lone link to ``page.html#top`` still means ``page.html``.
    """
    by_page: defaultdict[str, list[int]] = defaultdict(list)
    for index, item in enumerate(items):
        if item.canonical_url:
            by_page[item.canonical_url].append(index)
    result = list(items)
    for indexes in by_page.values():
        if len(indexes) < 2 or len({_fragment(items[i].url) for i in indexes}) < 2:
            continue
        for index in indexes:
            item = items[index]
            if _fragment(item.url):
                result[index] = dataclasses.replace(
                    item, canonical_url=canonical_url(item.url, keep_fragment=True)
                )
    return result
