"""``poll`` (one pass) and ``run`` (the daemon)."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from datetime import UTC, datetime
from typing import Literal

import click
from rich.console import Console

from watcher.cli.context import Context, progress_bar
from watcher.display import terminal_safe
from watcher.normalize import utc_iso
from watcher.poll import poll_feeds, prune_fetch_log

INTERRUPTED = 130
"""The exit status of a pass stopped by Ctrl-C (128 + SIGINT, as shells report it)."""


@click.command()
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
        try:
            with progress_bar(console) as progress:
                task = progress.add_task("polling", total=len(feeds))
                summary = asyncio.run(
                    poll_feeds(obj.config, store, feeds, on_done=lambda _o: progress.advance(task))
                )
        except KeyboardInterrupt:
            click.echo(
                "interrupted: what was stored is kept (the next pass or 'watcher run' "
                "completes its stories); the feeds not reached are polled next time",
                err=True,
            )
            raise SystemExit(INTERRUPTED) from None
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


@click.command()
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
