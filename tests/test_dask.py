"""Preparing feeds on a Dask cluster (``[poll] executor``): a real ``distributed.LocalCluster``
on 127.0.0.1 with two worker processes, feeds served by a real HTTP server on 127.0.0.1, a
real SQLite file. Skipped when dask is not installed (``pip install 'watcher[dask]'``)."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import sqlite3
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from tests import dask_probes
from tests.conftest import kant_story, rss, write_config
from watcher import dask_pool
from watcher.config import Config, load_config
from watcher.normalize import utc_iso
from watcher.pipeline import FeedOutcome
from watcher.poll import Poller, poll_feeds
from watcher.prepare import run_prepare_job
from watcher.store import Store
from watcher.workers import JobRunner, warm_up_worker

WILD = Path(__file__).parent / "fixtures" / "wild"


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    """The address of a LocalCluster: a scheduler in this process, two worker processes of one
    thread each. A job whose worker dies is given to one other worker before it fails
    (``allowed-failures = 1``; the default 3 only makes the crash test slower), and a worker
    is sent one job at a time (``worker-saturation = 1.0``, as docs/scaling.md advises), so a
    dying worker holds no other feed's job."""
    distributed = pytest.importorskip(
        "distributed", reason="dask is not installed: pip install 'watcher[dask]'"
    )
    import dask

    settings = {
        "distributed.scheduler.allowed-failures": 1,
        "distributed.scheduler.worker-saturation": 1.0,
    }
    with dask.config.set(settings):
        cluster = distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
        try:
            yield str(cluster.scheduler_address)
        finally:
            cluster.close()


def served(httpserver: HTTPServer, path: str, body: bytes) -> str:
    httpserver.expect_request(path).respond_with_data(body, content_type="application/xml")
    return httpserver.url_for(path)


def setup(directory: Path, urls: Sequence[str], poll: str) -> tuple[Config, Store]:
    directory.mkdir(parents=True, exist_ok=True)
    config = load_config(write_config(directory, urls, poll=poll))
    store = Store.open(directory / "watcher.db")
    store.sync_config(config, utc_iso(datetime.now(UTC)))
    return config, store


async def poll_in_order(
    config: Config, store: Store, runner: JobRunner = run_prepare_job
) -> list[FeedOutcome]:
    """Every feed refreshed one after the other, in the order of the config, through one
    Poller: the order of the writes is the same whatever runs the jobs."""
    feeds = store.feed_states(now=utc_iso(datetime.now(UTC)), due_only=False)
    async with Poller(config, store, runner=runner) as poller:
        return [await poller.refresh(feed) for feed in feeds]


