"""Health figures from the database, as Prometheus metric families and as JSON.

Every figure is computed from the tables at scrape time (the fetch log, the feeds, the
alert records), so the numbers survive restarts, agree with ``watcher status`` and
need no state in the daemon. Counters are sums over the ``fetches`` log: removing a feed
removes its fetches, which Prometheus sees as a counter reset.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from watcher.config import Config
from watcher.errors import StoreError
from watcher.normalize import utc_iso
from watcher.store import Store
from watcher.store import metrics as figures
from watcher.store.alerts import target_health

log = logging.getLogger("watcher.metrics")

DURATION_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
"""Upper bounds (seconds) of the fetch latency histogram; +Inf is added."""
FEED_STATES = ("ok", "failing", "disabled", "never_fetched")
POLL_OUTCOMES = ("ok", "not_modified", "unchanged", "error")
ENTRY_FATES = ("new", "near_duplicate", "duplicate", "off_topic", "empty")


def _epoch(stamp: str | None) -> float | None:
    if stamp is None:
        return None
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


@dataclass(frozen=True, slots=True)
class Latency:
    """Fetch durations: how many, their sum, and how many took at most each bound."""

    count: int
    sum: float
    buckets: dict[str, int]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The figures at one moment; :meth:`as_dict` is what ``watcher status --json`` prints."""

    generated_at: str
    polls: dict[str, int]
    entries: dict[str, int]
    fetch_duration_seconds: Latency
    feeds: dict[str, int]
    feeds_due: int
    queue_lag_seconds: float
    last_successful_poll: str | None
    items_stored: int
    alert_deliveries: dict[str, dict[str, int]]
    alert_targets_failing: list[str]
    poll_lag_seconds: dict[str, float | int]
    """How late the daemon's polls of the last hour ran behind their due times:
    ``polls`` (how many), ``p50``, ``p95``, ``max`` (at most the latest 10,000 polls)."""
    writer_queue: dict[str, int | str | None]
    """The writer's queue as the newest of those polls recorded it (``latest``), the most
    it held over them (``max``), and when that poll started (``at``)."""

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


_BOUNDS_MS = tuple(bound * 1000 for bound in DURATION_BUCKETS)


class FetchTally:
    """Fetch-log totals kept between scrapes, so that each scrape sums only the new rows.

    When the newest rows are gone (a removed feed's fetches are deleted with it) the
    totals are summed again from scratch, which Prometheus sees as a counter reset.
    """

    def __init__(self) -> None:
        self._totals: figures.FetchTotals | None = None
        self._lock = threading.Lock()

    def totals(self, store: Store) -> figures.FetchTotals:
        with self._lock:
            known = self._totals
            if known is None or figures.last_fetch_id(store) < known.last_id:
                self._totals = figures.fetch_totals(store, _BOUNDS_MS)
            else:
                later = figures.fetch_totals(store, _BOUNDS_MS, after_id=known.last_id)
                self._totals = known + later
            return self._totals


def read_snapshot(
    store: Store, *, now: datetime, fetches: figures.FetchTotals | None = None
) -> Snapshot:
    """Every figure, read from ``store`` as of ``now``; ``fetches`` saves the pass over the
    fetch log when the caller keeps running totals (:class:`FetchTally`)."""
    stamp = utc_iso(now)
    lag = figures.poll_lag(
        store, since=utc_iso(now - timedelta(seconds=figures.LAG_WINDOW_SECONDS))
    )
    if fetches is None:
        fetches = figures.fetch_totals(store, _BOUNDS_MS)
    feeds = figures.feed_totals(store, now=stamp)
    oldest = _epoch(feeds.oldest_due_at)
    buckets: dict[str, int] = {
        repr(bound): count for bound, count in zip(DURATION_BUCKETS, fetches.at_most, strict=True)
    }
    buckets["+Inf"] = fetches.timed
    return Snapshot(
        generated_at=stamp,
        polls={outcome: fetches.outcomes.get(outcome, 0) for outcome in POLL_OUTCOMES}
        | fetches.outcomes,
        entries={
            "new": fetches.new_items - fetches.near_duplicates,
            "near_duplicate": fetches.near_duplicates,
            "duplicate": fetches.duplicates,
            "off_topic": fetches.off_topic,
            "empty": fetches.empty,
        },
        fetch_duration_seconds=Latency(fetches.timed, fetches.duration_ms / 1000, buckets),
        feeds={state: feeds.states.get(state, 0) for state in FEED_STATES},
        feeds_due=feeds.due,
        queue_lag_seconds=0.0 if oldest is None else max(0.0, now.timestamp() - oldest),
        last_successful_poll=feeds.last_success_at,
        items_stored=store.count("items"),
        alert_deliveries=figures.alert_delivery_counts(store),
        alert_targets_failing=[h.target for h in target_health(store) if h.failing],
        poll_lag_seconds={
            "polls": lag.polls,
            "p50": lag.p50_ms / 1000,
            "p95": lag.p95_ms / 1000,
            "max": lag.max_ms / 1000,
        },
        writer_queue={
            "latest": lag.writer_queue,
            "max": lag.writer_queue_max,
            "at": lag.last_at,
        },
    )


