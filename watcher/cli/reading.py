"""Reading the corpus and its health: ``search``, ``status``, ``stories``."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime, timedelta

import click
from rich.table import Table

from watcher.alerts import target_names
from watcher.cli.context import Context, one_line, table_console, warn_lowercase_operators
from watcher.config import Config, format_duration
from watcher.display import cell, terminal_safe
from watcher.errors import QueryError
from watcher.match import explain
from watcher.normalize import utc_iso
from watcher.store import Store
from watcher.store.alerts import target_health
from watcher.store.metrics import LAG_WINDOW_SECONDS, PollLag, feed_health, poll_lag


@click.command()
@click.argument("query")
@click.option("--limit", default=20, show_default=True)
@click.pass_obj
def search(obj: Context, query: str, limit: int) -> None:
    """Full-text search (FTS5 syntax: AND, OR, NOT, "phrases", prefix*)."""
    warn_lowercase_operators(query, "the search")
    if not query.strip():
        raise QueryError(query, explain("", query))
    with obj.reading() as store:
        try:
            rows = store.search(query, limit)
        except QueryError as error:
            raise QueryError(query, explain(error.reason, query)) from None
    for row in rows:
        when = (row["published_at"] or "undated")[:10]
        click.echo(f"{row['id']:>6}  {terminal_safe(when):10}  {one_line(row['title'])}")
        click.echo(f"        {one_line(row['url'] or row['source'] or '')}")
        click.echo(f"        {one_line(row['snippet'])}")
    if not rows:
        click.echo("no matches")


def failing_target_lines(config: Config, store: Store) -> list[str]:
    """One line per alert target whose latest attempt failed, for ``watcher status``."""
    lines = []
    for health in target_health(store, target_names(config)):
        if health.failing:
            lines.append(
                f"alert target {health.target} failing: {one_line(health.last_error)} "
                f"({health.retrying} waiting for a retry, last delivery "
                f"{health.last_delivered_at or 'never'}; see 'watcher alerts status')"
            )
    return lines


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the metrics and feed health as JSON.")
@click.pass_obj
def status(obj: Context, as_json: bool) -> None:
    """Feed health: last fetch, errors, next due."""
    if as_json:
        click.echo(status_json(obj))
        return
    with obj.reading(check=True) as store:
        rows = store.feeds()
        items = store.count("items")
        alert_lines = failing_target_lines(obj.config, store)
        since = utc_iso(datetime.now(UTC) - timedelta(seconds=LAG_WINDOW_SECONDS))
        lag = poll_lag(store, since=since)
    table = Table(
        "feed", "state", "interval", "last fetch", "errors", "next due", "last error or reason"
    )
    for row in rows:
        interval = row.poll_interval or row.interval_seconds or obj.config.poll.default_interval
        table.add_row(
            cell(row.title or row.url),
            row.state,
            format_duration(interval),
            row.last_fetch_at or "never",
            str(row.error_count),
            "-" if not row.enabled else row.next_due_at or "now",
            cell(
                ((row.disabled_reason if not row.enabled else None) or row.last_error or "")[:100]
            ),
        )
    console = table_console()
    console.print(table)
    failing = sum(1 for row in rows if row.enabled and row.error_count)
    disabled = sum(1 for row in rows if not row.enabled)
    line = f"{len(rows)} feeds, {failing} failing, {items} items stored"
    console.print(line + (f"; {disabled} disabled" if disabled else ""))
    console.print(lag_line(lag), markup=False, highlight=False)
    for line in alert_lines:
        console.print(line, markup=False, highlight=False)


def lag_line(lag: PollLag) -> str:
    """How late the daemon's polls of the last hour ran, and the writer's queue."""
    if not lag.polls:
        return "poll lag: no daemon polls in the last hour"
    return (
        f"poll lag, last hour ({lag.polls} daemon polls): p50 {lag.p50_ms / 1000:.1f} s, "
        f"p95 {lag.p95_ms / 1000:.1f} s, max {lag.max_ms / 1000:.1f} s; writer queue "
        f"{lag.writer_queue} at {lag.last_at} (at most {lag.writer_queue_max})"
    )


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


@click.command()
@click.option("--topic", help="Only stories with an item in this topic.")
@click.option("--limit", default=20, show_default=True, help="How many stories.")
@click.pass_obj
def stories(obj: Context, topic: str | None, limit: int) -> None:
    """The latest stories: one line per event, with its sources and languages, headed by
    its earliest published item."""
    if topic is not None and topic not in {t.name for t in obj.config.topics}:
        raise click.BadParameter(f"unknown topic {topic!r}", param_hint="--topic")
    with obj.reading() as store:
        rows = store.stories(topic=topic, limit=limit)
    if not rows:
        click.echo("no stories yet")
        return
    table = Table("story", "latest", "items", "copies", "sources", "languages", "lead headline")
    for row in rows:
        table.add_row(
            str(row["story_id"]),
            (row["latest_at"] or "undated")[:16].replace("T", " "),
            str(row["items"]),
            str(row["duplicates"]),
            cell((row["source_names"] or "-").replace(",", ", ")),
            cell((row["language_names"] or "-").replace(",", ", ")),
            cell(row["title"] or ""),
        )
    table_console().print(table)
