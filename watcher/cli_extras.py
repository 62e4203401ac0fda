"""Commands beyond the readers: ``feeds discover``, ``alerts``, ``metrics``; cli.py registers them.

They live apart from cli.py so that cli.py keeps only the core commands; the context
object they receive is :class:`watcher.cli.Context`.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.table import Table

from watcher.config import parse_duration
from watcher.normalize import utc_iso
from watcher.poll import fetch_settings
from watcher.sources.discover import Discovery, discover_feeds, pick
from watcher.sources.fetch import Fetcher

if TYPE_CHECKING:
    from watcher.cli import Context


def _checked_topics_and_interval(
    obj: Context, topics: tuple[str, ...], interval: str | None
) -> float | None:
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
    seconds = _checked_topics_and_interval(obj, topics, interval)
    if picks and not add:
        raise click.BadParameter("--pick needs --add", param_hint="--pick")

    async def run() -> Discovery:
        async with Fetcher(fetch_settings(obj.config)) as fetcher:
            return await discover_feeds(url, fetcher)

    found = asyncio.run(run())
    if not found.feeds:
        for candidate, reason in found.rejected:
            click.echo(f"not a feed: {candidate}: {reason}", err=True)
        raise click.ClickException(f"no feeds found at {found.address}")
    if found.is_feed:
        feed = found.feeds[0]
        click.echo(f"{feed.url} is a feed: {feed.title or '(untitled)'}, {feed.entries} items")
    else:
        table = Table("#", "url", "title", "items", "found by")
        for number, feed in enumerate(found.feeds, 1):
            table.add_row(str(number), feed.url, feed.title or "", str(feed.entries), feed.via)
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
            click.echo(f"added {feed.url}" if added else f"already there: {feed.url}")
