"""robots.txt: may watcher fetch this page? Rules parsed by protego, cached per site.

Follows RFC 9309: a robots.txt that is missing or refused (4xx) allows everything; one that
cannot be read (5xx, 429, a timeout, a network error, over the size cap) disallows
everything for a while, since the site may be in trouble. Rules are kept for a day, a site
that could not answer for an hour; the site is asked once even when many of its pages are
wanted at the same moment.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from urllib.parse import urlsplit

from protego import Protego

from watcher.errors import FeedError, HTTPStatusError
from watcher.sources.fetch import Fetcher, PageLimits

RULES_LIFETIME = 86_400.0
UNREACHABLE_LIFETIME = 3_600.0
ROBOTS_MAX_BYTES = 512_000
"""RFC 9309 asks crawlers to read at least 500 KiB."""


class Verdict(Enum):
    ALLOWED = "allowed"
    DISALLOWED = "disallowed"
    UNREACHABLE = "unreachable"


@dataclass(frozen=True, slots=True)
class _Rules:
    expires: float
    parser: Protego | None  # None: no rules (allow all)
    unreachable: bool = False


def product_token(user_agent: str) -> str:
    """``watcher/0.1 (media-monitoring)`` → ``watcher``: the name robots.txt groups use."""
    token = user_agent.strip().split("/", 1)[0].split(" ", 1)[0]
    return token or "*"


def site_of(url: str) -> str:
    """``https://host:port`` of ``url``: robots.txt applies per scheme, host and port."""
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{(parts.netloc or '').lower()}"


class RobotsCache:
    """Answers :meth:`verdict` from each site's robots.txt, downloaded through ``fetcher``."""

    def __init__(
        self,
        fetcher: Fetcher,
        *,
        user_agent: str,
        deadline: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetcher = fetcher
        self._agent = product_token(user_agent)
        self._limits = PageLimits(
            lane="robots",
            per_host=1,
            deadline=deadline,
            max_bytes=ROBOTS_MAX_BYTES,
            accept="text/plain, */*;q=0.5",
            user_agent=user_agent,
        )
        self._clock = clock
        self._rules: dict[str, _Rules] = {}
        self._pending: dict[str, asyncio.Task[_Rules]] = {}

    async def verdict(self, url: str) -> Verdict:
        """Whether ``url`` may be fetched by watcher's user agent."""
        rules = await self._rules_for(site_of(url))
        if rules.unreachable:
            return Verdict.UNREACHABLE
        if rules.parser is None or rules.parser.can_fetch(url, self._agent):
            return Verdict.ALLOWED
        return Verdict.DISALLOWED

    async def _rules_for(self, site: str) -> _Rules:
        known = self._rules.get(site)
        if known is not None and known.expires > self._clock():
            return known
        task = self._pending.get(site)
        if task is None:
            task = asyncio.create_task(self._download(site))
            self._pending[site] = task
            task.add_done_callback(lambda done: self._settle(site, done))
        # shielded: one page given up (its feed cancelled) does not cancel the others' answer
        return await asyncio.shield(task)

    def _settle(self, site: str, task: asyncio.Task[_Rules]) -> None:
        del self._pending[site]
        if not task.cancelled() and task.exception() is None:
            self._rules[site] = task.result()

    async def _download(self, site: str) -> _Rules:
        now = self._clock()
        try:
            result = await self._fetcher.fetch_page(f"{site}/robots.txt", self._limits)
        except HTTPStatusError as error:
            if 400 <= error.status < 500 and error.status != 429:
                return _Rules(now + RULES_LIFETIME, None)
            return _Rules(now + UNREACHABLE_LIFETIME, None, unreachable=True)
        except FeedError:
            return _Rules(now + UNREACHABLE_LIFETIME, None, unreachable=True)
        text = result.body.decode("utf-8", errors="replace")
        return _Rules(now + RULES_LIFETIME, Protego.parse(text))
