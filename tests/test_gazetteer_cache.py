"""The name index is cached in the user's cache folder and loaded from there by later processes."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import pytest

from watcher import user_cache
from watcher.tagging import gazetteer


@pytest.fixture
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return tmp_path


def test_the_first_build_is_cached_and_a_new_process_loads_the_same_index(
    cache_home: Path,
) -> None:
    built = gazetteer._cached_index()
    path = gazetteer.index_cache_path()
    assert path.parent == cache_home / "watcher"
    assert path.stat().st_size > 1_000_000

    probe = (
        "import pickle, sys; from watcher.tagging import gazetteer as g; "
        "i = g.name_index(); sys.stdout.buffer.write(pickle.dumps((i.entries, i.max_words)))"
    )
    env = {"XDG_CACHE_HOME": str(cache_home), "PATH": "/usr/bin:/bin"}
    loaded = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, check=True)
    entries, max_words = pickle.loads(loaded.stdout)
    assert entries == built.entries
    assert max_words == built.max_words
    assert "bishkek" in entries


def test_a_damaged_cache_file_is_rebuilt(cache_home: Path) -> None:
    path = gazetteer.index_cache_path()
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a pickle")
    index = gazetteer._cached_index()
    assert "bishkek" in index.entries
    assert path.read_bytes() != b"not a pickle"


def test_another_versions_old_index_is_removed_when_this_one_is_written(cache_home: Path) -> None:
    folder = gazetteer.index_cache_path().parent
    folder.mkdir(parents=True)
    superseded = folder / "gazetteer-0123456789abcdef.pickle"
    superseded.write_bytes(b"an older version's index")
    old = time.time() - user_cache.SUPERSEDED_AFTER - 60
    os.utime(superseded, (old, old))

    gazetteer._cached_index()

    assert gazetteer.index_cache_path().is_file()
    assert not superseded.exists()  # which entries go: tests/test_user_cache.py


def test_the_cache_name_changes_with_the_code(
    cache_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    before = gazetteer.index_cache_path()
    changed = tmp_path / "gazetteer.py"
    changed.write_text(Path(gazetteer.__file__).read_text() + "\n# changed\n")
    monkeypatch.setattr(gazetteer, "__file__", str(changed))
    assert gazetteer.index_cache_path() != before


def test_names_with_the_same_places_share_one_entry_tuple_after_a_reload(cache_home: Path) -> None:
    gazetteer._cached_index()
    index = gazetteer._cached_index()  # the second one comes from the cache file
    bishkek = index.entries["bishkek"]
    assert [place.name for place in bishkek] == ["Bishkek"]
    assert index.entries[gazetteer.fold_name("Бишкек")] is bishkek
    assert index.entries[gazetteer.fold_name("Бишкеке")] is bishkek
    kyrgyz_republic = index.entries[gazetteer.name_key(["kyrgyz", "republic"])]
    assert index.entries["kyrgyzstan"] is kyrgyz_republic
    assert index.max_words >= 3
