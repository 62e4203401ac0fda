"""The ``watcher`` command's entry point (the console script and ``python -m watcher``).

A command that polls starts the pool's fork server first, so the server's start-up (the
tagging data, the language model) runs on another core while this process imports the CLI,
loads the configuration and opens the database: the first feed that changed finds its
worker ready. The commands that check the database for damage as they open it begin that
check (:mod:`watcher.quick_check`) before anything else, for the same reason. It also
keeps this module the whole "main script" a worker re-runs, as multiprocessing does,
instead of the CLI and its libraries.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from watcher import fork_server, paths, quick_check

_OPTIONS_WITH_VALUES = frozenset({"--config", "--db"})
_COMMANDS_THAT_POLL = frozenset({"poll"})
_COMMANDS_THAT_CHECK = frozenset({"poll", "run", "status", "init", "retag", "regroup", "corpus"})
"""The commands whose database is checked for damage as it opens (``check=True``)."""


def _command(argv: Sequence[str]) -> str | None:
    """The subcommand named in ``argv`` (the arguments after the program's name)."""
    values_left = 0
    for argument in argv:
        if values_left:
            values_left -= 1
        elif argument in _OPTIONS_WITH_VALUES:
            values_left = 1
        elif not argument.startswith("-"):
            return argument
    return None


def _option(argv: Sequence[str], name: str) -> str | None:
    """The value of ``name`` in ``argv`` (``--db PATH`` or ``--db=PATH``), if given."""
    for number, argument in enumerate(argv):
        if argument == name and number + 1 < len(argv):
            return argv[number + 1]
        if argument.startswith(f"{name}="):
            return argument.split("=", 1)[1]
    return None


def _database(argv: Sequence[str]) -> Path:
    """The database the command will use, found as the CLI finds it (:mod:`watcher.paths`)."""
    db = _option(argv, "--db") or os.environ.get("WATCHER_DB")
    config = _option(argv, "--config") or os.environ.get("WATCHER_CONFIG")
    return paths.locate(
        None if config is None else Path(config), None if db is None else Path(db)
    ).db


def main() -> None:
    argv = sys.argv[1:]
    command = _command(argv)
    database: Path | None = None
    if command in _COMMANDS_THAT_CHECK:
        with contextlib.suppress(Exception):  # best effort: the open checks the file itself
            database = _database(argv)
            quick_check.begin(database)
    if command in _COMMANDS_THAT_POLL and fork_server.cores() > 1:
        # best effort: the pool starts the server on its first job anyway, and says why
        # it cannot
        with contextlib.suppress(OSError):
            fork_server.start(encoder=fork_server.encoder_in_use(database or _database(argv)))
    from watcher.cli import main as cli

    cli()
