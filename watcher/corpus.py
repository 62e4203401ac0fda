"""Read existing documents (.txt, .md, .html, .jsonl) into clean Items for ``corpus import``.

Saved articles come in many shapes: a title on the first line (sometimes repeated on
the next), a dateline such as ``BISHKEK, October 12. /TASS/.`` instead of a title, a
Markdown page with its source URL at the end. The readers here cope with those;
a document that cannot be read becomes a CorpusImportError naming the file (and
the line, for JSONL) while the other documents still import.
"""

from __future__ import annotations

import codecs
import dataclasses
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dateutil import parser as date_parser
from selectolax.lexbor import LexborHTMLParser

from watcher.errors import CorpusImportError
from watcher.models import Item
from watcher.normalize import clean_text, html_to_text, is_http_url, make_item, primary_language

SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".jsonl")
MAX_TITLE_LENGTH = 200
DERIVED_TITLE_LENGTH = 140
_MARKDOWN_HINT = re.compile(r"^#{1,6} \S|\[[^\]]+\]\([^)]*\)|\*\*\S", re.MULTILINE)

_DATE_FIELD = re.compile(
    r"^\s*(?:date|published|dated?)\s*[:=]?\s*(\d{4}-\d{2}-\d{2}(?:[T ][\d:]+Z?)?)\s*",
    re.IGNORECASE,
)
_DATE_LABEL = re.compile(r"^(?:date|dated|published|posted|updated)\s*[:=]?\s*", re.IGNORECASE)
_DATELINE = re.compile(
    r"^(?P<place>[A-ZА-ЯЁ][A-ZА-ЯЁ .'-]{1,40}),\s+(?P<when>[A-Za-zА-Яа-яё]+\.?\s+\d{1,2})\s*[.,]?\s*"
    r"(?:/(?P<agency>[^/]{2,30})/\.?\s*)?(?:[-–—]\s*)?"
)
_UNDERLINE = re.compile(r"={3,}|-{3,}")
_URL_LINE = re.compile(r"^<?(https?://[^\s>]+)>?$")
_SOURCE_LABEL = re.compile(
    r"^(original|source)\s*(url|link)?\s*:\s*(?P<url>\S+)?\s*$", re.IGNORECASE
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-ZА-ЯЁ\"“«])")
_ONLY_DATE_MAX = 40


@dataclass(frozen=True, slots=True)
class Document:
    """What a reader found in one document, before normalization."""

    title: str
    text: str
    url: str | None = None
    published: datetime | None = None
    source: str | None = None
    external_id: str | None = None
    lang: str | None = None
    html: bool = False


