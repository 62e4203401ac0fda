"""Dedupe prepared items against the stored corpus and write the new ones, in one transaction.

Level 1 (the same item again) becomes a sighting. Otherwise the items sharing a
near-duplicate or story key with the new one are fetched from the key index and
:func:`watcher.similarity.decide` says whether it is a copy (``duplicate_of``) and
which story it joins (``story_id``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from watcher import story_vectors
from watcher.dedupe_settings import DEFAULT_SETTINGS, DedupeSettings
from watcher.fingerprints import Fingerprint, from_bytes
from watcher.fingerprints import to_bytes as fingerprint_bytes
from watcher.models import BatchOutcome, Tag
from watcher.pass_state import corrections_held
from watcher.prepare import PreparedItem
from watcher.similarity import Candidate, Decision, decide
from watcher.store import Store
from watcher.store.stories import flush_frequencies, forget_frequencies
from watcher.story_grouping import (
    StoryMatch,
    cluster_batch,
    clusters_batch,
    correct_soon,
    forget_waiting,
    match_story,
    matching_deferred,
    merge,
    note_deferred,
)
from watcher.story_keeping import Keeping, Kept
from watcher.story_vectors import StoryVector, story_vector
from watcher.story_vectors import from_bytes as vector_from_bytes

_ISO = "%Y-%m-%dT%H:%M:%SZ"
_ISO_SHAPE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_MAX_CANDIDATES = 48
_DECODED_MAX = 4096
_decoded: dict[int, tuple[bytes, Fingerprint]] = {}
"""Decoded fingerprints by item id, with the bytes they came from: recent items are
candidates again and again. A hit needs equal bytes (a cheap comparison, where hashing
the bytes for a cache key was not), so another database or a re-fingerprinted item
never gets a stale one."""


def _decode(item_id: int, blob: bytes) -> Fingerprint:
    cached = _decoded.get(item_id)
    if cached is not None and cached[0] == blob:
        return cached[1]
    decoded = from_bytes(blob)
    if len(_decoded) >= _DECODED_MAX:
        del _decoded[next(iter(_decoded))]
    _decoded[item_id] = (blob, decoded)
    return decoded


def _moment(at: str) -> datetime:
    """The UTC time of an ISO string in :data:`_ISO`'s format (``strptime``'s answer, which
    costs some twenty times more: it serves the rare string of another shape)."""
    if _ISO_SHAPE.fullmatch(at):
        return datetime.fromisoformat(at[:-1]).replace(tzinfo=UTC)
    return datetime.strptime(at, _ISO).replace(tzinfo=UTC)


def _range(moment: datetime | None, seconds: float | None) -> tuple[str, str] | None:
    """The ISO range [moment - seconds, moment + seconds]; None (no bound) for an unknown time."""
    if moment is None or seconds is None:
        return None
    delta = timedelta(seconds=seconds)
    return ((moment - delta).strftime(_ISO), (moment + delta).strftime(_ISO))


def _window(at: str | None, seconds: float | None) -> tuple[str, str] | None:
    """:func:`_range` around the ISO time ``at``."""
    return _range(None if at is None else _moment(at), seconds)


def story_candidates(
    store: Store, fingerprint: Fingerprint, at: str | None, settings: DedupeSettings
) -> list[Candidate]:
    """The stored items sharing a near-duplicate or story key with ``fingerprint``."""
    moment = None if at is None else _moment(at)
    rows = store.dedupe_candidates(
        band_keys=fingerprint.band_keys,
        story_keys=fingerprint.story_keys,
        band_range=_range(moment, settings.duplicate_window),
        story_range=_range(moment, settings.story_window),
        limit=_MAX_CANDIDATES,
    )
    candidates = []
    for item_id, duplicate_of, story_id, when, blob in rows:
        try:
            stored = _decode(item_id, blob)
        except ValueError:
            continue  # written by another fingerprint version; see docs/dedupe.md
        candidates.append(Candidate(item_id, stored, duplicate_of, story_id, when))
    return candidates


def choose_story(
    store: Store, decision: Decision, vector: StoryVector, at: str | None, settings: DedupeSettings
) -> tuple[int | None, str | None, float | None, StoryMatch | None]:
    """The story of a new item (None: a story of its own), the signal and score that chose it,
    and the story match (None for a near-duplicate, which follows its original)."""
    signal = None if decision.signal == "none" else decision.signal
    if decision.duplicate_of is not None:
        return decision.story_id, signal, decision.score, None
    if len(vector) < story_vectors.MIN_KEYS:  # a headline and a sentence: lexical rules only
        if vector.lead is not None:  # ... within its script; across scripts, lead and names
            across = match_story(store, vector, at, settings, across_only=True)
            if across.story_id is not None:
                return across.story_id, "story", across.score, across
        return decision.story_id, signal, decision.score, None
    match = match_story(store, vector, at, settings)
    if match.story_id is not None:
        return match.story_id, "story", match.score, match
    if signal is not None and (
        not match.compared or signal == "excerpt" or settings.story_lexical_fallback
    ):
        # below MIN_DOCUMENTS the lexical signals are all there is; an excerpt is literally
        # shared text; the looser ones (phrases, terms, title) would overrule the weighted
        # comparison that found no story (two events of one kind share their words)
        return decision.story_id, signal, decision.score, match
    return None, None, None, match


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
    first seen; imported documents without a date pass every time window. The text of the
    new items goes into the full-text index in one statement at the end.
    """
    outcome = BatchOutcome(entries=len(prepared))
    now_moment = _moment(now)
    # topics, tags and sightings are not read while the batch is decided: written at the
    # end, one statement each
    topics: list[tuple[int, tuple[str, ...]]] = []
    tags: list[tuple[int, tuple[Tag, ...]]] = []
    sightings: list[tuple[int, int | None, str | None, str, str]] = []
    # the batch's own items and the stories their matching compared: clustered again at
    # the end (story_grouping.correct), so a wrong join or merge is undone
    grouped: list[tuple[int, str | None]] = []
    neighbours: list[tuple[int, float]] = []
    deferred: list[int] = []  # items whose story a clustering decides
    keeping = Keeping(store)  # the batch's vectors, kept together where nothing reads them
    # outside a pass, a large batch is clustered at its end rather than item by item
    clustered_here = clusters_batch(store, [entry.story_lead for entry in prepared])
    try:
        with store.transaction():
            for entry in prepared:
                item = entry.item
                existing = store.find_exact(item, feed_id)
                if existing is not None:
                    item_id, match = existing
                    sightings.append((item_id, feed_id, item.url, now, match))
                    outcome.sightings += 1
                    outcome.matches[match] += 1
                    continue
                at = item.published_at or (now if feed_id is not None else None)
                if entry.story_vector:  # computed in the pool worker (prepare_items)
                    vector = vector_from_bytes(entry.story_vector)
                else:
                    vector = story_vector(item.title, item.text)
                lead = story_vectors.lead_from_bytes(entry.story_lead)
                if lead is not None:
                    vector = replace(vector, lead=lead)
                deferrable = matching_deferred(
                    store, vector, uncounted=keeping.uncounted, batch=clustered_here
                )
                decision = decide(
                    entry.fingerprint,
                    story_candidates(store, entry.fingerprint, at, settings),
                    settings,
                    now=now_moment if feed_id is not None else None,
                    duplicates_only=deferrable,  # the story is the clustering's to find
                )
                copy = decision.duplicate_of is not None
                defer = deferrable and not copy
                if defer:  # a clustering decides its story
                    story_id, signal, score, joined = None, None, None, None
                else:
                    if not copy:  # compared with the stored stories: those of the batch too
                        keeping.flush()
                    story_id, signal, score, joined = choose_story(
                        store, decision, vector, at, settings
                    )
                store.pause_text_index()  # the first new item pauses it; the rest find it so
                item_id = store.insert_item(
                    item,
                    feed_id=feed_id,
                    first_seen_at=now,
                    duplicate_of=decision.duplicate_of,
                    story_id=story_id,
                    dedupe_signal=signal,
                    dedupe_score=score,
                )
                keeping.add(
                    Kept(
                        item_id,
                        vector,
                        at,
                        copy=copy,
                        blob=entry.story_vector or None,
                        lead=entry.story_lead if lead is not None else None,
                    )
                )
                if defer:
                    deferred.append(item_id)
                elif not copy:
                    keeping.flush()
                if joined is not None and joined.also and story_id is not None:
                    merge(store, story_id, joined.also, item_id=item_id, at=now)
                if decision.duplicate_of is None and not corrections_held(store):
                    grouped.append((item_id, at))
                    if not defer:
                        if joined is None:  # a short item: its neighbours all the same
                            joined = match_story(store, vector, at, settings)
                        neighbours.extend(joined.candidates)
                store.save_fingerprint(
                    item_id,
                    fingerprint=fingerprint_bytes(entry.fingerprint),
                    band_keys=entry.fingerprint.band_keys,
                    story_keys=entry.fingerprint.story_keys,
                    at=at,
                )
                topics.append((item_id, entry.topics))
                tags.append((item_id, entry.tags))
                sightings.append((item_id, feed_id, item.url, now, "first"))
                outcome.new_items += 1
                outcome.new_item_ids.append(item_id)
                if decision.duplicate_of is not None:
                    outcome.near_duplicates += 1
            keeping.flush()
            flush_frequencies(store)  # the batch's document frequencies, one row per key
            index_terms = {item_id: keeping.terms[item_id] for item_id in deferred}
            if clustered_here:
                first = outcome.new_item_ids[0] if outcome.new_item_ids else 1
                cluster_batch(
                    store,
                    grouped,
                    neighbours,
                    index_terms,
                    settings,
                    now=now,
                    stored_before=first - 1,
                )
            else:
                correct_soon(store, grouped, neighbours, settings, now=now)
            store.add_topics(topics)
            store.add_tags(tags)
            store.add_sightings(sightings)
            store.resume_text_index()
    except BaseException:
        store.forget_cached_ids()
        forget_frequencies(store)
        forget_waiting(store, outcome.new_item_ids)
        raise
    if not clustered_here:  # the pass's clustering takes them
        note_deferred(store, index_terms)
    return outcome
