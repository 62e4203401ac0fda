"""The one exception tree of watcher; foreign exceptions are translated at the edges.

WatcherError
├── ConfigError            a config file is missing, unreadable or invalid
├── QueryError             a topic or search query is not valid FTS5 syntax
├── CorpusImportError      a document given to ``corpus import`` cannot be read
├── StoreError             the database cannot be opened or migrated
│   └── DatabaseFault      the database file itself failed: corrupt, locked, read-only,
│                          disk full, I/O; fatal for the command, never one feed's fault
├── DigestError            a digest cannot be built: unknown name or topic, no [smtp]
│   └── MailError          the mail server could not be reached, refused the login or the message
├── AlertError             one alert could not be delivered (recorded and retried, never fatal)
├── DaemonAlreadyRunning   another ``watcher run`` holds the database's lock file
└── FeedError              one feed could not be refreshed (recorded, never fatal)
    ├── InvalidFeedURL     not an absolute http(s) URL
    ├── FetchError         the transfer failed
    │   ├── FetchTimeout
    │   ├── TooManyRedirects
    │   ├── ResponseTooLarge   body (or its decompressed form) over the size cap
    │   └── HTTPStatusError    a 4xx/5xx answer; ``status`` and ``retry_after``
    ├── NotAFeed           the body is not RSS/Atom (an HTML page, junk)
    └── WorkerError        the worker process preparing the feed failed
        ├── ParseTimeout   preparing the feed took longer than ``[poll].parse_timeout``
        └── WorkerDied     the worker process died (killed, out of memory, crashed)

Every error pickles with its fields (see :meth:`WatcherError.__reduce__`), so one raised
in a worker process arrives whole in the parent instead of breaking the pool.
"""

from __future__ import annotations

from typing import Any


def _restore(cls: type[WatcherError], args: tuple[object, ...], state: dict[str, object]) -> Any:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class WatcherError(Exception):
    """Base class of every error watcher raises on purpose."""

    def __reduce__(self) -> tuple[Any, ...]:
        # the default pickling calls ``cls(*args)``, which fails for every subclass whose
        # __init__ takes other arguments than its message
        return (_restore, (type(self), self.args, dict(self.__dict__)))


class ConfigError(WatcherError):
    """A configuration problem; the message names the file, the key and what was expected."""

    def __init__(self, path: str, key: str, problem: str) -> None:
        self.path = path
        self.key = key
        self.problem = problem
        where = f"{path}: {key}" if key else path
        super().__init__(f"{where}: {problem}")


class QueryError(WatcherError):
    """A boolean query that SQLite FTS5 cannot parse."""

    def __init__(self, query: str, reason: str) -> None:
        self.query = query
        self.reason = reason
        super().__init__(f"invalid query {query!r}: {reason}")


class CorpusImportError(WatcherError):
    """A document that cannot be imported; ``location`` is a path, maybe with a line number."""

    def __init__(self, location: str, reason: str) -> None:
        self.location = location
        self.reason = reason
        super().__init__(f"{location}: {reason}")


class StoreError(WatcherError):
    """The database cannot be opened, migrated or written."""


class DatabaseFault(StoreError):
    """The database file failed, not one feed's data: it is corrupt, locked by another
    process, read-only, on a full disk, or unreadable. ``reason`` is a short stable label
    (``corrupt``, ``locked``, ``read_only``, ``disk_full``, ``io``); a command that meets
    one stops (no more writes to that file) and exits non-zero."""

    def __init__(self, path: str, reason: str, message: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {message}")


class DigestError(WatcherError):
    """A digest that cannot be built or sent as asked (unknown name or topic, no [smtp])."""


class MailError(DigestError):
    """Sending failed: no connection, TLS, login, or the server refused the message.

    Recorded on the digest as a failed send; no item is marked as sent.
    """


class AlertError(WatcherError):
    """An alert target refused or did not answer; ``target`` names it in the config and
    ``retry_after`` is the wait the target asked for, if any."""

    def __init__(self, target: str, message: str, *, retry_after: float | None = None) -> None:
        self.target = target
        self.message = message
        self.retry_after = retry_after
        super().__init__(f"{target}: {message}")


class DaemonAlreadyRunning(WatcherError):
    """A second daemon on one database; ``pid`` is the holder's, as its lock file says."""

    def __init__(self, lock_path: str, pid: str) -> None:
        self.lock_path = lock_path
        self.pid = pid
        super().__init__(
            f"another watcher daemon (pid {pid}) is running on this database "
            f"(lock file {lock_path}); stop it first"
        )


class FeedError(WatcherError):
    """One feed could not be refreshed. ``kind`` is a short stable label stored in ``fetches``."""

    kind = "error"

    def __init__(self, url: str, message: str, *, kind: str | None = None) -> None:
        self.url = url
        self.message = message
        if kind is not None:  # a failure reported as data by a worker keeps its label
            self.kind = kind
        super().__init__(f"{url}: {message}")


class InvalidFeedURL(FeedError):
    kind = "invalid_url"


class FetchError(FeedError):
    kind = "network"


class FetchTimeout(FetchError):
    kind = "timeout"


class TooManyRedirects(FetchError):
    kind = "redirects"


class ResponseTooLarge(FetchError):
    kind = "too_large"


class HTTPStatusError(FetchError):
    kind = "http_status"

    def __init__(
        self, url: str, status: int, message: str, retry_after: float | None = None
    ) -> None:
        self.status = status
        self.retry_after = retry_after
        super().__init__(url, message)


class NotAFeed(FeedError):
    kind = "not_a_feed"


class WorkerError(FeedError):
    kind = "worker"


class ParseTimeout(WorkerError):
    kind = "parse_timeout"


class WorkerDied(WorkerError):
    kind = "worker_died"
