"""``feeds``: list, add, remove, import, export and discover feeds."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import click
from rich.table import Table

from watcher.cli.context import Context, one_line, table_console
from watcher.config import parse_duration
from watcher.display import cell
from watcher.normalize import is_http_url, utc_iso
from watcher.poll import fetch_settings
from watcher.sources.discover import Discovery, discover_feeds, pick
from watcher.sources.fetch import Fetcher
from watcher.sources.opml import Outline, read_opml, write_opml


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


@click.group()
def feeds() -> None:
    """List, add, remove, import and export feeds."""


@feeds.command("list")
@click.pass_obj
def feeds_list(obj: Context) -> None:
    """List feeds with their health."""
    with obj.reading() as store:
        rows = store.feeds()
    table = Table("id", "title", "url", "origin", "state", "last status", "errors", "next due")
    for row in rows:
        table.add_row(
            str(row.id),
            cell(row.title or "-"),
            cell(row.url),
            row.origin,
            row.state if row.enabled else cell(f"disabled: {row.disabled_reason}"),
            str(row.last_status or "-"),
            str(row.error_count),
            "-" if not row.enabled else row.next_due_at or "now",
        )
    table_console().print(table)


@feeds.command("add")
@click.argument("url")
@click.option("--title", help="A name for the feed.")
@click.option("--topic", "topics", multiple=True, help="Topic to match (repeatable; default all).")
@click.option("--interval", help="Poll interval such as 15m or 2h.")
@click.pass_obj
def feeds_add(
    obj: Context, url: str, title: str | None, topics: tuple[str, ...], interval: str | None
) -> None:
    """Add a feed to the database."""
    url = url.strip()
    if not is_http_url(url):
        raise click.BadParameter(f"expected an absolute http(s) URL, got {url!r}", param_hint="URL")
    seconds = checked_topics_and_interval(obj, topics, interval)
    with obj.store() as store:
        added = store.add_feed(
            url,
            now=utc_iso(datetime.now(UTC)),
            title=title,
            topics=list(topics) or None,
            interval_seconds=seconds,
        )
    click.echo(f"added {url}" if added else f"already there: {url}")


@feeds.command("remove")
@click.argument("url")
@click.pass_obj
def feeds_remove(obj: Context, url: str) -> None:
    """Remove a feed (its items stay in the corpus)."""
    url = url.strip()
    if any(feed.url == url for feed in obj.config.feeds):
        raise click.ClickException(
            f"{url} is listed in {obj.config_path}; remove it there (or set enabled = false)"
        )
    with obj.store() as store:
        removed = store.remove_feed(url)
    if not removed:
        raise click.ClickException(f"no such feed: {url}")
    click.echo(f"removed {url}")


@feeds.command("import")
@click.argument("opml", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
def feeds_import(obj: Context, opml: Path) -> None:
    """Add every feed of an OPML file."""
    outlines, skipped = read_opml(opml.read_bytes(), str(opml))
    added = 0
    with obj.store() as store:
        now = utc_iso(datetime.now(UTC))
        for outline in outlines:
            added += store.add_feed(outline.url, now=now, title=outline.title, origin="opml")
    for note in skipped:
        click.echo(f"skipped {note}", err=True)
    click.echo(
        f"{added} feeds added, {len(outlines) - added} already there, {len(skipped)} skipped"
    )


@feeds.command("export")
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), help="File (default stdout)."
)
@click.pass_obj
def feeds_export(obj: Context, out: Path | None) -> None:
    """Write every feed as OPML."""
    with obj.reading() as store:
        rows = store.feeds()
    data = write_opml([Outline(url=row.url, title=row.title) for row in rows])
    if out is None:
        click.echo(data.decode())
        return
    try:
        out.write_bytes(data)
    except OSError as error:
        raise click.ClickException(f"cannot write {out}: {error.strerror or error}") from None
    click.echo(f"wrote {len(rows)} feeds to {out}")


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
            click.echo(f"not a feed: {one_line(candidate)}: {one_line(reason)}", err=True)
        raise click.ClickException(f"no feeds found at {found.address}")
    if found.is_feed:
        feed = found.feeds[0]
        click.echo(
            f"{one_line(feed.url)} is a feed: {one_line(feed.title or '(untitled)')}, "
            f"{feed.entries} items"
        )
    else:
        table = Table("#", "url", "title", "items", "found by")
        for number, feed in enumerate(found.feeds, 1):
            table.add_row(
                str(number), cell(feed.url), cell(feed.title or ""), str(feed.entries), feed.via
            )
        table_console().print(table)
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
            click.echo(
                f"added {one_line(feed.url)}" if added else f"already there: {one_line(feed.url)}"
            )


feeds.add_command(feeds_discover)
