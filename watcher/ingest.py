"""Dedupe prepared items against the stored corpus and write the new ones, in one transaction.

Level 1 (the same item again) becomes a sighting. Otherwise the items sharing a
near-duplicate or story key with the new one are fetched from the key index and
:func:`watcher.similarity.decide` says whether it is a copy (``duplicate_of``) and
which story it joins (``story_id``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from watcher.config import DedupeConfig
from watcher.models import BatchOutcome
from watcher.prepare import PreparedItem
from watcher.similarity import DEFAULT_SETTINGS, Candidate, DedupeSettings, decide, from_bytes
from watcher.similarity import to_bytes as fingerprint_bytes
from watcher.store import Store

_ISO = "%Y-%m-%dT%H:%M:%SZ"
_MAX_CANDIDATES = 48
_decode = lru_cache(maxsize=4096)(from_bytes)
"""Fingerprints decoded by their bytes: recent items are candidates again and again."""


def dedupe_settings(config: DedupeConfig) -> DedupeSettings:
    """The similarity settings the ``[dedupe]`` config section asks for."""
    return DedupeSettings(**config.model_dump())


def _window(at: str | None, seconds: float | None) -> tuple[str, str] | None:
    """The ISO range [at - seconds, at + seconds]; None (no bound) for an unknown time."""
    if at is None or seconds is None:
        return None
    moment = datetime.strptime(at, _ISO).replace(tzinfo=UTC)
    delta = timedelta(seconds=seconds)
    return ((moment - delta).strftime(_ISO), (moment + delta).strftime(_ISO))


def _candidates(
    store: Store, entry: PreparedItem, at: str | None, settings: DedupeSettings
) -> list[Candidate]:
    rows = store.dedupe_candidates(
        band_keys=entry.fingerprint.band_keys,
        story_keys=entry.fingerprint.story_keys,
        band_range=_window(at, settings.duplicate_window),
        story_range=_window(at, settings.story_window),
        limit=_MAX_CANDIDATES,
    )
    candidates = []
    for item_id, duplicate_of, story_id, when, blob in rows:
        try:
            stored = _decode(blob)
        except ValueError:
            continue  # written by another fingerprint version; see docs/dedupe.md
        candidates.append(Candidate(item_id, stored, duplicate_of, story_id, when))
    return candidates


def ingest_batch(
    store: Store,
    prepared: Sequence[PreparedItem],
    *,
    feed_id: int | None,
    now: str,
    settings: DedupeSettings = DEFAULT_SETTINGS,
) -> BatchOutcome:
    """Store what is new; record a sighting for what the corpus already holds.

    The whole batch commits or rolls back together, so an interrupted batch leaves
    nothing half-written. Items are decided one after another, so a copy later in the
    same batch is recognised too. Feed items without a date count as published when
    first seen; imported documents without a date pass every time window.
    """
    outcome = BatchOutcome(entries=len(prepared))
    now_moment = datetime.strptime(now, _ISO).replace(tzinfo=UTC)
    try:
        with store.transaction():
            for entry in prepared:
                item = entry.item
                existing = store.find_exact(item, feed_id)
                if existing is not None:
                    item_id, match = existing
                    store.add_sighting(
                        item_id, feed_id=feed_id, url=item.url, seen_at=now, match=match
                    )
                    outcome.sightings += 1
                    outcome.matches[match] += 1
                    continue
                at = item.published_at or (now if feed_id is not None else None)
                decision = decide(
                    entry.fingerprint,
                    _candidates(store, entry, at, settings),
                    settings,
                    now=now_moment if feed_id is not None else None,
                )
                item_id = store.insert_item(
                    item,
                    feed_id=feed_id,
                    first_seen_at=now,
                    duplicate_of=decision.duplicate_of,
                    story_id=decision.story_id,
                    dedupe_signal=None if decision.signal == "none" else decision.signal,
                    dedupe_score=decision.score if decision.signal != "none" else None,
                )
                store.save_fingerprint(
                    item_id,
                    fingerprint=fingerprint_bytes(entry.fingerprint),
                    band_keys=entry.fingerprint.band_keys,
                    story_keys=entry.fingerprint.story_keys,
                    at=at,
                )
                store.set_topics(item_id, entry.topics)
                store.set_tags(item_id, entry.tags)
                store.add_sighting(
                    item_id, feed_id=feed_id, url=item.url, seen_at=now, match="first"
                )
                outcome.new_items += 1
                outcome.new_item_ids.append(item_id)
                if decision.duplicate_of is not None:
                    outcome.near_duplicates += 1
    except BaseException:
        store.forget_cached_ids()
        raise
    return outcome
