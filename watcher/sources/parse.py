"""Turn downloaded bytes into feed entries; the only feedparser importer.

feedparser gets the raw bytes and the response headers (never a URL, which it would
fetch itself, and never decoded text, which would lose the declared encoding).
Ill-formed but readable feeds still yield their entries; anything that is not a
feed raises NotAFeed.
"""

from __future__ import annotations

import calendar
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import feedparser
from feedparser.exceptions import ThingsNobodyCaresAboutButMe

from watcher.errors import NotAFeed
from watcher.models import ParsedFeed, RawEntry
from watcher.normalize import EARLIEST_DATE, plausible_date

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


MAX_FIELD_CHARACTERS = {"title": 4_000, "summary": 200_000, "content": 1_000_000, "other": 4_000}
"""Characters kept of an entry's raw fields (HTML before it becomes text): a headline of
more is junk or an attack, and each later stage costs more with a field's length. The
fetch's size cap bounds the body as a whole; this bounds one field of it."""


@dataclass(slots=True)
class _Oddities:
    """What was wrong with some entries and put right, for the note on the fetch."""

    impossible_dates: int = 0
    cut_fields: Counter[str] = field(default_factory=Counter)

    def note(self) -> str | None:
        parts = []
        if self.impossible_dates:
            parts.append(
                f"{self.impossible_dates} entries dated before {EARLIEST_DATE.year} "
                "or at the Unix epoch kept undated"
            )
        if self.cut_fields:
            cut = ", ".join(f"{count} {name}" for name, count in sorted(self.cut_fields.items()))
            parts.append(f"oversized fields cut to size ({cut})")
        return "; ".join(parts) or None


def _field(raw: Any, key: str, name: str, oddities: _Oddities) -> str | None:
    value = _get(raw, key) or None
    if value is None:
        return None
    value = str(value)
    limit = MAX_FIELD_CHARACTERS[name]
    if len(value) > limit:
        oddities.cut_fields[name] += 1
        return value[:limit]
    return value


def _entry(raw: Any, oddities: _Oddities) -> RawEntry:
    published = _datetime(_get(raw, "published_parsed") or _get(raw, "updated_parsed"))
    if published is not None and not plausible_date(published):
        oddities.impossible_dates += 1
        published = None
    content = _content_html(raw)
    if content is not None and len(content) > MAX_FIELD_CHARACTERS["content"]:
        oddities.cut_fields["content"] += 1
        content = content[: MAX_FIELD_CHARACTERS["content"]]
    return RawEntry(
        guid=_field(raw, "id", "other", oddities),
        link=_field(raw, "link", "other", oddities),
        title=_field(raw, "title", "title", oddities),
        summary_html=_field(raw, "summary", "summary", oddities),
        content_html=content,
        published=published,
        author=_field(raw, "author", "other", oddities),
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
    oddities = _Oddities()
    entries = tuple(_entry(raw, oddities) for raw in parsed.entries)
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
    note = oddities.note()
    if note:
        warning = f"{warning}; {note}" if warning else note
    feed = parsed.feed
    return ParsedFeed(
        title=feed.get("title") or None,
        link=feed.get("link") or None,
        language=feed.get("language") or None,
        entries=entries,
        warning=warning,
    )
