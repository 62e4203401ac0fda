"""Instant alerts: a new story in an alert topic goes at once to its targets (docs/alerts.md)."""

from watcher.alerts.deliver import (
    DeliveryReport,
    EmailTarget,
    Target,
    WebhookTarget,
    configured_targets,
    deliver_pending,
    email_target_name,
    retry_delay,
    send_alerts,
    target_names,
    webhook_target,
)

__all__ = [
    "DeliveryReport",
    "EmailTarget",
    "Target",
    "WebhookTarget",
    "configured_targets",
    "deliver_pending",
    "email_target_name",
    "retry_delay",
    "send_alerts",
    "target_names",
    "webhook_target",
]
