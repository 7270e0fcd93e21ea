"""Segment reductions: rows that share an id added up (the backward of a lookup).

``np.add.at`` and ``np.add.reduceat(axis=0)`` run one tiny inner loop per (segment,
column) and are several times slower than sorting the ids and adding whole rows
(:func:`segment_reduce`); the compiled scatter-add (:mod:`.jit`) adds each row into
its target in one pass.
"""

from __future__ import annotations

import numpy as np

from . import jit, threads
from .jit import prange

__all__ = ["reduce_rows", "segment_reduce", "segment_sum_rows", "scatter_add_rows"]

# Segments longer than this are reduced one by one with ufunc.reduce (a long,
# fast inner loop); shorter ones by adding their k-th rows for k = 1, 2, ...
_LONG_SEGMENT = 16


def reduce_rows(block: np.ndarray, op=np.add) -> np.ndarray:
    """``op`` over the rows of ``block`` (..., count, D), left to right: (..., D).

    ``np.add.reduce`` adds whole rows in order, except over a single column: then its inner loop runs
    along the rows, and adds them pairwise, eight partial sums at a time (other bits than in order).
    """
    if op is np.add and block.shape[-1] == 1 and block.shape[-2] > 1:
        return np.add.accumulate(block, axis=-2)[..., -1, :]
    return op.reduce(block, axis=-2)


def segment_reduce(values: np.ndarray, starts: np.ndarray, counts: np.ndarray, op=np.add,
                   order: np.ndarray | None = None) -> np.ndarray:
    """Reduce row segments: ``out[i] = op.reduce(values[order[starts[i]:starts[i]+counts[i]]])``.

    Args:
        values: (n, D) rows.
        starts, counts: (S,) int64; every count must be >= 1.
        op: a binary ufunc (np.add, np.maximum, np.minimum).
        order: (n,) permutation that makes each segment contiguous; identity if None.
            Passing it (rather than ``values[order]``) avoids copying every row once more.

    Returns:
        (S, D) array. Rows are combined left to right, so results are deterministic.
    """
    pick = (lambda pos: pos) if order is None else (lambda pos: order[pos])
    out = np.take(values, pick(starts), axis=0)
    long_ = counts > _LONG_SEGMENT
    active = np.flatnonzero((counts > 1) & ~long_)
    # Two scratch buffers serve every round: fresh large temporaries cost a page fault per 4 KiB.
    rows_buf = np.empty((active.size,) + values.shape[1:], dtype=values.dtype)
    acc_buf = np.empty_like(rows_buf)
    k = 1
    while active.size:
        m = active.size
        rows = np.take(values, pick(starts[active] + k), axis=0, out=rows_buf[:m], mode="clip")
        acc = np.take(out, active, axis=0, out=acc_buf[:m], mode="clip")
        op(acc, rows, out=acc)
        out[active] = acc
        k += 1
        active = active[counts[active] > k]
    # Long segments one by one: ufunc.reduce over a contiguous (count, D) block runs whole
    # rows at a time (reduceat(axis=0) runs one inner loop per column: ~30x slower measured).
    # There are at most n / _LONG_SEGMENT of them, so the Python loop stays short.
    for i in np.flatnonzero(long_):
        s = starts[i]
        segment = values[s:s + counts[i]] if order is None else np.take(values, order[s:s + counts[i]], axis=0)
        out[i] = reduce_rows(segment, op)
    return out


def _sort_segments(rows: np.ndarray):
    """Stable sort of ``rows`` into segments: (order, unique rows, starts, counts)."""
    order = np.argsort(rows, kind="stable")
    sorted_rows = rows[order]
    n = len(sorted_rows)
    is_start = np.empty(n, dtype=bool)
    if n:
        is_start[0] = True
        np.not_equal(sorted_rows[1:], sorted_rows[:-1], out=is_start[1:])
    starts = np.flatnonzero(is_start)
    counts = np.diff(np.append(starts, n))
    return order, sorted_rows[starts], starts, counts


def segment_sum_rows(rows: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum ``values`` rows that share a row id.

    Args:
        rows: (n,) int64 row ids, any order, repeats allowed.
        values: (n, D).

    Returns:
        (unique_rows (k,) sorted int64, sums (k, D)).
    """
    if rows.size == 0:
        return rows.astype(np.int64), values[:0].copy()
    if threads.jit_ok(values):  # sorting the ids alone is cheaper than sorting rows: add in one pass
        unique, inverse = np.unique(rows, return_inverse=True)
        return unique, _scatter_add_compiled(inverse.reshape(-1), values, len(unique))
    order, unique, starts, counts = _sort_segments(rows)
    if len(unique) == len(rows):  # no repeats: a permutation is all there is to do
        return unique, np.take(values, order, axis=0)
    return unique, segment_reduce(values, starts, counts, order=order)


def scatter_add_rows(rows: np.ndarray, values: np.ndarray, num_rows: int) -> np.ndarray:
    """Dense ``(num_rows, D)`` array with ``values[i]`` added into row ``rows[i]``.

    Raises:
        IndexError: a row outside [0, num_rows) (the compiled path would write past the array).
    """
    if rows.size and (rows.min() < 0 or rows.max() >= num_rows):
        bad = int(np.flatnonzero((rows < 0) | (rows >= num_rows))[0])
        raise IndexError(f"row {int(rows[bad])} at position {bad} is out of range for {num_rows} rows")
    if threads.jit_ok(values):
        return _scatter_add_compiled(rows, values, num_rows)
    unique, sums = segment_sum_rows(rows, values)
    out = np.zeros((num_rows, sums.shape[1]), dtype=values.dtype)
    out[unique] = sums
    return out


# -- compiled (tinyembed.kernels.jit) ----------------------------------------------------------------
def _scatter_add_compiled(rows: np.ndarray, values: np.ndarray, num_rows: int) -> np.ndarray:
    """Dense (num_rows, D) with ``values[j]`` added into row ``rows[j]`` in input order, as ``np.add.at``
    (the NumPy path sums long segments block-wise, so there the two agree up to rounding)."""
    out = np.zeros((num_rows, values.shape[1]), dtype=values.dtype)
    # 64 bytes of columns per block at least: threads never share a cache line of a row.
    block = max(64 // values.itemsize, -(-values.shape[1] // jit.threads()))
    # One column block (small rows) runs serially: a parallel launch would wait for every pool
    # thread, which on a busy 2-core machine costs milliseconds (measured).
    (_scatter_add if block >= values.shape[1] else _scatter_add_parallel)(rows, values, out, block)
    return out


def _scatter_add_loop(rows, values, out, block):
    # Threads own column blocks, never rows: no two write the same element, and each
    # element adds its values in input order, as the stable sort + segment sum does.
    dim = out.shape[1]
    for c in prange((dim + block - 1) // block):
        lo, hi = c * block, min(dim, (c + 1) * block)
        for j in range(rows.shape[0]):
            # Row views with 0-based loops vectorize; indexing out[r, d] over lo..hi did not (3.6x).
            o, v = out[rows[j], lo:hi], values[j, lo:hi]
            for d in range(hi - lo):
                o[d] += v[d]


_scatter_add = jit.kernel()(_scatter_add_loop)
_scatter_add_parallel = jit.kernel(parallel=True)(_scatter_add_loop)
