"""Full article text for feeds that give only headlines: choose the items, look the pages up
in the cache, download the others politely, extract them in the worker pool, and prepare the
enriched items again so that matching, tags and dedupe see the whole article.

A page that cannot be had (robots.txt, a paywall, 403, a timeout, nothing extracted) leaves
its item with the feed's text and a ``full_text_status`` saying why; it never fails the feed.
The rules are in docs/fulltext.md.
"""

from __future__ import annotations

import asyncio
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
from watcher.writer import Writer

log = logging.getLogger("watcher.fulltext")

EXTRACTED = "extracted"
ROBOTS = "robots"


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
    """One downloaded page, to be extracted in a worker."""

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
    """Extract one downloaded page into its cache row; a page that declares a paywall and
    gives fewer than ``short_words`` is ``failed:paywall``. Never raises."""
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
class EnrichJob:
    """One feed's full-text work for a worker: the pages downloaded for it, to extract; the
    pages already known (cached, or failed to download); the items that want a page."""

    downloads: tuple[ExtractJob, ...]
    pages: tuple[ArticlePage, ...]
    items: tuple[Item, ...]
    topics: tuple[TopicConfig, ...]


@dataclass(frozen=True, slots=True)
class EnrichResult:
    """``extracted``: cache rows of the downloads; ``outcomes``, one per item of the job: the
    item prepared again on its article, or the status saying why it keeps its feed text."""

    extracted: tuple[ArticlePage, ...]
    outcomes: tuple[PreparedItem | str, ...]


def run_enrich_job(job: EnrichJob) -> EnrichResult:
    """Extract the downloads, give each item its article, and match, tag and fingerprint the
    enriched items again (all kept: the caller decides what one that no longer matches
    becomes). One job per feed, so that a feed's full text is done in one go rather than
    spread over the pass behind every other feed's pages."""
    extracted = tuple(run_extract_job(download) for download in job.downloads)
    pages = {page.url: page for page in job.pages}
    pages.update((page.url, page) for page in extracted)
    outcomes: list[PreparedItem | str] = []
    enriched: list[Item] = []
    for item in job.items:
        page = pages[item.canonical_url or ""]
        if page.status != EXTRACTED:
            outcomes.append(page.status)
        elif words(page.text) <= words(item.text):
            outcomes.append("failed:short")
        else:
            outcomes.append("")
            enriched.append(with_full_text(item, page))
    try:
        prepared = iter(prepare_items(enriched, job.topics, keep_unmatched=True)[0])
    except Exception as error:  # a tagging bug costs these items their article only
        log.warning("full texts not prepared: %s: %s", type(error).__name__, error)
        return EnrichResult(extracted, tuple(outcome or "failed:prepare" for outcome in outcomes))
    return EnrichResult(extracted, tuple(outcome or next(prepared) for outcome in outcomes))


