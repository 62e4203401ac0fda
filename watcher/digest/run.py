"""Run one digest: pick what is due, build, render, send and record it, or preview it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Literal

from watcher.config import DEFAULT_DIGEST_SUBJECT, Config, DigestConfig
from watcher.digest.build import Digest, TopicInfo, build_digest
from watcher.digest.render import plural, render_html, render_subject, render_text
from watcher.digest.send import compose, deliver, message_id
from watcher.errors import DigestError, MailError
from watcher.models import DigestRow
from watcher.normalize import utc_iso
from watcher.store import Store
from watcher.store import digests as records

SEND_OVERLAP = timedelta(minutes=15)
"""Each send looks this far behind the end of the last one, so an item whose batch was
being committed while that digest was built is not missed; items already sent are
skipped, so the overlap never repeats one."""
EVERYTHING = "everything"
"""Name of the digest ``watcher digest --dry-run`` builds when none is configured."""
EVERYTHING_MAX_STORIES = 50
EVERYTHING_ITEMS = 5000
"""The everything preview reads at most this many of each topic's newest items."""
DEFAULT_SENDER = "watcher@localhost"


@dataclass(frozen=True, slots=True)
class DigestPreview:
    """A built digest and the mail it makes; nothing is sent or recorded."""

    digest: Digest
    subject: str
    text: str
    html: str
    message: EmailMessage


@dataclass(frozen=True, slots=True)
class DigestOutcome:
    """What one ``send_digest`` did. ``status``: sent, failed, or empty (nothing to send)."""

    name: str
    status: Literal["sent", "failed", "empty"]
    stories: int = 0
    items: int = 0
    subject: str | None = None
    message_id: str | None = None
    error: str | None = None
    note: str | None = None
    digest_id: int | None = None

    def line(self) -> str:
        if self.status == "sent":
            counts = f"{plural(self.stories, 'story', 'stories')}, {plural(self.items, 'item')}"
            text = f"digest {self.name}: sent {counts}"
            return f"{text} ({self.note})" if self.note else text
        if self.status == "empty":
            return f"digest {self.name}: nothing new, not sent"
        return f"digest {self.name}: failed: {self.error}"


def _topics(
    config: Config, wanted: Sequence[str] | None, only: Sequence[str] | None
) -> list[TopicInfo]:
    """The digest's topics (``wanted``, None: all) in its order, cut to ``only`` if given."""
    names = [topic.name for topic in config.topics]
    for topic in only or ():
        if topic not in names:
            raise DigestError(f"unknown topic {topic!r}; expected one of {names}")
    order = list(wanted) if wanted is not None else names
    chosen = [
        TopicInfo(name, config.topic(name).title) for name in order if not only or name in only
    ]
    if only and not chosen:
        raise DigestError(
            f"topics {list(only)} are not in this digest (it has {list(wanted or names)})"
        )
    return chosen


def _digest_config(config: Config, name: str) -> DigestConfig:
    try:
        return config.digest(name)
    except KeyError:
        known = [digest.name for digest in config.digests]
        raise DigestError(
            f"no digest named {name!r} in {config.path or 'the config'}"
            + (f"; configured: {', '.join(known)}" if known else "; none is configured")
        ) from None


def _sender(config: Config) -> str:
    return config.smtp.from_address if config.smtp else DEFAULT_SENDER


def _make(
    config: Config,
    *,
    name: str,
    subject_template: str,
    recipients: Sequence[str],
    rows: list[DigestRow],
    topics: Sequence[TopicInfo],
    period_start: str | None,
    max_stories: int,
    now: datetime,
) -> DigestPreview:
    digest = build_digest(
        rows,
        name=name,
        topics=topics,
        now=utc_iso(now),
        period_start=period_start,
        max_stories=max_stories,
    )
    subject = render_subject(subject_template, digest)
    text = render_text(digest, subject)
    html = render_html(digest, subject)
    sender = _sender(config)
    message = compose(
        subject=subject,
        sender=sender,
        to=recipients,
        text=text,
        html=html,
        now=now.astimezone(UTC),
        msgid=message_id(sender),
    )
    return DigestPreview(digest, subject, text, html, message)


