"""Download feeds and article pages: conditional GET, redirects, size cap, timeouts; the only
httpx importer.

Feeds and pages share one client, its connection pool and the per-host limits, so a
publisher whose feed and articles are both fetched still sees at most ``per_host``
requests at once. Failures are raised as :class:`watcher.errors.FeedError` subclasses so
the caller can record them; nothing here touches the database.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import time
import zlib
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

import httpx

from watcher.errors import (
    FetchError,
    FetchTimeout,
    HTTPStatusError,
    InvalidFeedURL,
    ResponseTooLarge,
    TooManyRedirects,
)
from watcher.models import FeedState, FetchResult
from watcher.normalize import is_http_url

ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)
PAGE_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.5"
_REDIRECTS = {301, 302, 303, 307, 308}
_PERMANENT = {301, 308}
# where a redirect's Location is kept once it is hidden from httpx (see _hide_location)
_LOCATION = "x-watcher-location"


@dataclass(frozen=True, slots=True)
class FetchSettings:
    user_agent: str
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    deadline: float = 90.0
    max_bytes: int = 10_000_000
    max_redirects: int = 5
    concurrency: int = 32
    per_host: int = 4


@dataclass(frozen=True, slots=True)
class PageLimits:
    """How one kind of page (articles, robots.txt) is downloaded beside the feeds.

    ``per_host`` is a limit of its own per ``lane`` (one lane per kind of page), taken on
    top of the host's shared feed limit; ``user_agent`` None keeps the client's.
    """

    lane: str = "pages"
    per_host: int = 2
    deadline: float = 20.0
    max_bytes: int = 5_000_000
    accept: str = PAGE_ACCEPT
    user_agent: str | None = None


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


class _Decoder:
    """Content-Encoding decoder that refuses to inflate past the size cap (gzip bombs)."""

    def __init__(self, encoding: str, url: str, max_bytes: int) -> None:
        self.url = url
        self.max_bytes = max_bytes
        self.size = 0
        self._raw_deflate_allowed = False
        encoding = encoding.strip().lower()
        if encoding in ("", "identity"):
            self._inflater = None
        elif encoding in ("gzip", "x-gzip", "deflate"):
            self._inflater = zlib.decompressobj(47)  # auto-detect gzip or zlib header
            # some servers send "deflate" as a raw stream without the zlib header
            self._raw_deflate_allowed = encoding == "deflate"
        else:
            raise FetchError(url, f"unsupported Content-Encoding {encoding!r}")

    def _account(self, chunk: bytes) -> bytes:
        self.size += len(chunk)
        if self.size > self.max_bytes:
            how = " after decompression (gzip bomb?)" if self._inflater else ""
            raise ResponseTooLarge(self.url, f"body larger than {self.max_bytes} bytes{how}")
        return chunk

    def feed(self, raw: bytes) -> bytes:
        if self._inflater is None:
            return self._account(raw)
        out = bytearray()
        data = raw
        while data:
            room = self.max_bytes - self.size + 1
            try:
                piece = self._inflater.decompress(data, room)
            except zlib.error as error:
                if self._raw_deflate_allowed and self.size == 0 and data is raw:
                    self._raw_deflate_allowed = False
                    self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)
                    continue
                raise FetchError(self.url, f"corrupt compressed body: {error}") from None
            out += self._account(piece)
            data = self._inflater.unconsumed_tail
        return bytes(out)


async def _hide_location(response: httpx.Response) -> None:
    """Move Location aside so httpx does not build (and choke on) the redirect request.

    Even with ``follow_redirects=False`` httpx parses every Location into a request
    and raises ``InvalidURL`` (not an ``HTTPError``) for one such as ``javascript:x``;
    redirects are followed by :meth:`Fetcher._follow`, which checks the target itself.
    """
    if response.status_code in _REDIRECTS and "location" in response.headers:
        response.headers[_LOCATION] = response.headers["location"]
        del response.headers["location"]


class Fetcher:
    """One shared HTTP client with global and per-host concurrency limits."""

    def __init__(self, settings: FetchSettings, transport: httpx.AsyncBaseTransport | None = None):
        self.settings = settings
        self._client = httpx.AsyncClient(
            follow_redirects=False,
            timeout=httpx.Timeout(
                connect=settings.connect_timeout,
                read=settings.read_timeout,
                write=settings.read_timeout,
                pool=settings.deadline,
            ),
            limits=httpx.Limits(
                max_connections=settings.concurrency,
                max_keepalive_connections=settings.concurrency,
            ),
            headers={"User-Agent": settings.user_agent, "Accept": ACCEPT},
            event_hooks={"response": [_hide_location]},
            transport=transport,
        )
        self._global = asyncio.Semaphore(settings.concurrency)
        self._hosts: defaultdict[str, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(settings.per_host)
        )
        # page lanes per (lane, host): taken before the shared host slot, never after it
        self._page_hosts: dict[tuple[str, str], asyncio.Semaphore] = {}

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._client.aclose()

    async def fetch(self, feed: FeedState) -> FetchResult:
        """Fetch ``feed.url``; raises FeedError subclasses on every kind of failure."""
        conditional: dict[str, str] = {}
        if feed.etag:
            conditional["If-None-Match"] = feed.etag
        if feed.last_modified:
            conditional["If-Modified-Since"] = feed.last_modified
        return await self._download(
            feed.url,
            headers=conditional,
            max_bytes=self.settings.max_bytes,
            deadline=self.settings.deadline,
            etag=feed.etag,
            last_modified=feed.last_modified,
        )

    async def fetch_page(self, url: str, limits: PageLimits) -> FetchResult:
        """Fetch a web page (an article, a robots.txt) within ``limits``; raises like :meth:`fetch`."""
        headers = {"Accept": limits.accept}
        if limits.user_agent:
            headers["User-Agent"] = limits.user_agent
        host = (urlsplit(url).hostname or "").lower()
        lane = self._page_hosts.get((limits.lane, host))
        if lane is None:
            lane = self._page_hosts[(limits.lane, host)] = asyncio.Semaphore(limits.per_host)
        async with lane:
            return await self._download(
                url, headers=headers, max_bytes=limits.max_bytes, deadline=limits.deadline
            )

    async def _download(
        self,
        url: str,
        *,
        headers: dict[str, str],
        max_bytes: int,
        deadline: float,
        etag: str | None = None,
        last_modified: str | None = None,
    ) -> FetchResult:
        if not is_http_url(url):
            raise InvalidFeedURL(url, "only absolute http(s) URLs can be fetched")
        host = (urlsplit(url).hostname or "").lower()
        async with self._global, self._hosts[host]:
            started = time.monotonic()
            try:
                async with asyncio.timeout(deadline):
                    result = await self._follow(url, headers, max_bytes, etag, last_modified)
            except TimeoutError:
                raise FetchTimeout(url, f"no complete answer within {deadline:g} s") from None
            except httpx.TimeoutException as error:
                raise FetchTimeout(url, f"{type(error).__name__}: timed out") from None
            except (httpx.InvalidURL, UnicodeError) as error:  # idna.IDNAError is a UnicodeError
                raise InvalidFeedURL(url, f"cannot be fetched: {error}") from None
            except httpx.HTTPError as error:
                reason = str(error) or type(error).__name__
                raise FetchError(url, f"{type(error).__name__}: {reason}") from None
        elapsed = int((time.monotonic() - started) * 1000)
        return dataclasses.replace(result, elapsed_ms=elapsed)

    async def _follow(
        self,
        start: str,
        request_headers: dict[str, str],
        max_bytes: int,
        etag: str | None,
        last_modified: str | None,
    ) -> FetchResult:
        url = start
        visited = {url}
        permanent_url: str | None = None
        all_permanent = True
        for _hop in range(self.settings.max_redirects + 1):
            headers: dict[str, str] = {"Accept-Encoding": "gzip, deflate", **request_headers}
            async with self._client.stream("GET", url, headers=headers) as response:
                status = response.status_code
                if status in _REDIRECTS:
                    location = response.headers.get(_LOCATION)
                    if not location:
                        raise FetchError(url, f"HTTP {status} redirect without a Location")
                    target = urljoin(url, location)
                    if not is_http_url(target):
                        raise InvalidFeedURL(start, f"redirected to a non-http URL {target!r}")
                    if target in visited:
                        raise TooManyRedirects(start, f"redirect loop at {target}")
                    visited.add(target)
                    all_permanent = all_permanent and status in _PERMANENT
                    if all_permanent:
                        permanent_url = target
                    url = target
                    continue
                response_headers = {k.lower(): v for k, v in response.headers.items()}
                if status == 304:
                    return FetchResult(
                        url=start,
                        final_url=url,
                        status=304,
                        body=b"",
                        headers=response_headers,
                        not_modified=True,
                        permanent_url=permanent_url,
                        etag=response.headers.get("etag") or etag,
                        last_modified=response.headers.get("last-modified") or last_modified,
                    )
                if status >= 400:
                    retry_after = parse_retry_after(
                        response.headers.get("retry-after"), datetime.now(UTC)
                    )
                    reason = response.reason_phrase or "error"
                    raise HTTPStatusError(start, status, f"HTTP {status} {reason}", retry_after)
                body = await self._read_capped(response, url, max_bytes)
                return FetchResult(
                    url=start,
                    final_url=url,
                    status=status,
                    body=body,
                    headers=response_headers,
                    permanent_url=permanent_url,
                    etag=response.headers.get("etag"),
                    last_modified=response.headers.get("last-modified"),
                )
        raise TooManyRedirects(start, f"more than {self.settings.max_redirects} redirects")

    async def _read_capped(self, response: httpx.Response, url: str, cap: int) -> bytes:
        declared = response.headers.get("content-length", "")
        encoding = response.headers.get("content-encoding", "")
        if declared.isdigit() and int(declared) > cap:
            raise ResponseTooLarge(url, f"Content-Length {declared} is over the {cap}-byte cap")
        decoder = _Decoder(encoding, url, cap)
        chunks: list[bytes] = []
        async for raw in response.aiter_raw():
            chunks.append(decoder.feed(raw))
        return b"".join(chunks)
