"""Instant alerts: a new story in an alert topic goes at once to webhooks (docs/alerts.md)."""

from watcher.alerts.deliver import DeliveryReport, deliver_pending, retry_delay, webhook_target

__all__ = ["DeliveryReport", "deliver_pending", "retry_delay", "webhook_target"]
