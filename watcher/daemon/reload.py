"""Noticing that the config file changed, and reading it again."""

from __future__ import annotations

import hashlib
from pathlib import Path

from watcher.config import Config, load_config


def _digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


class ConfigSource:
    """The config file the daemon was started with. Its content is compared, not its
    modification time, so saving a file unchanged (or touching it) reloads nothing."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen = _digest(path)

    def changed(self) -> bool:
        """True when the content differs from the last one loaded (or tried)."""
        current = _digest(self.path)
        return current is not None and current != self._seen

    def load(self) -> Config:
        """Read the file again; a broken edit raises ConfigError and is not retried until
        the file changes once more."""
        self._seen = _digest(self.path)
        return load_config(self.path)