def _parse_date(text: str) -> datetime | None:
    """A date in any common notation; ``12.10.2023`` is read day first, as Europe writes it."""
    day_first = bool(re.search(r"\b\d{1,2}\.\d{1,2}\.\d{4}\b", text))
    try:
        moment: datetime = date_parser.parse(text, fuzzy=False, dayfirst=day_first)
    except (ValueError, OverflowError, TypeError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _is_date_line(line: str) -> datetime | None:
    """The date of a line that holds only a date, maybe labelled (``Published: 7 March 2024``)."""
    line = line.strip().strip("*_ ")
    label = _DATE_LABEL.match(line)
    if label:
        line = line[label.end() :].strip("*_ ")
    if not line or len(line) > _ONLY_DATE_MAX or not re.search(r"\d{4}", line):
        return None
    return _parse_date(line)


def _leading_dates(lines: list[str]) -> datetime | None:
    """Remove date lines (and a ``date 2023-10-12`` prefix) from the top; the first date."""
    published: datetime | None = None
    while lines:
        first = lines[0].strip()
        if not first:
            lines.pop(0)
            continue
        date_field = _DATE_FIELD.match(first)
        when = _parse_date(date_field.group(1)) if date_field else _is_date_line(first)
        if when is None:
            break
        published = published or when
        rest = first[date_field.end() :] if date_field else ""
        if rest.strip():
            lines[0] = rest
            break
        lines.pop(0)
    return published


def _first_sentence(text: str) -> str:
    sentence = _SENTENCE_END.split(text, maxsplit=1)[0].strip()
    if len(sentence) > DERIVED_TITLE_LENGTH:
        head = sentence[:DERIVED_TITLE_LENGTH]
        cut = head.rfind(",")
        sentence = head[:cut] if cut > DERIVED_TITLE_LENGTH // 2 else head.rsplit(" ", 1)[0] + "…"
    return sentence


def _host(url: str | None) -> str | None:
    if not url:
        return None
    host = (urlsplit(url).hostname or "").lower()
    return host.removeprefix("www.") or None


def document_from_text(text: str, *, markdown_source: bool = False) -> Document:
    """Split a saved article into title, date, source URL and body."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    url: str | None = None
    kept: list[str] = []
    expecting_url = False
    for line in lines:
        stripped = line.strip()
        label = _SOURCE_LABEL.match(stripped)
        if label:
            url = label.group("url") or url
            expecting_url = label.group("url") is None
            continue
        url_line = _URL_LINE.match(stripped)
        if url_line and (expecting_url or url is None) and len(kept) > 3:
            url = url_line.group(1)
            expecting_url = False
            continue
        if stripped:
            expecting_url = False
        kept.append(line)
    if url is not None:
        url = url.strip("<>")
        if not is_http_url(url):
            url = None

    title = ""
    published: datetime | None = None
    agency: str | None = None
    body_lines = list(kept)
    while body_lines and not body_lines[0].strip():
        body_lines.pop(0)
    published = _leading_dates(body_lines)
    if body_lines:
        first = body_lines[0].strip()
        if markdown_source and first.startswith("#"):
            title = first.lstrip("#").strip()
            body_lines.pop(0)
        elif len(first) <= MAX_TITLE_LENGTH and not _DATELINE.match(first):
            title = first
            body_lines.pop(0)
            if body_lines and _UNDERLINE.fullmatch(body_lines[0].strip()):
                body_lines.pop(0)  # a Markdown "setext" heading underline
        else:
            dateline = _DATELINE.match(first)
            if dateline:
                agency = dateline.group("agency")
                body_lines[0] = first[dateline.end() :]
            title = _first_sentence(body_lines[0].strip())
    title = clean_text(re.sub(r"[*_`]+", "", title))

    header_seen = 0
    body: list[str] = []
    seen_paragraphs: set[str] = set()
    for line in body_lines:
        stripped = line.strip()
        if len(stripped) > 30:
            if stripped in seen_paragraphs:
                continue
            seen_paragraphs.add(stripped)
        if header_seen < 6 and stripped:
            header_seen += 1
            if clean_text(stripped) == title:
                continue
            when = _is_date_line(stripped)
            if when is not None and published is None:
                published = when
                continue
        body.append(line)
    text_body = "\n".join(body)
    if markdown_source:
        import markdown  # only imports of Markdown files need it

        text_body = html_to_text(markdown.markdown(text_body))
    source = _host(url) or (agency.strip() if agency else None)
    return Document(
        title=title, text=clean_text(text_body), url=url, published=published, source=source
    )


def document_from_html(html: str) -> Document:
    """Title, date, canonical URL and text of a saved web page."""
    tree = LexborHTMLParser(html)

    def meta(*names: str) -> str | None:
        for name in names:
            node = tree.css_first(f'meta[property="{name}"]') or tree.css_first(
                f'meta[name="{name}"]'
            )
            if node is not None and node.attributes.get("content"):
                return str(node.attributes["content"]).strip()
        return None

    title = meta("og:title", "twitter:title")
    if not title:
        heading = tree.css_first("h1") or tree.css_first("title")
        title = heading.text(strip=True) if heading is not None else ""
    published_text = meta("article:published_time", "date", "pubdate", "dc.date")
    if not published_text:
        time_node = tree.css_first("time[datetime]")
        published_text = str(time_node.attributes.get("datetime") or "") if time_node else None
    canonical = tree.css_first('link[rel="canonical"]')
    url = meta("og:url") or (str(canonical.attributes.get("href") or "") if canonical else None)
    container = tree.css_first("article") or tree.body
    body_html = container.html if container is not None else html
    text = html_to_text(body_html or "")
    if title and text.startswith(title):
        text = text[len(title) :].lstrip()
    url = url if url and is_http_url(url) else None
    return Document(
        title=clean_text(title),
        text=text,
        url=url,
        published=_parse_date(published_text) if published_text else None,
        source=meta("og:site_name") or _host(url),
    )


def _string_field(record: dict[str, Any], key: str, location: str) -> str | None:
    value = record.get(key)
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool) and key == "id":
        return str(value)
    if not isinstance(value, str):
        raise CorpusImportError(
            location, f"field {key!r} must be a string, got {type(value).__name__}"
        )
    return value


def document_from_record(record: object, location: str) -> Document:
    """One JSONL object: ``{"id", "url", "title", "text", "published", "source", "lang"}``."""
    if not isinstance(record, dict):
        raise CorpusImportError(location, "expected a JSON object")
    fields = {
        key: _string_field(record, key, location)
        for key in ("id", "url", "title", "text", "published", "source", "lang")
    }
    if not (fields["title"] or "").strip() and not (fields["text"] or "").strip():
        raise CorpusImportError(location, "needs a non-empty 'title' or 'text'")
    published = None
    if fields["published"]:
        published = _parse_date(fields["published"])
        if published is None:
            raise CorpusImportError(location, f"'published' is not a date: {fields['published']!r}")
    url = fields["url"]
    if url and not is_http_url(url):
        raise CorpusImportError(location, f"'url' is not an http(s) URL: {url!r}")
    text = fields["text"] or ""
    looks_html = bool(re.search(r"<(p|div|br|a|span|h\d)\b", text, re.IGNORECASE))
    return Document(
        title=fields["title"] or "",
        text=html_to_text(text) if looks_html else text,
        url=url,
        published=published,
        source=fields["source"] or _host(url),
        external_id=fields["id"],
        lang=fields["lang"],
    )


def to_item(document: Document, now: datetime) -> Item | None:
    """The document as a clean Item; a language the document states beats detection."""
    item = make_item(
        title=document.title,
        summary="",
        content=document.text,
        url=document.url,
        guid=None,
        published=document.published,
        now=now,
        lang_hint=document.lang,
        source=document.source,
        external_id=document.external_id,
    )
    stated = primary_language(document.lang)
    if item is not None and stated:
        item = dataclasses.replace(item, lang=stated)
    return item


def expand_paths(paths: Sequence[Path]) -> Iterator[Path]:
    """Files to import: the given files, and the supported files inside given folders."""
    for path in paths:
        if path.is_dir():
            yield from sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES
            )
        else:
            yield path


_META_CHARSET = re.compile(
    rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_:.-]+)""", re.IGNORECASE
)


