"""Article page HTML → main text, author, date and language, with trafilatura; no I/O.

Navigation, sidebars, footers, cookie banners and reader comments are left out: the text is
what dedupe, topic matching and tagging will see, so boilerplate shared by every page of a
site must not be in it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

import trafilatura

from watcher.normalize import clean_text, detect_language, to_utc_iso

_PAYWALL_MARK = re.compile(rb"[\"']isAccessibleForFree[\"']\s*:\s*[\"']?false", re.IGNORECASE)
"""schema.org's way for a publisher to say the article is behind a paywall."""
_HTML_TYPES = ("html", "xml")
_DATE_PARAMS = {
    "original_date": True,
    "extensive_search": False,
    "outputformat": "%Y-%m-%dT%H:%M:%S%z",
}
"""htmldate: the publication date, not the last change, from the page's metadata and markup
(not guessed from its text)."""


@dataclass(frozen=True, slots=True)
class Extraction:
    """What one article page gave. ``status`` is ``extracted``, ``failed:empty`` (no article
    text found) or ``failed:not_html``; ``paywalled`` says the page declares a paywall."""

    status: str
    text: str = ""
    author: str | None = None
    published_at: str | None = None
    lang: str | None = None
    paywalled: bool = False

    @property
    def words(self) -> int:
        return len(self.text.split())


def _published(value: str | None, now: datetime) -> str | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return to_utc_iso(moment, now)


def _without_headline(text: str, title: str | None) -> str:
    """The text without its first line when that line is the page's headline."""
    first, _, rest = text.partition("\n")
    if title and first.strip().casefold() == title.strip().casefold():
        return rest.strip()
    return text


def extract_article(
    body: bytes,
    url: str,
    *,
    now: datetime,
    content_type: str = "",
    lang_hint: str | None = None,
) -> Extraction:
    """The main text of an article page and its metadata.

    ``body`` is the page as downloaded (trafilatura finds its encoding); ``now`` bounds a
    date in the future; ``lang_hint`` (the feed's language) decides for very short texts.
    """
    if content_type and not any(kind in content_type.lower() for kind in _HTML_TYPES):
        return Extraction("failed:not_html")
    paywalled = _PAYWALL_MARK.search(body) is not None
    document = trafilatura.bare_extraction(
        body,
        url=url,
        with_metadata=True,
        include_comments=False,
        include_images=False,
        include_links=False,
        include_tables=True,
        favor_precision=True,
        date_extraction_params={**_DATE_PARAMS, "max_date": now.strftime("%Y-%m-%d")},
    )
    raw_text = getattr(document, "text", None) if document is not None else None
    if not raw_text:
        return Extraction("failed:empty", paywalled=paywalled)
    title = getattr(document, "title", None)
    # one paragraph a line from trafilatura; blank lines between them, as html_to_text gives
    text = clean_text(_without_headline(raw_text, title).replace("\n", "\n\n"))
    if not text:
        return Extraction("failed:empty", paywalled=paywalled)
    author = getattr(document, "author", None)
    return Extraction(
        "extracted",
        text=text,
        author=clean_text(author) or None if author else None,
        published_at=_published(getattr(document, "date", None), now),
        lang=detect_language(text, lang_hint),
        paywalled=paywalled,
    )
