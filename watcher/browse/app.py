"""Build a read-only Datasette instance over the watcher database and serve it."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from datasette.app import Datasette
from datasette.database import Database
from datasette.plugins import pm

from watcher.browse import hooks
from watcher.browse.metadata import database_name, load_metadata, resolve_metadata_path
from watcher.config import ServeConfig
from watcher.store.database import read_only_uri

TEMPLATES = Path(__file__).with_name("templates")
"""The project's templates: the front page, News and Stories as cards, an item as an
article; every other page is Datasette's own."""

SETTINGS: dict[str, Any] = {
    "allow_download": False,
    "sql_time_limit_ms": 3000,
    "facet_time_limit_ms": 500,
    "suggest_facets": False,
    "truncate_cells_html": 400,
}
"""Longer limits than Datasette's defaults, for facets on topics and tags over a large
corpus (reads never hold up the daemon's writes, WAL, only the page); no suggested
facets, whose queries would run on every page for columns nobody facets on."""


class ReadOnlyDatabase(Database):  # type: ignore[misc]
    """A Datasette database that never opens a writable connection.

    Reads go through ``mode=ro`` as for any mutable Datasette database (not
    ``immutable=1``, so pages follow the daemon's writes); a write connection, which a
    write query or a plugin would ask for, is opened read-only as well.
    """

    def connect(self, write: bool = False) -> sqlite3.Connection:
        connection: sqlite3.Connection = super().connect(write=False)
        return connection


def _register_plugin() -> None:
    if not pm.is_registered(hooks):
        pm.register(hooks, name="watcher.browse.hooks")


def build_datasette(
    db_path: Path | str, metadata: dict[str, Any], *, allow_sql: bool = False
) -> Datasette:
    """A Datasette instance serving only ``db_path``, read-only, with ``metadata``."""
    _register_plugin()
    ds = Datasette(
        files=[],
        metadata=metadata,
        template_dir=str(TEMPLATES),
        settings={**SETTINGS, "default_allow_sql": allow_sql},
    )
    ds.remove_database("_memory")
    path = Path(db_path).resolve()
    # in a read-only folder SQLite reads a WAL file only as immutable
    mutable = not path.exists() or "immutable=1" not in read_only_uri(path)
    ds.add_database(
        ReadOnlyDatabase(ds, path=str(path), is_mutable=mutable),
        name=database_name(db_path),
    )
    return ds


def datasette_for(
    settings: ServeConfig, db_path: Path | str, metadata_path: Path | str | None = None
) -> Datasette:
    """The instance ``watcher serve`` runs: ``[serve]`` settings, the project's metadata."""
    path = resolve_metadata_path(metadata_path, settings.metadata)
    metadata = load_metadata(path, database_name(db_path), title=settings.title)
    return build_datasette(db_path, metadata, allow_sql=settings.allow_sql)


def serve(ds: Datasette, *, host: str, port: int) -> None:
    """Run ``ds`` with uvicorn until interrupted."""
    import uvicorn

    uvicorn.run(ds.app(), host=host, port=port, log_level="warning", lifespan="on")
