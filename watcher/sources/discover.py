"""Find the feeds of a web site: alternate links, common paths, sitemaps; each one verified.

Every candidate is downloaded with the poller's :class:`~watcher.sources.fetch.Fetcher`
(same size cap, timeouts, redirect rules and politeness) and parsed with
:func:`~watcher.sources.parse.parse_feed`, so what is reported is a feed that polls.
Common paths and sitemaps are only tried when the page links to no working feed.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit, urlunsplit

import defusedxml.ElementTree as safe_xml
from defusedxml import DefusedXmlException
from selectolax.lexbor import LexborHTMLParser

from watcher.errors import FeedError, InvalidFeedURL
from watcher.models import FeedState, FetchResult
from watcher.normalize import is_http_url
from watcher.sources.fetch import Fetcher
from watcher.sources.parse import parse_feed

FEED_TYPES = (
    "application/rss+xml",
    "application/atom+xml",
    "application/rdf+xml",
    "application/feed+xml",
)
COMMON_PATHS = (
    "/feed",
    "/rss",
    "/rss.xml",
    "/atom.xml",
    "/feed.xml",
    "/index.xml",
    "/feeds/all.atom.xml",
)
MAX_SITEMAP_LINKS = 5
"""Feed-looking entries of a sitemap index that are tried, at most."""
_FEEDISH = re.compile(r"(news|rss|atom|feed)", re.IGNORECASE)
_SITEMAP_LINE = re.compile(r"^\s*sitemap\s*:\s*(\S+)", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True, slots=True)
class FoundFeed:
    """A verified feed: ``via`` says how it was found (address, link, path, sitemap)."""

    url: str
    title: str | None
    entries: int
    via: str


@dataclass(frozen=True, slots=True)
class Discovery:
    """What ``discover_feeds`` found at ``address``; ``rejected`` lists (candidate, reason)."""

    address: str
    is_feed: bool
    feeds: tuple[FoundFeed, ...]
    rejected: tuple[tuple[str, str], ...] = field(default=())


def alternate_links(html: bytes | str, page_url: str) -> list[str]:
    """Feed URLs a page announces with ``<link rel="alternate" type="...rss/atom...">``.

    Relative hrefs are resolved against ``<base href>`` (itself resolved against the
    page URL) or the page URL; only http(s) results are kept, in page order, once each.
    """
    tree = LexborHTMLParser(html if isinstance(html, str) else html.decode("utf-8", "replace"))
    base = page_url
    base_node = tree.css_first("base[href]")
    if base_node is not None:
        href = (base_node.attributes.get("href") or "").strip()
        if href:
            base = urljoin(page_url, href)
    found: list[str] = []
    for node in tree.css("link[href]"):
        attributes = node.attributes
        rel = (attributes.get("rel") or "").lower().split()
        kind = (attributes.get("type") or "").split(";")[0].strip().lower()
        if "alternate" not in rel or kind not in FEED_TYPES:
            continue
        url = urljoin(base, (attributes.get("href") or "").strip())
        if is_http_url(url) and url not in found:
            found.append(url)
    return found


def site_root(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/", "", ""))


def common_path_candidates(url: str) -> list[str]:
    root = site_root(url)
    return [urljoin(root, path) for path in COMMON_PATHS]


def sitemap_urls(robots_txt: str, url: str) -> list[str]:
    """The ``Sitemap:`` lines of a robots.txt, then ``/sitemap.xml``; http(s) only, once each."""
    found: list[str] = []
    for value in [*_SITEMAP_LINE.findall(robots_txt), urljoin(site_root(url), "/sitemap.xml")]:
        if is_http_url(value) and value not in found:
            found.append(value)
    return found


def sitemap_feed_links(body: bytes) -> list[str]:
    """Sitemaps listed by a sitemap index whose URL names news, RSS, Atom or a feed.

    Only ``<sitemap><loc>`` entries count: the ``<url><loc>`` of a plain sitemap are
    pages (a news sitemap lists articles), not feeds.
    """
    try:
        root = safe_xml.fromstring(body)
    except (safe_xml.ParseError, DefusedXmlException, ValueError):
        return []
    links: list[str] = []
    for element in root.iter():
        if _local(element.tag) != "sitemap":
            continue
        for child in element:
            if _local(child.tag) != "loc" or not child.text:
                continue
            url = child.text.strip()
            if is_http_url(url) and _FEEDISH.search(urlsplit(url).path) and url not in links:
                links.append(url)
    return links[:MAX_SITEMAP_LINKS]


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


class _Search:
    """The candidates tried for one address, and the feeds they turned out to be."""

    def __init__(self, fetcher: Fetcher) -> None:
        self.fetcher = fetcher
        self.tried: set[str] = set()
        self.bodies: set[str] = set()
        self.final_urls: set[str] = set()
        self.feeds: list[FoundFeed] = []
        self.rejected: list[tuple[str, str]] = []

    async def get(self, url: str) -> FetchResult:
        return await self.fetcher.fetch(FeedState(id=0, url=url))

    def accept(self, url: str, result: FetchResult, via: str) -> bool:
        """Keep ``result`` when it parses as a feed not found already under another URL."""
        try:
            parsed = parse_feed(result.body, result.headers, result.final_url)
        except FeedError as error:
            self.rejected.append((url, error.message))
            return False
        digest = hashlib.sha256(result.body).hexdigest()
        if digest in self.bodies or result.final_url in self.final_urls:
            return False  # /feed and /rss.xml are often one document
        self.bodies.add(digest)
        self.final_urls.add(result.final_url)
        self.feeds.append(FoundFeed(url, parsed.title, len(parsed.entries), via))
        return True

    async def _fetch_candidate(self, url: str) -> FetchResult | None:
        try:
            return await self.get(url)
        except FeedError as error:
            self.rejected.append((url, error.message))
            return None

    async def verify(self, urls: Iterable[str], via: str) -> int:
        """Fetch the untried ``urls`` concurrently; keep the feeds in the given order."""
        fresh = [url for url in urls if url not in self.tried]
        self.tried.update(fresh)
        results = await asyncio.gather(*(self._fetch_candidate(url) for url in fresh))
        kept = 0
        for url, result in zip(fresh, results, strict=True):
            if result is not None:
                kept += self.accept(url, result, via)
        return kept

    async def sitemaps(self, address: str) -> None:
        robots = await self._fetch_candidate(urljoin(site_root(address), "/robots.txt"))
        text = robots.body.decode("utf-8", "replace") if robots is not None else ""
        for sitemap in sitemap_urls(text, address):
            if sitemap in self.tried:
                continue
            self.tried.add(sitemap)
            result = await self._fetch_candidate(sitemap)
            if result is None:
                continue
            # the sitemap protocol accepts an RSS or Atom feed as a sitemap
            if self.accept(sitemap, result, "sitemap"):
                continue
            await self.verify(sitemap_feed_links(result.body), "sitemap")


async def discover_feeds(address: str, fetcher: Fetcher) -> Discovery:
    """The feeds of the site at ``address``, or ``address`` itself when it is a feed.

    Raises :class:`~watcher.errors.FeedError` when ``address`` itself cannot be fetched.
    """
    address = address.strip()
    if not is_http_url(address):
        raise InvalidFeedURL(address, "expected an absolute http(s) URL")
    search = _Search(fetcher)
    search.tried.add(address)
    page = await search.get(address)
    if search.accept(address, page, "address"):
        return Discovery(address, True, tuple(search.feeds))
    search.rejected.clear()  # the page not being a feed is the normal case
    links = alternate_links(page.body, page.final_url)
    found = await search.verify(links, "link")
    found = found or await search.verify(common_path_candidates(page.final_url), "path")
    if not found:
        await search.sitemaps(page.final_url)
    return Discovery(address, False, tuple(search.feeds), tuple(search.rejected))


def pick(feeds: Sequence[FoundFeed], numbers: Sequence[int]) -> list[FoundFeed]:
    """The feeds numbered 1..n in ``numbers`` (all of them when ``numbers`` is empty)."""
    if not numbers:
        return list(feeds)
    bad = [n for n in numbers if not 1 <= n <= len(feeds)]
    if bad:
        raise ValueError(f"no feed number {bad[0]}; choose from 1 to {len(feeds)}")
    return [feeds[n - 1] for n in dict.fromkeys(numbers)]
