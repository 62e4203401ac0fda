"""Send the alerts that are due: queue new stories per target, POST them, record the outcome.

Retries are persisted, not in-process: a failed delivery gets its next attempt time
(exponential backoff, or the target's Retry-After) in ``alert_deliveries`` and waits
for a later run, so a run never sleeps and a restart loses no retry. A target whose
POST fails is left alone for the rest of the run, so one run costs a dead target at
most one ``[alerts].timeout``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from watcher.alerts.messages import webhook_body
from watcher.config import Config, WebhookConfig
from watcher.errors import AlertError
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


def target_topics(config: Config, hook: WebhookConfig) -> list[str]:
    """The alert topics a webhook receives: its own list (alert topics only), or all of them."""
    alerting = [topic.name for topic in config.topics if topic.alert]
    if hook.topics is None:
        return alerting
    return [name for name in alerting if name in hook.topics]


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
    sender: WebhookSender | None = None,
) -> DeliveryReport:
    """Queue new stories of alert topics for every target and send what is due at ``now``.

    Synchronous; each POST is bounded by ``[alerts].timeout`` and a failing target is
    skipped after its first failure, so a run is short even when targets are down. Use a
    Store of the calling thread's own. Never raises for a target's failure (it is
    recorded and reported); raises only for the database.
    """
    settings = config.alerts
    report = DeliveryReport()
    hooks = [hook for hook in settings.webhooks if target_topics(config, hook)]
    if not hooks:
        return report
    stamp = utc_iso(now)
    report.expired = records.expire_before(
        store, before=utc_iso(now - timedelta(seconds=settings.max_age))
    )
    since = utc_iso(now - timedelta(seconds=settings.max_age))
    for hook in hooks:
        report.queued += records.enqueue_new_stories(
            store,
            target=webhook_target(hook),
            topics=target_topics(config, hook),
            since=since,
            now=stamp,
        )
    owned = sender is None
    if sender is None:
        sender = WebhookSender(user_agent=config.poll.user_agent, timeout=settings.timeout)
    try:
        for hook in hooks:
            _deliver_to(hook, config, store, sender, now=now, report=report)
    finally:
        if owned:
            sender.close()
    return report


def _deliver_to(
    hook: WebhookConfig,
    config: Config,
    store: Store,
    sender: WebhookSender,
    *,
    now: datetime,
    report: DeliveryReport,
) -> None:
    settings = config.alerts
    target = webhook_target(hook)
    stamp = utc_iso(now)
    lease = utc_iso(now + timedelta(seconds=2 * settings.timeout + 60))
    claimed = records.claim_due(
        store, target=target, now=stamp, lease_until=lease, limit=settings.per_run
    )
    for position, delivery_id in enumerate(claimed):
        story = records.story_of(store, delivery_id)
        if story is None:
            continue
        try:
            sender.post(target, hook.url, webhook_body(story, hook.format), _headers(hook, story))
        except AlertError as error:
            wait = retry_delay(
                story.attempts + 1, base=settings.retry_delay, cap=settings.max_backoff
            )
            if error.retry_after is not None:
                wait = max(wait, min(error.retry_after, settings.max_backoff))
            records.mark_failed(
                store,
                delivery_id,
                now=stamp,
                error=error.message,
                next_attempt_at=utc_iso(now + timedelta(seconds=wait)),
            )
            records.release(store, claimed[position + 1 :], now=stamp)
            report.failed += 1
            report.failed_targets[target] = error.message
            log.warning(
                "alert target=%s story=%d failed: %s", target, story.story_id, error.message
            )
            return
        records.mark_delivered(store, delivery_id, now=stamp)
        report.delivered += 1
        log.info("alert target=%s story=%d delivered", target, story.story_id)


def _headers(hook: WebhookConfig, story: records.StoryRow) -> dict[str, str]:
    """The target's own headers, and a key that lets a receiver drop a repeated delivery."""
    return {"Idempotency-Key": f"watcher-{hook.name}-story-{story.story_id}", **hook.headers}
