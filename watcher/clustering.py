"""Average-link clustering and the sparse products it is fed, in numpy alone.

scipy has both (``scipy.sparse`` products, ``scipy.cluster.hierarchy``), but importing the
two costs a process about 0.4 CPU-s and 43 MB, more than the clustering of a whole pass's
2,000 items does; a poll pays that import on every run (docs/dedupe.md, round 15). The
tests compare both functions here with scipy's.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

ROWS_AT_ONCE = 256
"""Rows of a product (or of its pairs) computed at once: the temporaries stay a block's,
and only the dense result is held whole."""

PAIRS_AT_ONCE = 1 << 16
"""Most pairs of entries sharing a column summed in one step (about 3 MB of temporaries)."""

DENSE_SHARE = 16
"""A column held by at least this many rows (and by at least one row in this many) is
multiplied as a dense column (BLAS), the rest pair by pair. Pairing does work on the order
of the square of each column's rows: the topic's words are in most rows."""


@dataclass(frozen=True, slots=True)
class SparseRows:
    """A sparse matrix by rows: ``values[indptr[r]:indptr[r + 1]]`` at ``columns[...]`` are
    row ``r``'s entries (columns need not be sorted; a column once per row)."""

    values: npt.NDArray[np.float64]
    columns: npt.NDArray[np.intp]
    indptr: npt.NDArray[np.intp]
    shape: tuple[int, int]

    def row_of_entries(self) -> npt.NDArray[np.intp]:
        return np.repeat(np.arange(self.shape[0]), np.diff(self.indptr))


