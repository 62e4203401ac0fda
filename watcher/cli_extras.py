"""Commands beyond the readers: ``feeds discover``, ``alerts``, ``metrics``, ``status --json``.

cli.py registers them; they live apart so that cli.py keeps only the core commands.
The context object they receive is :class:`watcher.cli.Context`.
"""

from __future__ import annotations

import asyncio
import json
import signal
import threading
from dataclasses import asdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.table import Table

from watcher.alerts import deliver_pending, target_names
from watcher.config import Config, parse_duration
from watcher.display import cell, terminal_safe
from watcher.normalize import utc_iso
from watcher.poll import fetch_settings
from watcher.sources.discover import Discovery, discover_feeds, pick
from watcher.sources.fetch import Fetcher
from watcher.store import Store
from watcher.store.alerts import target_health
from watcher.store.metrics import feed_health

if TYPE_CHECKING:
    from watcher.cli import Context


def _line(text: object) -> str:
    return terminal_safe(text, one_line=True)


def checked_topics_and_interval(
    obj: Context, topics: tuple[str, ...], interval: str | None
) -> float | None:
    """The ``--interval`` in seconds, after checking every ``--topic`` is configured
    (``feeds add`` and ``feeds discover --add``)."""
    known = {topic.name for topic in obj.config.topics}
    unknown = [topic for topic in topics if topic not in known]
    if unknown:
        raise click.BadParameter(
            f"unknown topic {unknown[0]!r}; known: {sorted(known)}", param_hint="--topic"
        )
    try:
        return parse_duration(interval) if interval else None
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--interval") from None


@click.command("discover")
@click.argument("url")
@click.option(
    "--add", "add", is_flag=True, help="Add the feeds found (all, or those --pick names)."
)
@click.option(
    "--pick", "picks", type=int, multiple=True, help="Number of a feed to add (repeatable)."
)
@click.option("--topic", "topics", multiple=True, help="Topic to match (repeatable; default all).")
@click.option("--interval", help="Poll interval such as 15m or 2h.")
@click.pass_obj
def feeds_discover(
    obj: Context,
    url: str,
    add: bool,
    picks: tuple[int, ...],
    topics: tuple[str, ...],
    interval: str | None,
) -> None:
    """Find a site's feeds (alternate links, common paths, sitemaps) and optionally add them."""
    seconds = checked_topics_and_interval(obj, topics, interval)
    for given, name in ((picks, "--pick"), (topics, "--topic"), (interval, "--interval")):
        if given and not add:
            raise click.BadParameter(f"{name} needs --add", param_hint=name)

    async def run() -> Discovery:
        async with Fetcher(fetch_settings(obj.config)) as fetcher:
            return await discover_feeds(url, fetcher)

    found = asyncio.run(run())
    if not found.feeds:
        for candidate, reason in found.rejected:
            click.echo(f"not a feed: {_line(candidate)}: {_line(reason)}", err=True)
        raise click.ClickException(f"no feeds found at {found.address}")
    if found.is_feed:
        feed = found.feeds[0]
        click.echo(
            f"{_line(feed.url)} is a feed: {_line(feed.title or '(untitled)')}, "
            f"{feed.entries} items"
        )
    else:
        table = Table("#", "url", "title", "items", "found by")
        for number, feed in enumerate(found.feeds, 1):
            table.add_row(
                str(number), cell(feed.url), cell(feed.title or ""), str(feed.entries), feed.via
            )
        Console(width=200).print(table)
    if not add:
        return
    try:
        chosen = pick(found.feeds, picks)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--pick") from None
    with obj.store() as store:
        now = utc_iso(datetime.now(UTC))
        for feed in chosen:
            added = store.add_feed(
                feed.url,
                now=now,
                title=feed.title,
                topics=list(topics) or None,
                interval_seconds=seconds,
                origin="discover",
            )
            click.echo(f"added {_line(feed.url)}" if added else f"already there: {_line(feed.url)}")


def failing_target_lines(config: Config, store: Store) -> list[str]:
    """One line per alert target whose latest attempt failed, for ``watcher status``."""
    lines = []
    for health in target_health(store, target_names(config)):
        if health.failing:
            lines.append(
                f"alert target {health.target} failing: {_line(health.last_error)} "
                f"({health.retrying} waiting for a retry, last delivery "
                f"{health.last_delivered_at or 'never'}; see 'watcher alerts status')"
            )
    return lines


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
        click.echo(f"failed: {target}: {_line(error)}", err=True)
    click.echo(report.line())


@alerts.command("status")
@click.pass_obj
def alerts_status(obj: Context) -> None:
    """Each alert target's deliveries: delivered, waiting, retrying, expired, last error."""
    with obj.reading() as store:
        rows = target_health(store, target_names(obj.config))
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
    Console(width=200).print(table)
    if not rows:
        click.echo("no alert targets configured (see docs/alerts.md)")


def status_json(obj: Context) -> str:
    """The metrics figures, per-feed health and alert targets, as ``watcher status --json``."""
    with obj.reading() as store:
        from watcher.metrics import read_snapshot  # prometheus_client: only two commands need it

        snapshot = read_snapshot(store, now=datetime.now(UTC))
        document = {
            **snapshot.as_dict(),
            "feed_health": feed_health(store),
            "alert_targets": [
                asdict(health) for health in target_health(store, target_names(obj.config))
            ],
        }
    return json.dumps(document, indent=2, ensure_ascii=False)


@click.group("metrics")
def metrics() -> None:
    """Prometheus metrics of feeds, polls, items and alerts."""


@metrics.command("serve")
@click.option("--host", help="Address to listen on (default [metrics].host, 127.0.0.1).")
@click.option("--port", type=int, help="Port (default [metrics].port, 9464; 0 picks a free one).")
@click.pass_obj
def metrics_serve(obj: Context, host: str | None, port: int | None) -> None:
    """Serve /metrics for Prometheus until interrupted, reading the database at each scrape."""
    settings = obj.config.metrics
    with obj.reading():
        pass  # create or migrate the database before the first scrape
    host = host or settings.host
    port = settings.port if port is None else port
    try:
        from watcher.metrics import start_metrics_server

        server = start_metrics_server(obj.db_path, host, port)
    except OSError as error:
        raise click.ClickException(
            f"cannot listen on {host}:{port}: {error.strerror or error}"
        ) from None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
    click.echo(f"serving metrics at {server.url}", err=True)
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
