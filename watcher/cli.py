"""The ``watcher`` command line: thin commands over the library; errors never show a traceback."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, TypeVar

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from watcher import __version__, cli_extras
from watcher.config import (
    DEFAULT_CONFIG_PATH,
    DEFAULT_DB_PATH,
    Config,
    format_duration,
    load_config,
)
from watcher.display import cell, terminal_safe
from watcher.errors import DatabaseFault, QueryError, WatcherError
from watcher.importer import import_paths
from watcher.match import explain
from watcher.normalize import is_http_url, utc_iso
from watcher.poll import poll_feeds, prune_fetch_log
from watcher.sources.opml import Outline, read_opml, write_opml
from watcher.store import Store
from watcher.store import database as store_database
from watcher.store.faults import as_fault, faults_raised

F = TypeVar("F", bound=Callable[..., object])
MIRROR_WAIT = 1.0
"""Seconds a reading command waits for a lock to mirror the config; then it reads."""


@dataclass
class Context:
    config_path: Path
    db_path: Path
    verbose: bool = False
    _config: Config | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config

    @contextmanager
    def store(self, *, check: bool = False) -> Iterator[Store]:
        """The migrated database, with the config's topics and feeds mirrored into it.

        ``check``: the command writes at length (poll, import, retag), so the file is
        checked for damage before anything is written to it."""
        config = self.config
        store = Store.open(self.db_path, check=check)
        try:
            store.sync_config(config, utc_iso(datetime.now(UTC)))
            yield store
        finally:
            store.close()

    @contextmanager
    def reading(self, *, check: bool = False) -> Iterator[Store]:
        """The database for a command that only reads: nothing is written to it, so a
        read-only file or one locked by a writer still answers. The config is mirrored
        first when it changed and the file can be written at once. ``check`` as for
        :meth:`store`."""
        store = Store.open_for_reading(self.db_path, check=check)
        try:
            if not store.mirrors(self.config):
                self._mirror_config()
            yield store
        finally:
            store.close()

    def _mirror_config(self) -> None:
        """Mirror the config into the database when that can be done at once; a read-only
        or busy database is read as it is."""
        try:
            writable = Store.open(self.db_path, wait=MIRROR_WAIT)
        except DatabaseFault as fault:
            if fault.reason not in ("read_only", "locked"):
                raise
            logging.getLogger("watcher").info("config not mirrored: %s", fault)
            return
        try:
            with faults_raised(str(self.db_path), wait=MIRROR_WAIT):
                writable.sync_config(self.config, utc_iso(datetime.now(UTC)))
        except DatabaseFault as fault:
            if fault.reason not in ("read_only", "locked"):
                raise
            logging.getLogger("watcher").info("config not mirrored: %s", fault)
        finally:
            writable.close()


def _line(text: object) -> str:
    return terminal_safe(text, one_line=True)


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )


class WatcherGroup(click.Group):
    """Turns WatcherError, and SQLite's errors about the database file, into a one-line
    message and exit status 1."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except WatcherError as error:
            raise click.ClickException(terminal_safe(error)) from None
        except sqlite3.Error as error:
            obj = ctx.find_object(Context)
            where = str(obj.db_path) if obj is not None else "database"
            # a write that met a lock waited the store's busy timeout first
            fault = as_fault(error, where, wait=store_database.BUSY_TIMEOUT_MS / 1000)
            if fault is None:
                raise
            raise click.ClickException(terminal_safe(fault)) from None


@click.group(cls=WatcherGroup)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    envvar="WATCHER_CONFIG",
    default=DEFAULT_CONFIG_PATH,
    show_default=True,
    help="TOML configuration file.",
)
@click.option(
    "--db",
    "db_path",
    type=click.Path(path_type=Path),
    envvar="WATCHER_DB",
    default=DEFAULT_DB_PATH,
    show_default=True,
    help="SQLite database file.",
)
@click.option("-v", "--verbose", is_flag=True, help="Log one line per feed refresh.")
@click.version_option(__version__, prog_name="watcher")
@click.pass_context
def main(ctx: click.Context, config_path: Path, db_path: Path, verbose: bool) -> None:
    """Poll news feeds, keep what is new, tag it and store it in SQLite."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    ctx.obj = Context(config_path=config_path, db_path=db_path, verbose=verbose)


@main.command()
@click.pass_obj
def init(obj: Context) -> None:
    """Create or migrate the database and load the config's topics and feeds."""
    with obj.store(check=True) as store:
        click.echo(
            f"{store.path}: ready ({store.count('feeds')} feeds, {store.count('items')} items)"
        )


