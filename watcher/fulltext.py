"""Full article text for feeds that give only headlines: choose the items, look the pages up
in the cache, download the others politely, extract them in the worker pool, and prepare the
enriched items again so that matching, tags and dedupe see the whole article.

A page that cannot be had (robots.txt, a paywall, 403, a timeout, nothing extracted) leaves
its item with the feed's text and a ``full_text_status`` saying why; it never fails the feed.
The rules are in docs/fulltext.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from watcher.config import Config, FullTextConfig, FullTextMode, TopicConfig
from watcher.errors import FeedError, HTTPStatusError, ParseTimeout
from watcher.models import ArticlePage, FeedState, Item
from watcher.normalize import content_hash, utc_iso
from watcher.prepare import PreparedBatch, PreparedItem, prepare_items
from watcher.sources.fetch import Fetcher, PageLimits
from watcher.sources.robots import RobotsCache, Verdict
from watcher.store import Store
from watcher.workers import PreparePool

log = logging.getLogger("watcher.fulltext")

EXTRACTED = "extracted"
ROBOTS = "robots"
_ISO = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True, slots=True)
class FeedPlan:
    """What full text one feed asks for: its mode and whether it is dedicated to its topics."""

    mode: FullTextMode
    dedicated: bool = False

    @property
    def enabled(self) -> bool:
        return self.mode != "never"


def feed_plan(feed_url: str, config: Config) -> FeedPlan:
    """The feed's own ``full_text`` and ``dedicated`` from the config, else the defaults
    (feeds added with ``watcher feeds add`` live only in the database)."""
    for feed in config.feeds:
        if feed.url == feed_url:
            return FeedPlan(feed.full_text or config.full_text.mode, feed.dedicated)
    return FeedPlan(config.full_text.mode)


def enabled_anywhere(config: Config) -> bool:
    """Whether any feed may ask for full text (then the extractor is loaded before the fork)."""
    if config.full_text.mode != "never":
        return True
    return any(feed.full_text not in (None, "never") for feed in config.feeds)


def words(text: str) -> int:
    return len(text.split())


def reason_to_skip(entry: PreparedItem, plan: FeedPlan, short_words: int) -> str | None:
    """None when the item's page should be fetched, else the status saying why not
    (``""``: full text is not asked for this item, so it gets no status)."""
    item = entry.item
    if not plan.enabled or not (entry.topics or plan.dedicated):
        return ""
    if not item.url or not item.canonical_url:
        return "skipped:no_link"
    if item.shared_url or "#" in item.canonical_url:
        # a link blog's posts about one outside page, or a daily page's anchored posts: the
        # page is not this item's article, and its text would merge the posts into one
        return "skipped:shared_url"
    if plan.mode == "auto" and words(item.text) >= short_words:
        return "skipped:long"
    return None


def is_fresh(page: ArticlePage, now: datetime, settings: FullTextConfig) -> bool:
    """A cached page is used while it is younger than the cache lifetime (a failure: than
    ``retry_failed_after``, so a timeout is tried again, but not on every poll)."""
    lifetime = settings.cache_lifetime if page.status == EXTRACTED else settings.retry_failed_after
    return page.fetched_at >= utc_iso(now - timedelta(seconds=lifetime))


def with_full_text(item: Item, page: ArticlePage) -> Item:
    """``item`` carrying the article's text: the feed's text becomes the summary."""
    return dataclasses.replace(
        item,
        summary=item.summary or item.content,
        content=page.text,
        lang=page.lang or item.lang,
        content_hash=content_hash(item.title, page.text),
        published_at=item.published_at or page.published_at,
        author=page.author,
        full_text_status=EXTRACTED,
    )


def with_status(entry: PreparedItem, status: str) -> PreparedItem:
    return dataclasses.replace(entry, item=dataclasses.replace(entry.item, full_text_status=status))


@dataclass(frozen=True, slots=True)
class ExtractJob:
    """One downloaded page for :func:`run_extract_job` in a worker."""

    url: str
    final_url: str
    fetched_at: str
    http_status: int
    body: bytes
    content_type: str
    now: datetime
    lang_hint: str | None
    short_words: int


def run_extract_job(job: ExtractJob) -> ArticlePage:
    """Extract one page into its cache row; a page that declares a paywall and gives fewer
    than ``short_words`` is ``failed:paywall``. Never raises."""
    from watcher.extract import extract_article  # the parent imports it before forking

    base = ArticlePage(
        url=job.url, fetched_at=job.fetched_at, status="", http_status=job.http_status,
        final_url=job.final_url,
    )  # fmt: skip
    try:
        extraction = extract_article(
            job.body,
            job.final_url,
            now=job.now,
            content_type=job.content_type,
            lang_hint=job.lang_hint,
        )
    except Exception as error:  # an extractor bug costs this page only
        log.warning("page=%s extraction failed: %s: %s", job.url, type(error).__name__, error)
        return dataclasses.replace(base, status="failed:extractor")
    if extraction.status != EXTRACTED:
        status = "failed:paywall" if extraction.paywalled else extraction.status
        return dataclasses.replace(base, status=status)
    if extraction.paywalled and extraction.words < job.short_words:
        return dataclasses.replace(base, status="failed:paywall")
    return dataclasses.replace(
        base,
        status=EXTRACTED,
        text=extraction.text,
        author=extraction.author,
        published_at=extraction.published_at,
        lang=extraction.lang,
    )


@dataclass(frozen=True, slots=True)
class ReprepareJob:
    items: tuple[Item, ...]
    topics: tuple[TopicConfig, ...]


def run_reprepare_job(job: ReprepareJob) -> list[PreparedItem]:
    """Match, tag and fingerprint enriched items again; every item is kept (the caller decides
    what an item that no longer matches becomes)."""
    prepared, _dropped = prepare_items(job.items, job.topics, keep_unmatched=True)
    return prepared


class FullText:
    """Adds full article text to prepared batches; one per :class:`~watcher.poll.Poller`.

    Shares the poller's HTTP client (and so its per-host limits), worker pool and write lock.
    Pages being downloaded are shared too: two feeds linking one article in the same pass
    wait for one download.
    """

    def __init__(
        self,
        config: Config,
        store: Store,
        fetcher: Fetcher,
        pool: PreparePool,
        *,
        write_lock: asyncio.Lock | None = None,
    ) -> None:
        self.config = config
        self.settings = config.full_text
        self.store = store
        self.pool = pool
        self.fetcher = fetcher
        self.write_lock = write_lock
        user_agent = self.settings.user_agent or config.poll.user_agent
        self.limits = PageLimits(
            lane="articles",
            per_host=self.settings.per_host,
            deadline=self.settings.timeout,
            max_bytes=self.settings.max_bytes,
            user_agent=self.settings.user_agent,
        )
        self.robots = RobotsCache(fetcher, user_agent=user_agent, deadline=self.settings.timeout)
        self._downloads: dict[str, asyncio.Task[ArticlePage]] = {}

    def keeps_unmatched(self, feed: FeedState) -> bool:
        """Whether preparing ``feed`` must keep the items matching no topic on their feed text:
        a dedicated feed's items all get full text, and only then is matching final."""
        plan = feed_plan(feed.url, self.config)
        return plan.enabled and plan.dedicated

    async def enrich(
        self,
        feed: FeedState,
        batch: PreparedBatch,
        topics: Sequence[TopicConfig],
        *,
        now: datetime,
    ) -> PreparedBatch:
        """``batch`` with full text where the feed asks for it; never raises for one page."""
        plan = feed_plan(feed.url, self.config)
        keep_unmatched = self.config.poll.keep_unmatched
        if not plan.enabled:
            return batch
        skips = [reason_to_skip(entry, plan, self.settings.short_words) for entry in batch.items]
        wanted = {
            entry.item.canonical_url: entry.item
            for entry, skip in zip(batch.items, skips, strict=True)
            if skip is None and entry.item.canonical_url
        }
        pages = await self._pages(wanted, now)

        results: list[PreparedItem | None] = []
        enriched: list[tuple[int, Item]] = []
        for entry, skip in zip(batch.items, skips, strict=True):
            if skip is not None:
                results.append(with_status(entry, skip) if skip else entry)
                continue
            page = pages[entry.item.canonical_url or ""]
            if page.status != EXTRACTED:
                results.append(with_status(entry, page.status))
            elif words(page.text) <= words(entry.item.text):
                results.append(with_status(entry, "failed:short"))
            else:
                results.append(None)
                enriched.append((len(results) - 1, with_full_text(entry.item, page)))

        if enriched:
            job = ReprepareJob(tuple(item for _index, item in enriched), tuple(topics))
            try:
                again = await self.pool.run(
                    run_reprepare_job, job, url=feed.url, what="preparing the full texts"
                )
            except FeedError as error:
                log.warning("feed=%s full texts not prepared: %s", feed.url, error.message)
                again = None
            for position, (index, _item) in enumerate(enriched):
                original = batch.items[index]
                if again is None:
                    results[index] = with_status(original, "failed:prepare")
                    continue
                fresh = again[position]
                if not fresh.topics and original.topics:
                    # the feed text matched and the article does not: trust neither blindly,
                    # keep the item as the feed gave it
                    results[index] = with_status(original, "failed:unmatched")
                else:
                    results[index] = fresh

        kept = [
            entry for entry in results if entry is not None and (entry.topics or keep_unmatched)
        ]
        dropped = len(results) - len(kept)
        return dataclasses.replace(batch, items=tuple(kept), off_topic=batch.off_topic + dropped)

    async def _pages(self, wanted: dict[str, Item], now: datetime) -> dict[str, ArticlePage]:
        """Cache rows for ``wanted`` (canonical URL → its item): fresh ones from the cache, the
        others downloaded, extracted and saved."""
        if not wanted:
            return {}
        cached = self.store.article_pages(list(wanted))
        pages = {url: page for url, page in cached.items() if is_fresh(page, now, self.settings)}
        missing = [url for url in wanted if url not in pages]
        tasks: list[asyncio.Task[ArticlePage]] = []
        mine: set[str] = set()  # downloads this feed started, and so saves
        for canonical in missing:
            task = self._downloads.get(canonical)
            if task is None:
                item = wanted[canonical]
                task = asyncio.create_task(
                    self._fetch_and_extract(canonical, item.url or canonical, now, item.lang)
                )
                self._downloads[canonical] = task
                task.add_done_callback(self._forget)
                mine.add(canonical)
            tasks.append(task)
        # shielded: a feed given up (cancelled) does not cancel a download another feed awaits
        downloaded = await asyncio.gather(
            *(asyncio.shield(task) for task in tasks), return_exceptions=True
        )
        fresh: list[ArticlePage] = []
        for canonical, page in zip(missing, downloaded, strict=True):
            if isinstance(page, BaseException):
                if isinstance(page, asyncio.CancelledError):
                    raise page
                log.error("page=%s failed unexpectedly: %r", canonical, page)
                page = ArticlePage(canonical, utc_iso(now), "failed:internal")
            pages[canonical] = page
            if canonical in mine:
                fresh.append(page)
                log.info("page=%s full_text=%s", wanted[canonical].url, page.status)
        await self._save(fresh)
        return pages

    def _forget(self, task: asyncio.Task[ArticlePage]) -> None:
        for key, pending in list(self._downloads.items()):
            if pending is task:
                del self._downloads[key]

    async def _save(self, pages: Sequence[ArticlePage]) -> None:
        """Cache the pages this feed downloaded, in one short transaction."""
        if not pages:
            return
        try:
            async with self.write_lock or contextlib.nullcontext():
                with self.store.transaction():
                    self.store.save_article_pages(pages)
        except sqlite3.Error as error:  # the cache saves work; the items still get their text
            log.warning("%d article pages not cached: %s", len(pages), error)

    async def _fetch_and_extract(
        self, canonical: str, url: str, now: datetime, lang_hint: str | None
    ) -> ArticlePage:
        fetched_at = utc_iso(now)

        def failed(status: str, http_status: int | None = None) -> ArticlePage:
            return ArticlePage(canonical, fetched_at, status, http_status=http_status)

        verdict = await self.robots.verdict(url)
        if verdict is Verdict.DISALLOWED:
            return failed(ROBOTS)
        if verdict is Verdict.UNREACHABLE:
            return failed("failed:robots_unreachable")
        try:
            result = await self.fetcher.fetch_page(url, self.limits)
        except HTTPStatusError as error:
            return failed(f"failed:http_{error.status}", error.status)
        except FeedError as error:
            return failed(f"failed:{error.kind}")
        job = ExtractJob(
            url=canonical,
            final_url=result.final_url,
            fetched_at=fetched_at,
            http_status=result.status,
            body=result.body,
            content_type=result.headers.get("content-type", ""),
            now=now,
            lang_hint=lang_hint,
            short_words=self.settings.short_words,
        )
        try:
            return await self.pool.run(run_extract_job, job, url=url, what="extracting the article")
        except ParseTimeout:
            return failed("failed:extract_timeout", result.status)
        except FeedError as error:
            return failed(f"failed:{error.kind}", result.status)


async def add_full_text(
    full_text: FullText | None,
    feed: FeedState,
    batch: PreparedBatch,
    topics: Sequence[TopicConfig],
    *,
    config: Config,
    now: datetime,
) -> PreparedBatch:
    """The pipeline's full-text step: ``batch`` enriched, or as it was when something
    unforeseen went wrong (logged; the feed's items are stored with their feed text)."""
    if full_text is None:
        return batch
    try:
        return await full_text.enrich(feed, batch, topics, now=now)
    except Exception:
        log.exception("feed=%s full text failed unexpectedly; feed text kept", feed.url)
        if config.poll.keep_unmatched:
            return batch
        kept = tuple(entry for entry in batch.items if entry.topics)
        return dataclasses.replace(
            batch, items=kept, off_topic=batch.off_topic + len(batch.items) - len(kept)
        )
