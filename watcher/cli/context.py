"""What every command shares: the configuration and database it works on, how errors
become one line, and how tables and progress reach the terminal."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from watcher.config import Config, load_config
from watcher.display import terminal_safe
from watcher.errors import DatabaseFault, WatcherError
from watcher.match import QUERY_DOCS, lowercase_operators
from watcher.normalize import utc_iso
from watcher.paths import Locations, check_db_folder, missing_config
from watcher.store import Store
from watcher.store import database as store_database
from watcher.store.faults import as_fault, faults_raised

MIRROR_WAIT = 1.0
"""Seconds a reading command waits for a lock to mirror the config; then it reads."""
PIPE_WIDTH = 200
"""Columns of a table written to a pipe or file, where no terminal says its width: wide
enough that a row stays one line for grep and scripts."""


@dataclass
class Context:
    locations: Locations
    verbose: bool = False
    creating: bool = False
    """The command creates the database (``init``): its folder may not exist yet."""
    _config: Config | None = None

    @property
    def config_path(self) -> Path:
        return self.locations.config

    @property
    def db_path(self) -> Path:
        return self.locations.db

    @property
    def config(self) -> Config:
        if self._config is None:
            if not self.config_path.is_file():
                raise missing_config(self.locations)
            self._config = load_config(self.config_path)
            for topic in self._config.topics:
                warn_lowercase_operators(topic.query, f"topic {topic.name!r}")
        return self._config

    @property
    def has_config(self) -> bool:
        """Whether there is a config file to read (a named one that is missing is an error
        when read, not an absence)."""
        return self.locations.config_given or self.config_path.is_file()

    def _reading_config(self) -> Config | None:
        """The config a reading command mirrors first; None where there is none to find
        but the database exists: it is read as the last command mirrored it (``watcher --db
        PATH serve`` from any folder needs no copy of the config). A database that is not
        there is not created without one."""
        if self.has_config:
            return self.config
        if self.db_path.is_file():
            logging.getLogger("watcher").info(
                "no configuration found; reading %s as it is", self.db_path
            )
            return None
        raise missing_config(self.locations)

    def _open(self, *, check: bool) -> Store:
        check_db_folder(self.locations, creating=self.creating)
        return Store.open(self.db_path, check=check)

    @contextmanager
    def store(self, *, check: bool = False) -> Iterator[Store]:
        """The migrated database, with the config's topics and feeds mirrored into it.

        ``check``: the command writes at length (poll, import, retag), so the file is
        checked for damage before anything is written to it."""
        config = self.config
        store = self._open(check=check)
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
        :meth:`store`. Without a config to find, an existing database is read as it is."""
        config = self._reading_config()
        check_db_folder(self.locations, creating=False)
        store = Store.open_for_reading(self.db_path, check=check)
        try:
            if config is not None and not store.mirrors(config):
                self._mirror_config()
            yield store
        finally:
            store.close()

    def _mirror_config(self) -> None:
        """Mirror the config into the database when that can be done at once; a read-only
        or busy database is read as it is."""
        log = logging.getLogger("watcher")
        try:
            writable = Store.open(self.db_path, wait=MIRROR_WAIT)
        except DatabaseFault as fault:
            if fault.reason not in ("read_only", "locked"):
                raise
            log.info("config not mirrored: %s", fault)
            return
        try:
            with faults_raised(str(self.db_path), wait=MIRROR_WAIT):
                writable.sync_config(self.config, utc_iso(datetime.now(UTC)))
        except DatabaseFault as fault:
            if fault.reason not in ("read_only", "locked"):
                raise
            log.info("config not mirrored: %s", fault)
        finally:
            writable.close()


def warn_lowercase_operators(query: str, where: str) -> None:
    """Say on stderr when ``query`` has ``and``/``or``/``not`` in lower case: FTS5 searches
    them as words, which is rarely what was meant."""
    words = lowercase_operators(query)
    if words:
        listed = ", ".join(f"'{word}'" for word in words)
        click.echo(
            f"warning: {where}: {listed} in lower case is searched as a word; write "
            f"{', '.join(word.upper() for word in words)} for the operator ({QUERY_DOCS})",
            err=True,
        )


def one_line(text: object) -> str:
    return terminal_safe(text, one_line=True)


def table_console() -> Console:
    """A console for tables: a terminal's own width (Rich asks it), else :data:`PIPE_WIDTH`."""
    console = Console()
    if not console.is_terminal:
        console = Console(width=PIPE_WIDTH)
    return console


def progress_bar(console: Console) -> Progress:
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
