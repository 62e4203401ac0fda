"""Level-1 identity rules that need a whole batch: when a feed's GUIDs cannot be trusted.

Some feeds repeat one GUID for different entries or give none; then the GUID is
dropped for the whole batch and identity falls back to the canonical URL, then to
the hash of the title and text.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence

from watcher.models import Item

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