@main.group()
def corpus() -> None:
    """Work with the stored corpus."""


@corpus.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.pass_obj
def corpus_import(obj: Context, paths: tuple[Path, ...]) -> None:
    """Import documents (.txt, .md, .html, .jsonl; folders too) into the corpus."""
    console = Console(stderr=True)
    with obj.store(check=True) as store, _progress(console) as progress:
        task = progress.add_task("importing", total=None)
        summary = import_paths(
            list(paths),
            obj.config,
            store,
            now=datetime.now(UTC),
            on_document=lambda: progress.advance(task),
        )
    for error in summary.errors:
        click.echo(f"error: {terminal_safe(error)}", err=True)
    click.echo(summary.line())
    if summary.errors:
        sys.exit(1)


@main.command()
@click.option("--all", "poll_all", is_flag=True, help="Poll every enabled feed, due or not.")
@click.option("--feed", "feed_urls", multiple=True, help="Poll only this feed URL (repeatable).")
@click.pass_obj
def poll(obj: Context, poll_all: bool, feed_urls: tuple[str, ...]) -> None:
    """One pass over the due feeds; failures are recorded per feed and do not fail the pass."""
    console = Console(stderr=True)
    with obj.store(check=True) as store:
        now = utc_iso(datetime.now(UTC))
        if feed_urls:
            feeds = store.feed_states(now=now, urls=list(feed_urls))
            missing = set(feed_urls) - {feed.url for feed in feeds}
            if missing:
                raise click.ClickException(
                    f"not an enabled feed: {', '.join(sorted(missing))} (see 'watcher feeds list')"
                )
        else:
            feeds = store.feed_states(now=now, due_only=not poll_all)
        with _progress(console) as progress:
            task = progress.add_task("polling", total=len(feeds))
            summary = asyncio.run(
                poll_feeds(obj.config, store, feeds, on_done=lambda _o: progress.advance(task))
            )
        try:
            pruned = prune_fetch_log(store, obj.config, datetime.now(UTC))
        except sqlite3.Error as error:  # housekeeping: the pass itself is written
            logging.getLogger("watcher.poll").warning("fetch log not trimmed: %s", error)
        else:
            if pruned:
                logging.getLogger("watcher.poll").info("pruned %d fetch-log rows", pruned)
    for outcome in sorted(summary.outcomes, key=lambda o: o.url):
        if outcome.status == "failed":
            click.echo(
                f"failed: {terminal_safe(outcome.url)}: {terminal_safe(outcome.error, one_line=True)}",
                err=True,
            )
    click.echo(summary.line())
    if summary.nothing_stored:
        raise click.ClickException(
            "nothing could be stored: every feed with new entries failed to write "
            "(see the failures above and 'watcher status')"
        )


@main.command()
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    help="key=value text or JSON lines (default: [daemon] log_format).",
)
@click.pass_obj
def run(obj: Context, log_format: Literal["text", "json"] | None) -> None:
    """Run as a daemon: poll each feed when due until SIGTERM/SIGINT; SIGHUP reloads."""
    from watcher.daemon import configured_jobs, run_daemon

    run_daemon(
        obj.config,
        config_path=obj.config_path,
        db_path=obj.db_path,
        cron_jobs=configured_jobs,
        log_format=log_format,
        verbose=obj.verbose,
    )


@main.group()
def feeds() -> None:
    """List, add, remove, import and export feeds."""


feeds.add_command(cli_extras.feeds_discover)


