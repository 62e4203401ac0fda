"""Level-1 identity rules that need a whole batch: untrustworthy GUIDs, daily-page anchors.

Some feeds repeat one GUID for different entries or give none; then the GUID is
dropped for the whole batch and identity falls back to the canonical URL, then to
the hash of the title and text. Some blogs give every post an ``#anchor`` on one
daily page; when entries of one fetch differ only by their fragment, the fragment
stays in their canonical URL so the posts do not collapse into one. Link blogs
point several posts at one outside page: such a shared URL does not identify an
entry within its feed.
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
    return blank + repeats <= UNTRUSTED_GUID_LIMIT


def with_trusted_guids(items: Sequence[Item]) -> list[Item]:
    """The items, with the GUIDs that cannot be trusted removed.

    Every GUID goes when more than a few in the batch are blank or repeated; otherwise
    only the repeated ones, so a GUID shared by two entries never makes them one item.
    """
    guids = [item.guid for item in items]
    if not guids_are_trustworthy(guids):
        return [dataclasses.replace(item, guid=None) for item in items]
    counts = Counter(guid for guid in guids if guid)
    return [
        dataclasses.replace(item, guid=None) if item.guid and counts[item.guid] > 1 else item
        for item in items
    ]


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


def with_shared_urls_marked(items: Sequence[Item]) -> list[Item]:
    """The items, with ``shared_url`` set where entries of different text share a URL."""
    hashes_by_url: defaultdict[str, set[str]] = defaultdict(set)
    for item in items:
        if item.canonical_url:
            hashes_by_url[item.canonical_url].add(item.content_hash)
    return [
        dataclasses.replace(item, shared_url=True)
        if item.canonical_url and len(hashes_by_url[item.canonical_url]) > 1
        else item
        for item in items
    ]


def batch_identities(items: Sequence[Item]) -> list[Item]:
    """All the batch-level identity rules of level 1, in order."""
    return with_shared_urls_marked(with_distinct_fragments(with_trusted_guids(items)))
