"""Send the alerts that are due: queue new stories per target, POST them, record the outcome.

Retries are persisted, not in-process: a failed delivery gets its next attempt time
(exponential backoff, or the target's Retry-After) in ``alert_deliveries`` and waits
for a later run, so a run never sleeps and a restart loses no retry. A target whose
send fails is left alone for the rest of the run, so one run costs a dead target at
most one ``[alerts].timeout``.

A target is anything with a ``name`` (what its deliveries are recorded under), the
``topics`` it takes and a ``send(story)`` that raises AlertError: webhooks, and one-story
mails through the digest's ``[smtp]`` (docs/alerts.md).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from watcher.alerts.messages import mail_bodies, mail_subject, webhook_body
from watcher.config import Config, EmailAlertConfig, SmtpConfig, WebhookConfig
from watcher.errors import AlertError, MailError
from watcher.normalize import utc_iso
from watcher.sources.webhook import WebhookSender
from watcher.store import Store
from watcher.store import alerts as records

log = logging.getLogger("watcher.alerts")


def webhook_target(hook: WebhookConfig) -> str:
    """The name a webhook's deliveries are recorded under."""
    return f"webhook:{hook.name}"


def retry_delay(attempts: int, *, base: float, cap: float) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones: base, 2×, 4×, … cap."""
    return min(cap, base * 2.0 ** min(max(attempts - 1, 0), 30))


def target_topics(config: Config, hook: WebhookConfig | EmailAlertConfig) -> list[str]:
    """The alert topics a target receives: its own list (alert topics only), or all of them."""
    alerting = [topic.name for topic in config.topics if topic.alert]
    if hook.topics is None:
        return alerting
    return [name for name in alerting if name in hook.topics]


class Target(Protocol):
    """Where alerts go. ``send`` returns once the target took the story, else raises
    :class:`~watcher.errors.AlertError`; it must give up within ``[alerts].timeout``."""

    @property
    def name(self) -> str: ...

    @property
    def topics(self) -> list[str]: ...

    def send(self, story: records.StoryRow) -> None: ...


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    """A ``[[alerts.webhooks]]`` entry with the HTTP client that posts to it."""

    hook: WebhookConfig
    topics: list[str]
    sender: WebhookSender

    @property
    def name(self) -> str:
        return webhook_target(self.hook)

    def send(self, story: records.StoryRow) -> None:
        headers = {
            "Idempotency-Key": f"watcher-{self.hook.name}-story-{story.story_id}",
            **self.hook.headers,
        }
        self.sender.post(self.name, self.hook.url, webhook_body(story, self.hook.format), headers)


def email_target_name(alert: EmailAlertConfig) -> str:
    """The name a mail target's deliveries are recorded under."""
    return f"email:{alert.name}"


@dataclass(frozen=True, slots=True)
class EmailTarget:
    """An ``[[alerts.emails]]`` entry: one mail per story through ``[smtp]``."""

    alert: EmailAlertConfig
    topics: list[str]
    smtp: SmtpConfig

    @property
    def name(self) -> str:
        return email_target_name(self.alert)

    def send(self, story: records.StoryRow) -> None:
        from watcher.digest.send import compose, deliver, message_id

        text, html = mail_bodies(story)
        message = compose(
            subject=mail_subject(story),
            sender=self.smtp.from_address,
            to=self.alert.to,
            text=text,
            html=html,
            now=datetime.now(UTC),
            msgid=message_id(self.smtp.from_address),
        )
        try:
            deliver(message, self.smtp)
        except MailError as error:
            raise AlertError(self.name, str(error)) from None


def target_names(config: Config) -> list[str]:
    """The names every configured target's deliveries are recorded under."""
    names = [webhook_target(hook) for hook in config.alerts.webhooks]
    if config.smtp is not None:
        names += [email_target_name(alert) for alert in config.alerts.emails]
    return names


