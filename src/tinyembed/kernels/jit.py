"""Optional compiled kernels (numba), for the places NumPy cannot keep up.

``tinyembed bench`` shows why this exists: pooling bags in NumPy must first gather
every row into a buffer and then add the buffer up, twice the memory traffic of
PyTorch's fused FBGEMM kernel, plus a Python step per chunk; at D = 64 that was
0.05-0.2x torch. A loop that adds each row straight into its bag's sum moves the
bytes once. numba compiles it; without numba (``pip install tinyembed[fast]``) or
with ``TINYEMBED_JIT=0`` the NumPy path in :mod:`tinyembed.kernels` runs instead.

The plain gather, a loop over each row's values, is faster here than both
``np.take`` and torch at every width. Adding positions to token rows gains the
same way: written in one pass, the sum costs what the lookup alone does (NumPy
needs a second pass over each chunk).
The same holds for the dense gradient of a lookup with small rows, where sorting
the ids costs more than adding them: adding each gradient row straight into its
table row, in input order, is one pass.

Ids must be validated first (:func:`tinyembed.kernels.check_ids`): compiled code
does not check bounds. The bag kernels add a bag's rows left to right in the table's dtype, as the NumPy
path does: the two give bit-identical bags (tested). The scatter-add adds in input
order, as ``np.add.at``; the NumPy path sums long segments block-wise, so there
the two agree up to rounding.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

__all__ = ["available", "set_enabled", "set_num_threads", "gather_rows", "gather_add_rows", "bag_sum",
           "bag_sum_int8", "scatter_add_rows"]

_enabled = os.environ.get("TINYEMBED_JIT", "1") != "0"

class _Kernels(NamedTuple):
    bag_sum: Callable
    bag_sum_int8: Callable
    scatter_add: Callable           # serial: one column block
    scatter_add_parallel: Callable  # threads own column blocks
    gather_add: Callable
    gather: Callable


# Compiled lazily on first use: importing tinyembed must stay fast. None: not tried yet; (): no numba.
_kernels: _Kernels | tuple[()] | None = None
_compile_lock = threading.Lock()
# numba's fallback thread pool (workqueue) aborts the process when two Python threads
# launch parallel kernels at once (the bag pool's workers can); launches take turns.
_launch_lock = threading.Lock()


def _compile() -> _Kernels:
    from numba import njit, prange  # noqa: PLC0415 - optional dependency

    # cache=True keeps the machine code between runs; nogil lets other Python threads run meanwhile.
    @njit(parallel=True, cache=True, nogil=True)
    def bag_sum(weight, ids, bounds, per_sample_weights, mean, out):
        dim = out.shape[1]
        weighted = per_sample_weights.size > 0
        for b in prange(out.shape[0]):
            start, stop = bounds[b], bounds[b + 1]
            acc = np.zeros(dim, dtype=out.dtype)  # a private row: the compiler can vectorize it
            for j in range(start, stop):
                row = weight[ids[j]]
                if weighted:
                    w = per_sample_weights[j]
                    for d in range(dim):
                        acc[d] += row[d] * w
                else:
                    for d in range(dim):
                        acc[d] += row[d]
            if mean and stop > start:
                for d in range(dim):
                    acc[d] /= stop - start
            out[b] = acc

    @njit(parallel=True, cache=True, nogil=True)
    def bag_sum_int8(codes, scale_bias, ids, bounds, per_sample_weights, mean, out):
        dim = out.shape[1]
        at = dim // 4  # scale and bias are float32 words dim/4 and dim/4 + 1 of a fused row
        weighted = per_sample_weights.size > 0
        for b in prange(out.shape[0]):
            start, stop = bounds[b], bounds[b + 1]
            acc = np.zeros(dim, dtype=np.float32)
            for j in range(start, stop):
                r = ids[j]
                row = codes[r]
                scale, bias = scale_bias[r, at], scale_bias[r, at + 1]
                if weighted:
                    w = per_sample_weights[j]
                    for d in range(dim):
                        acc[d] += (np.float32(row[d]) * scale + bias) * w
                else:
                    for d in range(dim):
                        acc[d] += np.float32(row[d]) * scale + bias
            if mean and stop > start:
                for d in range(dim):
                    acc[d] /= stop - start
            out[b] = acc

    def scatter_add(rows, values, out, block):
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

    @njit(parallel=True, cache=True, nogil=True)
    def gather(weight, ids, out):
        # An explicit loop over a row's values: faster than np.take and than torch here.
        for t in prange(ids.shape[0]):
            row, o = weight[ids[t]], out[t]
            for d in range(row.shape[0]):
                o[d] = row[d]

    @njit(parallel=True, cache=True, nogil=True)
    def gather_add(weight, ids, addend, scale, scaled, out):
        # One pass: each output row is written once, from its table row and its position row.
        seq, dim = addend.shape
        for t in prange(ids.shape[0]):
            row, pos, o = weight[ids[t]], addend[t % seq], out[t]
            if scaled:
                for d in range(dim):
                    o[d] = row[d] * scale + pos[d]
            else:
                for d in range(dim):
                    o[d] = row[d] + pos[d]

    # One column block (small rows) runs serially: a parallel launch would wait for every
    # pool thread, which on a busy 2-core machine costs milliseconds (measured).
    return _Kernels(bag_sum=bag_sum, bag_sum_int8=bag_sum_int8,
                    scatter_add=njit(cache=True, nogil=True)(scatter_add),
                    scatter_add_parallel=njit(parallel=True, cache=True, nogil=True)(scatter_add),
                    gather_add=gather_add, gather=gather)


def available() -> bool:
    """True when numba is installed and the compiled kernels are enabled."""
    global _kernels
    if not _enabled:
        return False
    if _kernels is None:
        with _compile_lock:  # two threads arriving first compile once
            if _kernels is None:
                try:
                    _kernels = _compile()
                except ImportError:
                    _kernels = ()
    return bool(_kernels)


def _compiled() -> _Kernels:
    """The compiled kernels, for the functions below: their callers checked :func:`available`."""
    if not _kernels:
        raise RuntimeError("the compiled kernels are not available: check jit.available() first")
    return _kernels


def _launch(kernel: Callable, *args) -> None:
    """Run a compiled kernel with the wanted thread count, one launch at a time."""
    with _launch_lock:
        _use_threads()
        kernel(*args)


def set_enabled(enabled: bool) -> bool:
    """Turn the compiled kernels on or off (tests run both paths); returns the old setting."""
    global _enabled
    old, _enabled = _enabled, bool(enabled)
    return old


def _empty_weights(dtype) -> np.ndarray:
    return np.empty(0, dtype=dtype)


def bag_sum(weight: np.ndarray, ids: np.ndarray, bounds: np.ndarray, mode: str,
            per_sample_weights: np.ndarray | None = None) -> np.ndarray:
    """Sum or mean of each bag's rows, straight from the table.

    Args:
        weight: (V, D) C-contiguous float32 or float64 table.
        ids: (n,) validated int64 ids; bounds: (B + 1,) int64 bag boundaries.
        per_sample_weights: (n,) of ``weight.dtype`` or None.

    Returns:
        (B, D) array of ``weight.dtype``; empty bags give zeros.
    """
    psw = _empty_weights(weight.dtype) if per_sample_weights is None else per_sample_weights
    out = np.empty((len(bounds) - 1, weight.shape[1]), dtype=weight.dtype)
    _launch(_compiled().bag_sum, weight, ids, bounds, psw, mode == "mean", out)
    return out


def bag_sum_int8(fused: np.ndarray, dim: int, ids: np.ndarray, bounds: np.ndarray, mode: str,
                 per_sample_weights: np.ndarray | None = None) -> np.ndarray:
    """:func:`bag_sum` over an 8-bit row-wise table in FBGEMM's fused layout, decoding as it adds.

    Args:
        fused: (V, dim + 8) uint8 rows: dim codes, float32 scale, float32 bias; dim % 4 == 0.

    Returns:
        (B, dim) float32.
    """
    psw = _empty_weights(np.float32) if per_sample_weights is None else per_sample_weights
    out = np.empty((len(bounds) - 1, dim), dtype=np.float32)
    _launch(_compiled().bag_sum_int8, fused, fused.view(np.float32), ids, bounds, psw, mode == "mean", out)
    return out


def scatter_add_rows(rows: np.ndarray, values: np.ndarray, num_rows: int) -> np.ndarray:
    """Dense (num_rows, D) array with ``values[j]`` added into row ``rows[j]``, in input order.

    Args:
        rows: (n,) validated int64 row ids; values: (n, D) C-contiguous float32 or float64.
    """
    out = np.zeros((num_rows, values.shape[1]), dtype=values.dtype)
    # 64 bytes of columns per block at least: threads never share a cache line of a row.
    block = max(64 // values.itemsize, -(-values.shape[1] // _threads()))
    kernels = _compiled()
    kernel = kernels.scatter_add if block >= values.shape[1] else kernels.scatter_add_parallel
    _launch(kernel, rows, values, out, block)
    return out


def gather_add_rows(weight: np.ndarray, ids: np.ndarray, addend: np.ndarray, scale: float,
                    out: np.ndarray) -> np.ndarray:
    """``out[t] = weight[ids[t]] * scale + addend[t % S]`` in one pass (scale 1 skips the product,
    as the NumPy path does, so both round alike).

    Args:
        weight: (V, D) C-contiguous float32/float64; ids: (n,) validated int64;
        addend: (S, D) of weight's dtype, C-contiguous; out: (n, D) C-contiguous.
    """
    _launch(_compiled().gather_add, weight, ids, addend, weight.dtype.type(scale), scale != 1.0, out)
    return out


def gather_rows(weight: np.ndarray, ids: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out[t] = weight[ids[t]]``: (V, D) C-contiguous float table, (n,) validated ids, (n, D) out."""
    _launch(_compiled().gather, weight, ids, out)
    return out


_wanted_threads: int | None = None


def set_num_threads(n: int) -> None:
    """Threads the compiled kernels use (:func:`tinyembed.kernels.set_num_threads` calls this)."""
    global _wanted_threads
    _wanted_threads = int(n)


def _use_threads() -> None:
    """Apply the wanted thread count to numba (per calling thread, as numba keeps it)."""
    if _wanted_threads is None:
        return
    import numba  # noqa: PLC0415
    # numba.config sets its NUMBA_* settings from the environment at run time, where mypy cannot see them.
    n = min(_wanted_threads, numba.config.NUMBA_NUM_THREADS)  # type: ignore[attr-defined]
    if numba.get_num_threads() != n:
        numba.set_num_threads(n)


def _threads() -> int:
    from numba import get_num_threads  # noqa: PLC0415
    _use_threads()
    return get_num_threads()