def _due(
    config: Config, store: Store, digest: DigestConfig, *, now: datetime, only: Sequence[str] | None
) -> DigestPreview:
    """What the next send of ``digest`` holds: per topic, what came since its last send."""
    topics = _topics(config, digest.topics, only)
    until = utc_iso(now)
    rows: list[DigestRow] = []
    starts: list[str] = []
    for topic in topics:
        last = records.last_sent_end(store, digest.name, topic.name)
        if last is None:
            since = utc_iso(now - timedelta(seconds=digest.first_lookback))
        else:
            since = utc_iso(datetime.fromisoformat(last.replace("Z", "+00:00")) - SEND_OVERLAP)
        starts.append(since)
        rows += records.digest_rows(
            store, topic.name, since=since, until=until, unsent_for=digest.name
        )
    return _make(
        config,
        name=digest.name,
        subject_template=digest.subject,
        recipients=digest.to,
        rows=rows,
        topics=topics,
        period_start=min(starts) if starts else until,
        max_stories=digest.max_stories,
        now=now,
    )


def preview_digest(
    config: Config,
    store: Store,
    name: str | None = None,
    *,
    now: datetime,
    topics: Sequence[str] | None = None,
) -> DigestPreview:
    """The digest ``name`` would send now, or with no name every topic from everything stored.

    Marks nothing as sent: run it as often as you like.
    """
    if name is not None:
        return _due(config, store, _digest_config(config, name), now=now, only=topics)
    chosen = _topics(config, None, topics)
    until = utc_iso(now)
    rows: list[DigestRow] = []
    for topic in chosen:
        rows += records.digest_rows(
            store, topic.name, since=None, until=until, unsent_for=None, limit=EVERYTHING_ITEMS
        )
    return _make(
        config,
        name=EVERYTHING,
        subject_template=DEFAULT_DIGEST_SUBJECT,
        recipients=[_sender(config)],
        rows=rows,
        topics=chosen,
        period_start=None,
        max_stories=EVERYTHING_MAX_STORIES,
        now=now,
    )


def send_digest(
    config: Config,
    store: Store,
    name: str,
    *,
    now: datetime,
    topics: Sequence[str] | None = None,
) -> DigestOutcome:
    """Send digest ``name`` with what is due and record it; never raises for a failed send.

    A send the server accepted marks its items, so no later send of this digest repeats
    them; a failure is recorded with its reason and marks nothing, so the next run sends
    the same items. An empty digest is only sent with ``send_empty``. Raises DigestError
    for an unknown digest or topic.
    """
    digest_config = _digest_config(config, name)
    records.abandon_unfinished(store, name)
    preview = _due(config, store, digest_config, now=now, only=topics)
    digest = preview.digest
    covered = [section.name for section in digest.sections]
    if digest.is_empty and not digest_config.send_empty:
        return DigestOutcome(name, "empty", subject=preview.subject)
    stamp = utc_iso(now)
    if config.smtp is None:
        error = "no [smtp] section in the config (see docs/digest.md)"
        digest_id = records.record_failure(
            store,
            name=name,
            topics=covered,
            period_end=digest.period_end,
            recipients=digest_config.to,
            error=error,
            now=stamp,
        )
        return DigestOutcome(
            name,
            "failed",
            digest.story_count,
            digest.item_count,
            preview.subject,
            error=error,
            digest_id=digest_id,
        )
    msgid = str(preview.message["Message-ID"])
    digest_id = records.begin_send(
        store,
        name=name,
        topics=covered,
        period_start=digest.period_start,
        period_end=digest.period_end,
        recipients=digest_config.to,
        subject=preview.subject,
        message_id=msgid,
        stories=digest.story_count,
        item_ids=digest.item_ids,
        left_out_ids=digest.left_out_ids,
        now=stamp,
    )
    try:
        note = deliver(preview.message, config.smtp)
    except MailError as error:
        records.fail_send(store, digest_id, error=str(error))
        return DigestOutcome(
            name,
            "failed",
            digest.story_count,
            digest.item_count,
            preview.subject,
            msgid,
            error=str(error),
            digest_id=digest_id,
        )
    records.finish_send(store, digest_id, sent_at=utc_iso(datetime.now(UTC)), note=note)
    return DigestOutcome(
        name,
        "sent",
        digest.story_count,
        digest.item_count,
        preview.subject,
        msgid,
        note=note,
        digest_id=digest_id,
    )
