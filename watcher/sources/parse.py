"""Turn downloaded bytes into feed entries; the only feedparser importer.

feedparser gets the raw bytes and the response headers (never a URL, which it would
fetch itself, and never decoded text, which would lose the declared encoding).
Ill-formed but readable feeds still yield their entries; anything that is not a
feed raises NotAFeed.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime
from typing import Any

import feedparser
from feedparser.exceptions import ThingsNobodyCaresAboutButMe

from watcher.errors import NotAFeed
from watcher.models import ParsedFeed, RawEntry

_HTML_START = re.compile(rb"^\s*(<!--.*?-->\s*)*<(!doctype\s+html|html)", re.IGNORECASE | re.DOTALL)
_PASSED_HEADERS = ("content-type", "content-location", "content-language", "last-modified", "etag")


def _datetime(struct: Any) -> datetime | None:
    if not struct:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(struct), tz=UTC)
    except (OverflowError, ValueError, TypeError):
        return None


# Entries are read with plain dict lookups: FeedParserDict.get maps aliases and a few derived
# keys (``category``, ``updated``...) first, none of which is read here, and costs several times
# more; its get() would also map a missing updated_parsed to published_parsed with a warning.
_get = dict.get


def _content_html(entry: Any) -> str | None:
    contents = _get(entry, "content") or []
    parts = [value for part in contents if (value := _get(part, "value"))]
    return "\n".join(parts) if parts else None


def _entry(raw: Any) -> RawEntry:
    guid = _get(raw, "id") or None
    return RawEntry(
        guid=str(guid) if guid else None,
        link=_get(raw, "link") or None,
        title=_get(raw, "title") or None,
        summary_html=_get(raw, "summary") or None,
        content_html=_content_html(raw),
        published=_datetime(_get(raw, "published_parsed") or _get(raw, "updated_parsed")),
        author=_get(raw, "author") or None,
    )


def parse_feed(body: bytes, headers: dict[str, str], url: str) -> ParsedFeed:
    """Parse an RSS/Atom document; raise NotAFeed for HTML pages and junk."""
    if not body.strip():
        raise NotAFeed(url, "empty body")
    passed = {k: v for k, v in headers.items() if k.lower() in _PASSED_HEADERS}
    passed.setdefault("content-location", url)
    # no sanitizing or link rewriting: entries become plain text (normalize.html_to_text drops
    # scripts and styles), and feedparser's sanitizer was a third of the parse time
    parsed = feedparser.parse(
        body, response_headers=passed, sanitize_html=False, resolve_relative_uris=False
    )
    entries = tuple(_entry(raw) for raw in parsed.entries)
    if not parsed.version and not entries:
        content_type = headers.get("content-type", "").split(";")[0].strip()
        if "html" in content_type or _HTML_START.match(body[:2048]):
            raise NotAFeed(url, f"an HTML page ({content_type or 'text/html'}), not RSS or Atom")
        problem = parsed.get("bozo_exception")
        detail = f": {problem}" if problem else ""
        raise NotAFeed(url, f"not an RSS or Atom document{detail}")
    warning = None
    problem = parsed.get("bozo_exception")
    # feedparser also flags harmless things (a missing or non-XML Content-Type, a
    # charset the body overrides, an undeclared namespace): not worth a warning
    if parsed.bozo and not isinstance(problem, ThingsNobodyCaresAboutButMe):
        warning = f"ill-formed feed, parsed leniently: {problem}"
    feed = parsed.feed
    return ParsedFeed(
        title=feed.get("title") or None,
        link=feed.get("link") or None,
        language=feed.get("language") or None,
        entries=entries,
        warning=warning,
    )