def _decode(raw: bytes, *, html: bool) -> str:
    """UTF-8 (with or without BOM), UTF-16 with a BOM, or the charset a web page declares."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return raw.decode("utf-16")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        declared = _META_CHARSET.search(raw[:4096]) if html else None
        if declared is None:
            raise
        charset = declared.group(1).decode("ascii")
        try:
            return raw.decode(charset)
        except LookupError:  # a charset Python does not know
            raise UnicodeDecodeError(
                "utf-8", raw, 0, 1, f"and the page's charset {charset!r} is unknown"
            ) from None


def read_documents(path: Path) -> Iterator[tuple[str, Document | CorpusImportError]]:
    """Documents of one file, each with its location; unreadable ones as errors."""
    location = str(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        yield (
            location,
            CorpusImportError(
                location,
                f"unsupported file type {suffix or '(none)'}; "
                f"expected one of {', '.join(SUFFIXES)}",
            ),
        )
        return
    try:
        raw = path.read_bytes()
    except OSError as error:
        yield location, CorpusImportError(location, f"cannot read: {error.strerror or error}")
        return
    try:
        text = _decode(raw, html=suffix in (".html", ".htm"))
    except UnicodeDecodeError as error:
        yield (
            location,
            CorpusImportError(location, f"not UTF-8 text ({error.reason} at byte {error.start})"),
        )
        return
    if suffix == ".jsonl":
        # only \n ends a record: str.splitlines() would also split at U+2028, U+0085 and
        # other characters JSON strings may hold unescaped
        for number, line in enumerate(text.split("\n"), start=1):
            line = line.removesuffix("\r")
            if not line.strip():
                continue
            where = f"{location}:{number}"
            try:
                yield where, document_from_record(json.loads(line), where)
            except json.JSONDecodeError as error:
                yield (
                    where,
                    CorpusImportError(
                        where, f"not valid JSON: {error.msg} at column {error.colno}"
                    ),
                )
            except CorpusImportError as error:
                yield where, error
        return
    if suffix in (".html", ".htm"):
        yield location, document_from_html(text)
    else:
        is_markdown = suffix in (".md", ".markdown") or len(_MARKDOWN_HINT.findall(text)) >= 2
        yield location, document_from_text(text, markdown_source=is_markdown)
