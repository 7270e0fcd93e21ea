"""Array kernels: the pure NumPy functions every embedding table runs.

Nothing here knows about Tensors, autograd or modules. Layers call these
functions; the profiler measures these same functions. Every kernel takes
validated inputs (see :func:`check_ids`, :func:`check_offsets`) so that the hot
paths can use NumPy's unchecked modes.

Why not the obvious one-liners:

* ``weight[ids]`` allocates and checks bounds; ``np.take(..., mode='raise',
  out=...)`` buffers the whole output. Validated ids let us use
  ``mode='clip'``, which writes straight into ``out`` and splits over threads.
* ``np.add.at`` and ``np.add.reduceat(axis=0)`` run one tiny inner loop per
  (segment, column) and are several times slower than sorting the ids and
  adding whole rows (:func:`segment_reduce`).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from . import jit

__all__ = [
    "check_ids",
    "check_offsets",
    "check_out",
    "bag_bounds",
    "get_num_threads",
    "set_num_threads",
    "gather_rows",
    "gather_add_rows",
    "segment_reduce",
    "segment_sum_rows",
    "scatter_add_rows",
    "row_norms",
    "renorm_rows_",
    "frequency_scale",
    "bag_pool",
    "pool_rows",
    "pool_segments",
    "bag_pool_backward",
]

# -- threads ------------------------------------------------------------------------
_num_threads = max(1, os.cpu_count() or 1)
_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_pool_lock = threading.Lock()
# Below this many output bytes, the cost of waking a thread beats the gain.
_PARALLEL_MIN_BYTES = 1 << 21
# Rows handled per step where a gather is followed by more work on the same rows (bag
# sums, adding positions): big enough that Python's per-step cost is small, small enough
# that the rows are still in cache for the second pass (1-2 MiB measured best here).
_CHUNK_BYTES = 1 << 20
_JIT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _jit_ok(array: np.ndarray) -> bool:
    """The compiled kernels (:mod:`tinyembed.jit`) are on and take this 2-D array."""
    return (array.ndim == 2 and array.dtype in _JIT_DTYPES and array.flags.c_contiguous
            and jit.available())


def get_num_threads() -> int:
    return _num_threads


def set_num_threads(n: int) -> None:
    """Threads the kernels may use (NumPy releases the GIL inside take and copy)."""
    global _num_threads
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"number of threads must be an int >= 1, got {n!r}")
    _num_threads = int(n)
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


def _chunks(n: int, row_bytes: int) -> list[tuple[int, int]]:
    """Split range(n) into one contiguous chunk per thread (or one chunk if small)."""
    parts = _num_threads if n * row_bytes >= _PARALLEL_MIN_BYTES else 1
    parts = max(1, min(parts, n))
    bounds = np.linspace(0, n, parts + 1).astype(np.int64)
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]


def _run_chunks(fn, chunks) -> None:
    if len(chunks) == 1:
        fn(*chunks[0])
        return
    pool = _get_pool(len(chunks) - 1)
    futures = [pool.submit(fn, a, b) for a, b in chunks[1:]]
    fn(*chunks[0])  # the calling thread works too
    for f in futures:
        f.result()


# -- validation ---------------------------------------------------------------------
def check_ids(ids, num_embeddings: int, name: str = "input") -> np.ndarray:
    """Validate ids and return them as an int64 array (any shape, 0-d included).

    Raises:
        TypeError: for float, bool, complex or object arrays.
        IndexError: naming the first id outside [0, num_embeddings) and its position.
    """
    if hasattr(ids, "data") and not isinstance(ids, np.ndarray):  # a Tensor
        ids = ids.data
    arr = np.asarray(ids)
    if arr.dtype.kind not in "iu":
        if arr.size == 0 and arr.dtype.kind == "f" and not isinstance(ids, np.ndarray):
            arr = arr.astype(np.int64)  # `[]` comes in as float64: treat as empty ids
        else:
            raise TypeError(f"{name} must hold integer ids, got dtype {arr.dtype}")
    # Always a copy: backward closures keep the ids, and the caller may reuse its array.
    arr = np.array(arr, dtype=np.int64)
    # Two reductions are cheaper than a boolean mask; the mask is built only to name a bad id.
    if arr.size and (arr.min() < 0 or arr.max() >= num_embeddings):
        bad = (arr < 0) | (arr >= num_embeddings)
        where = tuple(int(i) for i in np.argwhere(bad)[0]) if arr.ndim else ()
        raise IndexError(
            f"{name} id {int(arr[where])} at position {where} is out of range "
            f"for a table of {num_embeddings} rows (valid: 0..{num_embeddings - 1})"
        )
    return arr


def check_offsets(offsets, num_ids: int, include_last_offset: bool = False) -> np.ndarray:
    """Validate bag offsets and return bag boundaries ``bounds`` of shape (B + 1,).

    Bag ``b`` holds entries ``bounds[b]:bounds[b+1]``. Offsets must start at 0,
    never decrease, and stay within the input.
    """
    if hasattr(offsets, "data") and not isinstance(offsets, np.ndarray):
        offsets = offsets.data
    off = np.asarray(offsets)
    if off.dtype.kind not in "iu":
        raise TypeError(f"offsets must hold integers, got dtype {off.dtype}")
    if off.ndim != 1:
        raise ValueError(f"offsets must be 1-D, got shape {off.shape}")
    off = off.astype(np.int64)
    if include_last_offset and len(off) == 0:
        raise ValueError("include_last_offset=True needs at least one offset")
    if len(off) and off[0] != 0:
        raise ValueError(f"offsets[0] must be 0 (the first bag starts the input), got {int(off[0])}")
    step = np.diff(off)
    if (step < 0).any():
        i = int(np.argmax(step < 0)) + 1
        raise ValueError(f"offsets must not decrease: offsets[{i}] = {int(off[i])} < {int(off[i - 1])}")
    if len(off) and off[-1] > num_ids:
        raise ValueError(f"offset {int(off[-1])} runs past the input of {num_ids} ids")
    return off if include_last_offset else np.append(off, num_ids)


def check_out(out: np.ndarray, shape: tuple, dtype: np.dtype) -> None:
    """A preallocated output must match exactly and be C-contiguous (a reshape must not copy it)."""
    if not isinstance(out, np.ndarray) or out.shape != shape or out.dtype != dtype:
        got = f"{out.shape} {out.dtype}" if isinstance(out, np.ndarray) else type(out).__name__
        raise ValueError(f"out must be an array of shape {shape} and dtype {dtype}, got {got}")
    if not out.flags.c_contiguous:
        raise ValueError("out must be C-contiguous")


def bag_bounds(ids: np.ndarray, offsets, include_last_offset: bool) -> tuple[np.ndarray, np.ndarray]:
    """Flat ids and (B + 1,) bag boundaries for 2-D ids (B fixed-size bags) or 1-D ids with offsets."""
    if ids.ndim == 2:
        if offsets is not None:
            raise ValueError("2-D input is a batch of fixed-size bags: offsets must be None")
        batch, length = ids.shape
        return ids.reshape(-1), np.arange(batch + 1, dtype=np.int64) * length
    if ids.ndim == 1:
        if offsets is None:
            raise ValueError("1-D input needs offsets (the start of each bag)")
        return ids, check_offsets(offsets, len(ids), include_last_offset)
    raise ValueError(f"bag input must be 1-D (with offsets) or 2-D, got shape {ids.shape}")


# -- gather -------------------------------------------------------------------------
def gather_rows(weight: np.ndarray, ids: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Rows of ``weight`` at ``ids``: the embedding lookup.

    Args:
        weight: (V, D) table.
        ids: int array of any shape, already validated by :func:`check_ids` (neither
            path checks bounds again: NumPy clips, compiled code would read past the table).
        out: optional (*ids.shape, D) array to write into.

    Returns:
        (*ids.shape, D) array of ``weight.dtype``.
    """
    dim = weight.shape[1]
    flat = ids.reshape(-1)
    if out is None:
        out = np.empty(ids.shape + (dim,), dtype=weight.dtype)
    else:
        check_out(out, ids.shape + (dim,), weight.dtype)
    out2d = out.reshape(-1, dim)
    if flat.size and _jit_ok(weight) and out2d.flags.c_contiguous:
        jit.gather_rows(weight, flat, out2d)
        return out

    def work(a, b):
        np.take(weight, flat[a:b], axis=0, out=out2d[a:b], mode="clip")

    if flat.size:
        _run_chunks(work, _chunks(flat.size, dim * weight.itemsize))
    return out


