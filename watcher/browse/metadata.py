"""Read the project's Datasette metadata and fit it to the database being served."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from datasette.utils import BadMetadataError, parse_metadata

from watcher.errors import ConfigError

PLUGIN_NAME = "watcher-browse"
"""Key under ``plugins`` that marks a Datasette instance built by watcher (see hooks.py)."""

PACKAGED_METADATA = Path(__file__).with_name("metadata.yml")
"""The metadata shipped with watcher; ``db/metadata.yml`` in the repository links to it."""

DEFAULT_METADATA = "db/metadata.yml"
"""``[serve] metadata`` when the config names none."""


def resolve_metadata_path(explicit: Path | str | None, configured: Path | str | None) -> Path:
    """Which metadata file ``watcher serve`` reads.

    An explicit path (``--metadata``) is used as given. The configured one (``[serve]
    metadata``, relative to the working directory) is used when it exists; when it is
    the default ``db/metadata.yml`` and does not exist, the metadata shipped in the
    package is used, so ``watcher serve`` works from any folder. A configured path other
    than the default is used as given too, so a missing one is reported, not replaced.
    """
    if explicit is not None:
        return Path(explicit)
    if configured is None or str(configured) == "":
        return PACKAGED_METADATA
    path = Path(configured)
    if path.exists() or Path(str(configured)) != Path(DEFAULT_METADATA):
        return path
    return PACKAGED_METADATA


def database_name(db_path: Path | str) -> str:
    """The name Datasette gives a database file: its stem (``db/watcher.db`` → ``watcher``)."""
    return Path(db_path).stem


def load_metadata(path: Path | str, database: str, *, title: str | None = None) -> dict[str, Any]:
    """Metadata from a YAML or JSON file, its one database block keyed to ``database``.

    The file names its database ``watcher`` after the default file; keying the block to
    the served name makes ``--db other.db`` get the same tables, facets and queries, and
    ``{database}`` in a ``description_html`` becomes that name (for links to pages).
    Refuses what would make browsing writable: write queries and ``allow_sql`` blocks
    (arbitrary SQL is switched on by ``[serve] allow_sql`` only).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), "", "Datasette metadata file not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(str(path), "", f"cannot read: {error}") from None
    try:
        parsed = parse_metadata(text)
    except BadMetadataError as error:
        raise ConfigError(str(path), "", str(error)) from None
    if not isinstance(parsed, dict):
        raise ConfigError(str(path), "", "expected a mapping at the top level")
    metadata: dict[str, Any] = parsed
    databases = metadata.get("databases") or {}
    if not isinstance(databases, dict) or len(databases) > 1:
        raise ConfigError(str(path), "databases", "expected one database block")
    name, block = next(iter(databases.items()), ("watcher", {}))
    if not isinstance(block, dict):
        raise ConfigError(str(path), f"databases.{name}", "expected a mapping")
    _refuse_writes(str(path), metadata, name, block)
    for section in (metadata, block):
        if isinstance(section.get("description_html"), str):
            section["description_html"] = section["description_html"].replace(
                "{database}", database
            )
    metadata["databases"] = {database: block}
    if title is not None:
        metadata["title"] = title
    plugins = metadata.setdefault("plugins", {})
    if not isinstance(plugins, dict):
        raise ConfigError(str(path), "plugins", "expected a mapping")
    plugins[PLUGIN_NAME] = {"database": database}
    return metadata


def _refuse_writes(path: str, metadata: dict[str, Any], name: str, block: dict[str, Any]) -> None:
    for where, section in (("", metadata), (f"databases.{name}.", block)):
        if "allow_sql" in section:
            raise ConfigError(
                path,
                f"{where}allow_sql",
                "not allowed here; set [serve] allow_sql = true in the watcher config",
            )
    queries = block.get("queries") or {}
    if not isinstance(queries, dict):
        raise ConfigError(path, f"databases.{name}.queries", "expected a mapping of queries")
    for query_name, query in queries.items():
        if isinstance(query, dict) and query.get("write"):
            raise ConfigError(
                path,
                f"databases.{name}.queries.{query_name}.write",
                "browsing is read-only: no write queries",
            )
