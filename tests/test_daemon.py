"""`watcher run` polls due feeds on its own and stops cleanly on SIGTERM."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from pytest_httpserver import HTTPServer

from tests.conftest import kant_story, rss, write_config


def _count(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db) as connection:
            return int(connection.execute("SELECT count(*) FROM items").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def test_daemon_polls_due_feeds_and_exits_cleanly_on_sigterm(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    """The daemon stores a feed's items without being asked, then SIGTERM ends it with status 0."""
    httpserver.expect_request("/d.xml").respond_with_data(
        rss([kant_story(1), kant_story(2)]), content_type="text/xml"
    )
    config = write_config(tmp_path, [httpserver.url_for("/d.xml")])
    db = tmp_path / "daemon.db"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "watcher",
            "--config",
            str(config),
            "--db",
            str(db),
            "run",
            "--every",
            "1s",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while _count(db) < 2 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.2)
        assert _count(db) == 2
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "watcher daemon" in out
    with sqlite3.connect(db) as connection:
        assert connection.execute("SELECT count(*) FROM fetches").fetchone() == (1,)
