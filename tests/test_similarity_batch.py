"""The batched similarity paths (one new item against many stored ones) give the pairwise results."""

from __future__ import annotations

import json
import random
from dataclasses import astuple
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from watcher.fingerprints import (
    _MINHASH_SEED,
    MAX_SHINGLES,
    Fingerprint,
    _permutations,
    _shingle_hashes,
    _signature,
    _tokens,
    band_keys,
    fingerprint,
)
from watcher.overlap import compare, compare_many
from watcher.similarity import Candidate, decide

FIXTURES = Path(__file__).parent / "fixtures" / "dedupe" / "labelled.jsonl"
VOCABULARY = [f"w{n}" for n in range(400)] + ["Kant", "Bishkek", "Kyrgyzstan", "base", "air"]


def _fixtures() -> list[Fingerprint]:
    rows = [json.loads(line) for line in FIXTURES.read_text(encoding="utf-8").splitlines() if line]
    return [fingerprint(row["title"], row["text"], row.get("published")) for row in rows]


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(VOCABULARY) for _ in range(words))


def test_compare_many_equals_compare_on_the_labelled_fixtures() -> None:
    """Every fixture against all the others: the batched signals equal compare()'s, exactly."""
    prints = _fixtures()
    for new in prints[:40]:
        assert compare_many(new, prints) == [compare(new, old) for old in prints]


def test_compare_many_handles_capped_empty_and_title_only_texts() -> None:
    """Sketch-capped long texts, empty bodies and headline-only items compare as pairwise."""
    rng = random.Random(7)
    long_text = _text(rng, 3 * MAX_SHINGLES)
    prints = [
        fingerprint("Kant air base gets new jets", long_text, None),
        fingerprint("Kant air base gets new jets", long_text[: len(long_text) // 2], None),
        fingerprint("Kant air base", "", None),
        fingerprint("", "", None),
        fingerprint("Bishkek talks", "Bishkek talks on the air base went on.", None),
        fingerprint("Other", _text(rng, 300), None),
    ]
    assert prints[0].shingle_count > MAX_SHINGLES
    for new in prints:
        assert compare_many(new, prints) == [compare(new, old) for old in prints]
    assert compare_many(prints[0], []) == []


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=600), min_size=1, max_size=8), st.integers())
def test_compare_many_equals_compare_for_random_texts(lengths: list[int], seed: int) -> None:
    """Random texts sharing a small vocabulary (much overlap): batched equals pairwise."""
    rng = random.Random(seed)
    prints = [fingerprint(_text(rng, 6), _text(rng, n), None) for n in lengths]
    assert compare_many(prints[0], prints) == [compare(prints[0], old) for old in prints]


def test_decision_carries_the_full_similarity_of_the_matched_item() -> None:
    """decide() reports the names and headline signals of its match, as compare() gives them."""
    prints = _fixtures()
    candidates = [Candidate(i + 1, fp, None, i + 1, fp.published_at) for i, fp in enumerate(prints)]
    checked = 0
    for index, new in enumerate(prints):
        decision = decide(new, candidates[:index] + candidates[index + 1 :])
        if decision.matched_item is None:
            continue
        matched = prints[decision.matched_item - 1]
        assert decision.similarity is not None
        assert astuple(decision.similarity) == astuple(compare(new, matched))
        checked += 1
    assert checked > 50


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=2**32 - 1), max_size=2500, unique=True),
    st.sampled_from([1, 66, 128]),
)
def test_signature_equals_datasketch_affine32(values: list[int], num_perm: int) -> None:
    """The numpy MinHash gives datasketch's affine32 signature bit for bit (stored keys stay valid)."""
    from datasketch import MinHash

    shingles = np.unique(np.array(values, dtype=np.uint32))
    reference = MinHash(num_perm=num_perm, seed=_MINHASH_SEED, hashfunc=int, scheme="affine32")
    if len(shingles):
        reference.update_batch(shingles.tolist())
    expected = np.asarray(reference.hashvalues, dtype=np.uint32)
    assert np.array_equal(_signature(shingles, num_perm), expected)


@pytest.mark.parametrize("num_perm", [1, 66, 128, 256])
def test_permutations_are_datasketchs_affine32_parameters(num_perm: int) -> None:
    """The permutation parameters drawn without datasketch are the ones it draws itself."""
    from datasketch import MinHash

    a, b = _permutations(num_perm)
    reference = MinHash(num_perm=num_perm, seed=_MINHASH_SEED, scheme="affine32")
    expected_a, expected_b = reference.permutations
    assert a.dtype == b.dtype == np.uint32
    assert a.tolist() == [int(x) for x in expected_a]
    assert b.tolist() == [int(x) for x in expected_b]


def test_fingerprinting_does_not_import_datasketch() -> None:
    """A pool worker fingerprints without importing datasketch and the scipy behind it."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from watcher.similarity import fingerprint\n"
        "fingerprint('Kant air base', 'Russia and Kyrgyzstan ' * 40, 'en')\n"
        "print(sorted(m for m in ('datasketch', 'scipy') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_fingerprint_band_keys_come_from_the_datasketch_signature() -> None:
    """A real text's signature and band keys are those datasketch's MinHash leads to."""
    from datasketch import MinHash

    text = " ".join(random.Random(3).choice(VOCABULARY) for _ in range(3000))
    fp = fingerprint("Kant", text, None)
    reference = MinHash(num_perm=66, seed=_MINHASH_SEED, hashfunc=int, scheme="affine32")
    reference.update_batch(_shingle_hashes(_tokens(text)).tolist())
    signature = np.asarray(reference.hashvalues, dtype="<u4").tobytes()
    assert fp.signature == signature
    assert fp.band_keys == band_keys(signature, 22, 3)
