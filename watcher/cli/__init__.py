"""The ``watcher`` command line: thin commands over the library, one module per group of
commands; errors never show a traceback."""

from watcher.cli.app import main

__all__ = ["main"]