def table_counts(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as connection:
        names = [
            row[0]
            for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        return {
            name: connection.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
            for name in names
        }


def stored_items(db: Path) -> list[tuple[object, ...]]:
    """Each item by what identifies it, with the item it copies and its story's first item
    named the same way (ids differ between databases, these do not)."""
    with sqlite3.connect(db) as connection:
        rows = connection.execute(
            "SELECT items.id, feeds.url, items.guid, items.url, items.title, items.content_hash, "
            "items.lang, items.duplicate_of, items.story_id FROM items "
            "LEFT JOIN feeds ON feeds.id = items.feed_id"
        ).fetchall()
        tags = connection.execute("SELECT item_id, count(*) FROM item_tags GROUP BY item_id")
        tag_counts = dict(tags.fetchall())
    key = {row[0]: row[1:5] for row in rows}
    found = [
        (*row[1:7], key.get(row[7]), key.get(row[8]), tag_counts.get(row[0], 0)) for row in rows
    ]
    return sorted(found, key=repr)


def counts_by_feed(outcomes: list[FeedOutcome]) -> dict[str, tuple[object, ...]]:
    return {
        outcome.url.rsplit("/", 1)[1]: (
            outcome.status,
            outcome.error_kind,
            outcome.counts.entries,
            outcome.counts.new_items,
            outcome.counts.duplicate_total,
            outcome.counts.off_topic,
            outcome.counts.empty,
        )
        for outcome in outcomes
    }


def test_real_world_feeds_on_the_cluster_store_what_the_local_pool_stores(
    scheduler: str, httpserver: HTTPServer, tmp_path: Path
) -> None:
    """Every real-world fixture, polled once through the local pool and once through the
    cluster into two databases: the same outcome per feed, the same items with the same
    copies, stories and tags, and the same number of rows in every table."""
    manifest = json.loads((WILD / "manifest.json").read_text(encoding="utf-8"))
    urls = [
        served(httpserver, f"/wild/{entry['file']}", (WILD / str(entry["file"])).read_bytes())
        for entry in manifest
    ]
    local_config, local_store = setup(
        tmp_path / "local", urls, "workers = 2\nkeep_unmatched = true\n"
    )
    cluster_config, cluster_store = setup(
        tmp_path / "cluster", urls, f'executor = "{scheduler}"\nkeep_unmatched = true\n'
    )
    local = asyncio.run(poll_in_order(local_config, local_store))
    on_cluster = asyncio.run(poll_in_order(cluster_config, cluster_store))
    local_store.close()
    cluster_store.close()

    assert counts_by_feed(on_cluster) == counts_by_feed(local)
    assert sum(outcome.status == "ok" for outcome in local) >= 20
    local_items = stored_items(tmp_path / "local" / "watcher.db")
    assert len(local_items) > 500
    assert stored_items(tmp_path / "cluster" / "watcher.db") == local_items
    assert table_counts(tmp_path / "cluster" / "watcher.db") == table_counts(
        tmp_path / "local" / "watcher.db"
    )


def kant_feed(first: int) -> bytes:
    return rss([kant_story(first + k) for k in range(4)])


def test_a_worker_killed_on_the_cluster_costs_that_feed_only(
    scheduler: str, httpserver: HTTPServer, tmp_path: Path
) -> None:
    """A job that kills its worker process (on each worker it is given to) fails its feed as
    worker_died; every other feed of the concurrent pass is stored, and the cluster gets its
    two workers back."""
    good = [served(httpserver, f"/ok{n}.xml", kant_feed(n * 10)) for n in range(6)]
    doomed = served(
        httpserver,
        "/doomed.xml",
        kant_feed(90).replace(b"<title>Test feed</title>", dask_probes.CRASH_MARK, 1),
    )
    config, store = setup(tmp_path, [good[0], doomed, *good[1:]], f'executor = "{scheduler}"\n')
    feeds = store.feed_states(now=utc_iso(datetime.now(UTC)), due_only=False)
    summary = asyncio.run(poll_feeds(config, store, feeds, runner=dask_probes.crashing_runner))
    outcomes = {outcome.url: outcome for outcome in summary.outcomes}

    assert outcomes[doomed].status == "failed"
    assert outcomes[doomed].error_kind == "worker_died"
    assert [outcomes[url].status for url in good] == ["ok"] * 6
    assert store.count("items") == 6 * 4
    recorded = store.db.execute(
        "SELECT error_kind, count(*) FROM fetches WHERE outcome = 'error' GROUP BY 1"
    ).fetchall()
    assert recorded == [("worker_died", 1)]
    store.close()
    distributed = pytest.importorskip("distributed")
    with distributed.Client(scheduler, timeout=10) as client:
        client.wait_for_workers(2, timeout=60)


def test_parse_timeout_applies_on_the_cluster(
    scheduler: str, httpserver: HTTPServer, tmp_path: Path
) -> None:
    """A feed whose job runs past parse_timeout fails with parse_timeout; the others are stored."""
    good = [served(httpserver, f"/fine{n}.xml", kant_feed(n * 10)) for n in range(3)]
    slow = served(
        httpserver,
        "/slow.xml",
        kant_feed(90).replace(b"<title>Test feed</title>", dask_probes.SLOW_MARK, 1),
    )
    distributed = pytest.importorskip("distributed")
    with distributed.Client(scheduler, timeout=10) as client:  # workers back and warm
        client.wait_for_workers(2, timeout=60)
        client.run(warm_up_worker)
    config, store = setup(
        tmp_path, [slow, *good], f'executor = "{scheduler}"\nparse_timeout = "4s"\n'
    )
    feeds = store.feed_states(now=utc_iso(datetime.now(UTC)), due_only=False)
    summary = asyncio.run(poll_feeds(config, store, feeds, runner=dask_probes.stalling_runner))
    outcomes = {outcome.url: outcome for outcome in summary.outcomes}
    assert outcomes[slow].error_kind == "parse_timeout"
    assert [outcomes[url].status for url in good] == ["ok"] * 3
    assert store.count("items") == 3 * 4
    store.close()
    time.sleep(dask_probes.SLOW_SECONDS)  # the stalled job ends on its worker


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_scheduler_is_one_line(make_watcher, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """A scheduler that is not there stops the command with one line naming the address."""
    pytest.importorskip("distributed", reason="dask is not installed")
    monkeypatch.setattr(dask_pool, "CONNECT_TIMEOUT", 2.0)
    address = f"tcp://127.0.0.1:{free_port()}"
    watcher = make_watcher(["http://127.0.0.1:9/feed.xml"], poll=f'executor = "{address}"\n')
    result = watcher("poll", "--all")
    assert result.exit_code != 0
    message = result.output.strip()
    assert f"cannot reach the Dask scheduler at {address}" in message
    assert len(message.splitlines()) == 1


def test_executor_without_dask_installed_says_how_to_install_it(
    make_watcher, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """Runs without dask: the one line says what to install."""
    monkeypatch.setattr(dask_pool, "_distributed", lambda: None)
    watcher = make_watcher(
        ["http://127.0.0.1:9/feed.xml"], poll='executor = "tcp://127.0.0.1:8786"\n'
    )
    result = watcher("poll", "--all")
    assert result.exit_code != 0
    assert "pip install 'watcher[dask]'" in result.output
    assert len(result.output.strip().splitlines()) == 1
