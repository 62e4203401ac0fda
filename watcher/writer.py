"""The single writer of a poll: a thread with its own connection, several feeds per transaction.

A write is a job, a function of a :class:`~watcher.store.Store`, sent from the event loop
with :meth:`Writer.run`; the loop goes on serving downloads while the thread writes. Jobs
that are waiting when the thread is free are written in one transaction (at most
``group_jobs`` jobs holding ``group_items`` items), which saves a commit per feed. Each
job runs under a savepoint of its own: one that raises is rolled back alone and its error
goes back to its sender, the others commit. If the transaction as a whole cannot commit,
every job of the group is written again in a transaction of its own.

A job must be safe to run again after a rollback (it only writes through the store it is
given) and must not wait for the event loop.

A job that finds the database file damaged (``SQLITE_CORRUPT``, ``SQLITE_NOTADB``) stops
the writer from writing on: that job and every later one fail with the same
:class:`~watcher.errors.DatabaseFault`, and nothing more is written to the file.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from watcher.errors import DatabaseFault
from watcher.store import Store
from watcher.store.faults import as_fault, fault_reason

log = logging.getLogger("watcher.writer")

T = TypeVar("T")

CAPACITY = 8
"""Jobs sent but not yet taken by the thread; a sender waits (without blocking the loop)
for a free place, so prepared batches cannot pile up in the queue."""
GROUP_JOBS = 16
GROUP_ITEMS = 1000
"""A group stops growing past this many items: a transaction of about a second at the
writer's cost per item, so others waiting on the database wait at most that long."""


@dataclass(slots=True)
class _Job:
    write: Callable[[Store], Any]
    size: int
    future: concurrent.futures.Future[Any]


@contextmanager
def _immediate(store: Store) -> Iterator[None]:
    """One write transaction, begun IMMEDIATE: the write lock is taken before the first
    read, so a commit on another connection cannot invalidate what the group read."""
    connection = store.db.conn
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
    try:
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise


class _GroupBroken(Exception):
    """A job's failure took the whole transaction with it (SQLite rolled it back)."""


class Writer:
    """Runs write jobs on a Store of its own, opened on ``path`` in the writer thread.

    Use as ``await writer.start()`` … ``await writer.run(job, size=n)`` … ``await
    writer.close()``. Closing writes every job already sent, then stops the thread.
    """

    def __init__(
        self,
        path: str,
        *,
        capacity: int = CAPACITY,
        group_jobs: int = GROUP_JOBS,
        group_items: int = GROUP_ITEMS,
    ) -> None:
        self.path = path
        self.group_jobs = group_jobs
        self.group_items = group_items
        self._capacity = capacity
        self._slots: asyncio.Semaphore | None = None
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.transactions = 0
        """Transactions committed or tried; tests and benchmarks read it."""
        self.waiting = 0
        """Write jobs sent and not yet done: the writer's queue, which the fetch log
        records with each fetch (``writer_queue``) and ``watcher status`` reports."""
        self.fault: DatabaseFault | None = None
        """The damage found in the database file, after which nothing is written."""

    async def start(self) -> None:
        """Start the thread and wait until its Store is open (a StoreError is raised here)."""
        if self._thread is not None:
            raise RuntimeError("the writer is already started")
        self._slots = asyncio.Semaphore(self._capacity)
        opened: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._serve, args=(opened,), name="watcher-writer", daemon=True
        )
        self._thread.start()
        await asyncio.wrap_future(opened)

    async def run(self, write: Callable[[Store], T], *, size: int = 1) -> T:
        """``write(store)`` in the writer thread, inside a transaction; its result or error.

        ``size`` is how many items the job writes (it bounds a group). Cancelling the
        caller drops a job the thread has not begun; one already begun is written whole.
        """
        if self._slots is None or self._closed:
            raise RuntimeError("the writer is not running")
        if self.fault is not None:
            raise self.fault
        self.waiting += 1
        try:
            async with self._slots:
                future: concurrent.futures.Future[T] = concurrent.futures.Future()
                self._queue.put(_Job(write, size, future))
                return await asyncio.wrap_future(future)
        finally:
            self.waiting -= 1

    async def close(self) -> None:
        """Write what was sent, then stop the thread and close its Store."""
        self._closed = True
        thread = self._thread
        if thread is None or not thread.is_alive():
            return
        self._queue.put(None)
        await asyncio.to_thread(thread.join)

    # the thread --------------------------------------------------------------

    def _serve(self, opened: concurrent.futures.Future[None]) -> None:
        try:
            store = Store.open(self.path)
        except BaseException as error:
            opened.set_exception(error)
            return
        opened.set_result(None)
        try:
            stopping = False
            while not stopping:
                group, stopping = self._next_group()
                if group:
                    self._write(store, group)
                    group.clear()  # while the thread waits, it holds no batch
        finally:
            store.close()

    def _next_group(self) -> tuple[list[_Job], bool]:
        """The jobs to write together (waiting for the first one), and whether to stop after."""
        group: list[_Job] = []
        items = 0
        job = self._queue.get()
        while True:
            if job is None:
                return group, True
            if job.future.set_running_or_notify_cancel():
                group.append(job)
                items += job.size
            if len(group) >= self.group_jobs or items >= self.group_items:
                return group, False
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return group, False

    def _write(self, store: Store, group: list[_Job]) -> None:
        if self.fault is not None:
            for job in group:
                job.future.set_exception(self.fault)
            return
        if len(group) == 1:
            self._write_alone(store, group[0])
            return
        try:
            results = self._write_together(store, group)
        except Exception as error:
            store.forget_cached_ids()
            log.warning(
                "a group of %d writes failed (%s); writing them one by one", len(group), error
            )
            for job in group:
                self._write_alone(store, job)
            return
        for job, (ok, value) in zip(group, results, strict=True):
            if ok:
                job.future.set_result(value)
            else:
                job.future.set_exception(cast(BaseException, value))

    def _write_together(self, store: Store, group: list[_Job]) -> list[tuple[bool, object]]:
        """Every job under its own savepoint in one transaction: (True, result) or
        (False, error) per job, known only once the transaction committed."""
        results: list[tuple[bool, object]] = []
        self.transactions += 1
        with _immediate(store):
            for job in group:
                try:
                    with store.transaction():
                        results.append((True, job.write(store)))
                except Exception as error:
                    store.forget_cached_ids()
                    if self._damaged(error):
                        raise
                    if not store.db.conn.in_transaction:
                        raise _GroupBroken(str(error)) from error
                    results.append((False, error))
        return results

    def _write_alone(self, store: Store, job: _Job) -> None:
        if self.fault is not None:
            job.future.set_exception(self.fault)
            return
        self.transactions += 1
        try:
            with _immediate(store):
                value = job.write(store)
        except BaseException as error:
            store.forget_cached_ids()
            self._damaged(error)
            job.future.set_exception(error)
        else:
            job.future.set_result(value)

    def _damaged(self, error: BaseException) -> bool:
        """Whether ``error`` says the file is damaged; if so, write nothing more."""
        if fault_reason(error) != "corrupt":
            return False
        if self.fault is None:
            fault = as_fault(error, self.path)
            self.fault = fault
            log.error("%s", fault)
        return True