def gram(matrix: SparseRows, split: int | None = None) -> npt.NDArray[np.float64]:
    """``matrix @ matrix.T`` as a dense array; with ``split``, only its block of the rows
    before ``split`` against the rows from ``split`` on. The columns most rows hold are
    multiplied densely, the others by summing the products of the pairs of entries that
    share a column."""
    count, width = matrix.shape
    rows = matrix.row_of_entries()
    held = np.bincount(matrix.columns, minlength=width)
    common = held >= max(DENSE_SHARE, count // DENSE_SHARE)
    dense_place = np.cumsum(common) - 1
    in_dense = common[matrix.columns]
    dense = np.zeros((count, int(common.sum())))
    dense[rows[in_dense], dense_place[matrix.columns[in_dense]]] = matrix.values[in_dense]
    rare = ~in_dense
    if split is None:  # symmetric: the pairs' half above the diagonal, mirrored
        out = np.zeros((count, count))
        _add_pairs(out, rows[rare], matrix.columns[rare], matrix.values[rare], upper=True)
        for start in range(0, count, ROWS_AT_ONCE):
            end = min(start + ROWS_AT_ONCE, count)
            out[start:end, :start] = out[:start, start:end].T
            square = out[start:end, start:end]
            square += np.triu(square, 1).T
        for start in range(0, count, ROWS_AT_ONCE):
            out[start : start + ROWS_AT_ONCE] += dense[start : start + ROWS_AT_ONCE] @ dense.T
        return out
    out = np.empty((split, count - split))
    right = dense[split:].T  # a view: BLAS reads it transposed
    for start in range(0, split, ROWS_AT_ONCE):
        block = slice(start, min(start + ROWS_AT_ONCE, split))
        np.matmul(dense[block], right, out=out[block])
    _add_pairs(
        out,
        rows[rare],
        matrix.columns[rare],
        matrix.values[rare],
        first_end=split,
        second_start=split,
    )
    return out


def _add_pairs(
    out: npt.NDArray[np.float64],
    rows: npt.NDArray[np.intp],
    columns: npt.NDArray[np.intp],
    values: npt.NDArray[np.float64],
    *,
    first_end: int | None = None,
    second_start: int = 0,
    upper: bool = False,
) -> None:
    """Add to ``out[i, j - second_start]`` the product of every pair of entries in one
    column with row ``i`` < ``first_end`` (None: every row) and row ``j`` >=
    ``second_start``; ``upper``: only those with ``j >= i``."""
    if first_end is None:
        first_end = out.shape[0]
    width = out.shape[1]
    right = rows >= second_start
    order = np.argsort(columns[right], kind="stable")  # by column, then row
    right_columns = columns[right][order]
    right_rows = rows[right][order] - second_start
    right_values = values[right][order]
    left = np.flatnonzero(rows < first_end)  # entries in row order
    stops = np.searchsorted(right_columns, columns[left], side="right")
    if upper:  # from the entry itself on, in its column
        starts = np.empty(len(order), np.intp)
        starts[order] = np.arange(len(order))
        starts = starts[left]
    else:
        starts = np.searchsorted(right_columns, columns[left], side="left")
    partners = stops - starts
    left_rows = rows[left]
    left_values = values[left]
    for low in range(0, first_end, ROWS_AT_ONCE):
        high = min(low + ROWS_AT_ONCE, first_end)
        begin, stop = np.searchsorted(left_rows, [low, high])
        counts = partners[begin:stop]
        if not counts.any():
            continue
        block = np.zeros((high - low) * width)
        ends = np.cumsum(counts)
        piece_of = (ends - 1) // PAIRS_AT_ONCE  # runs of entries whose pairs fit at once
        cuts = [0, *(np.flatnonzero(np.diff(piece_of)) + 1).tolist(), len(counts)]
        for first, last in itertools.pairwise(cuts):
            part = counts[first:last]
            pairs = int(part.sum())
            if not pairs:
                continue
            offset = np.arange(pairs) - np.repeat(np.cumsum(part) - part, part)
            partner = np.repeat(starts[begin + first : begin + last], part) + offset
            where = np.repeat((left_rows[begin + first : begin + last] - low) * width, part)
            where += right_rows[partner]
            weight = np.repeat(left_values[begin + first : begin + last], part)
            weight *= right_values[partner]
            block += np.bincount(where, weight, minlength=len(block))
        out[low:high] += block.reshape(high - low, width)


def average_link(
    similarity: npt.NDArray[np.float64], threshold: float, *, in_place: bool = False
) -> list[int]:
    """Flat clusters of average-link agglomerative clustering of ``similarity`` (symmetric,
    values above 1 taken as 1), cut where the mean similarity between two clusters falls
    below ``threshold``: a label per row, the lowest row of each cluster. ``in_place``:
    ``similarity`` is overwritten.

    The nearest-neighbour chain: follow each cluster's most similar one until two are each
    other's, merge those (the merged row is the size-weighted mean of the two, as average
    link has it). A cluster whose most similar one is below ``threshold`` never merges
    again (a merged row is a mean of rows it is below threshold in), so it leaves the
    search; the merges are those of the full dendrogram above the cut."""
    count = len(similarity)
    labels = list(range(count))
    if count < 2:
        return labels
    work = similarity if in_place else similarity.copy()
    np.minimum(work, 1.0, out=work)
    np.fill_diagonal(work, -np.inf)
    size = np.ones(count)
    members: list[list[int]] = [[row] for row in range(count)]
    open_rows = list(range(count - 1, -1, -1))  # the next chain start: the lowest open row
    is_open = np.ones(count, np.bool_)
    chain: list[int] = []
    while True:
        if not chain:
            while open_rows and not is_open[open_rows[-1]]:
                open_rows.pop()
            if not open_rows:
                break
            chain.append(open_rows[-1])
        tip = chain[-1]
        row = work[tip]
        nearest = int(row.argmax())
        best = row[nearest]
        if len(chain) > 1 and row[chain[-2]] >= best:
            nearest, best = chain[-2], row[chain[-2]]
        if best < threshold:  # alone for good
            is_open[tip] = False
            work[tip, :] = -np.inf
            work[:, tip] = -np.inf
            chain.pop()
            continue
        if len(chain) > 1 and nearest == chain[-2]:
            chain.pop()
            chain.pop()
            kept, gone = min(tip, nearest), max(tip, nearest)
            merged = (size[kept] * work[kept] + size[gone] * work[gone]) / (size[kept] + size[gone])
            size[kept] += size[gone]
            members[kept].extend(members[gone])
            members[gone] = []
            work[kept] = merged
            work[:, kept] = merged
            work[kept, kept] = -np.inf
            is_open[gone] = False
            work[gone, :] = -np.inf
            work[:, gone] = -np.inf
            continue
        chain.append(nearest)
    for group in members:
        if group:
            lowest = min(group)
            for row in group:
                labels[row] = lowest
    return labels
