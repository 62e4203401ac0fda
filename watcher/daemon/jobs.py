"""The cron jobs the config asks of the daemon: each digest on its schedule, and alert delivery.

Wiring only: the work is :func:`watcher.digest.send_digest` and
:func:`watcher.alerts.send_alerts`, each run in a worker thread with its own Store.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from watcher.config import Config
from watcher.daemon.cron import CronJob
from watcher.store import Store

log = logging.getLogger("watcher.daemon")

ALERTS_CRONTAB = "* * * * *"
"""Alerts are also sent right after a poll stores new items; this catches retries."""


def _digest_run(config: Config, db_path: Path, name: str) -> Callable[[datetime], None]:
    def run(now: datetime) -> None:
        from watcher.digest import send_digest

        store = Store.open(db_path)
        try:
            outcome = send_digest(config, store, name, now=now)
        finally:
            store.close()
        level = logging.WARNING if outcome.status == "failed" else logging.INFO
        log.log(
            level,
            "digest",
            extra={"digest": name, "status": outcome.status, "line": outcome.line()},
        )

    return run


def _alerts_run(config: Config, db_path: Path) -> Callable[[datetime], None]:
    def run(now: datetime) -> None:
        from watcher.alerts import send_alerts

        report = send_alerts(config, db_path, now=now)
        log.info("alerts", extra={"report": str(report)})

    return run


def alerts_wanted(config: Config) -> bool:
    """True when some topic alerts and some target can receive it."""
    targets = config.alerts.webhooks or (config.alerts.emails if config.smtp else ())
    return any(topic.alert for topic in config.topics) and bool(targets)


def configured_jobs(config: Config, db_path: Path) -> Sequence[CronJob]:
    """Digest jobs (``digest-NAME``) and, when alerts are configured, the ``alerts`` job."""
    jobs = [
        CronJob(
            f"digest-{digest.name}",
            digest.schedule,
            _digest_run(config, db_path, digest.name),
            timezone=ZoneInfo(digest.timezone),
        )
        for digest in config.digests
    ]
    if alerts_wanted(config):
        jobs.append(
            CronJob("alerts", ALERTS_CRONTAB, _alerts_run(config, db_path), after_new_items=True)
        )
    return jobs