def gather_add_rows(weight: np.ndarray, ids: np.ndarray, addend: np.ndarray, scale: float = 1.0,
                    out: np.ndarray | None = None) -> np.ndarray:
    """``weight[ids] * scale + addend``, broadcast over sequences, in one pass: token plus position.

    Each cache-sized chunk is gathered, scaled and added to while it is still in
    cache, so the sum costs about what the lookup alone does and needs no
    temporary beyond the output. Rounding is the same as ``(weight[ids] * scale) + addend``.

    Args:
        weight: (V, D) table.
        ids: (*, S) validated ids, at least 1-D.
        addend: (S, D) array of ``weight.dtype``: row ``s`` is added at sequence position ``s``.
        out: optional (*ids.shape, D) array to write into.

    Returns:
        (*ids.shape, D) array of ``weight.dtype``.
    """
    seq, dim = ids.shape[-1], weight.shape[1]
    if addend.shape != (seq, dim):
        raise ValueError(f"addend must be ({seq}, {dim}) for ids of shape {ids.shape}, got {addend.shape}")
    if out is None:
        out = np.empty(ids.shape + (dim,), dtype=weight.dtype)
    else:
        check_out(out, ids.shape + (dim,), weight.dtype)
    flat, out2d = ids.reshape(-1), out.reshape(-1, dim)
    if flat.size and _jit_ok(weight) and addend.flags.c_contiguous and addend.dtype == weight.dtype:
        jit.gather_add_rows(weight, flat, addend, scale, out2d)
        return out
    step = max(1, _CHUNK_BYTES // (dim * weight.itemsize))

    def add_periodic(rows, phase):  # rows[i] += addend[(phase + i) % seq]
        n, i = len(rows), 0
        if phase:
            i = min(n, seq - phase)
            rows[:i] += addend[phase:phase + i]
        whole = (n - i) // seq
        if whole:
            rows[i:i + whole * seq].reshape(whole, seq, dim)[...] += addend
            i += whole * seq
        if i < n:
            rows[i:] += addend[:n - i]

    def work(a, b):
        for t in range(a, b, step):
            rows = out2d[t:min(b, t + step)]
            np.take(weight, flat[t:t + len(rows)], axis=0, out=rows, mode="clip")
            if scale != 1.0:
                rows *= scale
            add_periodic(rows, t % seq)

    if flat.size:
        _run_chunks(work, _chunks(flat.size, dim * weight.itemsize))
    return out


# -- segment reductions ---------------------------------------------------------------
# Segments longer than this are reduced one by one with ufunc.reduce (a long,
# fast inner loop); shorter ones by adding their k-th rows for k = 1, 2, ...
_LONG_SEGMENT = 16


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
        out[i] = op.reduce(segment, axis=0)
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
    if _jit_ok(values):  # sorting the ids alone is cheaper than sorting rows: add in one pass
        unique, inverse = np.unique(rows, return_inverse=True)
        return unique, jit.scatter_add_rows(inverse.reshape(-1), values, len(unique))
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
    if _jit_ok(values):
        return jit.scatter_add_rows(rows, values, num_rows)
    unique, sums = segment_sum_rows(rows, values)
    out = np.zeros((num_rows, sums.shape[1]), dtype=values.dtype)
    out[unique] = sums
    return out


# -- max_norm and scale_grad_by_freq ------------------------------------------------------
def row_norms(rows: np.ndarray, norm_type: float) -> np.ndarray:
    """p-norm of each row of a (k, D) array, computed in float64."""
    rows = rows.astype(np.float64, copy=False)
    if norm_type == np.inf:
        return np.abs(rows).max(axis=1, initial=0.0)
    if norm_type == 2.0:
        return np.sqrt(np.einsum("ij,ij->i", rows, rows))
    return (np.abs(rows) ** norm_type).sum(axis=1) ** (1.0 / norm_type)


def renorm_rows_(weight: np.ndarray, ids: np.ndarray, max_norm: float, norm_type: float = 2.0) -> None:
    """In place: every row looked up whose norm exceeds ``max_norm`` is scaled down to it.

    The scale is ``max_norm / (norm + 1e-7)``, PyTorch's ``embedding_renorm_``.
    """
    unique = np.unique(ids)
    if unique.size == 0:
        return
    norms = row_norms(weight[unique], norm_type)
    over = norms > max_norm
    if over.any():
        rows = unique[over]
        scale = (max_norm / (norms[over] + 1e-7))[:, None]
        weight[rows] = (weight[rows] * scale).astype(weight.dtype)


def frequency_scale(ids: np.ndarray, of: np.ndarray | None = None) -> np.ndarray:
    """scale_grad_by_freq: 1 / (how often each id occurs in ``ids``), for each id of ``of``.

    ``of`` defaults to ``ids`` itself (one scale per position); its ids must occur in ``ids``.
    """
    unique, counts = np.unique(ids, return_counts=True)
    of = ids if of is None else of
    return 1.0 / counts[np.searchsorted(unique, of.reshape(-1))]


# -- bags -------------------------------------------------------------------------
def _bag_entries(ids, bounds, per_sample_weights, padding_idx):
    """The entries that belong to a bag: those before the last bound, padding left out.

    Returns (ids, bounds, per_sample_weights, positions): bounds moved to the kept
    entries, positions the kept entries' places in the input.
    """
    end = bounds[-1]
    ids = ids[:end]
    weights = None if per_sample_weights is None else per_sample_weights[:end]
    if padding_idx is None:
        return ids, bounds, weights, np.arange(end)
    keep = ids != padding_idx
    moved = np.concatenate([[0], np.cumsum(keep)])[bounds]
    return ids[keep], moved, (None if weights is None else weights[keep]), np.flatnonzero(keep)


def bag_pool(weight: np.ndarray, ids: np.ndarray, bounds: np.ndarray, mode: str = "mean",
             per_sample_weights: np.ndarray | None = None, padding_idx: int | None = None):
    """Pool the rows of each bag: EmbeddingBag's forward.

    Args:
        weight: (V, D) table.
        ids: (n,) validated int64 ids.
        bounds: (B + 1,) bag boundaries from :func:`check_offsets`.
        mode: 'sum', 'mean' or 'max'.
        per_sample_weights: (n,) weights multiplying each row ('sum' only).
        padding_idx: entries with this id are left out of their bag (and its count).

    Returns:
        (out (B, D), argmax (B, D) int64 row ids or None). Empty bags give zeros;
        for 'max', ``argmax`` is -1 there.
    """
    ids, bounds, per_sample_weights, _ = _bag_entries(ids, bounds, per_sample_weights, padding_idx)
    if per_sample_weights is not None:
        per_sample_weights = per_sample_weights.astype(weight.dtype, copy=False)
    if mode != "max":
        if _jit_ok(weight):
            return jit.bag_sum(weight, ids, bounds, mode, per_sample_weights), None
        return pool_rows(lambda at, buf: np.take(weight, at, axis=0, out=buf, mode="clip"),
                         ids, bounds, weight.shape[1], weight.dtype, mode, per_sample_weights), None

    counts = np.diff(bounds)
    full = np.flatnonzero(counts)
    out = np.zeros((len(counts), weight.shape[1]), dtype=weight.dtype)
    argmax = np.full(out.shape, -1, dtype=np.int64)
    if full.size:
        rows = gather_rows(weight, ids)
        if per_sample_weights is not None:
            rows *= per_sample_weights[:, None]
        starts, lengths = bounds[full], counts[full]
        out[full] = segment_reduce(rows, starts, lengths, np.maximum)
        # First position holding the max, per (bag, dim): as PyTorch, earlier rows win ties.
        is_max = rows == np.repeat(out[full], lengths, axis=0)
        position = np.where(is_max, np.arange(len(rows))[:, None], len(rows))
        first = segment_reduce(position, starts, lengths, np.minimum)
        argmax[full] = ids[first]
    return out, argmax


def pool_rows(fetch, ids: np.ndarray, bounds: np.ndarray, dim: int, dtype, mode: str = "sum",
              per_sample_weights: np.ndarray | None = None) -> np.ndarray:
    """Sum or mean of each bag's rows, fetched a cache-sized chunk of bags at a time.

    Gathering every row first and pooling after would write and re-read an (n, D)
    temporary from memory; chunks keep it in cache, and threads take bag ranges.

    Args:
        fetch: ``fetch(ids_chunk, buf)`` writes the rows of ``ids_chunk`` into ``buf``
            ((m, dim) of ``dtype``): ``np.take`` for a plain table, decoding for others.
        ids: (n,) validated ids; bounds: (B + 1,) bag boundaries.
        per_sample_weights: (n,) of ``dtype`` multiplying each row, or None.

    Returns:
        (B, dim) array of ``dtype``: rows added left to right; empty bags give zeros.
    """
    counts = np.diff(bounds)
    num_bags = len(counts)
    out = np.zeros((num_bags, dim), dtype=dtype)
    if num_bags == 0 or bounds[-1] == bounds[0]:
        return out
    row_bytes = dim * np.dtype(dtype).itemsize
    mean_rows = max(1, int(bounds[-1] - bounds[0]) // num_bags)
    per_step = max(1, _CHUNK_BYTES // (row_bytes * mean_rows))

    def work(a, b):
        buf = np.empty((0, dim), dtype=dtype)
        for s in range(a, b, per_step):
            e = min(b, s + per_step)
            lo, hi = bounds[s], bounds[e]
            if hi == lo:
                continue
            if len(buf) < hi - lo:  # a chunk of long bags: grow the scratch rows
                buf = np.empty((hi - lo, dim), dtype=dtype)
            rows = buf[: hi - lo]
            fetch(ids[lo:hi], rows)
            if per_sample_weights is not None:
                rows *= per_sample_weights[lo:hi, None]
            lengths = counts[s:e]
            if lengths[0] > 0 and (lengths == lengths[0]).all():  # fixed-size bags: one reduce
                np.add.reduce(rows.reshape(e - s, lengths[0], dim), axis=1, out=out[s:e])
            else:
                out[s:e] = pool_segments(rows, bounds[s:e + 1] - lo, "sum")

    _run_chunks(work, _chunks(num_bags, row_bytes * mean_rows))
    if mode == "mean":
        full = counts > 0
        out[full] /= counts[full, None].astype(dtype)
    return out


def pool_segments(rows: np.ndarray, bounds: np.ndarray, mode: str = "sum") -> np.ndarray:
    """Sum or mean of consecutive row segments: bag ``b`` is ``rows[bounds[b]:bounds[b+1]]``.

    Args:
        rows: (n, D) rows, n >= bounds[-1].
        bounds: (B + 1,) non-decreasing boundaries starting at 0.
        mode: 'sum' or 'mean'. Empty bags give zeros.

    Returns:
        (B, D) array of ``rows.dtype``.
    """
    counts = np.diff(bounds)
    full = np.flatnonzero(counts)
    out = np.zeros((len(counts), rows.shape[1]), dtype=rows.dtype)
    if full.size:
        pooled = segment_reduce(rows, bounds[full], counts[full], np.add)
        if mode == "mean":
            pooled /= counts[full, None].astype(rows.dtype)
        out[full] = pooled
    return out


def bag_pool_backward(grad_out: np.ndarray, weight: np.ndarray, ids: np.ndarray, bounds: np.ndarray,
                      mode: str, per_sample_weights: np.ndarray | None = None,
                      padding_idx: int | None = None, argmax: np.ndarray | None = None,
                      scale_grad_by_freq: bool = False):
    """Gradients of :func:`bag_pool` for the table rows (and per-sample weights).

    Args:
        grad_out: (B, D) gradient of the pooled output.
        Other arguments as passed to :func:`bag_pool`; ``argmax`` as it returned.
        scale_grad_by_freq: divide each row's gradient by how often its id occurs
            in the whole input (padding excluded).

    Returns:
        (rows (k,) unique sorted ids, row_grads (k, D), grad_per_sample_weights (n,) or None).
    """
    n_all = len(ids)
    dim = grad_out.shape[1]
    ids_used, bounds, psw, kept = _bag_entries(ids, bounds, per_sample_weights, padding_idx)
    if mode == "max":
        full = argmax >= 0  # (B, D); empty bags have no arg-max
        rows = argmax[full]
        cols = np.broadcast_to(np.arange(dim), argmax.shape)[full]
        vals = grad_out[full]
        if scale_grad_by_freq:
            vals = vals * frequency_scale(ids_used, of=rows)
        touched, inverse = np.unique(rows, return_inverse=True)
        # Each (row, col) can be the arg-max of several bags: sum with bincount over a small grid.
        local = inverse.reshape(-1) * dim + cols
        summed = np.bincount(local, weights=vals, minlength=len(touched) * dim)
        return touched, summed.reshape(len(touched), dim).astype(weight.dtype), None

    counts = np.diff(bounds)
    bag_of_entry = np.repeat(np.arange(len(counts)), counts)
    entry_grad = np.take(grad_out, bag_of_entry, axis=0)  # (n_kept, D): each entry's bag gradient

    grad_psw = None
    if per_sample_weights is not None:  # d out[b] / d w_j = weight[ids[j]]; before scaling entry_grad
        grad_psw = np.zeros(n_all, dtype=per_sample_weights.dtype)
        grad_psw[kept] = np.einsum("ij,ij->i", gather_rows(weight, ids_used), entry_grad)

    scale = None
    if mode == "mean":
        scale = 1.0 / counts[bag_of_entry]
    if psw is not None:
        scale = psw if scale is None else scale * psw
    if scale_grad_by_freq and len(ids_used):
        freq = frequency_scale(ids_used)
        scale = freq if scale is None else scale * freq
    if scale is not None:
        entry_grad *= np.asarray(scale, dtype=np.float64)[:, None].astype(grad_out.dtype)
    unique, sums = segment_sum_rows(ids_used, entry_grad)
    return unique, sums, grad_psw
