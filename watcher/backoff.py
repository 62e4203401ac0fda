"""When a feed is due again: its interval after success, exponential backoff after errors,
and the interval itself adapted to how often the feed publishes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

MIN_RETRY_SECONDS = 60.0


def next_due(
    now: datetime,
    *,
    interval: float,
    error_count: int,
    max_backoff: float,
    retry_after: float | None = None,
) -> datetime:
    """The next time to fetch a feed.

    ``error_count`` counts consecutive failures including the one just recorded
    (0 after a success). Backoff doubles from one minute and is capped by
    ``max_backoff`` but never gives up: a feed that looks dead often comes back.
    A server's ``Retry-After`` is honoured when it asks for longer.
    """
    if error_count <= 0:
        delay = interval
    else:
        delay = min(max_backoff, MIN_RETRY_SECONDS * 2 ** min(error_count - 1, 30))
        delay = max(delay, min(interval, max_backoff) if error_count > 3 else 0.0)
    if retry_after is not None:
        delay = max(delay, min(retry_after, 7 * 86400.0))
    return now + timedelta(seconds=delay)


HISTORY = 10
"""Fetches an adaptive interval looks back on (the one just made included)."""
MIN_HISTORY = 3
"""Below this many fetches a feed keeps the interval it has: too little to judge it by."""
HIT_RATE = 0.5
"""The share of fetches that should find something new: at 0.5 a feed is fetched about twice
per new entry, so a new entry waits half an interval on average and few fetches are wasted."""


@dataclass(frozen=True, slots=True)
class Fetched:
    """One earlier successful fetch of a feed: when, and how many new items it brought."""

    at: datetime
    new_items: int


def adaptive_interval(
    now: datetime,
    *,
    new_items: int,
    history: Sequence[Fetched],
    current: float,
    low: float,
    high: float,
) -> float:
    """The interval after a successful fetch, from how often the feed published lately.

    ``history`` lists the feed's earlier successful fetches, newest first; ``new_items`` is
    what the fetch made at ``now`` brought. Over the last :data:`HISTORY` fetches, the mean
    time between fetches that found something new, times :data:`HIT_RATE`, is the target: a
    feed that has news at every fetch is fetched more often, one that rarely has any less
    often. Each step at most halves or doubles ``current``, so one burst or one quiet night
    does not swing the schedule, and the result stays within ``[low, high]``.
    """
    fetches = [Fetched(now, new_items), *history[: HISTORY - 1]]
    if len(fetches) < MIN_HISTORY:
        return min(max(current, low), high)
    span = (now - fetches[-1].at).total_seconds()
    # the oldest fetch only opens the span: what it found was published before it
    hits = sum(1 for fetch in fetches[:-1] if fetch.new_items > 0)
    target = HIT_RATE * max(span, 0.0) / hits if hits else float("inf")
    stepped = min(max(target, current / 2), current * 2)
    return min(max(stepped, low), high)
