"""watcher.clustering against scipy, the library it stands in for in the product."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from scipy import sparse  # type: ignore[import-untyped]
from scipy.cluster import hierarchy  # type: ignore[import-untyped]
from scipy.spatial.distance import squareform  # type: ignore[import-untyped]

from watcher import clustering
from watcher.clustering import SparseRows, average_link, gram


def _random_rows(seed: int, count: int, width: int) -> SparseRows:
    """Rows with a few columns most rows hold and a long tail, as TF-IDF rows have."""
    rng = np.random.default_rng(seed)
    values: list[npt.NDArray[np.float64]] = []
    columns: list[npt.NDArray[np.intp]] = []
    indptr = [0]
    for _ in range(count):
        held = np.unique(
            np.minimum((rng.pareto(1.0, rng.integers(0, 40)) * 3).astype(int), width - 1)
        )
        rng.shuffle(held)  # a row's columns need not be sorted
        columns.append(held.astype(np.intp))
        values.append(rng.random(len(held)))
        indptr.append(indptr[-1] + len(held))
    return SparseRows(
        np.concatenate(values), np.concatenate(columns), np.array(indptr), (count, width)
    )


def _scipy_gram(rows: SparseRows) -> npt.NDArray[np.float64]:
    matrix = sparse.csr_matrix((rows.values, rows.columns, rows.indptr), shape=rows.shape)
    return np.asarray((matrix @ matrix.T).toarray())


@pytest.mark.parametrize(
    ("count", "split"), [(1, None), (2, 1), (40, None), (300, None), (300, 7), (300, 299)]
)
def test_gram_is_the_sparse_product(count: int, split: int | None) -> None:
    rows = _random_rows(count, count, 400)
    held = np.bincount(rows.columns, minlength=400)
    if count >= 40:  # both ways of multiplying are taken
        assert held.max() >= clustering.DENSE_SHARE > np.median(held[held > 0])
    expected = _scipy_gram(rows)
    if split is not None:
        expected = expected[:split, split:]
    assert gram(rows, split) == pytest.approx(expected, abs=1e-12)


def test_gram_in_small_steps_sums_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks of rows and pieces of pairs cut anywhere give the same sums."""
    rows = _random_rows(5, 120, 300)
    whole = gram(rows)
    monkeypatch.setattr(clustering, "ROWS_AT_ONCE", 7)
    monkeypatch.setattr(clustering, "PAIRS_AT_ONCE", 5)
    assert gram(rows) == pytest.approx(whole, abs=1e-12)
    assert gram(rows, 50) == pytest.approx(whole[:50, 50:], abs=1e-12)


def _scipy_labels(similarity: npt.NDArray[np.float64], threshold: float) -> list[int]:
    distance = np.clip(1.0 - similarity, 0.0, None)
    np.fill_diagonal(distance, 0.0)
    tree = hierarchy.linkage(squareform(distance, checks=False), method="average")
    return [
        int(label) for label in hierarchy.fcluster(tree, t=1.0 - threshold, criterion="distance")
    ]


def _partition(labels: list[int]) -> set[frozenset[int]]:
    groups: dict[int, set[int]] = {}
    for row, label in enumerate(labels):
        groups.setdefault(label, set()).add(row)
    return {frozenset(group) for group in groups.values()}


@given(
    st.integers(0, 2**32 - 1),
    st.integers(2, 60),
    st.integers(2, 30),
    st.sampled_from([0.05, 0.2, 0.3, 0.5, 0.8]),
)
@hypothesis_settings(max_examples=200, deadline=None)
def test_average_link_cuts_as_scipy_does(
    seed: int, count: int, topics: int, threshold: float
) -> None:
    """Cosines of random non-negative vectors (some identical rows' worth of ties aside):
    the same clusters as scipy's linkage cut with fcluster, above 1 taken as 1."""
    rng = np.random.default_rng(seed)
    points = rng.random((count, topics)) ** 6
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    similarity = points @ points.T * 1.0001  # a diagonal and a few pairs just above 1
    labels = average_link(similarity, threshold)
    assert _partition(labels) == _partition(_scipy_labels(similarity, threshold))
    assert all(
        labels[row] == min(r for r, lab in enumerate(labels) if lab == labels[row])
        for row in range(count)
    )


def test_average_link_merges_by_the_mean_not_the_best_pair() -> None:
    """Two pairs linked by one strong cross pair stay apart when the mean of the four
    cross pairs is below the cut; single link would join them."""
    similarity = np.array(
        [
            [1.0, 0.9, 0.6, 0.0],
            [0.9, 1.0, 0.0, 0.0],
            [0.6, 0.0, 1.0, 0.9],
            [0.0, 0.0, 0.9, 1.0],
        ]
    )
    assert average_link(similarity, 0.3) == [0, 0, 2, 2]
    assert average_link(similarity, 0.15) == [0, 0, 0, 0]
    assert similarity[0, 2] == 0.6  # not in place: untouched


def test_average_link_of_nothing_and_of_one() -> None:
    assert average_link(np.zeros((0, 0)), 0.3) == []
    assert average_link(np.ones((1, 1)), 0.3) == [0]


def test_gram_of_rows_without_entries() -> None:
    """Items whose text gave no key (an empty feed entry) are rows without entries: their
    products are 0, and a matrix of nothing but such rows is all 0, not an error."""
    nothing = SparseRows(np.zeros(0), np.zeros(0, np.intp), np.zeros(4, np.intp), (3, 0))
    assert gram(nothing).tolist() == [[0.0] * 3] * 3
    assert gram(nothing, 1).tolist() == [[0.0, 0.0]]
    some = SparseRows(np.array([0.6, 0.8]), np.array([0, 1]), np.array([0, 0, 2, 2]), (3, 2))
    assert gram(some) == pytest.approx(np.array([[0, 0, 0], [0, 1.0, 0], [0, 0, 0]]))
    assert average_link(gram(some), 0.3) == [0, 1, 2]
