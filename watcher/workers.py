"""The pool of worker processes that prepare feed bodies; a bad feed costs that feed only.

Built on pebble's process pool because it knows which task a dead worker was running:
a worker killed by a signal, out of memory or stuck past the time limit fails its own
feed (:class:`~watcher.errors.WorkerDied`, :class:`~watcher.errors.ParseTimeout`), is
replaced, and every other feed goes on. The standard ``ProcessPoolExecutor`` instead
marks the whole pool broken and fails every feed still waiting.

Results and failures cross the process boundary as plain data (:class:`PreparedBatch`,
:class:`PrepareFailure`), never as live exceptions; a prepared batch crosses as bytes from
:func:`plain_dumps`, and is unpickled beside the event loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import functools
import io
import multiprocessing
import os
import pickle
import signal
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar, cast

from pebble import ProcessExpired, ProcessPool

from watcher import fork_server
from watcher.errors import FeedError, ParseTimeout, WorkerDied, WorkerError
from watcher.normalize import warm_up_language
from watcher.prepare import PreparedBatch, PrepareFailure, PrepareJob, run_prepare_job

JobRunner = Callable[[PrepareJob], PreparedBatch | PrepareFailure]
A = TypeVar("A")
R = TypeVar("R")

TASKS_PER_WORKER = 50
"""A worker is replaced after this many feeds, so a long-running daemon's workers cannot
grow without bound (feedparser and the HTML parser keep caches)."""


_INIT_FIELDS: dict[type, tuple[str, ...] | None] = {}


def _init_fields(cls: type) -> tuple[str, ...] | None:
    """The fields to rebuild ``cls`` from through its constructor; None when the constructor
    would not give the same object back (not a dataclass, a field left out of ``__init__``,
    a ``__post_init__``)."""
    if cls not in _INIT_FIELDS:
        names = None
        if dataclasses.is_dataclass(cls) and not hasattr(cls, "__post_init__"):
            fields = dataclasses.fields(cls)
            if all(field.init for field in fields):
                names = tuple(field.name for field in fields)
        _INIT_FIELDS[cls] = names
    return _INIT_FIELDS[cls]


class _PlainPickler(pickle.Pickler):
    """Pickles a dataclass as its class and field values, so unpickling calls the constructor
    once instead of ``_dataclass_setstate`` setting field after field: a prepared batch of 40
    items unpickles in 4.0 ms instead of 9.1 ms, in the main process."""

    def reducer_override(self, obj: Any) -> Any:
        names = _init_fields(type(obj))
        if names is None:
            return NotImplemented
        return type(obj), tuple(getattr(obj, name) for name in names)


def plain_dumps(value: object) -> bytes:
    """``value`` pickled by :class:`_PlainPickler`; ``pickle.loads`` reads it back."""
    buffer = io.BytesIO()
    _PlainPickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(value)
    return buffer.getvalue()


def run_to_bytes(runner: JobRunner, job: PrepareJob) -> bytes:
    return plain_dumps(runner(job))


WORKER_NICENESS = 10
"""How much lower the workers' CPU priority is than the main process's. On a machine with
as many workers as cores, the workers and the main process's writer thread compete for
the cores; the writer is the one stage that cannot run in parallel, so it goes first and
the workers take the time it leaves (they also yield to the user's other programs)."""


def warm_up_worker() -> None:
    """Lower the process's priority and load the tagging data and the language model (what a
    worker needs before its first job)."""
    from watcher.tagging import warm_up  # in the worker: the main process never tags

    if hasattr(os, "nice"):
        os.nice(WORKER_NICENESS)
    warm_up()
    warm_up_language()


def _describe_exit(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exited with status {exitcode}"


def _as_error(url: str, failure: PrepareFailure) -> FeedError:
    return FeedError(url, failure.message, kind=failure.kind)


class PreparePool:
    """Runs :class:`PrepareJob` s in ``workers`` processes, or in a thread when ``workers <= 1``.

    ``timeout`` bounds one feed's preparation. In a thread (``workers = 1``) a feed over
    the limit is reported but its thread cannot be stopped; it finishes in the background.
    ``runner`` is the function the workers call; tests swap in one that misbehaves.
    """

    def __init__(
        self, workers: int, *, timeout: float, runner: JobRunner = run_prepare_job
    ) -> None:
        self.workers = workers
        self.timeout = timeout
        self._runner = runner
        self._pool: ProcessPool | None = None
        self._starting: asyncio.Lock | None = None
        self._closed = False

    def _start_pool(self) -> ProcessPool:
        """Start the workers; done on the first job, so a pass of 304s starts none.

        On Linux the workers are forked from a fork server: a process of its own, started
        clean, that loads the tagging data and language model once (``worker_preload``) so
        the workers share their pages. Forking them from the main process instead is not
        safe: its writer thread may hold one of SQLite's global mutexes at the moment of a
        fork, and a worker born with it locked hangs in its first SQLite call (the topic
        matcher's in-memory index).

        A command that polls has started the fork server already (:mod:`watcher.entry`);
        every new worker also re-runs the main program's script, as multiprocessing does for
        ``__main__``, which for ``watcher`` is that small entry module, not the CLI.
        """
        if fork_server.available():
            return ProcessPool(
                max_workers=self.workers, max_tasks=TASKS_PER_WORKER, context=fork_server.context()
            )
        return ProcessPool(
            max_workers=self.workers,
            max_tasks=TASKS_PER_WORKER,
            initializer=warm_up_worker,
            context=multiprocessing.get_context("spawn"),
        )

    async def _started_pool(self) -> ProcessPool:
        if self._pool is None:
            if self._starting is None:
                self._starting = asyncio.Lock()
            async with self._starting:
                if self._pool is None:
                    if self._closed:
                        raise RuntimeError("the pool is closed")
                    # in a thread: downloads go on while the tagging data loads
                    pool = await asyncio.to_thread(self._start_pool)
                    if self._closed:  # closed while the workers started
                        pool.stop()
                        pool.join()
                        raise RuntimeError("the pool is closed")
                    self._pool = pool
        return self._pool

    def __enter__(self) -> PreparePool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the workers; jobs still waiting are cancelled."""
        self._closed = True
        if self._pool is not None:
            self._pool.stop()  # type: ignore[no-untyped-call]
            self._pool.join()
            self._pool = None

    async def aclose(self) -> None:
        """:meth:`close`, from the event loop (a runner on a cluster disconnects here)."""
        self.close()

    @property
    def results_as_bytes(self) -> bool:
        """Whether a prepared batch comes back as :func:`plain_dumps` bytes, unpickled in a
        thread beside the loop (from another process), or as the object itself (a thread)."""
        return self.workers > 1

    async def prepare(self, job: PrepareJob) -> PreparedBatch:
        """The prepared batch for ``job``; every failure is raised as a FeedError subclass."""
        result: PreparedBatch | PrepareFailure
        if not self.results_as_bytes:
            result = await self.run(self._runner, job, url=job.url, what="preparing the feed")
        else:
            runner = functools.partial(run_to_bytes, self._runner)
            blob = await self.run(runner, job, url=job.url, what="preparing the feed")
            result = await asyncio.to_thread(pickle.loads, blob)
        if isinstance(result, PrepareFailure):
            raise _as_error(job.url, result)
        return result

    async def run(self, function: Callable[[A], R], argument: A, *, url: str, what: str) -> R:
        """``function(argument)`` in a worker (or the thread), with the same limits as a feed.

        ``function`` and ``argument`` must pickle. A worker that dies or runs past ``timeout``
        raises :class:`WorkerDied` or :class:`ParseTimeout` for ``url``; ``what`` names the
        work in the message ("preparing the feed", "extracting the article").
        """
        if self.workers <= 1:
            return await self._in_thread(function, argument, url, what)
        return await self._in_worker(function, argument, url, what)

    async def _in_thread(self, function: Callable[[A], R], argument: A, url: str, what: str) -> R:
        try:
            return await asyncio.wait_for(asyncio.to_thread(function, argument), self.timeout)
        except TimeoutError:
            raise ParseTimeout(url, self.timeout_message(what)) from None

    async def _in_worker(self, function: Callable[[A], R], argument: A, url: str, what: str) -> R:
        pool = await self._started_pool()
        future = pool.schedule(function, args=(argument,), timeout=self.timeout)
        try:
            return cast(R, await asyncio.wrap_future(future))
        except concurrent.futures.TimeoutError:
            raise ParseTimeout(url, self.timeout_message(what)) from None
        except ProcessExpired as error:
            raise WorkerDied(
                url,
                f"the worker process {what} died ({_describe_exit(error.exitcode)})",
            ) from None
        except asyncio.CancelledError:
            future.cancel()  # type: ignore[no-untyped-call]
            raise
        except Exception as error:  # e.g. a result that cannot be pickled back
            raise WorkerError(url, f"the worker failed: {type(error).__name__}: {error}") from None

    def timeout_message(self, what: str) -> str:
        return f"{what} took longer than {self.timeout:g} s (parse_timeout); skipped"
