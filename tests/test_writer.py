"""The writer thread on a real SQLite file: groups, a savepoint per job, draining, the loop free."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from watcher.errors import StoreError
from watcher.store import Store
from watcher.writer import Writer

NOW = "2026-12-02T12:00:00Z"


def feed_urls(db: Path) -> list[str]:
    with sqlite3.connect(db) as connection:
        return [row[0] for row in connection.execute("SELECT url FROM feeds ORDER BY url")]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "watcher.db"
    Store.open(path).close()
    return path


def add(url: str) -> Callable[[Store], str]:
    def write(store: Store) -> str:
        store.add_feed(url, now=NOW)
        return url

    return write


def add_then_fail(url: str) -> Callable[[Store], str]:
    def write(store: Store) -> str:
        store.add_feed(url, now=NOW)
        raise sqlite3.OperationalError(f"{url}: disk I/O error (simulated)")

    return write


def add_then_break_the_transaction(url: str) -> Callable[[Store], str]:
    """Like a failure SQLite answers by rolling the whole transaction back."""

    def write(store: Store) -> str:
        store.add_feed(url, now=NOW)
        store.db.conn.execute("ROLLBACK")
        raise sqlite3.OperationalError(f"{url}: database or disk is full (simulated)")

    return write


class Gate:
    """A first job that holds the writer thread until opened, so the next ones queue up."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.opened = threading.Event()

    def __call__(self, store: Store) -> str:
        self.entered.set()
        self.opened.wait(10)
        return "gate"


async def run_behind_gate(
    writer: Writer, jobs: list[Callable[[Store], str]]
) -> list[str | BaseException]:
    """Send ``jobs`` while the thread is held, then let it go: they are written as a group."""
    gate = Gate()
    first = asyncio.ensure_future(writer.run(gate))
    await asyncio.to_thread(gate.entered.wait, 10)
    tasks = [asyncio.ensure_future(writer.run(job)) for job in jobs]
    await asyncio.sleep(0.05)  # every job is in the queue
    gate.opened.set()
    assert await first == "gate"
    return list(await asyncio.gather(*tasks, return_exceptions=True))


def test_jobs_waiting_together_are_written_in_one_transaction(db: Path) -> None:
    async def scenario() -> tuple[list[str | BaseException], int]:
        writer = Writer(str(db))
        await writer.start()
        try:
            results = await run_behind_gate(
                writer, [add(f"https://f{n}.example/") for n in range(6)]
            )
        finally:
            await writer.close()
        return results, writer.transactions

    results, transactions = asyncio.run(scenario())
    assert results == [f"https://f{n}.example/" for n in range(6)]
    assert transactions == 2  # the gate alone, then the six together
    assert feed_urls(db) == [f"https://f{n}.example/" for n in range(6)]


def test_a_failing_job_in_a_group_is_rolled_back_alone(db: Path) -> None:
    jobs = [
        add("https://a.example/"),
        add_then_fail("https://bad.example/"),
        add("https://c.example/"),
    ]

    async def scenario() -> list[str | BaseException]:
        writer = Writer(str(db))
        await writer.start()
        try:
            return await run_behind_gate(writer, jobs)
        finally:
            await writer.close()

    good, bad, other = asyncio.run(scenario())
    assert (good, other) == ("https://a.example/", "https://c.example/")
    assert isinstance(bad, sqlite3.OperationalError)
    assert feed_urls(db) == ["https://a.example/", "https://c.example/"]


def test_a_group_whose_transaction_is_lost_is_written_again_one_by_one(db: Path) -> None:
    jobs = [
        add("https://a.example/"),
        add_then_break_the_transaction("https://bad.example/"),
        add("https://c.example/"),
    ]

    async def scenario() -> tuple[list[str | BaseException], int]:
        writer = Writer(str(db))
        await writer.start()
        try:
            results = await run_behind_gate(writer, jobs)
        finally:
            await writer.close()
        return results, writer.transactions

    (good, bad, other), transactions = asyncio.run(scenario())
    assert (good, other) == ("https://a.example/", "https://c.example/")
    assert isinstance(bad, sqlite3.OperationalError)
    assert transactions == 1 + 1 + 3  # the gate, the lost group, each job alone
    assert feed_urls(db) == ["https://a.example/", "https://c.example/"]


def test_groups_are_bounded_by_jobs_and_by_items(db: Path) -> None:
    async def scenario(**limits: int) -> int:
        writer = Writer(str(db), **limits)
        await writer.start()
        try:
            await run_behind_gate(writer, [add(f"https://g{n}.example/") for n in range(6)])
        finally:
            await writer.close()
        return writer.transactions - 1

    assert asyncio.run(scenario(group_jobs=2)) == 3
    assert asyncio.run(scenario(group_items=3)) == 2  # size 1 each: 3 + 3


def test_closing_writes_every_job_already_sent(db: Path) -> None:
    async def scenario() -> list[str]:
        writer = Writer(str(db))
        await writer.start()
        tasks = [asyncio.ensure_future(writer.run(add(f"https://d{n}.example/"))) for n in range(5)]
        await asyncio.sleep(0)  # sent
        await writer.close()
        return list(await asyncio.gather(*tasks))

    assert len(asyncio.run(scenario())) == 5
    assert len(feed_urls(db)) == 5


def test_a_cancelled_job_not_yet_begun_is_not_written(db: Path) -> None:
    async def scenario() -> None:
        writer = Writer(str(db))
        await writer.start()
        gate = Gate()
        first = asyncio.ensure_future(writer.run(gate))
        await asyncio.to_thread(gate.entered.wait, 10)
        waiting = asyncio.ensure_future(writer.run(add("https://cancelled.example/")))
        await asyncio.sleep(0.05)
        waiting.cancel()
        await asyncio.sleep(0)
        gate.opened.set()
        await first
        await writer.close()
        assert waiting.cancelled()

    asyncio.run(scenario())
    assert feed_urls(db) == []


def test_senders_wait_for_a_place_when_the_queue_is_full(db: Path) -> None:
    async def scenario() -> int:
        writer = Writer(str(db), capacity=3)
        await writer.start()
        gate = Gate()
        first = asyncio.ensure_future(writer.run(gate))
        await asyncio.to_thread(gate.entered.wait, 10)
        tasks = [asyncio.ensure_future(writer.run(add(f"https://q{n}.example/"))) for n in range(8)]
        await asyncio.sleep(0.05)
        queued = writer._queue.qsize()
        gate.opened.set()
        await first
        await asyncio.gather(*tasks)
        await writer.close()
        return queued

    assert asyncio.run(scenario()) == 2  # three places: the gate and two more
    assert len(feed_urls(db)) == 8


def test_the_event_loop_runs_while_the_writer_writes(db: Path) -> None:
    """A long write no longer stops the loop: a ticker keeps its pace meanwhile."""

    def slow(store: Store) -> None:
        store.add_feed("https://slow.example/", now=NOW)
        time.sleep(0.6)

    async def scenario() -> float:
        writer = Writer(str(db))
        await writer.start()
        worst = 0.0
        write = asyncio.ensure_future(writer.run(slow))
        while not write.done():
            before = time.perf_counter()
            await asyncio.sleep(0.01)
            worst = max(worst, time.perf_counter() - before - 0.01)
        await write
        await writer.close()
        return worst

    assert asyncio.run(scenario()) < 0.2


def test_a_writer_that_cannot_open_its_database_says_so_at_start(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")

    async def scenario() -> None:
        await Writer(str(blocker / "watcher.db")).start()

    with pytest.raises(StoreError):
        asyncio.run(scenario())
