"""Where the configuration and the database are when the command line does not say.

The contract (DESIGN.md): ``--config`` or ``$WATCHER_CONFIG``, else
``./config/watcher.toml`` when it exists, else the user's
``$XDG_CONFIG_HOME/watcher/watcher.toml`` (``~/.config/watcher/watcher.toml``). The
database: ``--db`` or ``$WATCHER_DB``, else ``./db/watcher.db`` beside a ``./config``
folder, else the user's ``$XDG_DATA_HOME/watcher/watcher.db``
(``~/.local/share/watcher/watcher.db``). So every command works from any folder.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from watcher.errors import ConfigError

PROJECT_CONFIG = Path("config") / "watcher.toml"
PROJECT_DB = Path("db") / "watcher.db"


def _user_dir(env: Mapping[str, str], variable: str, fallback: str) -> Path:
    value = env.get(variable, "")
    base = Path(value) if value and Path(value).is_absolute() else Path.home() / fallback
    return base / "watcher"


def user_config_path(env: Mapping[str, str] = os.environ) -> Path:
    return _user_dir(env, "XDG_CONFIG_HOME", ".config") / "watcher.toml"


def user_db_path(env: Mapping[str, str] = os.environ) -> Path:
    return _user_dir(env, "XDG_DATA_HOME", ".local/share") / "watcher.db"


@dataclass(frozen=True, slots=True)
class Locations:
    """The config file and database a command uses, and whether the user named each."""

    config: Path
    db: Path
    config_given: bool
    db_given: bool


def locate(
    config: Path | None,
    db: Path | None,
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] = os.environ,
) -> Locations:
    """The config and database paths, from what was given (``None``: not given; the
    environment variables arrive here through the options) and what exists."""
    given_config, given_db = config is not None, db is not None
    base = cwd or Path()
    if config is None:
        project = base / PROJECT_CONFIG
        config = project if project.is_file() else user_config_path(env)
    if db is None:
        db = base / PROJECT_DB if (base / "config").is_dir() else user_db_path(env)
    return Locations(config, db, given_config, given_db)


def missing_config(locations: Locations, cwd: Path | None = None) -> ConfigError:
    """The error for a config file that is not there: where it looked, how to choose."""
    here = cwd or Path.cwd()
    if locations.config_given:
        return ConfigError(
            str(locations.config),
            "",
            "file not found (named by --config or $WATCHER_CONFIG)",
        )
    return ConfigError(
        str(locations.config),
        "",
        f"no configuration found: looked for {PROJECT_CONFIG} in {here} and for "
        f"{user_config_path()}; pass --config PATH, set $WATCHER_CONFIG, or copy the "
        "example config/watcher.toml of the repository to one of those places",
    )


def check_db_folder(locations: Locations, *, creating: bool) -> None:
    """A database named in a folder that does not exist is a typo unless the command
    creates it (``init``); the default folders are created as needed."""
    folder = locations.db.parent
    if locations.db_given and not creating and not folder.is_dir():
        raise ConfigError(
            str(locations.db),
            "",
            f"folder {folder} does not exist (a mistyped --db or $WATCHER_DB?); "
            "'watcher init' creates a new database there",
        )
