"""Browsing the corpus in Datasette: metadata, a read-only instance, links between pages."""

from watcher.browse.app import ReadOnlyDatabase, build_datasette, datasette_for, serve
from watcher.browse.metadata import database_name, load_metadata

__all__ = [
    "ReadOnlyDatabase",
    "build_datasette",
    "database_name",
    "datasette_for",
    "load_metadata",
    "serve",
]
