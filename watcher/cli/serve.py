"""``serve``: Datasette on the database."""

from __future__ import annotations

import socket
from pathlib import Path

import click

from watcher.cli.context import Context
from watcher.config import ServeConfig


@click.command()
@click.option("--host", help="Address to listen on (default [serve].host, 127.0.0.1).")
@click.option("--port", type=int, help="Port to listen on (default [serve].port, 8001).")
@click.option(
    "--metadata",
    "metadata_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Datasette metadata YAML/JSON (default [serve].metadata, db/metadata.yml).",
)
@click.pass_obj
def serve(obj: Context, host: str | None, port: int | None, metadata_path: Path | None) -> None:
    """Browse the database in Datasette, read-only, with the project's metadata."""
    from watcher.browse import datasette_for
    from watcher.browse import serve as run_server

    with obj.reading() as store:
        items = store.count("items")
    settings = obj.config.serve if obj.has_config else ServeConfig()
    ds = datasette_for(settings, obj.db_path, metadata_path)
    host = host or settings.host
    port = settings.port if port is None else port
    _check_port(host, port)
    click.echo(f"watcher: {items} items in {obj.db_path} at http://{host}:{port}/ (Ctrl-C stops)")
    if host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(f"warning: {host} is reachable from other machines", err=True)
    run_server(ds, host=host, port=port)


def _check_port(host: str, port: int) -> None:
    """Fail before announcing anything when the address cannot be listened on (taken by
    another program, or not this machine's)."""
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as error:
        raise click.ClickException(
            f"cannot listen on {host}:{port}: {error.strerror or error} "
            "(another program, perhaps another 'watcher serve', has it; choose a port "
            "with --port or [serve] port)"
        ) from None
