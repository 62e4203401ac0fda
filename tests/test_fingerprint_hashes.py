"""Fingerprints do not depend on what the word-hash cache holds or how often it is emptied."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from watcher import fingerprints
from watcher.fingerprints import fingerprint, to_bytes

FIXTURES = Path(__file__).parent / "fixtures" / "dedupe" / "labelled.jsonl"


def _fingerprints() -> list[bytes]:
    rows = [json.loads(line) for line in FIXTURES.read_text(encoding="utf-8").splitlines()]
    return [
        to_bytes(fp) + repr(fp.index_keys()).encode()
        for fp in (fingerprint(r["title"], r["text"], r["published"]) for r in rows[:40])
    ]


def test_fingerprints_survive_an_emptied_or_tiny_word_cache(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Warm, emptied, and emptied again every few words: the same bytes and keys."""
    warm = _fingerprints()
    assert _fingerprints() == warm
    fingerprints._WORD_HASHES.clear()
    assert _fingerprints() == warm
    monkeypatch.setattr(fingerprints, "_WORD_HASHES_MAX", 50)
    assert _fingerprints() == warm
    assert len(fingerprints._WORD_HASHES) < 1000


def test_word_hash_is_blake2b_of_the_word() -> None:
    """The stored hashes are BLAKE2b-64 of the UTF-8 word, little-endian, cached or not."""
    expected = int.from_bytes(hashlib.blake2b("заречье".encode(), digest_size=8).digest(), "little")
    fingerprints._WORD_HASHES.clear()
    assert fingerprints._word_hash("заречье") == expected
    assert fingerprints._word_hash("заречье") == expected
    assert fingerprints._word_hashes(["заречье", "kant"])[0] == expected
