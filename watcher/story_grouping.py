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

import math
import weakref
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt

from watcher import story_vectors as sv
from watcher.clustering import ROWS_AT_ONCE, SparseRows, average_link, gram
from watcher.dedupe_settings import DEFAULT_SETTINGS, DedupeSettings
from watcher.pass_state import corrections_held, matching_deferrable
from watcher.store import Store
from watcher.store import stories as story_store
from watcher.story_vectors import (
    StoryVector,
    Weights,
    from_bytes,
    similarities,
    top_keys,
)

CANDIDATE_STORIES = 8
OTHER_SCRIPT_ITEMS = 200
"""Most recent items in another script (with a lead vector) whose stories an item with a
lead vector is compared with: across scripts the index terms find next to nothing."""
OTHER_SCRIPT_STORIES = 16
"""Most such stories compared."""
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
    candidates: tuple[tuple[int, float], ...] = field(default=())
    """Every candidate story compared, with the item's mean similarity to it, best first:
    the neighbours the batch correction (:func:`correct`) looks at."""


def _moment(at: str) -> datetime | None:
    try:
        return datetime.fromisoformat(at.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def story_window(at: str | None, seconds: float) -> tuple[str, str] | None:
    """The story window around ``at`` (None: undated, no bound)."""
    moment = _moment(at) if at else None
    if moment is None:
        return None
    delta = timedelta(seconds=seconds)
    return ((moment - delta).strftime(_ISO), (moment + delta).strftime(_ISO))


def _inside(at: str, window: tuple[str, str] | None) -> bool:
    return window is None or not at or window[0] <= at <= window[1]


def _members(
    rows: list[tuple[int, str]],
    vectors: Mapping[int, StoryVector],
    span: tuple[str, str] | None,
    min_keys: int = sv.MIN_KEYS,
    new: StoryVector | None = None,
) -> list[tuple[int, StoryVector]]:
    """(item id, decoded vector) of a story's members (``rows``: item id, time) inside
    ``span`` with at least ``min_keys`` keys (long enough to compare); a member in another
    script than ``new`` is long enough when both have a lead vector."""
    members = []
    for item_id, when in rows:
        if not _inside(when, span):
            continue
        member = vectors.get(item_id)  # absent: another vector format, a regroup recomputes it
        if member is None:
            continue
        if len(member) >= min_keys or _encoded_across(new, member):
            members.append((item_id, member))
    return members


def _encoded_across(new: StoryVector | None, member: StoryVector) -> bool:
    """Whether ``new`` and ``member`` are in different scripts with both leads encoded."""
    return (
        new is not None
        and new.lead is not None
        and member.lead is not None
        and member.script != new.script
    )


def across_candidates(
    store: Store,
    vector: StoryVector,
    span: tuple[str, str] | None,
    *,
    settled: tuple[int, str, int] | None = None,
) -> list[int]:
    """The stories of the recent items in another script whose lead is near ``vector``'s
    (encoder cosine at least :data:`~watcher.story_vectors.ENCODER_LOW`; below it a pair
    scores on names alone, which never reaches a join), the most recent first. ``settled``:
    as for :func:`~watcher.store.stories.candidate_stories`."""
    assert vector.lead is not None
    other = sv.OTHER_SCRIPT[vector.script]
    rows = story_store.other_script_items(store, other, span, OTHER_SCRIPT_ITEMS, settled=settled)
    decoded = decoded_vectors(store, [item_id for item_id, _ in rows])
    stories: list[int] = []
    leads: list[npt.NDArray[np.float32]] = []
    for item_id, story_id in rows:
        lead = decoded[item_id].lead if item_id in decoded else None
        if lead is not None:
            stories.append(story_id)
            leads.append(lead)
    if not leads:
        return []
    # laid end to end, then shaped: np.stack handles each of the 200 arrays in Python (5x)
    cosines = np.concatenate(leads).reshape(len(leads), -1) @ vector.lead
    near = [
        story_id
        for story_id, cosine in zip(stories, cosines.tolist(), strict=True)
        if cosine >= sv.ENCODER_LOW
    ]
    return list(dict.fromkeys(near))[:OTHER_SCRIPT_STORIES]


def match_story(
    store: Store,
    vector: StoryVector,
    at: str | None,
    settings: DedupeSettings = DEFAULT_SETTINGS,
    *,
    across_only: bool = False,
) -> StoryMatch:
    """The story ``vector`` (an item at ``at``, None: undated) belongs to among the stored
    ones within the story window. With a lead vector, the stories of recent items in the
    other script are candidates too; ``across_only`` (a short item, which the lexical rules
    group within its script): only members in another script are compared."""
    keys = vector.keys.tolist()
    df = story_store.cached_frequencies(store, keys)
    documents = df[story_store.DOCUMENTS_KEY]
    if documents < sv.MIN_DOCUMENTS:
        return StoryMatch(None, compared=False)
    span = story_window(at, settings.story_window)
    share = settings.story_names_share
    weights = Weights(df, documents)
    index = top_keys(vector, df, documents, sv.INDEX_TERMS, weights.of(vector))
    scored: list[tuple[float, int, list[StoryVector]]] = []
    short: list[tuple[float, int]] = []  # stories of short items only: neighbours, never joined
    stories = story_store.candidate_stories(store, index, span, CANDIDATE_STORIES)
    if vector.lead is not None:
        stories = list(dict.fromkeys([*stories, *across_candidates(store, vector, span)]))
    member_rows = story_store.members_of_stories(store, stories, sv.MEMBERS_COMPARED)
    decoded = decoded_vectors(
        store, [item_id for rows in member_rows.values() for item_id, _ in rows]
    )
    compared: list[tuple[int, bool, list[tuple[int, StoryVector]]]] = []
    for story_id in stories:
        rows = member_rows.get(story_id, [])
        found = _members(rows, decoded, span, new=vector)
        if across_only:
            found = [(item_id, m) for item_id, m in found if _encoded_across(vector, m)]
        whole = bool(found)
        if not whole:
            if across_only:
                continue
            found = _members(rows, decoded, span, 0)
            if not found:
                continue
        compared.append((story_id, whole, found))
    # the members' frequencies join the cache ``weights`` reads (nothing is counted while
    # an item is matched, so the new item's stay as they were); one comparison for all
    story_store.member_frequencies(store, [pair for _, _, found in compared for pair in found])
    every = [member for _, _, found in compared for _, member in found]
    sims = similarities(vector, every, df, documents, share, weights)
    start = 0
    for story_id, whole, found in compared:
        members = [member for _, member in found]
        mean = sum(sims[start : start + len(found)]) / len(found)
        start += len(found)
        if whole:
            scored.append((mean, story_id, members))
        else:
            short.append((mean, story_id))
    scored.sort(key=lambda row: (row[0], row[1]), reverse=True)
    candidates = tuple(
        sorted(
            [(story_id, score) for score, story_id, _ in scored]
            + [(story_id, score) for score, story_id in short],
            key=lambda row: (row[1], row[0]),
            reverse=True,
        )
    )
    if not scored or scored[0][0] < settings.story_threshold:
        return StoryMatch(None, candidates=candidates)
    best_score, best, joined = scored[0]
    above = [
        (story_id, members)
        for score, story_id, members in scored[1:]
        if score >= settings.story_threshold
    ]
    links = _links([vector, *joined], [members for _, members in above], weights, share)
    also = tuple(
        story_id
        for (story_id, _), link in zip(above, links, strict=True)
        if link >= settings.story_merge_threshold
    )
    return StoryMatch(best, best_score, also, candidates=candidates)


def _links(
    one: list[StoryVector],
    others: list[list[StoryVector]],
    weights: Weights,
    names_share: float,
) -> list[float]:
    """The mean similarity over all pairs of ``one``'s members and each of ``others``'
    (average link), from one :func:`similarity_matrix` of all of them: in a store about
    one topic a new item can pass the join threshold of several stories at once."""
    if not others:
        return []
    every = [member for members in others for member in members]
    block = similarity_matrix(
        [*one, *every], weights.df, weights.documents, names_share, split=len(one)
    )
    links = []
    start = 0
    for members in others:
        links.append(float(block[:, start : start + len(members)].mean()))
        start += len(members)
    return links


def merge(store: Store, story_id: int, others: tuple[int, ...], *, item_id: int, at: str) -> int:
    """Merge ``story_id`` and ``others`` into the oldest of them; the story id kept."""
    keep = min((story_id, *others))
    for other in {story_id, *others} - {keep}:
        story_store.merge_stories(store, keep, other, item_id=item_id, at=at)
    return keep


CLUSTER_THRESHOLD = 0.28
"""Mean similarity over all pairs of two groups of items (average link) at or above which
the batch correction keeps them in one story (proposed ``[dedupe] story_cluster_threshold``)."""
CORRECTION_ITEMS = 300
"""Most items one correction clusters: the batch's own, then the members of the stories
it touched, then those of its neighbours, the closest first."""
CORRECTION_MEMBERS = 48
"""Most recent members of a story taken into a correction."""
NEIGHBOUR_FLOOR = 0.1
"""A candidate story an item of the batch scored at least this against (mean similarity)
is a neighbour the correction looks at: below it, average link never puts them together."""
CORRECTION_MIN_DOCUMENTS = 200
"""No correction before the store holds this many vectors: average link can merge whole
stories, and in a corpus of a hundred items the words of one topic still look rare (the
141 labelled fixtures: a second event of a topic, a day later, joined the first)."""
CLUSTER_MIN_KEYS = 0
"""Items with fewer distinct keys stay out of the clustering (see :data:`~watcher.story_vectors.MIN_KEYS`)."""


@dataclass(slots=True)
class Correction:
    """What one correction did."""

    items: int = 0
    """Items clustered."""
    merged: int = 0
    split: int = 0
    moved: int = 0
    """Items put into another story (merges not counted)."""
    joined: int = 0
    """Deferred items (``fresh``) that joined a story with other items."""


def similarity_matrix(
    vectors: Sequence[StoryVector],
    df: Mapping[int, int],
    documents: int,
    names_share: float,
    *,
    split: int | None = None,
) -> npt.NDArray[np.float64]:
    """All pairwise :func:`~watcher.story_vectors.similarities` of ``vectors`` at once: each
    row's TF-IDF weights are cut into its word and name parts, each part scaled to unit
    length (times the root of its share), so one sparse product gives the weighted sum of
    the two cosines. ``split``: only the block of the first ``split`` vectors against the
    others (the same figures as that block of the whole matrix, a fraction of the work)."""
    count = len(vectors)
    sizes = np.fromiter((len(vector) for vector in vectors), np.int64, count)
    keys = np.concatenate([vector.keys for vector in vectors])
    counts = np.concatenate([vector.counts for vector in vectors]).astype(np.float64)
    names = np.concatenate([vector.names for vector in vectors])
    unique, column = np.unique(keys, return_inverse=True)
    frequencies = sv.frequencies(df, unique)
    weights = counts * sv.idf(frequencies, documents)[column]
    row = np.repeat(np.arange(count), sizes)
    squares = weights * weights
    name_norm = np.sqrt(np.bincount(row, squares * names, minlength=count))
    word_norm = np.sqrt(np.bincount(row, squares * ~names, minlength=count))
    norm = np.where(names, name_norm[row], word_norm[row])
    share = np.where(names, math.sqrt(names_share), math.sqrt(1.0 - names_share))
    data = np.divide(weights * share, norm, out=np.zeros_like(weights), where=norm > 0)
    indptr = np.concatenate(([0], np.cumsum(sizes)))
    first = slice(0, count if split is None else split)
    second = slice(0, count) if split is None else slice(split, count)
    product = gram(SparseRows(data, column, indptr, (count, len(unique))), split)
    scripts = np.fromiter((vector.script for vector in vectors), np.int64, count)
    one_script = count < 2 or bool((scripts == scripts[0]).all())  # no square mask needed
    across = None if one_script else scripts[first, None] != scripts[None, second]
    if across is not None and across.any():  # names and figures alone, as in similarities()
        only = np.divide(weights, name_norm[row], out=np.zeros_like(weights), where=names)
        names_cosine = gram(SparseRows(only, column, indptr, (count, len(unique))), split)
        has_lead = np.fromiter((vector.lead is not None for vector in vectors), np.bool_, count)
        cosine = None
        if has_lead.any():  # both leads encoded: mixed with the encoder cosine (sv.across)
            leads = np.zeros((count, sv.LEAD_DIMENSIONS), np.float32)
            for row_index, vector in enumerate(vectors):
                if vector.lead is not None:
                    leads[row_index] = vector.lead
            cosine = leads[first] @ leads[second].T
        for start in range(0, len(product), ROWS_AT_ONCE):  # square temporaries by blocks
            rows = slice(start, start + ROWS_AT_ONCE)
            cross = np.minimum(1.0, sv.CROSS_SCRIPT_SCALE * names_cosine[rows])
            if cosine is not None:
                scaled = (cosine[rows].astype(np.float64) - sv.ENCODER_LOW) / (
                    sv.ENCODER_HIGH - sv.ENCODER_LOW
                )
                np.clip(scaled, 0, 1, out=scaled)
                mixed = (1.0 - sv.ENCODER_WEIGHT) * np.minimum(1.0, names_cosine[rows])
                mixed += sv.ENCODER_WEIGHT * scaled
                both = has_lead[first][rows, None] & has_lead[None, second]
                np.copyto(cross, mixed, where=both)
            np.copyto(product[rows], cross, where=across[rows])
    return product


def _apart(similarity: npt.NDArray[np.float64], times: Sequence[str], seconds: float) -> None:
    """Set the similarity of two dated items more than ``seconds`` apart to 0 (in place):
    the story window holds in the clustering too, so average link weighs it."""
    dated = np.array([bool(at) for at in times])
    if dated.sum() < 2:
        return
    moments = np.array([at.rstrip("Z") if at else "NaT" for at in times], dtype="datetime64[s]")
    seconds_of = moments.astype(np.int64).astype(np.float64)
    for start in range(0, len(times), ROWS_AT_ONCE):  # no square temporaries
        rows = slice(start, start + ROWS_AT_ONCE)
        apart = np.abs(seconds_of[rows, None] - seconds_of[None, :]) > seconds
        apart &= dated[rows, None] & dated[None, :]
        similarity[rows][apart] = 0.0


def decoded_vectors(store: Store, item_ids: Sequence[int]) -> dict[int, StoryVector]:
    """The story vectors of ``item_ids`` (those that have one in a format this version
    reads), with their leads, through the store's cache; the oldest entries not asked for
    make room."""
    cache = story_store.vector_cache(store)
    missing = [item_id for item_id in item_ids if item_id not in cache]
    if missing:
        excess = len(cache) + len(missing) - story_store.VECTORS_CACHED
        if excess > 0:
            wanted = set(item_ids)
            doomed: list[int] = []
            for old in cache:  # the oldest first; asked-for ones stay
                if old not in wanted:
                    doomed.append(old)
                    if len(doomed) == excess:
                        break
            for old in doomed:
                del cache[old]
        leads = dict(story_store.leads_of(store, missing))
        for item_id, blob in story_store.vectors_of(store, missing):
            try:
                vector = from_bytes(blob)
            except ValueError:
                continue  # another vector format: a regroup recomputes it
            lead = sv.lead_from_bytes(leads[item_id]) if item_id in leads else None
            cache[item_id] = vector if lead is None else replace(vector, lead=lead)
    return {item_id: cache[item_id] for item_id in item_ids if item_id in cache}


def _span(times: Sequence[str | None], seconds: float) -> tuple[str, str] | None:
    """The story window around every one of ``times`` (None: an undated item, no bound)."""
    spans = [story_window(at, seconds) for at in times]
    if not spans or any(span is None for span in spans):
        return None
    bounded = [span for span in spans if span is not None]
    return (min(span[0] for span in bounded), max(span[1] for span in bounded))


def correct(
    store: Store,
    batch: Sequence[tuple[int, str | None]],
    neighbours: Sequence[tuple[int, float]] = (),
    settings: DedupeSettings = DEFAULT_SETTINGS,
    *,
    now: str = "",
    limit: int = CORRECTION_ITEMS,
    fresh: Collection[int] = (),
) -> Correction:
    """Make the stories around a batch what average-link clustering of them gives.

    ``batch``: (item id, time) of the items just stored; ``neighbours``: (story id, score)
    of candidate stories their matching compared. The local set is the batch's items, the
    recent members of the stories they are in, then of the neighbours (closest first), at
    most ``limit`` items inside the story window of the batch. It is clustered with
    average link cut at :data:`CLUSTER_THRESHOLD`, and the result applied: a story keeps its
    id in the cluster holding its first item (or most of its members here), a cluster
    claimed by several stories merges them into the oldest (``story_merges``), a cluster
    no story claims is split off as a new story whose id is its first item's
    (``story_splits``); near-duplicates follow their originals.

    ``fresh``: items of the batch whose story a pass left undecided (:func:`defer_matching`):
    each is alone in a story of its own that claims no cluster, so it joins the story of the
    cluster it falls in (no merge recorded), or starts one with other fresh items (no split
    recorded); one that joins others gets the signal ``story`` and, as its score, its mean
    similarity to the others of its cluster.
    """
    result = Correction()
    documents = story_store.cached_frequencies(store, ())[story_store.DOCUMENTS_KEY]
    if documents < CORRECTION_MIN_DOCUMENTS or not batch:
        return result
    batch_ids = [item_id for item_id, _ in batch]
    span = _span([at for _, at in batch], settings.story_window)
    own = story_store.current_stories(store, batch_ids)
    unclaimed = {item_id for item_id in fresh if own.get(item_id) == item_id}
    best: dict[int, float] = {}
    for story_id, score in neighbours:
        if score >= NEIGHBOUR_FLOOR:
            best[story_id] = max(score, best.get(story_id, 0.0))
    now_of = story_store.current_stories(store, best)
    ranked: list[int] = []
    for story_id in dict.fromkeys(own[item_id] for item_id in batch_ids if item_id in own):
        if story_id not in unclaimed:  # nothing else is in it
            ranked.append(story_id)
    for story_id in sorted(best, key=lambda sid: best[sid], reverse=True):
        if story_id in now_of and now_of[story_id] not in ranked:
            ranked.append(now_of[story_id])
    chosen: dict[int, int] = {item_id: own[item_id] for item_id in batch_ids if item_id in own}
    times = {item_id: at or "" for item_id, at in batch}
    found = story_store.recent_members(store, ranked, span, CORRECTION_MEMBERS)
    for item_id, story_id, at in found:
        if len(chosen) >= limit:
            break
        chosen.setdefault(item_id, story_id)
        times.setdefault(item_id, at)
    vectors = decoded_vectors(store, list(chosen))
    members = [
        item_id
        for item_id in chosen
        if item_id in vectors and len(vectors[item_id]) >= CLUSTER_MIN_KEYS
    ]
    result.items = len(members)
    if len(members) < 2:
        return result
    df = story_store.member_frequencies(store, [(item_id, vectors[item_id]) for item_id in members])
    similarity = similarity_matrix(
        [vectors[item_id] for item_id in members], df, documents, settings.story_names_share
    )
    _apart(similarity, [times[item_id] for item_id in members], settings.story_window)
    labels = average_link(similarity, CLUSTER_THRESHOLD, in_place=True)
    del similarity
    _apply(
        store,
        members,
        [chosen[item_id] for item_id in members],
        labels,
        result,
        item_id=batch_ids[-1],
        now=now,
        unclaimed=unclaimed,
    )
    if unclaimed:
        joined = _joined_scores(
            [vectors[item_id] for item_id in members],
            [times[item_id] for item_id in members],
            [item_id in unclaimed for item_id in members],
            labels,
            df,
            documents,
            settings,
        )
        story_store.set_signals(store, "story", [(score, members[row]) for row, score in joined])
        result.joined = len(joined)
    return result


def _joined_scores(
    vectors: Sequence[StoryVector],
    times: Sequence[str],
    fresh: Sequence[bool],
    labels: Sequence[int],
    df: Mapping[int, int],
    documents: int,
    settings: DedupeSettings,
) -> list[tuple[int, float]]:
    """(row, mean similarity to the others of its cluster) of each ``fresh`` row that shares
    its cluster with others. The clustering consumed the matrix, so the similarities of
    those clusters' members are computed again, one matrix for all of them (a copy of the
    fresh rows, kept instead, was a second matrix of the pass's size)."""
    label_of = np.asarray(labels)
    sizes = np.bincount(label_of)
    wanted = np.unique(label_of[np.asarray(fresh, np.bool_) & (sizes[label_of] > 1)])
    found = np.flatnonzero(np.isin(label_of, wanted))
    rows: list[int] = found.tolist()
    if not rows:
        return []
    similarity = similarity_matrix(
        [vectors[row] for row in rows], df, documents, settings.story_names_share
    )
    _apart(similarity, [times[row] for row in rows], settings.story_window)
    cluster = label_of[found]
    scored: list[tuple[int, float]] = []
    for place, row in enumerate(rows):
        if fresh[row]:
            others = cluster == cluster[place]
            others[place] = False
            scored.append((row, float(similarity[place, others].mean())))
    return scored


CORRECT_EVERY = 20
"""New items (no near-duplicates) whose neighbourhoods wait to be corrected together: a
feed that brings two new items would otherwise pay for a whole correction (a local set of
up to :data:`CORRECTION_ITEMS` items) on its own. Ingest batches of 20 or more are still
corrected as they are stored; :func:`correct_waiting` corrects what is left (the end of a
``watcher poll`` pass, the daemon every few minutes)."""


@dataclass(slots=True)
class _Waiting:
    items: list[tuple[int, str | None]] = field(default_factory=list)
    neighbours: list[tuple[int, float]] = field(default_factory=list)


_waiting: weakref.WeakKeyDictionary[Store, _Waiting] = weakref.WeakKeyDictionary()
_deferred: weakref.WeakKeyDictionary[Store, dict[int, list[int]]] = weakref.WeakKeyDictionary()


def note_deferred(store: Store, index_terms: Mapping[int, list[int]]) -> None:
    """Remember the items ingest left undecided (item id: its index terms, as
    :func:`~watcher.story_keeping.keep_vectors` returned them) once their batch committed."""
    _deferred.setdefault(store, {}).update(index_terms)


def take_deferred(store: Store, item_ids: Iterable[int]) -> dict[int, list[int]]:
    """Those of ``item_ids`` ingest left undecided in this process, with their index terms,
    forgotten as they are returned (the clustering decides them). A pass interrupted before
    its end leaves them to the next clustering as items alone in their stories, which it
    clusters all the same, without the stories their index terms point to."""
    deferred = _deferred.get(store)
    if not deferred:
        return {}
    return {item_id: deferred.pop(item_id) for item_id in item_ids if item_id in deferred}


def index_neighbours(
    store: Store,
    fresh: Mapping[int, list[int]],
    part: Sequence[tuple[int, str | None]],
    settled: tuple[int, str, int],
    settings: DedupeSettings,
) -> list[tuple[int, float]]:
    """(story id, 1 - rank / the longest list) of the candidate stories of each ``fresh``
    item of ``part`` ((item id, time) pairs) among the ``settled`` items (as for
    :func:`~watcher.store.stories.candidate_stories`): its index terms' stories first, then
    for one with a lead vector the stories across scripts that lead is near. In rank order:
    :func:`correct` takes the members of the best ranked first."""
    if not story_store.any_settled(store, settled):  # the first part of a first pass
        return []
    time_of = dict(part)
    encoded = {
        item_id: vector
        for item_id, vector in decoded_vectors(store, list(fresh)).items()
        if vector.lead is not None
    }
    ranked: list[list[int]] = []
    for item_id, keys in fresh.items():
        span = story_window(time_of.get(item_id), settings.story_window)
        stories = story_store.candidate_stories(
            store, keys, span, CANDIDATE_STORIES, settled=settled
        )
        if item_id in encoded:
            across = across_candidates(store, encoded[item_id], span, settled=settled)
            stories = list(dict.fromkeys([*stories, *across]))
        ranked.append(stories)
    longest = max(map(len, ranked), default=0)
    return [
        (stories[rank], 1.0 - rank / longest)
        for rank in range(longest)
        for stories in ranked
        if rank < len(stories)
    ]


BATCH_NEIGHBOURHOOD = 500
"""Most items one :func:`cluster_batch` takes: the batch's, then the members of the stories
they point to. Its undecided items' neighbours are ranked by shared index terms, not by a
measured similarity, so it reaches further than a correction (:data:`CORRECTION_ITEMS`):
ECB+ dev through the daemon's refreshes, five orders, pairwise F1 mean 0.900 at 300 items,
0.904 at 500 and at 800 (0.903 matching each item as it is stored)."""


def clusters_batch(store: Store, leads: Sequence[bytes]) -> bool:
    """Whether ingest leaves the stories of a batch's items to one clustering of the batch
    at its end (:func:`cluster_batch`), outside a pass (the daemon's refreshes): a batch of
    at least :data:`CORRECT_EVERY` items without a lead vector (``leads``: each item's, empty
    for none), which a correction would cluster anyway right after the per-item matches."""
    if matching_deferrable(store) or corrections_held(store):
        return False
    return sum(not lead for lead in leads) >= CORRECT_EVERY


def cluster_batch(
    store: Store,
    batch: Sequence[tuple[int, str | None]],
    neighbours: Sequence[tuple[int, float]],
    fresh: Mapping[int, list[int]],
    settings: DedupeSettings = DEFAULT_SETTINGS,
    *,
    now: str,
    stored_before: int,
) -> Correction:
    """:func:`correct` a batch whose ``fresh`` items (item id: index terms) ingest left
    undecided (:func:`clusters_batch`), with the stories their index terms point to among
    the items stored before the batch (item ids up to ``stored_before``), beside the
    ``neighbours`` of the batch's matched items; inside the batch's transaction, so that
    what is committed (and alerted on) has its stories. Items an earlier batch left waiting
    for a correction (:func:`correct_soon`) are corrected with it."""
    settled = (stored_before, "", 0)
    found = index_neighbours(store, fresh, batch, settled, settings) if fresh else []
    waiting = _waiting.pop(store, None) or _Waiting()
    return correct(
        store,
        [*waiting.items, *batch],
        [*waiting.neighbours, *neighbours, *found],
        settings,
        now=now,
        fresh=fresh,
        limit=BATCH_NEIGHBOURHOOD,
    )


def matching_deferred(
    store: Store, vector: StoryVector, *, uncounted: int = 0, batch: bool = False
) -> bool:
    """Whether ingest leaves the story of an item with ``vector`` (no near-duplicate) to the
    clustering: in a pass that defers (:func:`~watcher.pass_state.defer_matching`) or a
    batch clustered at its
    end (``batch``, :func:`clusters_batch`), once the store holds enough
    vectors for that clustering to run (:data:`CORRECTION_MIN_DOCUMENTS`), for an item long
    enough to compare (:data:`~watcher.story_vectors.MIN_KEYS`) without a lead vector. An
    item with one is matched still: left to the clustering, with the stories its lead is
    near among its neighbours, the RU/EN halves of one event met less often (pairwise F1
    0.830 -> 0.784 in one pass, docs/dedupe.md round 10). ``uncounted``: vectors waiting to
    be kept (:attr:`~watcher.story_keeping.Keeping.uncounted`), not in the frequencies yet."""
    if not (batch or matching_deferrable(store)):
        return False
    if vector.lead is not None or len(vector) < sv.MIN_KEYS:
        return False
    documents = story_store.cached_frequencies(store, ())[story_store.DOCUMENTS_KEY] + uncounted
    return documents >= CORRECTION_MIN_DOCUMENTS


def correct_soon(
    store: Store,
    batch: Sequence[tuple[int, str | None]],
    neighbours: Sequence[tuple[int, float]],
    settings: DedupeSettings = DEFAULT_SETTINGS,
    *,
    now: str = "",
) -> Correction:
    """Queue ``batch`` and its ``neighbours`` for :func:`correct`, run once at least
    :data:`CORRECT_EVERY` items wait (inside the caller's transaction); nothing while
    :func:`~watcher.pass_state.hold_corrections` holds them for ``store``."""
    if corrections_held(store):
        return Correction()
    waiting = _waiting.setdefault(store, _Waiting())
    waiting.items.extend(batch)
    waiting.neighbours.extend(neighbours)
    if len(waiting.items) < CORRECT_EVERY:
        return Correction()
    return correct_waiting(store, settings, now=now)


def correct_waiting(
    store: Store, settings: DedupeSettings = DEFAULT_SETTINGS, *, now: str = ""
) -> Correction:
    """:func:`correct` the items :func:`correct_soon` queued for ``store``, if any."""
    waiting = _waiting.pop(store, None)
    if waiting is None or not waiting.items:
        return Correction()
    return correct(store, waiting.items, waiting.neighbours, settings, now=now)


def forget_waiting(store: Store, item_ids: Iterable[int]) -> None:
    """Drop ``item_ids`` from the queue (their batch was rolled back)."""
    waiting = _waiting.get(store)
    if waiting is not None:
        gone = set(item_ids)
        waiting.items = [(item_id, at) for item_id, at in waiting.items if item_id not in gone]


def _apply(
    store: Store,
    members: Sequence[int],
    stories: Sequence[int],
    labels: Sequence[int],
    result: Correction,
    *,
    item_id: int,
    now: str,
    unclaimed: Collection[int] = (),
) -> None:
    """Make the stories of ``members`` (now in ``stories``) follow the cluster ``labels``;
    the ``unclaimed`` stories (a deferred item's own) claim no cluster."""
    label_of = dict(zip(members, labels, strict=True))
    by_story: dict[int, list[int]] = {}
    for member, story_id in zip(members, stories, strict=True):
        if story_id not in unclaimed:
            by_story.setdefault(story_id, []).append(member)
    target: dict[int, int] = {}  # old story -> the cluster it claims
    for story_id, own in by_story.items():
        if story_id in label_of:
            target[story_id] = label_of[story_id]
            continue
        tally: dict[int, int] = {}
        for member in own:
            tally[label_of[member]] = tally.get(label_of[member], 0) + 1
        # most members here; a tie goes to the cluster of the oldest of them
        target[story_id] = max(
            tally, key=lambda label: (tally[label], -min(m for m in own if label_of[m] == label))
        )
    claims: dict[int, list[int]] = {}
    for story_id, label in target.items():
        claims.setdefault(label, []).append(story_id)
    cluster_id: dict[int, int] = {}
    for member, label in label_of.items():
        if label in claims:
            cluster_id[label] = min(claims[label])
        else:
            cluster_id[label] = min(cluster_id.get(label, member), member)
    for story_id, label in target.items():
        into = cluster_id[label]
        if into != story_id:
            story_store.merge_stories(store, into, story_id, item_id=item_id, at=now)
            result.merged += 1
    moves: list[tuple[int, int]] = []
    for member, story_id in zip(members, stories, strict=True):
        wanted = cluster_id[label_of[member]]
        now_in = story_id if story_id in unclaimed else cluster_id[target[story_id]]
        if wanted != now_in:
            moves.append((member, wanted))
            if story_id not in unclaimed:
                result.moved += 1
    story_store.move_items(store, moves)
    # the stories each unclaimed cluster's members came from, counted in one pass
    origins_of: dict[int, dict[int, int]] = {}
    for member, old in zip(members, stories, strict=True):
        label = label_of[member]
        if label not in claims and old not in unclaimed:
            origins = origins_of.setdefault(label, {})
            origins[old] = origins.get(old, 0) + 1
    for label, story_id in cluster_id.items():
        if label in claims:
            continue
        origins = origins_of.get(label, {})
        if not origins:  # deferred items only: a new story, split off nothing
            continue
        came_from = cluster_id[target[max(origins, key=lambda old: (origins[old], -old))]]
        story_store.record_split(store, story_id, came_from, item_id=item_id, at=now)
        result.split += 1