def configured_targets(config: Config, sender: WebhookSender) -> list[Target]:
    """Every target of ``[alerts]``: the webhooks (posting through ``sender``) and, with
    ``[smtp]``, the mail targets."""
    targets: list[Target] = [
        WebhookTarget(hook, target_topics(config, hook), sender) for hook in config.alerts.webhooks
    ]
    if config.smtp is not None:
        targets += [
            EmailTarget(alert, target_topics(config, alert), config.smtp)
            for alert in config.alerts.emails
        ]
    return targets


@dataclass(slots=True)
class DeliveryReport:
    """What one run did; ``failed_targets`` maps a target to the error that stopped it."""

    queued: int = 0
    delivered: int = 0
    failed: int = 0
    expired: int = 0
    failed_targets: dict[str, str] = field(default_factory=dict)

    def line(self) -> str:
        text = (
            f"alerts: {self.queued} queued, {self.delivered} delivered, {self.failed} failed "
            f"(retried later), {self.expired} expired"
        )
        if self.failed_targets:
            text += "; failing: " + ", ".join(sorted(self.failed_targets))
        return text


def deliver_pending(
    config: Config,
    store: Store,
    *,
    now: datetime,
    targets: Sequence[Target] | None = None,
) -> DeliveryReport:
    """Queue new stories of alert topics for every target and send what is due at ``now``.

    Synchronous; each send is bounded by ``[alerts].timeout`` and a failing target is
    skipped after its first failure, so a run is short even when targets are down. Use a
    Store of the calling thread's own. A target's failure is recorded and reported, never
    raised; only a database error is. ``targets`` defaults to the config's webhooks.
    """
    settings = config.alerts
    report = DeliveryReport()
    sender: WebhookSender | None = None
    if targets is None:
        sender = WebhookSender(user_agent=config.poll.user_agent, timeout=settings.timeout)
        targets = configured_targets(config, sender)
    try:
        targets = [target for target in targets if target.topics]
        if not targets:
            return report
        since = utc_iso(now - timedelta(seconds=settings.max_age))
        report.expired = records.expire_before(store, before=since)
        for target in targets:
            report.queued += records.enqueue_new_stories(
                store, target=target.name, topics=target.topics, since=since, now=utc_iso(now)
            )
        for target in targets:
            _deliver_to(target, config, store, now=now, report=report)
    finally:
        if sender is not None:
            sender.close()
    return report


def send_alerts(
    config: Config, db_path: Path | str, *, now: datetime | None = None
) -> DeliveryReport:
    """:func:`deliver_pending` with a Store of its own, opened and closed here: what the
    daemon runs in a worker thread after each poll pass (polling never waits on it)."""
    store = Store.open(db_path)
    try:
        return deliver_pending(config, store, now=now or datetime.now(UTC))
    finally:
        store.close()


def _deliver_to(
    target: Target, config: Config, store: Store, *, now: datetime, report: DeliveryReport
) -> None:
    """Send ``target``'s due deliveries one by one, each claimed just before it is sent."""
    settings = config.alerts
    stamp = utc_iso(now)
    # long enough for this one send; a sender that dies mid-way frees the row when it ends
    lease = utc_iso(now + timedelta(seconds=settings.timeout + 60))
    for _number in range(settings.per_run):
        claimed = records.claim_due(
            store, target=target.name, now=stamp, lease_until=lease, limit=1
        )
        if not claimed:
            return
        story = records.story_of(store, claimed[0])
        if story is None:
            continue
        try:
            target.send(story)
        except AlertError as error:
            wait = retry_delay(
                story.attempts + 1, base=settings.retry_delay, cap=settings.max_backoff
            )
            if error.retry_after is not None:
                wait = max(wait, min(error.retry_after, settings.max_backoff))
            records.mark_failed(
                store,
                story.delivery_id,
                now=stamp,
                error=error.message,
                next_attempt_at=utc_iso(now + timedelta(seconds=wait)),
            )
            report.failed += 1
            report.failed_targets[target.name] = error.message
            log.warning(
                "alert target=%s story=%d failed: %s", target.name, story.story_id, error.message
            )
            return
        records.mark_delivered(store, story.delivery_id, now=stamp)
        report.delivered += 1
        log.info("alert target=%s story=%d delivered", target.name, story.story_id)
