"""The database reads behind the metrics: fetch log totals, feed health, alert records."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from watcher.store.database import Store

FEED_STATE_SQL = (
    "CASE WHEN enabled = 0 THEN 'disabled' WHEN error_count > 0 THEN 'failing' "
    "WHEN last_fetch_at IS NOT NULL THEN 'ok' ELSE 'never_fetched' END"
)
"""A feed's state as ``watcher status`` shows it."""


@dataclass(frozen=True, slots=True)
class FetchTotals:
    """Sums over the rows of the ``fetches`` log up to ``last_id``."""

    outcomes: dict[str, int]
    entries: int
    new_items: int
    near_duplicates: int
    duplicates: int
    off_topic: int
    empty: int
    timed: int
    duration_ms: int
    at_most: tuple[int, ...]
    """How many timed fetches took at most each of the bucket bounds asked for."""
    last_id: int

    def __add__(self, later: FetchTotals) -> FetchTotals:
        """These totals and those of the rows after them."""
        outcomes = dict(self.outcomes)
        for outcome, count in later.outcomes.items():
            outcomes[outcome] = outcomes.get(outcome, 0) + count
        return FetchTotals(
            outcomes=outcomes,
            entries=self.entries + later.entries,
            new_items=self.new_items + later.new_items,
            near_duplicates=self.near_duplicates + later.near_duplicates,
            duplicates=self.duplicates + later.duplicates,
            off_topic=self.off_topic + later.off_topic,
            empty=self.empty + later.empty,
            timed=self.timed + later.timed,
            duration_ms=self.duration_ms + later.duration_ms,
            at_most=tuple(a + b for a, b in zip(self.at_most, later.at_most, strict=True)),
            last_id=max(self.last_id, later.last_id),
        )


def last_fetch_id(store: Store) -> int:
    return int(store.db.execute("SELECT COALESCE(MAX(id), 0) FROM fetches").fetchone()[0])


def fetch_totals(
    store: Store, bucket_bounds_ms: Sequence[float], *, after_id: int = 0
) -> FetchTotals:
    """Sums over the fetches with an id above ``after_id`` (all of them by default).

    Reading only the rows after the last ones summed keeps a scrape cheap when the log
    has millions of rows (a full pass over a million takes seconds).
    """
    upto = last_fetch_id(store)
    outcomes = {
        str(row[0]): int(row[1])
        for row in store.db.execute(
            "SELECT outcome, COUNT(*) FROM fetches WHERE id > ? AND id <= ? GROUP BY outcome",
            [after_id, upto],
        )
    }
    buckets = "".join(f", SUM(duration_ms <= {float(bound)!r})" for bound in bucket_bounds_ms)
    row = store.db.execute(
        "SELECT TOTAL(entries), TOTAL(new_items), TOTAL(near_duplicates), TOTAL(duplicates), "
        "TOTAL(off_topic), TOTAL(empty), COUNT(duration_ms), TOTAL(duration_ms)"
        f"{buckets} FROM fetches WHERE id > ? AND id <= ?",
        [after_id, upto],
    ).fetchone()
    return FetchTotals(
        outcomes=outcomes,
        entries=int(row[0]),
        new_items=int(row[1]),
        near_duplicates=int(row[2]),
        duplicates=int(row[3]),
        off_topic=int(row[4]),
        empty=int(row[5]),
        timed=int(row[6]),
        duration_ms=int(row[7]),
        at_most=tuple(int(value or 0) for value in row[8:]),
        last_id=max(upto, after_id),
    )


@dataclass(frozen=True, slots=True)
class FeedTotals:
    states: dict[str, int]
    due: int
    oldest_due_at: str | None
    """The earliest due time among enabled feeds due at ``now`` (never fetched: created)."""
    last_success_at: str | None


def feed_totals(store: Store, *, now: str) -> FeedTotals:
    states = {
        str(row[0]): int(row[1])
        for row in store.db.execute(f"SELECT {FEED_STATE_SQL}, COUNT(*) FROM feeds GROUP BY 1")
    }
    due, oldest = store.db.execute(
        "SELECT COUNT(*), MIN(COALESCE(next_due_at, created_at)) FROM feeds "
        "WHERE enabled = 1 AND COALESCE(next_due_at, created_at) <= ?",
        [now],
    ).fetchone()
    last = store.db.execute("SELECT MAX(last_success_at) FROM feeds").fetchone()[0]
    return FeedTotals(states=states, due=int(due), oldest_due_at=oldest, last_success_at=last)


def feed_health(store: Store) -> list[dict[str, object]]:
    """One record per feed, for scripts (``watcher status --json``)."""
    cursor = store.db.execute(
        f"SELECT id, url, title, {FEED_STATE_SQL} AS state, enabled = 1 AS enabled, "
        "disabled_reason, last_fetch_at, last_success_at, last_status, error_count, "
        "last_error, next_due_at FROM feeds ORDER BY id"
    )
    names = [column[0] for column in cursor.description]
    records = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    for record in records:
        record["enabled"] = bool(record["enabled"])
    return records


def alert_delivery_counts(store: Store) -> dict[str, dict[str, int]]:
    """Deliveries per target and status."""
    counts: dict[str, dict[str, int]] = {}
    for target, status, count in store.db.execute(
        "SELECT target, status, COUNT(*) FROM alert_deliveries GROUP BY target, status "
        "ORDER BY target, status"
    ):
        counts.setdefault(str(target), {})[str(status)] = int(count)
    return counts


LAG_WINDOW_SECONDS = 3600
LAG_WINDOW_POLLS = 10_000
"""Poll lag is summed over the daemon's polls of the last hour, at most the latest 10,000
(a quarter of an hour at 10,000 feeds polled every 15 minutes), so reading it stays cheap
on a long fetch log: only the newest rows are read, by id."""


@dataclass(frozen=True, slots=True)
class PollLag:
    """How late the daemon's recent polls ran behind their due times (ms, nearest rank),
    and the writer's queue recorded with them; zeros and None when there were none."""

    polls: int
    p50_ms: int
    p95_ms: int
    max_ms: int
    writer_queue: int | None
    """Write jobs waiting for the writer when the newest of those polls was recorded."""
    writer_queue_max: int | None
    last_at: str | None
    """When the newest of those polls started."""


def _rank(ordered: Sequence[int], share: float) -> int:
    if not ordered:
        return 0
    rank = -(-len(ordered) * share // 1)  # ceil
    return ordered[max(1, min(len(ordered), int(rank))) - 1]


def poll_lag(store: Store, *, since: str, last: int = LAG_WINDOW_POLLS) -> PollLag:
    """The lag of the daemon's polls that started at ``since`` or later, among the latest
    ``last`` rows of the fetch log (one-shot polls record no lag and are left out)."""
    rows = store.db.execute(
        "SELECT lag_ms, writer_queue, started_at FROM fetches "
        "WHERE id > (SELECT COALESCE(MAX(id), 0) FROM fetches) - ? "
        "AND lag_ms IS NOT NULL AND started_at >= ? ORDER BY id",
        [last, since],
    ).fetchall()
    lags = sorted(int(row[0]) for row in rows)
    queues = [int(row[1]) for row in rows if row[1] is not None]
    return PollLag(
        polls=len(lags),
        p50_ms=_rank(lags, 0.5),
        p95_ms=_rank(lags, 0.95),
        max_ms=lags[-1] if lags else 0,
        writer_queue=queues[-1] if queues else None,
        writer_queue_max=max(queues) if queues else None,
        last_at=str(rows[-1][2]) if rows else None,
    )
