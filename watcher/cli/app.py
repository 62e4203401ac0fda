"""The ``watcher`` group: global options, and every command registered from its module."""

from __future__ import annotations

import importlib
import logging
import sys
from pathlib import Path
from typing import Final

import click

from watcher import __version__
from watcher.cli.context import Context, WatcherGroup
from watcher.paths import locate

CREATING_COMMANDS = frozenset({"init"})

COMMANDS: Final = {
    "alerts": "alerts",
    "corpus": "corpus",
    "digest": "digest",
    "feeds": "feeds",
    "init": "database",
    "metrics": "metrics",
    "poll": "polling",
    "regroup": "database",
    "retag": "database",
    "run": "polling",
    "search": "reading",
    "serve": "serve",
    "status": "reading",
    "stories": "reading",
}
"""Each command and the module of ``watcher.cli`` that defines it (under its own name)."""


class _Commands(WatcherGroup):
    """Imports a command's module only when that command runs (or help lists it): ``watcher
    poll`` does not load the alerts, the digest's templates or the importer."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMANDS.get(cmd_name)
        if module is None:
            return None
        command = getattr(importlib.import_module(f"watcher.cli.{module}"), cmd_name)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=_Commands)
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
