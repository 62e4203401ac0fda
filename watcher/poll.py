"""Polling many feeds: concurrent downloads, preparation on every core, one writer thread.

A :class:`Poller` holds what outlives one feed (the HTTP client, the worker pool, the
writer and the limits on what waits between them), so the daemon keeps one for its
lifetime; :func:`poll_feeds` is one pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import TracebackType

from watcher import fork_server, prepare
from watcher.config import Config
from watcher.dask_pool import open_pool
from watcher.dedupe_settings import from_config
from watcher.errors import DatabaseFault
from watcher.fulltext import FullText, enabled_anywhere
from watcher.models import EntryCounts, FeedState
from watcher.normalize import utc_iso
from watcher.pass_state import defer_matching, hold_corrections
from watcher.pipeline import STORE_FAILED, Clock, FeedOutcome, Stages, refresh_feed
from watcher.prepare import run_prepare_job
from watcher.sources.fetch import Fetcher, FetchSettings
from watcher.store import Store
from watcher.store.stories import mark_clustered, pending
from watcher.workers import JobRunner, PreparePool
from watcher.writer import CAPACITY, Writer

log = logging.getLogger(__name__)


PASS_PART_ITEMS = 1000
"""Items of a pass clustered at once, in time order, each part with up to half as many
recent members of its stories and of the stories its index terms point to. A story split
by a part's edge is whole again only if a later part's items find it, so larger parts
give stories closer to one clustering of the whole pass: on the 2,000 items of the quick
poll benchmark, pairwise F1 against one part 0.76 in parts of 500, 0.96 in parts of
1,000, for 0.1 CPU-s more and 33 MB more peak in the writer's process (one part: 66 MB
and 0.5 CPU-s more; an import's parts hold 2,000)."""


def _begin_pass(store: Store) -> None:
    """Hold the per-batch corrections for a pass and leave what the clustering at its end
    decides anyway (:meth:`Poller.poll` clusters its items there)."""
    hold_corrections(store, held=True)
    defer_matching(store, deferred=True)


def _end_pass(store: Store) -> None:
    hold_corrections(store, held=False)
    defer_matching(store, deferred=False)


@dataclass(slots=True)
class PollSummary:
    outcomes: list[FeedOutcome] = field(default_factory=list)

    def _count(self, status: str) -> int:
        return sum(1 for outcome in self.outcomes if outcome.status == status)

    @property
    def ok(self) -> int:
        return self._count("ok")

    @property
    def not_modified(self) -> int:
        return self._count("not_modified") + self._count("unchanged")

    @property
    def failed(self) -> int:
        return self._count("failed")

    @property
    def counts(self) -> EntryCounts:
        """Where the entries of every feed of the pass went."""
        total = EntryCounts()
        for outcome in self.outcomes:
            total.add(outcome.counts)
        return total

    @property
    def new_items(self) -> int:
        return self.counts.new_items

    @property
    def nothing_stored(self) -> bool:
        """Some feed had entries to store and none could be written."""
        return self.ok == 0 and any(o.error_kind == STORE_FAILED for o in self.outcomes)

    def line(self) -> str:
        return (
            f"{len(self.outcomes)} feeds: {self.ok} ok, {self.not_modified} not modified, "
            f"{self.failed} failed; {self.counts.line()}"
        )


def fetch_settings(config: Config) -> FetchSettings:
    poll = config.poll
    return FetchSettings(
        user_agent=poll.user_agent,
        connect_timeout=poll.connect_timeout,
        read_timeout=poll.read_timeout,
        deadline=poll.deadline,
        max_bytes=poll.max_bytes,
        max_redirects=poll.max_redirects,
        concurrency=poll.concurrency,
        per_host=poll.per_host,
    )


def worker_count(config: Config) -> int:
    return config.poll.workers or fork_server.cores()


def utc_now() -> datetime:
    return datetime.now(UTC)