class FullText:
    """Adds full article text to prepared batches; one per :class:`~watcher.poll.Poller`.

    Shares the poller's HTTP client (and so its per-host limits), worker pool and writer.
    Pages being downloaded are shared too: two feeds linking one article in the same pass
    wait for one download.
    """

    def __init__(
        self,
        config: Config,
        store: Store,
        fetcher: Fetcher,
        pool: PreparePool,
        writer: Writer,
    ) -> None:
        self.config = config
        self.settings = config.full_text
        self.store = store
        self.pool = pool
        self.fetcher = fetcher
        self.writer = writer
        user_agent = self.settings.user_agent or config.poll.user_agent
        self.limits = PageLimits(
            lane="articles",
            per_host=self.settings.per_host,
            deadline=self.settings.timeout,
            max_bytes=self.settings.max_bytes,
            user_agent=self.settings.user_agent,
        )
        self.robots = RobotsCache(fetcher, user_agent=user_agent, deadline=self.settings.timeout)
        self._downloads: dict[str, asyncio.Task[ArticlePage | ExtractJob]] = {}

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
        if not plan.enabled:
            return batch
        skips = [reason_to_skip(entry, plan, self.settings.short_words) for entry in batch.items]
        results: list[PreparedItem] = [
            entry if not skip else with_status(entry, skip)
            for entry, skip in zip(batch.items, skips, strict=True)
        ]
        wanting = [index for index, skip in enumerate(skips) if skip is None]
        if wanting:
            items = tuple(batch.items[index].item for index in wanting)
            outcomes = await self._enrich_items(feed, items, topics, now)
            for index, outcome in zip(wanting, outcomes, strict=True):
                original = batch.items[index]
                if isinstance(outcome, str):
                    results[index] = with_status(original, outcome)
                elif not outcome.topics and original.topics:
                    # the feed text matched and the article does not: trust neither blindly,
                    # keep the item as the feed gave it
                    results[index] = with_status(original, "failed:unmatched")
                else:
                    results[index] = outcome
        keep_unmatched = self.config.poll.keep_unmatched
        kept = tuple(entry for entry in results if entry.topics or keep_unmatched)
        dropped = len(results) - len(kept)
        return dataclasses.replace(batch, items=kept, off_topic=batch.off_topic + dropped)

    async def _enrich_items(
        self,
        feed: FeedState,
        items: tuple[Item, ...],
        topics: Sequence[TopicConfig],
        now: datetime,
    ) -> tuple[PreparedItem | str, ...]:
        """One outcome per item (see :class:`EnrichResult`): pages from the cache or the
        network, then one job in the pool; the pages this feed downloaded are cached."""
        wanted = {item.canonical_url or "": item for item in items}
        cached = self.store.article_pages(list(wanted))
        known = {url: page for url, page in cached.items() if is_fresh(page, now, self.settings)}
        mine: set[str] = set()
        try:
            return await self._enrich_downloaded(feed, items, topics, now, wanted, known, mine)
        finally:
            # a download stays shared until its page is cached (or this feed gave up), so
            # another feed wanting the page in between does not download it again
            for url in mine:
                self._downloads.pop(url, None)

    async def _enrich_downloaded(
        self,
        feed: FeedState,
        items: tuple[Item, ...],
        topics: Sequence[TopicConfig],
        now: datetime,
        wanted: dict[str, Item],
        known: dict[str, ArticlePage],
        mine: set[str],
    ) -> tuple[PreparedItem | str, ...]:
        downloads = await self._download_missing(
            {url: item for url, item in wanted.items() if url not in known}, now, mine
        )
        failures = [page for page in downloads if isinstance(page, ArticlePage)]
        raw = tuple(page for page in downloads if isinstance(page, ExtractJob))
        job = EnrichJob(raw, (*known.values(), *failures), items, tuple(topics))
        try:
            result = await self.pool.run(
                run_enrich_job, job, url=feed.url, what="extracting the articles"
            )
        except FeedError as error:
            status = (
                "failed:extract_timeout"
                if isinstance(error, ParseTimeout)
                else (f"failed:{error.kind}")
            )
            log.warning("feed=%s articles not extracted: %s", feed.url, error.message)
            failed = [
                ArticlePage(page.url, page.fetched_at, status, http_status=page.http_status)
                for page in raw
            ]
            await self._save([page for page in (*failures, *failed) if page.url in mine])
            return tuple(status for _item in items)
        fresh = [page for page in (*failures, *result.extracted) if page.url in mine]
        for page in fresh:
            log.info("page=%s full_text=%s", wanted[page.url].url, page.status)
        await self._save(fresh)
        return result.outcomes

    async def _download_missing(
        self, wanted: dict[str, Item], now: datetime, mine: set[str]
    ) -> list[ArticlePage | ExtractJob]:
        """Download ``wanted`` (canonical URL → item), sharing downloads other feeds started;
        the URLs this feed starts, whose cache rows it writes, are added to ``mine``."""
        tasks: list[asyncio.Task[ArticlePage | ExtractJob]] = []
        for canonical, item in wanted.items():
            task = self._downloads.get(canonical)
            if task is None:
                task = asyncio.create_task(
                    self._download(canonical, item.url or canonical, now, item.lang)
                )
                self._downloads[canonical] = task
                mine.add(canonical)
            tasks.append(task)
        # shielded: a feed given up (cancelled) does not cancel a download another feed awaits
        done = await asyncio.gather(
            *(asyncio.shield(task) for task in tasks), return_exceptions=True
        )
        pages: list[ArticlePage | ExtractJob] = []
        for canonical, page in zip(wanted, done, strict=True):
            if isinstance(page, BaseException):
                if isinstance(page, asyncio.CancelledError):
                    raise page
                log.error("page=%s failed unexpectedly: %r", canonical, page)
                page = ArticlePage(canonical, utc_iso(now), "failed:internal")
            pages.append(page)
        return pages

    async def _save(self, pages: Sequence[ArticlePage]) -> None:
        """Cache the pages this feed downloaded, in one short write."""
        if not pages:
            return
        try:
            # on the writer thread's connection: one here would block the event loop for as
            # long as the writer's transaction holds the database
            await self.writer.run(lambda store: store.save_article_pages(pages))
        except sqlite3.Error as error:  # the cache saves work; the items still get their text
            log.warning("%d article pages not cached: %s", len(pages), error)

    async def _download(
        self, canonical: str, url: str, now: datetime, lang_hint: str | None
    ) -> ArticlePage | ExtractJob:
        """The page to extract, or the cache row saying why there is none."""
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
        return ExtractJob(
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
