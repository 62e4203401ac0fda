"""Read and write OPML subscription lists (the format feed readers exchange)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from xml.etree.ElementTree import Element, SubElement, tostring

import defusedxml.ElementTree as safe_xml
from defusedxml import DefusedXmlException

from watcher.errors import CorpusImportError
from watcher.normalize import is_http_url


@dataclass(frozen=True, slots=True)
class Outline:
    url: str
    title: str | None


def read_opml(data: bytes, location: str) -> tuple[list[Outline], list[str]]:
    """The http(s) feeds of an OPML document, and a note for each outline skipped."""
    try:
        root = safe_xml.fromstring(data)
    except (safe_xml.ParseError, DefusedXmlException) as error:
        raise CorpusImportError(location, f"not a valid OPML/XML document: {error}") from None
    if root.tag.lower() != "opml":
        raise CorpusImportError(location, f"expected an <opml> document, found <{root.tag}>")
    feeds: list[Outline] = []
    skipped: list[str] = []
    for outline in root.iter("outline"):
        # exporters disagree on the case of xmlUrl (xmlURL, xmlurl)
        attributes = {name.lower(): value for name, value in outline.attrib.items()}
        url = (attributes.get("xmlurl") or "").strip()
        if not url:
            continue
        if not is_http_url(url):
            skipped.append(f"{url!r}: not an http(s) URL")
            continue
        feeds.append(Outline(url=url, title=outline.get("title") or outline.get("text")))
    return feeds, skipped


def write_opml(feeds: Sequence[Outline], title: str = "watcher feeds") -> bytes:
    root = Element("opml", version="2.0")
    head = SubElement(root, "head")
    SubElement(head, "title").text = title
    body = SubElement(root, "body")
    for feed in feeds:
        SubElement(
            body,
            "outline",
            type="rss",
            text=feed.title or feed.url,
            title=feed.title or feed.url,
            xmlUrl=feed.url,
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n' + tostring(root, encoding="unicode")
    ).encode()
