"""``alerts``: instant alerts for new stories."""

from __future__ import annotations

from datetime import UTC, datetime

import click
from rich.table import Table

from watcher.alerts import deliver_pending, target_names
from watcher.cli.context import Context, one_line, table_console
from watcher.display import cell
from watcher.store.alerts import target_health


@click.group("alerts")
def alerts() -> None:
    """Instant alerts for new stories in topics marked ``alert = true``."""


@alerts.command("send")
@click.pass_obj
def alerts_send(obj: Context) -> None:
    """Queue new stories of alert topics and send what is due now."""
    if not any(topic.alert for topic in obj.config.topics):
        click.echo("note: no topic has alert = true, so nothing is alerted", err=True)
    elif not obj.config.alerts.webhooks:
        click.echo("note: [alerts] names no target (see docs/alerts.md)", err=True)
    with obj.store() as store:
        report = deliver_pending(obj.config, store, now=datetime.now(UTC))
    for target, error in sorted(report.failed_targets.items()):
        click.echo(f"failed: {target}: {one_line(error)}", err=True)
    click.echo(report.line())


@alerts.command("status")
@click.pass_obj
def alerts_status(obj: Context) -> None:
    """Each alert target's deliveries: delivered, waiting, retrying, expired, last error."""
    with obj.reading() as store:
        rows = target_health(store, target_names(obj.config))
    if not rows:
        click.echo("no alert targets configured (see docs/alerts.md)")
        return
    table = Table(
        "target", "state", "delivered", "pending", "retrying", "expired", "last delivery", "error"
    )
    for row in rows:
        table.add_row(
            row.target,
            "failing" if row.failing else "ok",
            str(row.delivered),
            str(row.pending),
            str(row.retrying),
            str(row.expired),
            row.last_delivered_at or "never",
            cell((row.last_error or "")[:80]),
        )
    table_console().print(table)
