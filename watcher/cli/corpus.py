"""``corpus import``: documents into the corpus."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import click
from rich.console import Console

from watcher.cli.context import Context, progress_bar
from watcher.display import terminal_safe
from watcher.importer import import_paths


@click.group()
def corpus() -> None:
    """Work with the stored corpus."""


@corpus.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.pass_obj
def corpus_import(obj: Context, paths: tuple[Path, ...]) -> None:
    """Import documents (.txt, .md, .html, .jsonl; folders too) into the corpus."""
    console = Console(stderr=True)
    with obj.store(check=True) as store, progress_bar(console) as progress:
        task = progress.add_task("importing", total=None)
        summary = import_paths(
            list(paths),
            obj.config,
            store,
            now=datetime.now(UTC),
            on_document=lambda: progress.advance(task),
        )
    for error in summary.errors:
        click.echo(f"error: {terminal_safe(error)}", err=True)
    click.echo(summary.line())
    if summary.errors:
        sys.exit(1)