@feeds.command("list")
@click.pass_obj
def feeds_list(obj: Context) -> None:
    """List feeds with their health."""
    with obj.reading() as store:
        rows = store.feeds()
    table = Table("id", "url", "origin", "enabled", "last status", "errors", "next due")
    for row in rows:
        table.add_row(
            str(row.id),
            cell(row.url),
            row.origin,
            "yes" if row.enabled else cell(f"no: {row.disabled_reason}"),
            str(row.last_status or "-"),
            str(row.error_count),
            row.next_due_at or "now",
        )
    Console(width=200).print(table)


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
    seconds = cli_extras.checked_topics_and_interval(obj, topics, interval)
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
        data = write_opml([Outline(url=row.url, title=row.title) for row in store.feeds()])
    if out is None:
        click.echo(data.decode())
    else:
        out.write_bytes(data)


@main.command()
@click.argument("query")
@click.option("--limit", default=20, show_default=True)
@click.pass_obj
def search(obj: Context, query: str, limit: int) -> None:
    """Full-text search (FTS5 syntax: AND, OR, NOT, "phrases", prefix*)."""
    with obj.reading() as store:
        try:
            rows = store.search(query, limit)
        except QueryError as error:
            raise QueryError(query, explain(error.reason)) from None
    for row in rows:
        when = (row["published_at"] or "")[:10]
        click.echo(f"{row['id']:>6}  {terminal_safe(when):10}  {_line(row['title'])}")
        click.echo(f"        {_line(row['url'] or row['source'] or '')}")
        click.echo(f"        {_line(row['snippet'])}")
    if not rows:
        click.echo("no matches")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the metrics and feed health as JSON.")
@click.pass_obj
def status(obj: Context, as_json: bool) -> None:
    """Feed health: last fetch, errors, next due."""
    if as_json:
        click.echo(cli_extras.status_json(obj))
        return
    with obj.reading(check=True) as store:
        rows = store.feeds()
        items = store.count("items")
        alert_lines = cli_extras.failing_target_lines(obj.config, store)
    table = Table(
        "feed", "state", "interval", "last fetch", "errors", "next due", "last error or reason"
    )
    for row in rows:
        if not row.enabled:
            state = "disabled"
        elif row.error_count:
            state = "failing"
        else:
            state = "ok" if row.last_fetch_at else "not yet fetched"
        interval = row.poll_interval or row.interval_seconds or obj.config.poll.default_interval
        table.add_row(
            cell(row.title or row.url),
            state,
            format_duration(interval),
            row.last_fetch_at or "never",
            str(row.error_count),
            "-" if not row.enabled else row.next_due_at or "now",
            cell(
                ((row.disabled_reason if not row.enabled else None) or row.last_error or "")[:100]
            ),
        )
    console = Console(width=200)
    console.print(table)
    failing = sum(1 for row in rows if row.enabled and row.error_count)
    disabled = sum(1 for row in rows if not row.enabled)
    line = f"{len(rows)} feeds, {failing} failing, {items} items stored"
    console.print(line + (f"; {disabled} disabled" if disabled else ""))
    for line in alert_lines:
        console.print(line, markup=False, highlight=False)


main.add_command(cli_extras.alerts)
main.add_command(cli_extras.metrics)


@main.command()
@click.option("--topic", help="Only items in this topic or matching its query now.")
@click.pass_obj
def retag(obj: Context, topic: str | None) -> None:
    """Recompute topics and tags of stored items (after a config change); fetches nothing."""
    from watcher.retag import retag as retag_items

    if topic is not None and topic not in {t.name for t in obj.config.topics}:
        raise click.BadParameter(f"unknown topic {topic!r}", param_hint="--topic")
    console = Console(stderr=True)
    with obj.store(check=True) as store, _progress(console) as progress:
        task = progress.add_task("retagging", total=store.count("items"))
        count = retag_items(
            obj.config, store, topic=topic, on_batch=lambda n: progress.advance(task, n)
        )
    click.echo(f"retagged {count} items")


