"""When a feed is due again: its interval after success, exponential backoff after errors."""

from __future__ import annotations

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
