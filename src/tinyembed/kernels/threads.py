"""Threads for the kernels: one contiguous chunk of rows per thread, and the switch to compiled code.

NumPy releases the GIL inside ``take`` and ``copyto``, so a pool of Python threads
splits a large gather; below ``PARALLEL_MIN_BYTES`` of output, waking a thread costs
more than it saves. :func:`jit_ok` says when the compiled kernels (:mod:`.jit`) take an array.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..checks import check_positive_int
from . import jit

__all__ = ["get_num_threads", "set_num_threads", "chunks", "run_chunks", "jit_ok", "CHUNK_BYTES", "LAUNCH_MIN_BYTES"]

_num_threads = max(1, os.cpu_count() or 1)
_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_pool_lock = threading.Lock()
# Below this many output bytes, the cost of waking a thread of the Python pool beats the gain.
PARALLEL_MIN_BYTES = 1 << 21
# Below this many bytes of work, a compiled kernel runs on the calling thread: numba's threads wake in
# microseconds. Serial against parallel, 2 threads, rows of 1000 x 16 float32 (interleaved medians):
# gather 64 KiB 0.90x, 128 KiB 1.16x, 256 KiB 1.36x, 1 MiB 1.47x; bags of 16 the same sizes 1.11x,
# 1.35x, 1.60x, 1.66x.
LAUNCH_MIN_BYTES = 1 << 18
# Rows handled per step where a gather is followed by more work on the same rows (bag
# sums, adding positions): big enough that Python's per-step cost is small, small enough
# that the rows are still in cache for the second pass (1-2 MiB measured best here).
CHUNK_BYTES = 1 << 20
_JIT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def jit_ok(array: np.ndarray) -> bool:
    """The compiled kernels (:mod:`tinyembed.kernels.jit`) are on and take this 2-D array."""
    return (array.ndim == 2 and array.dtype in _JIT_DTYPES and array.flags.c_contiguous
            and jit.available())


def get_num_threads() -> int:
    return _num_threads


def set_num_threads(n: int) -> None:
    """Threads the kernels may use (NumPy releases the GIL inside take and copy)."""
    global _num_threads
    _num_threads = check_positive_int(n, "number of threads")
    jit.set_num_threads(_num_threads)


def _get_pool(workers: int) -> ThreadPoolExecutor:
    """A pool with at least ``workers`` threads. A smaller old pool is dropped, not shut
    down: a caller in another thread may still be submitting to it."""
    global _pool, _pool_size
    with _pool_lock:
        if _pool is None or _pool_size < workers:
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tinyembed")
            _pool_size = workers
        return _pool


def chunks(n: int, row_bytes: int) -> list[tuple[int, int]]:
    """Split range(n) into one contiguous chunk per thread (or one chunk if small)."""
    parts = _num_threads if n * row_bytes >= PARALLEL_MIN_BYTES else 1
    parts = max(1, min(parts, n))
    bounds = np.linspace(0, n, parts + 1).astype(np.int64)
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def run_chunks(fn, parts: list[tuple[int, int]]) -> None:
    """``fn(a, b)`` for every (a, b) of ``parts``, the calling thread taking the first."""
    if len(parts) == 1:
        fn(*parts[0])
        return
    pool = _get_pool(len(parts) - 1)
    futures = [pool.submit(fn, a, b) for a, b in parts[1:]]
    fn(*parts[0])  # the calling thread works too
    for f in futures:
        f.result()

