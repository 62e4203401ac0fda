"""Instant alerts: a new story in an alert topic goes at once to its targets (docs/alerts.md)."""

from watcher.alerts.deliver import (
    DeliveryReport,
    Target,
    WebhookTarget,
    deliver_pending,
    retry_delay,
    send_alerts,
    webhook_target,
)

__all__ = [
    "DeliveryReport",
    "Target",
    "WebhookTarget",
    "deliver_pending",
    "retry_delay",
    "send_alerts",
    "webhook_target",
]
