"""``metrics serve``: Prometheus metrics."""

from __future__ import annotations

import signal
import threading

import click

from watcher.cli.context import Context


@click.group("metrics")
def metrics() -> None:
    """Prometheus metrics of feeds, polls, items and alerts."""


@metrics.command("serve")
@click.option("--host", help="Address to listen on (default [metrics].host, 127.0.0.1).")
@click.option("--port", type=int, help="Port (default [metrics].port, 9464; 0 picks a free one).")
@click.pass_obj
def metrics_serve(obj: Context, host: str | None, port: int | None) -> None:
    """Serve /metrics for Prometheus until interrupted, reading the database at each scrape."""
    settings = obj.config.metrics
    with obj.reading():
        pass  # create or migrate the database before the first scrape
    host = host or settings.host
    port = settings.port if port is None else port
    try:
        from watcher.metrics import start_metrics_server

        server = start_metrics_server(obj.db_path, host, port)
    except OSError as error:
        raise click.ClickException(
            f"cannot listen on {host}:{port}: {error.strerror or error}"
        ) from None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
    click.echo(f"serving metrics at {server.url}", err=True)
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
