"""Another version's cache entries go once they are old; this version's and recent ones stay."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from watcher import user_cache

OLD = time.time() - user_cache.SUPERSEDED_AFTER - 60


def aged(path: Path, *, folder: bool = False, when: float = OLD) -> Path:
    if folder:
        path.mkdir()
        (path / "table.npy").write_bytes(b"weights")
    else:
        path.write_bytes(b"an index")
    os.utime(path, (when, when))
    return path


def test_the_folder_is_under_xdg_cache_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert user_cache.folder() == tmp_path / "watcher"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert user_cache.folder() == Path.home() / ".cache" / "watcher"


def test_only_old_entries_of_the_same_kind_are_removed(tmp_path: Path) -> None:
    current = aged(tmp_path / "usem3-cccccccccccccccc", folder=True)  # old, but this one
    superseded = aged(tmp_path / "usem3-0123456789abcdef", folder=True)
    side_by_side = aged(tmp_path / "usem3-fedcba9876543210", folder=True, when=time.time())
    other_kind = aged(tmp_path / "gazetteer-0123456789abcdef.pickle")

    user_cache.remove_superseded(current)

    assert current.exists()
    assert not superseded.exists()
    assert side_by_side.exists()
    assert other_kind.exists()

    index = aged(tmp_path / "gazetteer-cccccccccccccccc.pickle", when=time.time())
    user_cache.remove_superseded(index)
    assert not other_kind.exists()  # a file as well as a folder
    assert current.exists()
