"""The ``watcher`` group: global options, and every command registered from its module."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from watcher import __version__
from watcher.cli import alerts, corpus, database, digest, feeds, metrics, polling, reading, serve
from watcher.cli.context import Context, WatcherGroup
from watcher.paths import locate

CREATING_COMMANDS = frozenset({"init"})


@click.group(cls=WatcherGroup)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="WATCHER_CONFIG",
    help="TOML configuration file [default: ./config/watcher.toml, else "
    "~/.config/watcher/watcher.toml].",
)
@click.option(
    "--db",
    "db_path",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="WATCHER_DB",
    help="SQLite database file [default: ./db/watcher.db beside ./config, else "
    "~/.local/share/watcher/watcher.db].",
)
@click.option("-v", "--verbose", is_flag=True, help="Log one line per feed refresh.")
@click.version_option(__version__, prog_name="watcher")
@click.pass_context
def main(ctx: click.Context, config_path: Path | None, db_path: Path | None, verbose: bool) -> None:
    """Poll news feeds, keep what is new, tag it and store it in SQLite."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    # one line per feed refresh is watcher's own; httpx would add one per request
    logging.getLogger("httpx").setLevel(logging.WARNING)
    ctx.obj = Context(
        locations=locate(config_path, db_path),
        verbose=verbose,
        creating=ctx.invoked_subcommand in CREATING_COMMANDS,
    )


for command in (
    database.init,
    corpus.corpus,
    polling.poll,
    polling.run,
    feeds.feeds,
    reading.search,
    reading.status,
    alerts.alerts,
    metrics.metrics,
    database.retag,
    database.regroup,
    reading.stories,
    digest.digest,
    serve.serve,
):
    main.add_command(command)