def metric_families(snapshot: Snapshot) -> list[Metric]:
    """The Prometheus families of a snapshot."""
    polls = CounterMetricFamily(
        "watcher_polls", "Feed fetches by outcome, from the fetch log.", labels=["outcome"]
    )
    for outcome, count in snapshot.polls.items():
        polls.add_metric([outcome], count)
    entries = CounterMetricFamily(
        "watcher_entries",
        "Feed entries by what became of them (the fates add up to every entry fetched).",
        labels=["fate"],
    )
    for fate, count in snapshot.entries.items():
        entries.add_metric([fate], count)
    duration = snapshot.fetch_duration_seconds
    latency = HistogramMetricFamily(
        "watcher_fetch_duration_seconds",
        "Time from the start of a feed's fetch to its recorded outcome.",
        buckets=[(bound, float(count)) for bound, count in duration.buckets.items()],
        sum_value=duration.sum,
    )
    feeds = GaugeMetricFamily("watcher_feeds", "Feeds by state.", labels=["state"])
    for state, count in snapshot.feeds.items():
        feeds.add_metric([state], count)
    families: list[Metric] = [
        polls,
        entries,
        latency,
        feeds,
        GaugeMetricFamily(
            "watcher_feeds_due", "Enabled feeds due for a fetch now.", value=snapshot.feeds_due
        ),
        GaugeMetricFamily(
            "watcher_queue_lag_seconds",
            "How long the most overdue enabled feed has been due (0 when none is).",
            value=snapshot.queue_lag_seconds,
        ),
        GaugeMetricFamily(
            "watcher_items_stored", "Items in the corpus.", value=snapshot.items_stored
        ),
    ]
    lag = snapshot.poll_lag_seconds
    poll_lag = GaugeMetricFamily(
        "watcher_poll_lag_seconds",
        "How late the daemon's polls of the last hour ran behind their due times "
        "(p50, p95 and max over at most the latest 10,000 polls; 0 when none).",
        labels=["stat"],
    )
    for stat in ("p50", "p95", "max"):
        poll_lag.add_metric([stat], float(lag[stat]))
    families.append(poll_lag)
    families.append(
        GaugeMetricFamily(
            "watcher_poll_lag_polls",
            "Daemon polls the poll lag figures are taken over.",
            value=lag["polls"],
        )
    )
    queue = snapshot.writer_queue
    if queue["latest"] is not None:
        families.append(
            GaugeMetricFamily(
                "watcher_writer_queue",
                "Write jobs waiting for the single writer when the newest poll was recorded.",
                value=float(queue["latest"]),
            )
        )
        families.append(
            GaugeMetricFamily(
                "watcher_writer_queue_max",
                "The most write jobs waiting for the writer over the polls of the lag figures.",
                value=float(queue["max"] or 0),
            )
        )
    last = _epoch(snapshot.last_successful_poll)
    if last is not None:
        families.append(
            GaugeMetricFamily(
                "watcher_last_successful_poll_timestamp_seconds",
                "When a feed was last fetched successfully (Unix time).",
                value=last,
            )
        )
    deliveries = GaugeMetricFamily(
        "watcher_alert_deliveries",
        "Alert deliveries by target and status.",
        labels=["target", "status"],
    )
    for target, counts in snapshot.alert_deliveries.items():
        for status, count in counts.items():
            deliveries.add_metric([target, status], count)
    families.append(deliveries)
    families.append(
        GaugeMetricFamily(
            "watcher_alert_targets_failing",
            "Alert targets whose latest attempt failed.",
            value=len(snapshot.alert_targets_failing),
        )
    )
    return families


class DatabaseCollector(Collector):
    """Reads the figures from the database file at every scrape, with a Store of its own."""

    def __init__(self, db_path: Path | str, clock: Callable[[], datetime] | None = None) -> None:
        self.db_path = db_path
        self.clock = clock or (lambda: datetime.now(UTC))
        self.tally = FetchTally()

    def collect(self) -> Iterator[Metric]:
        try:
            store = Store.open_for_reading(self.db_path)
        except StoreError as error:
            log.error("metrics: %s", error)
            yield GaugeMetricFamily("watcher_database_up", "1 when the database was read.", 0)
            return
        try:
            snapshot = read_snapshot(store, now=self.clock(), fetches=self.tally.totals(store))
        except sqlite3.Error as error:
            log.error("metrics: cannot read %s: %s", self.db_path, error)
            yield GaugeMetricFamily("watcher_database_up", "1 when the database was read.", 0)
            return
        finally:
            store.close()
        yield GaugeMetricFamily("watcher_database_up", "1 when the database was read.", 1)
        yield from metric_families(snapshot)

    def warm_up(self) -> None:
        """Sum the fetch log once ahead of the first scrape (seconds on millions of rows)."""
        try:
            store = Store.open_for_reading(self.db_path)
        except StoreError:
            return
        try:
            self.tally.totals(store)
        except sqlite3.Error as error:
            log.error("metrics: cannot read %s: %s", self.db_path, error)
        finally:
            store.close()


@dataclass(frozen=True, slots=True)
class MetricsServer:
    """A running metrics endpoint; ``url`` is where to scrape it."""

    server: WSGIServer
    thread: threading.Thread
    warm_up: threading.Thread
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()
        self.warm_up.join()


def start_metrics_server(
    db_path: Path | str, host: str = "127.0.0.1", port: int = 9464
) -> MetricsServer:
    """Serve the database's metrics over HTTP from a daemon thread; ``port=0`` picks one.

    Each scrape opens its own Store, so this is safe beside the poller's writes. The
    fetch log is summed once in the background from the start, so the first scrape of a
    long log does not run into Prometheus's scrape timeout as often.
    """
    registry = CollectorRegistry()
    collector = DatabaseCollector(db_path)
    registry.register(collector)
    server, thread = start_http_server(port, addr=host, registry=registry)
    warm_up = threading.Thread(target=collector.warm_up, name="metrics-warm-up", daemon=True)
    warm_up.start()
    return MetricsServer(server, thread, warm_up, host, int(server.server_port))


def metrics_server_for(config: Config, db_path: Path | str) -> MetricsServer | None:
    """The ``[metrics]`` endpoint started when the config enables it, else None (daemon)."""
    settings = config.metrics
    if not settings.enabled:
        return None
    return start_metrics_server(db_path, settings.host, settings.port)