class Poller:
    """Refreshes feeds with one HTTP client, one worker pool and one writer.

    Use as ``async with Poller(config, store) as poller: await poller.poll(feeds)``.
    ``workers`` defaults to ``[poll].workers``; ``runner`` is what the workers run
    (tests pass one that crashes or hangs). ``[poll] executor`` picks where they run: the
    local process pool, or a Dask cluster (:mod:`watcher.dask_pool`, imported only then).
    """

    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        clock: Clock = utc_now,
        workers: int | None = None,
        runner: JobRunner = run_prepare_job,
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self._workers = worker_count(config) if workers is None else workers
        self._runner = runner
        self._fetcher: Fetcher | None = None
        self._pool: PreparePool | None = None
        self._full_text: FullText | None = None
        self._writer: Writer | None = None
        self._stages: Stages | None = None

    async def __aenter__(self) -> Poller:
        try:
            await self._open()
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def _open(self) -> None:
        # a fork server not started yet (the daemon's) loads the lead encoder for every
        # worker only where the store has been encoding both scripts lately
        os.environ.setdefault(
            fork_server.ENCODER, "1" if fork_server.encoder_in_use(self.store.path) else "0"
        )
        # first: a scheduler that is not there is reported before anything starts
        self._pool = await open_pool(
            self.config.poll.executor,
            self._workers,
            timeout=self.config.poll.parse_timeout,
            runner=self._runner,
        )
        workers = self._pool.workers
        self._writer = Writer(self.store.path)
        await self._writer.start()
        self._fetcher = Fetcher(fetch_settings(self.config))
        full_text = enabled_anywhere(self.config)
        if full_text:
            importlib.import_module("watcher.extract")  # before the fork: workers share it
            self._full_text = FullText(
                self.config, self.store, self._fetcher, self._pool, self._writer
            )
        self._stages = Stages(
            fetcher=self._fetcher,
            prepare=self._pool.prepare,
            writer=self._writer,
            bodies=asyncio.Semaphore(self.config.poll.concurrency + 2 * workers),
            batches=asyncio.Semaphore(2 * workers + CAPACITY),
            full_text=self._full_text,
            writer_queue=self.writer_queue,
        )

    def writer_queue(self) -> int:
        """Write jobs sent to the writer and not yet done."""
        return 0 if self._writer is None else self._writer.waiting

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc is None and self._writer is not None and self._writer.fault is None:
            with contextlib.suppress(Exception):  # the stories stay as ingest left them
                await self._correct_waiting(self._writer)
        if self._pool is not None:
            await self._pool.aclose()
            self._pool = None
        if self._fetcher is not None:
            await self._fetcher.__aexit__(exc_type, exc, traceback)
        if self._writer is not None:
            await self._writer.close()  # what was sent to it is written before it stops
        self._stages = None

    async def refresh(self, feed: FeedState, *, due: datetime | None = None) -> FeedOutcome:
        """Refresh one feed; its failure is recorded and returned, never raised. ``due`` is
        when it was due (the daemon's): the fetch log records how late it ran."""
        if self._stages is None:
            raise RuntimeError("use Poller as 'async with Poller(...) as poller'")
        return await refresh_feed(
            feed,
            stages=self._stages,
            store=self.store,
            config=self.config,
            clock=self.clock,
            due=due,
        )

    async def poll(
        self,
        feeds: Sequence[FeedState],
        *,
        on_done: Callable[[FeedOutcome], None] | None = None,
    ) -> PollSummary:
        """Refresh ``feeds`` concurrently, then complete the stories of what the pass
        stored: the leads the window lacks (:meth:`catch_up_leads`), then one clustering
        of the pass's new items with their stories' recent members
        (:meth:`cluster_since`), instead of a correction after every batch.

        A :class:`DatabaseFault` (the file is damaged, locked, read-only or full) ends the
        pass: the other refreshes are cancelled (a batch already being written is written
        whole) and the fault is raised."""
        summary = PollSummary()
        writer = self._writer
        if writer is None:
            raise RuntimeError("the poller is not open")
        await writer.run(_begin_pass)

        async def one(feed: FeedState) -> None:
            outcome = await self.refresh(feed)
            summary.outcomes.append(outcome)
            if on_done is not None:
                on_done(outcome)

        tasks = [asyncio.ensure_future(one(feed)) for feed in feeds]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        finally:
            with contextlib.suppress(DatabaseFault, RuntimeError):
                await writer.run(_end_pass)
        if summary.new_items:
            await self.tidy_stories(everything=True)
        await self.cluster_pending()
        return summary

    async def cluster_pending(self) -> None:
        """Cluster the items no clustering has taken yet (a pass's, a daemon window's, and
        any an interrupted pass left: :func:`watcher.store.stories.pending`), part by part in the
        writer, as an import ends; then move the mark past them."""
        writer = self._writer
        if writer is None:
            return
        found = await writer.run(functools.partial(pending, size=PASS_PART_ITEMS))
        if not found.parts:  # a pass of 304s writes nothing here, nor loads the story modules
            return
        from watcher.regroup import cluster_pending_part

        settings = from_config(self.config.dedupe)
        now = utc_iso(self.clock())
        for part in found.parts:
            job = functools.partial(
                cluster_pending_part,
                part=part,
                settings=settings,
                through=found.through,
                now=now,
                members=PASS_PART_ITEMS // 2,
            )
            await writer.run(job, size=len(part))
        await writer.run(functools.partial(mark_clustered, item_id=found.last))

    async def tidy_stories(self, *, everything: bool = False) -> int:
        """What the story step leaves for later: the correction of the items still waiting
        for one (:func:`~watcher.story_grouping.correct_waiting`), then the leads the story
        window lacks (:meth:`catch_up_leads`); returns how many items got a lead."""
        if self._writer is None:
            return 0
        await self._correct_waiting(self._writer)
        return await self.catch_up_leads(everything=everything)

    async def _correct_waiting(self, writer: Writer) -> None:
        """:func:`~watcher.story_grouping.correct_waiting` in the writer."""
        if "watcher.story_grouping" not in sys.modules:
            return  # nothing was stored in this process, so nothing waits for a correction
        from watcher.story_grouping import correct_waiting

        settings = from_config(self.config.dedupe)
        now = utc_iso(self.clock())
        await writer.run(lambda store: correct_waiting(store, settings, now=now))

    async def catch_up_leads(self, *, everything: bool = False) -> int:
        """Encode the leads the story window lacks once it holds both scripts, in the pool
        (every worker at once), and correct those items' stories across scripts in the
        writer (:mod:`watcher.late_leads`); returns how many items got a lead. At most
        :data:`~watcher.late_leads.CATCH_UP_ITEMS` unless ``everything`` (the end of a
        ``watcher poll`` pass: its items are complete when it exits). A failure is logged:
        the items stay as they were and the next catch-up tries again."""
        if not prepare.ENCODE_LEADS or self._pool is None or self._writer is None:
            return 0
        from watcher import late_leads
        from watcher.story_vectors import lead_vectors

        pool, writer = self._pool, self._writer
        now = self.clock()
        since = utc_iso(now - timedelta(seconds=self.config.dedupe.story_window))
        settings = from_config(self.config.dedupe)
        done = 0
        try:
            while True:
                before = done
                waiting = late_leads.pending(self.store, since=since)
                chunks = late_leads.chunks(waiting)
                encoded = await asyncio.gather(
                    *(
                        pool.run(
                            lead_vectors,
                            late_leads.documents(chunk),
                            url="(story leads)",
                            what="encoding story leads",
                        )
                        for chunk in chunks
                    )
                )
                for chunk, leads in zip(chunks, encoded, strict=True):
                    apply = functools.partial(
                        late_leads.apply,
                        items=chunk,
                        leads=leads,
                        settings=settings,
                        now=utc_iso(now),
                    )
                    done += (await writer.run(apply, size=len(chunk))).items
                if not everything or len(waiting) < late_leads.CATCH_UP_ITEMS or done == before:
                    break  # done == before: what is left cannot be decoded (a regroup can)
        except DatabaseFault:
            raise
        except Exception:
            log.exception("encoding the story leads of earlier items failed")
        return done


async def poll_feeds(
    config: Config,
    store: Store,
    feeds: Sequence[FeedState],
    *,
    clock: Clock = utc_now,
    on_done: Callable[[FeedOutcome], None] | None = None,
    runner: JobRunner = run_prepare_job,
) -> PollSummary:
    """One pass over ``feeds``; failures are recorded per feed, never raised."""
    if not feeds:
        return PollSummary()
    workers = min(worker_count(config), len(feeds))
    async with Poller(config, store, clock=clock, workers=workers, runner=runner) as poller:
        return await poller.poll(feeds, on_done=on_done)


KEEP_FETCHES_PER_FEED = 100
"""Rows of a feed's fetch log kept whatever their age: its adaptive interval reads the last
ten, and a feed polled once a week still shows two years of history."""


def prune_fetch_log(store: Store, config: Config, now: datetime) -> int:
    """Delete the fetch-log rows older than ``[poll] keep_fetches``; returns how many."""
    keep = config.poll.keep_fetches
    if keep is None:
        return 0
    before = utc_iso(now - timedelta(seconds=keep))
    return store.prune_fetches(before=before, keep_per_feed=KEEP_FETCHES_PER_FEED)
