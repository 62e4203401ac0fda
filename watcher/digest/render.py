"""A digest → its subject line, HTML part and plain-text part (Jinja2 templates in ``templates/``)."""

from __future__ import annotations

from datetime import datetime

from jinja2 import Environment, PackageLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from watcher.digest.build import Digest, one_line


def day(stamp: str | None) -> str:
    """``2023-10-12T09:30:00Z`` → ``12 Oct 2023``; anything unreadable is shown as given."""
    if not stamp:
        return ""
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return one_line(stamp)
    return f"{moment.day} {moment:%b %Y}"


def moment(stamp: str | None) -> str:
    """``2023-10-12T09:30:00Z`` → ``12 Oct 2023 09:30 UTC``."""
    if not stamp:
        return ""
    try:
        value = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return one_line(stamp)
    return f"{value.day} {value:%b %Y %H:%M} UTC"


def plural(count: int, word: str, words: str | None = None) -> str:
    return f"{count} {word if count == 1 else (words or word + 's')}"


def _environment(autoescape: bool) -> Environment:
    env = Environment(
        loader=PackageLoader("watcher.digest", "templates"),
        autoescape=autoescape,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(day=day, moment=moment, one_line=one_line)
    env.globals["plural"] = plural
    return env


_HTML = _environment(autoescape=True)
_TEXT = _environment(autoescape=False)
_SUBJECT = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


def render_subject(template: str, digest: Digest) -> str:
    """The subject from the digest's template, on one line (a header never gets CR/LF).

    ``headline`` is the title of the first story: feed text, hence made one line here
    and again when the header is set.
    """
    topics = ", ".join(section.title for section in digest.sections)
    first = next((section.stories[0] for section in digest.sections if section.stories), None)
    text = _SUBJECT.from_string(template).render(
        headline=first.title if first else "",
        name=digest.name,
        stories=digest.story_count,
        items=digest.item_count,
        sources=digest.source_count,
        topics=topics,
        date=digest.period_end[:10],
    )
    return one_line(text)


def render_html(digest: Digest, subject: str) -> str:
    """The HTML part: every value is escaped, styles are inline so mail clients keep them."""
    return _HTML.get_template("digest.html").render(digest=digest, subject=subject)


def render_text(digest: Digest, subject: str) -> str:
    """The plain-text part, for clients that do not show HTML and for ``--dry-run``."""
    return _TEXT.get_template("digest.txt").render(digest=digest, subject=subject)
