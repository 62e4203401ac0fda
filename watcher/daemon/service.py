"""The daemon: one APScheduler job per feed at its due time, cron jobs, reloads, clean stops.

Cron jobs are the config's digests and alert delivery (watcher/daemon/jobs.py); the metrics
endpoint runs beside them when ``[metrics] enabled = true``.

When a feed is due lives in the database (``feeds.next_due_at``, set by the pipeline from
the adaptive interval, backoff and Retry-After). Each feed has one date-triggered job that
fires at that time plus jitter; when a refresh ends, the job is set again from the row the
refresh just wrote. So a restart resumes the schedule, and every rule that moves a due
time lives in one place (``watcher/backoff.py``).

Everything runs on one event loop, so the Store is used from one thread; cron jobs run in
worker threads of their own and open their own Store.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import signal
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Coroutine
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from watcher import late_leads
from watcher.config import Config
from watcher.daemon import logs
from watcher.daemon.cron import CronJob, CronJobSource, no_cron_jobs
from watcher.daemon.lock import DaemonLock
from watcher.daemon.plan import RETRY_SECONDS, cron_trigger, fire_time, reprobe_check_every
from watcher.daemon.reload import ConfigSource
from watcher.errors import ConfigError, DatabaseFault
from watcher.metrics import MetricsServer, metrics_server_for
from watcher.normalize import utc_iso
from watcher.pipeline import FeedOutcome
from watcher.poll import Poller, prune_fetch_log
from watcher.store import Store
from watcher.store.faults import as_fault

log = logging.getLogger("watcher.daemon")

CRON_THREADS = 2
FEED_JOB = "feed:"
CRON_JOB = "cron:"


PRUNE_EVERY = 86400.0
PRUNE_FIRST_AFTER = 600.0
"""The fetch log is trimmed once a day, first ten minutes after the start (not in the rush
of the first pass)."""


LAG_WARN_SECONDS = 60.0
LAG_WARN_AFTER = 300.0
LAG_CHECK_EVERY = 60.0
"""The daemon warns when the p95 lag of the polls of each check (every minute) stays over
a minute for five minutes in a row: feeds run late and the machine is past its capacity
(docs/scaling.md)."""


def _now() -> datetime:
    return datetime.now(UTC)


def _percentile(ordered: list[float], share: float) -> float:
    """The nearest-rank percentile of sorted values (``share`` 0-1)."""
    rank = max(1, -(-len(ordered) * share // 1))
    return ordered[min(len(ordered), int(rank)) - 1]


class LagWatch:
    """How late the daemon's polls run, checked every ``check_every`` seconds: a warning
    once the p95 lag of the polls since the last check has stayed over ``threshold`` for
    ``sustained`` seconds (repeated every ``sustained`` seconds while it lasts), and a line
    when the feeds are back on time. Times are ``time.monotonic()`` seconds."""

    def __init__(
        self,
        *,
        threshold: float = LAG_WARN_SECONDS,
        sustained: float = LAG_WARN_AFTER,
        check_every: float = LAG_CHECK_EVERY,
    ) -> None:
        self.threshold = threshold
        self.sustained = sustained
        self.check_every = check_every
        self._lags: deque[float] = deque(maxlen=100_000)
        self.late_since: float | None = None
        self._warned_at: float | None = None

    def add(self, lag_seconds: float) -> None:
        self._lags.append(lag_seconds)

    def check(
        self, now: float, *, writer_queue: int = 0
    ) -> tuple[int, str, dict[str, object]] | None:
        """Take the polls since the last check; the log line to write, if any, as (level,
        message, fields)."""
        lags = sorted(self._lags)
        self._lags.clear()
        if not lags:
            return None  # no poll ended: nothing to judge by (the metrics show overdue feeds)
        fields: dict[str, object] = {
            "polls": len(lags),
            "lag_p50_s": round(_percentile(lags, 0.5), 1),
            "lag_p95_s": round(_percentile(lags, 0.95), 1),
            "lag_max_s": round(lags[-1], 1),
            "writer_queue": writer_queue,
        }
        if _percentile(lags, 0.95) <= self.threshold:
            warned = self._warned_at is not None
            self.late_since = self._warned_at = None
            if warned:
                return logging.INFO, "feeds back on time", fields
            return None
        if self.late_since is None:
            self.late_since = now - self.check_every
        late_for = now - self.late_since
        due = self._warned_at is None or now - self._warned_at >= self.sustained
        if late_for >= self.sustained and due:
            self._warned_at = now
            fields["late_for_s"] = round(late_for)
            return logging.WARNING, "feeds running late", fields
        return None


class Daemon:
    """``await Daemon(...).run(stop)`` serves until ``stop`` is set, then stops cleanly.

    A stop cancels refreshes still waiting on the network or the worker pool: their feeds
    keep their old validators and are fetched again after a restart. A batch being
    written is never cut: the writer thread writes a batch it has started whole, and
    the pass is closed only after the writer has written what it was sent. Running cron
    jobs are waited for.
    """

    def __init__(
        self,
        config: Config,
        *,
        config_path: Path,
        db_path: Path,
        cron_jobs: CronJobSource = no_cron_jobs,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.config_path = config_path
        self.db_path = db_path
        self.cron_jobs = cron_jobs
        self.rng = rng or random.Random()
        self.source = ConfigSource(config_path)
        self.scheduler = AsyncIOScheduler(
            timezone=UTC,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        self._store: Store | None = None
        self._poller: Poller | None = None
        self._leases: Counter[int] = Counter()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._refreshing: set[int] = set()
        self._outcomes: dict[int, FeedOutcome] = {}
        self._unrecorded: Counter[int] = Counter()
        """Refreshes in a row that ended without recording anything on the feed (its due
        time in the database is then stale): the next try waits for them."""
        self._stop: asyncio.Event | None = None
        self.fault: DatabaseFault | None = None
        """The damage that stopped the daemon; :func:`run_daemon` raises it."""
        self._cron_names: set[str] = set()
        self._after_new_items: set[str] = set()
        self._metrics: MetricsServer | None = None
        self._cron_threads = ThreadPoolExecutor(CRON_THREADS, thread_name_prefix="watcher-cron")
        self._stopping = False
        self._reloading = asyncio.Lock()
        self._fire_at: dict[int, datetime] = {}
        """When each feed's job was set to fire: the due time its poll's lag counts from."""
        self.lag_watch = LagWatch()

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("the daemon is not running")
        return self._store

    # lifetime ------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        self._stop = stop
        self._store = Store.open(self.db_path, check=True)
        try:
            self.store.sync_config(self.config, utc_iso(_now()))
            self._poller = await self._open_poller(self.config)
            self.scheduler.start()
            self._sync_feed_jobs()
            self._schedule_housekeeping()
            self._schedule_cron_jobs()
            self._metrics = metrics_server_for(self.config, self.db_path)
            log.info(
                "started",
                extra={
                    "feeds": len(self.store.enabled_feed_ids()),
                    "db": str(self.db_path),
                    "config": str(self.config_path),
                },
            )
            await stop.wait()
        finally:
            await self._shutdown()

    async def _shutdown(self) -> None:
        self._stopping = True
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        pending = [task for task in self._tasks if not task.done()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        # a digest being mailed finishes: it cannot be cut off halfway
        await asyncio.to_thread(self._cron_threads.shutdown, True)
        if self._poller is not None:
            try:  # what the last window stored gets its clustering before the writer stops
                await self._poller.cluster_pending()
            except DatabaseFault:
                pass  # reported where it was found; nothing more can be written
            except Exception:
                log.exception("clustering the last window's stories failed")
            await self._poller.__aexit__(None, None, None)
            self._poller = None
        if self._store is not None:
            self._store.close()
            self._store = None
        if self._metrics is not None:
            self._metrics.close()
            self._metrics = None
        log.info("stopped", extra={"interrupted": len(pending)})

    def request_reload(self, reason: str) -> None:
        """Reload from a signal handler: runs as a task on the loop."""
        if not self._stopping:
            self._spawn(self.reload(reason))

    def _spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # the poller ----------------------------------------------------------

    async def _open_poller(self, config: Config) -> Poller:
        poller = Poller(config, self.store)
        await poller.__aenter__()
        return poller

    @contextlib.asynccontextmanager
    async def _lease(self) -> AsyncIterator[Poller]:
        """The current Poller, kept open while used even when a reload replaces it."""
        poller = self._poller
        if poller is None:
            raise RuntimeError("the daemon is not running")
        self._leases[id(poller)] += 1
        try:
            yield poller
        finally:
            self._leases[id(poller)] -= 1
            if poller is not self._poller and self._leases[id(poller)] <= 0:
                del self._leases[id(poller)]
                await poller.__aexit__(None, None, None)

    # feeds ---------------------------------------------------------------

    def _sync_feed_jobs(self) -> None:
        """One job per enabled feed: add the missing ones, drop those of disabled feeds."""
        enabled = set(self.store.enabled_feed_ids())
        scheduled = {
            int(job.id.removeprefix(FEED_JOB))
            for job in self.scheduler.get_jobs()
            if job.id.startswith(FEED_JOB)
        }
        for feed_id in sorted(enabled - scheduled - self._refreshing):
            self._schedule_feed(feed_id)
        for feed_id in scheduled - enabled:
            self.scheduler.remove_job(f"{FEED_JOB}{feed_id}")

    def _retry_delay(self, feed_id: int) -> float:
        """Seconds to wait at least before the feed's next try: none after a refresh that
        recorded its outcome (the database's due time holds every backoff rule), else
        doubling from a minute with each such refresh in a row, up to the maximum
        backoff."""
        failures = self._unrecorded.get(feed_id, 0)
        if not failures:
            return 0.0
        return float(min(RETRY_SECONDS * 2 ** (failures - 1), self.config.poll.max_backoff))

    def _schedule_feed(self, feed_id: int, *, not_before: float = 0.0) -> None:
        """Set the feed's job to fire at its due time from the database (plus jitter), and
        no sooner than ``not_before`` seconds from now."""
        job_id = f"{FEED_JOB}{feed_id}"
        now = _now()
        try:
            schedule = self.store.feed_schedule(feed_id)
        except Exception:
            log.exception("cannot read the schedule of a feed", extra={"feed_id": feed_id})
            when = now + timedelta(seconds=RETRY_SECONDS)
        else:
            if schedule is None or not schedule.enabled:
                if self.scheduler.get_job(job_id) is not None:
                    self.scheduler.remove_job(job_id)
                return
            interval = schedule.interval or self.config.poll.default_interval
            when = fire_time(
                schedule.next_due_at,
                now=now,
                interval=interval,
                jitter=self.config.daemon.jitter,
                rng=self.rng,
            )
        when = max(when, now + timedelta(seconds=not_before))
        self._fire_at[feed_id] = when
        self.scheduler.add_job(
            self._refresh,
            DateTrigger(when),
            args=[feed_id],
            id=job_id,
            replace_existing=True,
        )

    async def _refresh(self, feed_id: int) -> None:
        task = self._track()
        self._refreshing.add(feed_id)
        # APScheduler counts the job as running until its own callback on this task has
        # run; it was added first, so rescheduling from a later callback never meets
        # "maximum number of running instances reached" (which would drop the job).
        task.add_done_callback(functools.partial(self._after_refresh, feed_id))
        try:
            due = self._fire_at.pop(feed_id, None)
            state = self.store.feed_state(feed_id)
            if state is None:
                return
            async with self._lease() as poller:
                self._outcomes[feed_id] = await poller.refresh(state, due=due)
        except asyncio.CancelledError:
            return  # stopping: the batch was not begun, or was committed whole
        except Exception as error:
            fault = as_fault(error, str(self.db_path))
            if fault is None:
                log.exception("refresh failed", extra={"feed_id": feed_id})
            elif fault.reason == "corrupt":
                self._stop_for(fault)
            else:  # locked, read-only, full: the feed tries again later
                log.error("refresh failed: %s", fault, extra={"feed_id": feed_id})
            self._unrecorded[feed_id] += 1

    def _stop_for(self, fault: DatabaseFault) -> None:
        """Stop serving: the database file is damaged, and nothing more may be written."""
        if self.fault is None:
            self.fault = fault
            log.error("stopping: %s", fault)
        if self._stop is not None:
            self._stop.set()

    def _after_refresh(self, feed_id: int, _task: asyncio.Task[Any]) -> None:
        self._refreshing.discard(feed_id)
        outcome = self._outcomes.pop(feed_id, None)
        if self._stopping:
            return
        if outcome is not None:
            self._unrecorded.pop(feed_id, None)
        self._schedule_feed(feed_id, not_before=self._retry_delay(feed_id))
        if outcome is not None:
            if outcome.lag_ms is not None:
                self.lag_watch.add(outcome.lag_ms / 1000)
            self._log_poll(feed_id, outcome)
            if outcome.new_items:
                self._run_soon(self._after_new_items)

    def _run_soon(self, job_ids: set[str]) -> None:
        """Move these cron jobs' next run to now (a run under way is not doubled)."""
        for job_id in job_ids:
            if self.scheduler.get_job(job_id) is not None:
                self.scheduler.modify_job(job_id, next_run_time=_now())

    def _log_poll(self, feed_id: int, outcome: FeedOutcome) -> None:
        """The one line per refresh: feed, status, new items, time, and when it is next."""
        job = self.scheduler.get_job(f"{FEED_JOB}{feed_id}")
        fields: dict[str, object] = {
            "feed": outcome.url,
            "status": outcome.status,
            "new_items": outcome.new_items,
            "entries": outcome.counts.entries,
            "duration_ms": outcome.duration_ms,
            "lag_ms": outcome.lag_ms,
            "next_run": utc_iso(job.next_run_time) if job is not None else None,
        }
        if outcome.error is not None:
            fields["error_kind"] = outcome.error_kind
            fields["error"] = outcome.error
        level = logging.WARNING if outcome.status == "failed" else logging.INFO
        log.log(level, "poll", extra=fields)

    def _track(self) -> asyncio.Task[Any]:
        """Count the running job's task among those a stop cancels and waits for."""
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("not called from a task")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # lag -------------------------------------------------------------------

    def _check_lag(self) -> None:
        """Warn when feeds have run late for several minutes (:class:`LagWatch`)."""
        poller = self._poller
        queue = poller.writer_queue() if poller is not None else 0
        line = self.lag_watch.check(time.monotonic(), writer_queue=queue)
        if line is not None:
            level, message, fields = line
            log.log(level, message, extra=fields)

    # disabled feeds --------------------------------------------------------

    async def _reprobe(self) -> None:
        """Try the feeds a server disabled (410) once per ``reprobe_interval``; one that
        answers is polled again."""
        self._track()
        try:
            cutoff = _now() - timedelta(seconds=self.config.daemon.reprobe_interval)
            for state in self.store.reprobe_candidates(tried_before=utc_iso(cutoff)):
                async with self._lease() as poller:
                    outcome = await poller.refresh(state)
                if outcome.status == "failed":
                    log.info(
                        "reprobe",
                        extra={"feed": state.url, "status": "failed", "error": outcome.error},
                    )
                    continue
                self.store.enable_feed(state.id)
                log.warning("reprobe", extra={"feed": state.url, "status": "re-enabled"})
                self._schedule_feed(state.id)
        except asyncio.CancelledError:
            return
        except Exception:
            log.exception("reprobe failed")

    async def _tidy_stories(self) -> None:
        """Correct the stories of the items still waiting for it and encode the story leads
        the window lacks once it holds both scripts (:meth:`Poller.tidy_stories`), then
        cluster what no clustering has taken yet, as a ``watcher poll`` pass ends
        (:meth:`Poller.cluster_pending`). Unlike a pass, the daemon settles each batch's
        stories as it is stored (a batch of 20 or more clustered, a smaller one matched item
        by item and corrected every 20 items): alerts go out right after a refresh, on the
        stories it leaves (docs/alerts.md)."""
        self._track()
        try:
            async with self._lease() as poller:
                done = await poller.tidy_stories()
                await poller.cluster_pending()
        except asyncio.CancelledError:
            return
        except DatabaseFault as fault:
            self._stop_for(fault)
            return
        except Exception:
            log.exception("tidying the stories failed")
            return
        if done:
            log.info("late leads", extra={"items": done})

    async def _prune(self) -> None:
        """Trim the fetch log to ``[poll] keep_fetches``, in a thread with a connection of
        its own, so the event loop goes on polling meanwhile."""
        self._track()
        try:
            removed = await asyncio.to_thread(self._prune_fetch_log, self.config)
        except asyncio.CancelledError:
            return
        except Exception:
            log.exception("pruning the fetch log failed")
            return
        if removed:
            log.info("prune", extra={"fetches": removed})

    def _prune_fetch_log(self, config: Config) -> int:
        store = Store.open(self.db_path)
        try:
            return prune_fetch_log(store, config, _now())
        finally:
            store.close()

    # config ----------------------------------------------------------------

    async def _watch(self) -> None:
        """Reload when the config file changed; pick up feeds added with `watcher feeds add`."""
        self._track()
        try:
            if self.source.changed():
                await self.reload("config file changed")
            else:
                self._sync_feed_jobs()
        except asyncio.CancelledError:
            return
        except Exception:
            log.exception("config check failed")

    async def reload(self, reason: str) -> None:
        """Read the config again and apply it: topics, feeds, cron jobs, [daemon] and
        [poll] settings. A broken file is reported and the running config kept."""
        async with self._reloading:  # two SIGHUPs in a row apply one after the other
            await self._reload(reason)

    async def _reload(self, reason: str) -> None:
        try:
            config = self.source.load()
        except ConfigError as error:
            log.error("reload failed, keeping the running config", extra={"error": str(error)})
            return
        old = self.config
        self.store.sync_config(config, utc_iso(_now()))
        self.config = config
        if config.poll != old.poll:
            try:
                poller = await self._open_poller(config)
            except ConfigError as error:  # [poll] executor unusable: the running poller goes on
                log.error(
                    "reload: keeping the running [poll] settings", extra={"error": str(error)}
                )
                config = config.model_copy(update={"poll": old.poll})
                self.config = config
                if self._poller is not None:
                    self._poller.config = config
            else:
                replaced, self._poller = self._poller, poller
                if replaced is not None and self._leases[id(replaced)] <= 0:
                    self._leases.pop(id(replaced), None)
                    await replaced.__aexit__(None, None, None)
        elif self._poller is not None:
            self._poller.config = config
        self._sync_feed_jobs()
        self._schedule_housekeeping()
        self._schedule_cron_jobs()
        log.info(
            "reload",
            extra={
                "reason": reason,
                "feeds": len(self.store.enabled_feed_ids()),
                "topics": len(config.topics),
            },
        )

    def _schedule_housekeeping(self) -> None:
        daemon = self.config.daemon
        self.scheduler.add_job(
            self._reprobe,
            IntervalTrigger(seconds=reprobe_check_every(daemon.reprobe_interval)),
            id="reprobe",
            replace_existing=True,
            next_run_time=_now(),
        )
        self.scheduler.add_job(
            self._prune,
            IntervalTrigger(seconds=PRUNE_EVERY),
            id="prune",
            replace_existing=True,
            next_run_time=_now() + timedelta(seconds=PRUNE_FIRST_AFTER),
        )
        self.scheduler.add_job(
            self._tidy_stories,
            IntervalTrigger(seconds=late_leads.CATCH_UP_EVERY),
            id="stories",
            replace_existing=True,
        )
        self.scheduler.add_job(
            self._check_lag,
            IntervalTrigger(seconds=self.lag_watch.check_every),
            id="lag",
            replace_existing=True,
        )
        if daemon.watch_config is None:
            if self.scheduler.get_job("watch") is not None:
                self.scheduler.remove_job("watch")
        else:
            self.scheduler.add_job(
                self._watch,
                IntervalTrigger(seconds=daemon.watch_config),
                id="watch",
                replace_existing=True,
            )

    # cron jobs -------------------------------------------------------------

    def _schedule_cron_jobs(self) -> None:
        try:
            jobs = list(self.cron_jobs(self.config, self.db_path))
        except Exception:
            log.exception("cannot list the cron jobs; keeping the scheduled ones")
            return
        wanted: set[str] = set()
        self._after_new_items = set()
        for job in jobs:
            try:
                trigger = cron_trigger(job.crontab, job.timezone)
            except ValueError as error:
                log.error("cron job skipped", extra={"job": job.name, "error": str(error)})
                continue
            job_id = f"{CRON_JOB}{job.name}"
            wanted.add(job_id)
            if job.after_new_items:
                self._after_new_items.add(job_id)
            self.scheduler.add_job(
                self._run_cron, trigger, args=[job], id=job_id, replace_existing=True
            )
        for job_id in self._cron_names - wanted:
            if self.scheduler.get_job(job_id) is not None:
                self.scheduler.remove_job(job_id)
        self._cron_names = wanted

    async def _run_cron(self, job: CronJob) -> None:
        """Run ``job`` in a worker thread; the event loop goes on polling meanwhile."""
        started = _now()
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._cron_threads, job.run, started)
        except asyncio.CancelledError:
            return  # stopping; the thread runs to its end and _shutdown waits for it
        except Exception as error:
            log.exception("cron", extra={"job": job.name, "status": "failed", "error": str(error)})
            return
        duration = int((_now() - started).total_seconds() * 1000)
        log.info("cron", extra={"job": job.name, "status": "ok", "duration_ms": duration})


def run_daemon(
    config: Config,
    *,
    config_path: Path,
    db_path: Path,
    cron_jobs: CronJobSource = no_cron_jobs,
    log_format: logs.LogFormat | None = None,
    verbose: bool = False,
) -> None:
    """Serve until SIGTERM/SIGINT; SIGHUP reloads the config. Raises DaemonAlreadyRunning
    when another daemon holds the database."""
    logs.configure(log_format or config.daemon.log_format, verbose=verbose)
    with DaemonLock(db_path):
        asyncio.run(_serve(config, config_path, db_path, cron_jobs))


async def _serve(
    config: Config, config_path: Path, db_path: Path, cron_jobs: CronJobSource
) -> None:
    stop = asyncio.Event()
    daemon = Daemon(config, config_path=config_path, db_path=db_path, cron_jobs=cron_jobs)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGHUP, daemon.request_reload, "SIGHUP")
    await daemon.run(stop)
    if daemon.fault is not None:
        raise daemon.fault
