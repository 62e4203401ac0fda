"""One daemon per database: an exclusive lock on a file beside it that names its holder."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from watcher.errors import DaemonAlreadyRunning


def lock_path(db_path: Path | str) -> Path:
    return Path(f"{db_path}.lock")


class DaemonLock:
    """``with DaemonLock(db_path):`` holds ``<db>.lock`` or raises DaemonAlreadyRunning.

    The kernel drops a ``flock`` when its holder dies, even by ``kill -9``, so a stale lock
    file never blocks a restart; the file itself stays (removing it would let a second
    daemon lock a new file while the first still holds the old one).
    """

    def __init__(self, db_path: Path | str) -> None:
        self.path = lock_path(db_path)
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode("ascii", "replace").strip()
            os.close(fd)
            raise DaemonAlreadyRunning(str(self.path), holder or "unknown") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> DaemonLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()
