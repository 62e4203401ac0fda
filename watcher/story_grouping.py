"""Which story a new item joins, compared with each candidate story as a whole.

Candidates come from ``story_terms`` (stored items sharing one of the new item's
highest-weighted keys inside the story window); each candidate story is scored by the
mean similarity of the new item to its most recent members (average link, so one loosely
related member cannot pull an item in), with document frequencies the store keeps as
items arrive. The best story at ``story_threshold`` (:class:`~watcher.similarity.DedupeSettings`)
or above is joined; any other story the item also matches is merged into the older of the
two when the average link between the two stories reaches ``story_merge_threshold``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from watcher import story_vectors as sv
from watcher.similarity import DEFAULT_SETTINGS, DedupeSettings
from watcher.store import Store
from watcher.store import stories as story_store
from watcher.story_vectors import StoryVector, from_bytes, similarities, to_bytes, top_keys

CANDIDATE_STORIES = 8
_ISO = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True, slots=True)
class StoryMatch:
    """The story a new item should join (None: none matched) and the stories to merge."""

    story_id: int | None
    score: float = 0.0
    also: tuple[int, ...] = field(default=())
    compared: bool = True
    """False when the store holds too few vectors for document frequencies to say anything
    (:data:`~watcher.story_vectors.MIN_DOCUMENTS`): the lexical signals decide then."""


def _moment(at: str) -> datetime | None:
    try:
        return datetime.fromisoformat(at.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def _window(at: str | None, seconds: float) -> tuple[str, str] | None:
    moment = _moment(at) if at else None
    if moment is None:
        return None
    delta = timedelta(seconds=seconds)
    return ((moment - delta).strftime(_ISO), (moment + delta).strftime(_ISO))


def _inside(at: str, window: tuple[str, str] | None) -> bool:
    return window is None or not at or window[0] <= at <= window[1]


def _members(
    blobs: list[tuple[int, str, bytes]], span: tuple[str, str] | None
) -> list[StoryVector]:
    """The decoded vectors of a story's members inside ``span`` long enough to compare."""
    members = []
    for _, when, blob in blobs:
        if not _inside(when, span):
            continue
        try:
            member = from_bytes(blob)
        except ValueError:
            continue  # another vector format: a regroup recomputes it
        if len(member) >= sv.MIN_KEYS:
            members.append(member)
    return members


def match_story(
    store: Store,
    vector: StoryVector,
    at: str | None,
    settings: DedupeSettings = DEFAULT_SETTINGS,
) -> StoryMatch:
    """The story ``vector`` (an item at ``at``, None: undated) belongs to among the stored
    ones within the story window."""
    keys = vector.keys.tolist()
    df = story_store.cached_frequencies(store, keys)
    documents = df[story_store.DOCUMENTS_KEY]
    if documents < sv.MIN_DOCUMENTS:
        return StoryMatch(None, compared=False)
    span = _window(at, settings.story_window)
    share = settings.story_names_share
    index = top_keys(vector, df, documents, sv.INDEX_TERMS)
    scored: list[tuple[float, int, list[StoryVector]]] = []
    for story_id in story_store.candidate_stories(store, index, span, CANDIDATE_STORIES):
        members = _members(story_store.story_members(store, story_id, sv.MEMBERS_COMPARED), span)
        if not members:
            continue
        df = story_store.cached_frequencies(
            store, {key for member in members for key in member.keys.tolist()}
        )
        sims = similarities(vector, members, df, documents, share)
        scored.append((sum(sims) / len(sims), story_id, members))
    scored.sort(key=lambda row: (row[0], row[1]), reverse=True)
    if not scored or scored[0][0] < settings.story_threshold:
        return StoryMatch(None)
    best_score, best, joined = scored[0]
    joined = [vector, *joined]
    also = tuple(
        story_id
        for score, story_id, members in scored[1:]
        if score >= settings.story_threshold
        and _linked(joined, members, df, documents, share) >= settings.story_merge_threshold
    )
    return StoryMatch(best, best_score, also)


def _linked(
    one: list[StoryVector],
    other: list[StoryVector],
    df: Mapping[int, int],
    documents: int,
    names_share: float,
) -> float:
    """The mean similarity over all pairs of two stories' members (average link)."""
    total = sum(sum(similarities(member, other, df, documents, names_share)) for member in one)
    return total / (len(one) * len(other))


def remember(
    store: Store,
    item_id: int,
    vector: StoryVector,
    at: str | None,
    *,
    copy: bool = False,
    blob: bytes | None = None,
) -> None:
    """Keep ``vector`` as item ``item_id``'s, with its index terms and frequencies. A near-
        duplicate (``copy``) is not counted in the frequencies: ten copies of one wire story
        would make its own words look common. ``blob``: ``vector``'s bytes where the caller has
    them (from the pool worker)."""
    keys = vector.keys.tolist()
    df = story_store.cached_frequencies(store, keys)
    index = top_keys(vector, df, df[story_store.DOCUMENTS_KEY] + 1, sv.INDEX_TERMS)
    counted = [] if copy else keys
    story_store.save_vector(
        store,
        item_id,
        vector=to_bytes(vector) if blob is None else blob,
        keys=counted,
        index_keys=index,
        at=at,
    )
    story_store.counted(store, counted)


def merge(store: Store, story_id: int, others: tuple[int, ...], *, item_id: int, at: str) -> int:
    """Merge ``story_id`` and ``others`` into the oldest of them; the story id kept."""
    keep = min((story_id, *others))
    for other in {story_id, *others} - {keep}:
        story_store.merge_stories(store, keep, other, item_id=item_id, at=at)
    return keep
