"""The JSON bodies of an alert: Slack-compatible (``{"text": ...}``) and generic; no I/O.

Feed content is untrusted: in the Slack text ``&``, ``<`` and ``>`` are escaped (Slack's
own control characters, so a title cannot forge a link or a mention) and only an
http(s) link is ever made a link.
"""

from __future__ import annotations

from markupsafe import escape

from watcher.normalize import followable
from watcher.store.alerts import StoryRow

SUMMARY_CHARS = 500


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_url(url: str) -> str:
    return url.replace("<", "%3C").replace(">", "%3E").replace("|", "%7C").replace(" ", "%20")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _short(text: str, limit: int = SUMMARY_CHARS) -> str:
    text = _one_line(text)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def slack_body(story: StoryRow) -> dict[str, object]:
    """An incoming-webhook message for Slack and the chat tools that copy its format."""
    title = _slack_escape(_one_line(story.title) or "(untitled)")
    link = followable(story.url)
    headline = f"<{_slack_url(link)}|{title}>" if link else title
    details = " · ".join(
        part for part in (story.source, (story.published_at or "")[:16].replace("T", " ")) if part
    )
    lines = [f"*{_slack_escape(story.topic_title)}*: {headline}"]
    if details:
        lines.append(_slack_escape(_one_line(details)))
    if story.summary:
        lines.append(_slack_escape(_short(story.summary, 300)))
    return {"text": "\n".join(lines), "unfurl_links": False}


def generic_body(story: StoryRow) -> dict[str, object]:
    """Every field of the alert, for receivers that do their own formatting."""
    return {
        "event": "watcher.story",
        "id": f"story-{story.story_id}",
        "story_id": story.story_id,
        "topic": story.topic,
        "topic_title": story.topic_title,
        "title": story.title,
        "url": followable(story.url),
        "source": story.source,
        "published_at": story.published_at,
        "first_seen_at": story.first_seen_at,
        "summary": _short(story.summary),
    }


def webhook_body(story: StoryRow, format: str) -> dict[str, object]:
    return slack_body(story) if format == "slack" else generic_body(story)


def mail_subject(story: StoryRow) -> str:
    """``watcher alert · <topic>: <headline>`` on one line (the mail code strips CR/LF too)."""
    return _one_line(f"watcher alert · {story.topic_title}: {story.title or '(untitled)'}")


def mail_bodies(story: StoryRow) -> tuple[str, str]:
    """The plain-text and HTML parts of a one-story alert mail; feed text is escaped."""
    link = followable(story.url)
    details = " · ".join(
        part for part in (story.source, (story.published_at or "")[:16].replace("T", " ")) if part
    )
    summary = _short(story.summary)
    title = _one_line(story.title) or "(untitled)"
    head = [story.topic_title, "", title] + [line for line in (_one_line(details), link) if line]
    text = "\n".join([*head, "", summary] if summary else head) + "\n"
    html = (
        f'<p style="color:#555;font:13px sans-serif">{escape(story.topic_title)}</p>'
        '<h2 style="font:bold 18px Georgia,serif;margin:4px 0">'
        + (
            f'<a href="{escape(link)}" style="color:#1a4f7a">{escape(title)}</a>'
            if link
            else str(escape(title))
        )
        + "</h2>"
        f'<p style="color:#555;font:13px sans-serif">{escape(details)}</p>'
        f'<p style="font:15px Georgia,serif">{escape(summary)}</p>'
    )
    return text, html