@main.command()
@click.option("--topic", help="Only stories with an item in this topic.")
@click.option("--limit", default=20, show_default=True, help="How many stories.")
@click.pass_obj
def stories(obj: Context, topic: str | None, limit: int) -> None:
    """The latest stories: one line per event, with its item count and sources."""
    if topic is not None and topic not in {t.name for t in obj.config.topics}:
        raise click.BadParameter(f"unknown topic {topic!r}", param_hint="--topic")
    with obj.reading() as store:
        rows = store.stories(topic=topic, limit=limit)
    table = Table("story", "latest", "items", "copies", "sources", "title")
    for row in rows:
        table.add_row(
            str(row["story_id"]),
            (row["latest_at"] or "")[:16].replace("T", " "),
            str(row["items"]),
            str(row["duplicates"]),
            cell((row["source_names"] or "-").replace(",", ", ")),
            cell(row["title"] or ""),
        )
    Console(width=200).print(table)
    if not rows:
        click.echo("no stories yet")


@main.command()
@click.option("--name", help="The configured digest to send or preview (default: every one).")
@click.option(
    "--topic", "topics", multiple=True, help="Only this topic (repeatable; default every topic)."
)
@click.option("--dry-run", is_flag=True, help="Build without sending; marks nothing as sent.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the mail to this .eml file instead of sending it (implies --dry-run).",
)
@click.pass_obj
def digest(
    obj: Context, name: str | None, topics: tuple[str, ...], dry_run: bool, out: Path | None
) -> None:
    """Send the configured digests now, or preview one (--dry-run prints its text part).

    With no digest configured, --dry-run builds one digest of every topic from everything
    stored.
    """
    from watcher.digest import preview_digest, send_digest

    config = obj.config
    only = list(topics) or None
    names = [name] if name else [d.name for d in config.digests]
    if only and not name:
        # without --name, --topic picks the digests that cover one of those topics
        names = [
            d.name
            for d in config.digests
            if d.topics is None or any(topic in d.topics for topic in only)
        ] or names
    now = datetime.now(UTC)
    if dry_run or out is not None:
        if out is not None and len(names) > 1:
            raise click.ClickException(
                f"{len(names)} digests are configured ({', '.join(names)}); "
                "choose the one to write with --name"
            )
        chosen: list[str | None] = [*names] if names else [None]
        with obj.reading() as store:
            previews = [
                preview_digest(config, store, each, now=now, topics=only) for each in chosen
            ]
        for preview in previews:
            if out is not None:
                try:
                    out.write_bytes(preview.message.as_bytes())
                except OSError as error:
                    raise click.ClickException(
                        f"cannot write {out}: {error.strerror or error}"
                    ) from None
                click.echo(
                    f"wrote {out}: {terminal_safe(preview.subject)} "
                    f"(not sent; {preview.digest.item_count} items)"
                )
            else:
                click.echo(terminal_safe(preview.text))
        return
    if not names:
        raise click.ClickException(
            f"no digest is configured in {obj.config_path} (see docs/digest.md); "
            "'watcher digest --dry-run' previews one of everything stored"
        )
    failed = 0
    with obj.store() as store:
        for each in names:
            outcome = send_digest(config, store, each, now=now, topics=only)
            click.echo(terminal_safe(outcome.line()), err=outcome.status == "failed")
            failed += outcome.status == "failed"
    if failed:
        sys.exit(1)


@main.command()
@click.option("--host", help="Address to listen on (default [serve].host, 127.0.0.1).")
@click.option("--port", type=int, help="Port to listen on (default [serve].port, 8001).")
@click.option(
    "--metadata",
    "metadata_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Datasette metadata YAML/JSON (default [serve].metadata, db/metadata.yml).",
)
@click.pass_obj
def serve(obj: Context, host: str | None, port: int | None, metadata_path: Path | None) -> None:
    """Browse the database in Datasette, read-only, with the project's metadata."""
    from watcher.browse import datasette_for
    from watcher.browse import serve as run_server

    settings = obj.config.serve
    with obj.reading() as store:
        items = store.count("items")
    ds = datasette_for(settings, obj.db_path, metadata_path)
    host = host or settings.host
    port = settings.port if port is None else port
    click.echo(f"watcher: {items} items in {obj.db_path} at http://{host}:{port}/ (Ctrl-C stops)")
    if host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(f"warning: {host} is reachable from other machines", err=True)
    run_server(ds, host=host, port=port)
