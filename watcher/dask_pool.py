"""Preparing feeds on a Dask cluster: the runner beside the local pool, for more machines.

``[poll] executor = "tcp://HOST:PORT"`` (a Dask scheduler's address) sends the CPU-bound
half of every refresh, :func:`watcher.prepare.run_prepare_job`, to the cluster's workers;
the fetcher, the single writer and the SQLite database stay in the process that polls. A
job carries everything the worker needs (the body, the topics, what the feed delivered
before), so a worker needs the ``watcher`` package and nothing else: no database, no
config file. ``pip install 'watcher[dask]'`` brings the client and the ``dask`` command.

:class:`DaskPool` is a :class:`~watcher.workers.PreparePool` to the code that uses one
(the poller, the full text step): ``prepare(job)`` and ``run(function, argument, ...)``
raise the same :class:`~watcher.errors.FeedError` subclasses.

- A worker that dies while it runs a job: the scheduler hands the job to another worker,
  up to its ``distributed.scheduler.allowed-failures`` (3 by default), then gives up with
  ``KilledWorker``, which fails that feed as :class:`~watcher.errors.WorkerDied`. The other
  jobs the dead worker held are run again elsewhere; the nanny starts a new worker.
- ``[poll] parse_timeout`` counts from the job's submission; a job past it fails its feed
  with :class:`~watcher.errors.ParseTimeout` and is cancelled (a job already running in a
  worker thread runs to its end there: Dask cannot stop a thread).

dask is imported only here, and only when an executor is configured.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from collections.abc import Callable
from typing import Any, TypeVar, cast

from watcher.errors import ConfigError, ParseTimeout, WorkerDied, WorkerError
from watcher.prepare import run_prepare_job
from watcher.workers import JobRunner, PreparePool

log = logging.getLogger("watcher.dask")

A = TypeVar("A")
R = TypeVar("R")

LOCAL = "local"
"""``[poll] executor`` for the local process pool (the default)."""
CONNECT_TIMEOUT = 10.0
"""Seconds to wait for the scheduler's answer when the poller starts."""
INSTALL_HINT = "pip install 'watcher[dask]'"


def unavailable(problem: str) -> ConfigError:
    """The error of an executor that cannot be used (dask missing, scheduler not there): one
    line, ``[poll] executor: <problem>``, as the CLI prints a config error."""
    return ConfigError("[poll] executor", "", problem)


def is_local(executor: str | None) -> bool:
    """Whether ``executor`` names the local process pool (absent, empty or ``"local"``)."""
    return executor is None or executor.strip().lower() in ("", LOCAL)


def _distributed() -> Any:
    try:
        return importlib.import_module("distributed")
    except ImportError:
        return None


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 200 else text[:197] + "..."


class DaskPool(PreparePool):
    """Runs :class:`~watcher.prepare.PrepareJob` s on the Dask cluster of ``client``.

    Build with :meth:`connect`; ``workers`` is the cluster's worker threads when it
    connected (at least 2), which sizes how many feeds the poller lets wait for it.
    """

    def __init__(
        self,
        client: Any,
        address: str,
        workers: int,
        *,
        timeout: float,
        runner: JobRunner = run_prepare_job,
    ) -> None:
        super().__init__(workers, timeout=timeout, runner=runner)
        self.address = address
        self._client = client
        self._distributed = _distributed()

    @classmethod
    async def connect(
        cls,
        address: str,
        *,
        timeout: float,
        runner: JobRunner = run_prepare_job,
        connect_timeout: float | None = None,
    ) -> DaskPool:
        """Connect to the scheduler at ``address``; a :class:`ConfigError` of one line saying
        why (:func:`unavailable`) when dask is not installed or the scheduler does not answer."""
        distributed = _distributed()
        if distributed is None:
            raise unavailable(f"{address!r} needs dask, which is not installed: {INSTALL_HINT}")
        try:
            client = await distributed.Client(
                address,
                asynchronous=True,
                timeout=CONNECT_TIMEOUT if connect_timeout is None else connect_timeout,
                set_as_default=False,
                name="watcher",
            )
        except Exception as error:  # OSError, TimeoutError, ValueError for a malformed address
            raise unavailable(
                f"cannot reach the Dask scheduler at {address}: {_one_line(error)}"
            ) from None
        try:
            threads = sum((await client.nthreads()).values())
        except Exception as error:
            await client.close()
            raise unavailable(
                f"the Dask scheduler at {address} did not answer: {_one_line(error)}"
            ) from None
        if not threads:
            log.warning("the Dask cluster at %s has no workers yet; jobs wait for one", address)
        log.info("dask executor", extra={"scheduler": address, "threads": threads})
        return cls(client, address, max(2, threads), timeout=timeout, runner=runner)

    @property
    def results_as_bytes(self) -> bool:
        return True  # a batch crosses the network as plain_dumps bytes, unpickled in a thread

    def close(self) -> None:
        """Disconnect (on the loop, when one runs); jobs still waiting are cancelled."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(RuntimeError):  # no running loop: the client goes with it
            asyncio.get_running_loop().create_task(self._client.close())

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            await self._client.close()

    async def run(self, function: Callable[[A], R], argument: A, *, url: str, what: str) -> R:
        """``function(argument)`` on a worker of the cluster, with the limits of a feed."""
        if self._closed:
            raise RuntimeError("the pool is closed")
        future = self._client.submit(function, argument, pure=False)
        try:
            return cast(R, await asyncio.wait_for(future, self.timeout))
        except TimeoutError:
            self._cancel(future)
            raise ParseTimeout(url, self.timeout_message(what)) from None
        except asyncio.CancelledError:
            self._cancel(future)
            raise
        except Exception as error:
            if self._distributed is not None and isinstance(error, self._distributed.KilledWorker):
                raise WorkerDied(
                    url, f"the Dask worker {what} died (on every worker it was given to)"
                ) from None
            raise WorkerError(
                url, f"the Dask cluster failed: {type(error).__name__}: {_one_line(error)}"
            ) from None

    def _cancel(self, future: Any) -> None:
        with contextlib.suppress(Exception):
            result = future.cancel()
            if asyncio.iscoroutine(result):
                asyncio.get_running_loop().create_task(result)


async def open_pool(
    executor: str | None, workers: int, *, timeout: float, runner: JobRunner = run_prepare_job
) -> PreparePool:
    """The pool ``[poll] executor`` names: the local process pool of ``workers`` processes,
    or a :class:`DaskPool` connected to the scheduler at its address."""
    if is_local(executor):
        return PreparePool(workers, timeout=timeout, runner=runner)
    assert executor is not None
    return await DaskPool.connect(executor.strip(), timeout=timeout, runner=runner)
