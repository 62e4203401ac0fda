"""watcher: a media-monitoring feed watcher."""

__version__ = "0.1.0"
