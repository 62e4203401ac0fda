"""What a ``watcher poll`` pass holds back until its end, per store: the per-batch story
corrections and the per-item story match, both left to the clustering at the pass's end.

Apart from :mod:`watcher.story_grouping` (numpy, the comparisons) so that a pass that
finds nothing new sets and clears these without loading what it never uses.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from watcher.store import Store

_held: weakref.WeakSet[Store] = weakref.WeakSet()
_deferring: weakref.WeakSet[Store] = weakref.WeakSet()


def hold_corrections(store: Store, held: bool) -> None:
    """Stop (``held``) or resume the corrections of
    :func:`~watcher.story_grouping.correct_soon` for ``store``: a ``watcher poll`` pass
    clusters all its items once at its end instead (:func:`watcher.regroup.cluster_part`),
    which gives the same stories as a correction after every batch followed by that
    clustering, for less (docs/dedupe.md, round 7)."""
    if held:
        _held.add(store)
    else:
        _held.discard(store)


def corrections_held(store: Store) -> bool:
    """Whether :func:`hold_corrections` holds ``store``'s corrections (a batch's
    neighbours are then not needed)."""
    return store in _held


def defer_matching(store: Store, deferred: bool) -> None:
    """Leave (``deferred``) or stop leaving the story of a new item undecided at ingest
    while a ``watcher poll`` pass stores into ``store``, where the clustering at the pass's
    end (:func:`watcher.regroup.cluster_pending_part`) decides it anyway: the match against
    the candidate stories (:func:`~watcher.story_grouping.match_story`) is what most of the
    story step cost in a pass. See :func:`~watcher.story_grouping.matching_deferred` for
    which items."""
    if deferred:
        _deferring.add(store)
    else:
        _deferring.discard(store)


def matching_deferrable(store: Store) -> bool:
    """Whether :func:`defer_matching` is on for ``store``."""
    return store in _deferring
