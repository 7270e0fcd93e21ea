"""Bags: the rows of each bag pooled (sum, mean, max) and their gradients, EmbeddingBag's kernels.

A bag's rows are added straight into its sum (the compiled loop), or fetched a
cache-sized chunk of bags at a time (:func:`pool_rows`): gathering every row first
and pooling after would write and re-read an (n, D) temporary from memory. Tables stored
in a narrower type (:mod:`.rows`) are decoded inside the compiled loop as their rows are
added (:func:`bag_pool_decoded`). Small batches of bags run on the calling thread: a
parallel launch waits for every pool thread, which costs more than small work itself.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from . import jit, threads
from .gather import gather_rows
from .ids import check_ids, name_bad_id
from .jit import prange
from .lanes import (
    LANES,
    _float_lanes,
    _lanes_zero,
    _scale_and_bias,
    _store_lanes,
    _stored_lanes,
    _times,
    _weight,
    empty_aligned,
)
from .norms import frequency_scale
from .rows import (
    _decodes_compiled,
    _install_helpers,
    _prefetch_row,
    _run,
    gather_decoded,
    prefetch_distance,
    split_rows,
)
from .segments import reduce_rows, segment_reduce, segment_sum_rows

__all__ = ["bag_pool", "bag_pool_fused", "bag_pool_decoded", "pool_rows", "pool_segments", "bag_pool_backward"]


def _bag_entries(ids, bounds, per_sample_weights, padding_idx, positions: bool = False):
    """The entries that belong to a bag: those before the last bound, padding left out.

    Returns (ids, bounds, per_sample_weights, positions): bounds moved to the kept
    entries, positions the kept entries' places in the input (None unless asked for).
    """
    end = bounds[-1]
    if end != len(ids):
        ids = ids[:end]
        per_sample_weights = None if per_sample_weights is None else per_sample_weights[:end]
    if padding_idx is None:
        return ids, bounds, per_sample_weights, (np.arange(end) if positions else None)
    keep = ids != padding_idx
    moved = np.concatenate([[0], np.cumsum(keep)])[bounds]
    return (ids[keep], moved, (None if per_sample_weights is None else per_sample_weights[keep]),
            (np.flatnonzero(keep) if positions else None))


def bag_pool(weight: np.ndarray, ids: np.ndarray, bounds: np.ndarray, mode: str = "mean",
             per_sample_weights: np.ndarray | None = None, padding_idx: int | None = None):
    """Pool the rows of each bag: EmbeddingBag's forward.

    Args:
        weight: (V, D) table.
        ids: (n,) int64 ids, checked here (the compiled loop checks each as it adds its row): a bad id
            raises :func:`.ids.check_ids`' error, naming its position in ``ids``.
        bounds: (B + 1,) bag boundaries from :func:`check_offsets`.
        mode: 'sum', 'mean' or 'max'.
        per_sample_weights: (n,) weights multiplying each row ('sum' only).
        padding_idx: entries with this id are left out of their bag (and its count).

    Returns:
        (out (B, D), argmax (B, D) int64 row ids or None). Empty bags give zeros;
        for 'max', ``argmax`` is -1 there.
    """
    compiled = mode != "max" and threads.jit_ok(weight)
    if not compiled or bounds[-1] != len(ids):  # the compiled loop checks only the ids in a bag
        ids = check_ids(ids, weight.shape[0])
    entries, bounds, per_sample_weights, _ = _bag_entries(ids, bounds, per_sample_weights, padding_idx)
    if per_sample_weights is not None:
        per_sample_weights = per_sample_weights.astype(weight.dtype, copy=False)
    if compiled:
        _install_helpers(globals())
        # NumPy's output, not empty_aligned's: on a cache line or 16 bytes past one, the same time (50257 x 64
        # and x 768, bags of 16), and NumPy's takes 2.3 us less to make.
        out = np.empty((len(bounds) - 1, weight.shape[1]), weight.dtype)
        if _run(_BAG_SUM, len(entries) * weight.shape[1] * weight.itemsize, weight, entries, bounds,
                per_sample_weights, mode == "mean", prefetch_distance(weight), out):
            name_bad_id(ids, weight.shape[0])
        return out, None
    ids = entries
    if mode != "max":
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
    per_step = max(1, threads.CHUNK_BYTES // (row_bytes * mean_rows))

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
                out[s:e] = reduce_rows(rows.reshape(e - s, lengths[0], dim))
            else:
                out[s:e] = pool_segments(rows, bounds[s:e + 1] - lo, "sum")

    threads.run_chunks(work, threads.chunks(num_bags, row_bytes * mean_rows))
    # The reductions start from a bag's first row, the compiled loops (and torch) from zero: they differ
    # only where a sum is -0.0, which adding +0.0 makes +0.0, the same bits on both paths.
    out += 0
    if mode == "mean":
        full = counts > 0
        out[full] /= counts[full, None].astype(dtype)
    return out


def bag_pool_decoded(stored: np.ndarray, storage: str, dim: int, ids: np.ndarray, bounds: np.ndarray,
                     mode: str = "sum", per_sample_weights: np.ndarray | None = None) -> np.ndarray:
    """Sum or mean of each bag over a table stored as ``storage`` (:mod:`.rows`), decoding only the
    rows in the bags: the compiled loop decodes each row as it adds it into its bag's sum.

    Rows of a float type are decoded as :func:`.rows.decode_rows` decodes them and added left to right
    in float32 (times their weight first, if any). A quantized bag (int8, int4) is summed as FBGEMM
    sums it, its biases apart from its codes: left to right, ``code * (scale * weight)`` into the
    bag's sum and ``bias * weight`` into its bias sum, the two added at the end (then divided, for a
    mean). Both paths give the same bits.

    Args:
        stored: (V, width) array of ``STORED_DTYPES[storage]``; storage: one of
            :data:`.rows.STORAGE_TYPES`; dim: decoded width.
        ids: (n,) int64 ids, checked here (the compiled loop checks each as it adds its row): a bad id
            raises :func:`.ids.check_ids`' error, naming its position in ``ids``.
        bounds: (B + 1,) bag boundaries. mode: 'sum' or 'mean'; per_sample_weights: (n,) float32 or None.

    Returns:
        (B, dim) float32; empty bags give zeros.
    """
    if storage == "float32":
        return bag_pool(stored, ids, bounds, mode, per_sample_weights)[0]
    if per_sample_weights is not None:
        per_sample_weights = per_sample_weights.astype(np.float32, copy=False)
    if dim and _decodes_compiled(stored, storage, globals()):
        if bounds[-1] != len(ids):  # the compiled loop checks only the ids in a bag, as in bag_pool
            check_ids(ids, stored.shape[0])
        # A row wider than WALKED is added into its output row, which then pays for starting off a cache line
        # (int8 bags of 32 from 50257 x 768: 1.21x as long 16 bytes past one); narrower ones are stored once.
        out = (empty_aligned if dim > WALKED else np.empty)((len(bounds) - 1, dim), np.float32)
        table = stored.view(np.uint16) if storage == "float16" else stored  # the kernel reads the bits
        if _run(_BAG_SUMS[storage], int(bounds[-1] - bounds[0]) * dim * 4, table, ids, bounds,
                per_sample_weights, mode == "mean", prefetch_distance(stored), out):
            name_bad_id(ids, stored.shape[0])
        return out
    ids = check_ids(ids, stored.shape[0])
    if storage in ("int8", "int4"):
        return _pool_quantized(stored, int(storage[3:]), dim, ids, bounds, mode, per_sample_weights)
    return pool_rows(lambda at, buf: gather_decoded(stored, storage, dim, at, out=buf), ids, bounds, dim,
                     np.float32, mode, per_sample_weights)


def _pool_quantized(fused, bits, dim, ids, bounds, mode, per_sample_weights):
    # bag_pool_decoded's quantized bags in NumPy: each entry's codes times its scale, its bias in one more
    # column, pooled left to right; `pool_rows` is handed the entries' positions, for their weights.
    def fetch(at, buf):
        codes, scale, bias = split_rows(np.take(fused, ids[at], axis=0), dim, bits)
        if per_sample_weights is not None:
            scale, bias = scale * per_sample_weights[at], bias * per_sample_weights[at]
        with np.errstate(invalid="ignore", over="ignore"):  # as dequantize_rows
            np.multiply(codes, scale[:, None], out=buf[:, :dim])
        buf[:, dim] = bias

    sums = pool_rows(fetch, np.arange(len(ids)), bounds, dim + 1, np.float32)
    with np.errstate(invalid="ignore"):
        out = sums[:, :dim] + sums[:, dim:]
    if mode == "mean":
        counts = np.diff(bounds)
        full = counts > 0
        out[full] /= counts[full, None].astype(np.float32)
    return out


def bag_pool_fused(fused: np.ndarray, dim: int, bits: int, ids: np.ndarray, bounds: np.ndarray,
                   mode: str = "sum", per_sample_weights: np.ndarray | None = None) -> np.ndarray:
    """:func:`bag_pool_decoded` of a quantized table in the fused layout (:mod:`.rows`): ``bits`` 8 or 4."""
    return bag_pool_decoded(fused, f"int{bits}", dim, ids, bounds, mode, per_sample_weights)


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
    ids_used, bounds, psw, kept = _bag_entries(ids, bounds, per_sample_weights, padding_idx, positions=True)
    if mode == "max":
        if argmax is None:
            raise ValueError("bag_pool_backward: mode 'max' needs the argmax that bag_pool returned")
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


# -- compiled (tinyembed.kernels.jit) ----------------------------------------------------------------
# Each kernel adds a bag's rows left to right, each column's sum starting from zero, in the output's
# dtype, as the NumPy path does: identical bags. A mean divides by the count in that dtype; a sum is not
# divided by 1 (exact, but a division per 16 columns of every bag: 4-5% of bags of 16 from 100000 x 64
# int8). Without per-sample weights the kernels get None, and numba compiles them without the multiply
# (.lanes._weight, ._times).
#
# A row of at most IN_REGISTERS columns keeps its bag's sums in vectors of 16 (.lanes), in registers
# for the whole bag, stored once at the end: one vector up to 16 columns, else four (a masked vector
# past the row's end reads nothing). Bags of 16 from 100000 x 64 int8, one thread: 295-300 us (the
# one-thread line of benchmarks/call_costs.py), against 760-821 us adding into the output row, which
# LLVM loads and stores around every add, as it cannot prove `out` does not overlap the table. Testing
# the width before each vector took 1.23x as long, multiplying weightless rows by 1 1.17x. A wider float32
# row is added into its output row sixteen columns at a time. A stored row of up to WALKED columns is summed
# 64 columns at a time in registers, the bag walked again for each 64: adding it into the output row (which
# starts on a cache line), bags of 32 from 100000 x 128 int8 took 1.2-1.4x as long on one thread, from
# 1000000 x 128 1.2-2.0x on two. Wider rows are added into the output row: walked once for each 64 columns,
# bags of 32 from 50257 x 768 int8 took 0.90-1.28x as long, and the bench's rows fell from 0.70-0.79 of
# torch's op to 0.37-0.68. Both loops compiled in one process, timed in turns.
IN_REGISTERS = 4 * LANES
WALKED = 2 * IN_REGISTERS


@jit.inline
def _store_four(out, b, col, s0, s1, s2, s3):
    # Columns col:col + 64 of row b of `out` from four 16-column vectors (those past its end store nothing).
    dim = out.shape[1]
    _store_lanes(out, b, col, dim - col, s0)
    _store_lanes(out, b, col + LANES, dim - col - LANES, s1)
    _store_lanes(out, b, col + 2 * LANES, dim - col - 2 * LANES, s2)
    _store_lanes(out, b, col + 3 * LANES, dim - col - 3 * LANES, s3)


@jit.inline
def _zero_row(out, b):
    dim = out.shape[1]
    for c in range(0, dim, LANES):
        _store_lanes(out, b, c, dim - c, _lanes_zero(out))


@jit.inline
def _finish_row(out, b, plus, mean, divisor):
    # Row b of `out` plus `plus` (a quantized bag's bias sum, else 0: a sum is never -0.0), over `divisor` for a mean.
    dim = out.shape[1]
    for c in range(0, dim, LANES):
        total = _float_lanes(out, b, c, dim - c) + plus
        _store_lanes(out, b, c, dim - c, total / divisor if mean else total)


@jit.kernel()
def _bag_sum(weight, ids, bounds, per_sample_weights, mean, ahead, out):
    # The ids' bounds are checked here, as in _bag_sum_stored (a bad id's row, or its four rows below, skipped).
    n, dim, rows, bad = ids.shape[0], out.shape[1], weight.shape[0], 0
    # Tested once, not per row: a table in the caches is never prefetched (bags of 16 from 1000 x 16,
    # 1.10-1.13x faster than testing each row's distance; neutral on tables beyond the caches).
    prefetching = ahead < n
    full = dim - dim % LANES
    for b in range(out.shape[0]):
        start, stop = bounds[b], bounds[b + 1]
        divisor = max(stop - start, 1)
        if dim <= LANES:
            s = _lanes_zero(out)
            for j in range(start, stop):
                if prefetching and j + ahead < n:
                    _prefetch_row(weight, ids[j + ahead])
                i = ids[j]
                if i < 0 or i >= rows:
                    bad += 1
                    continue
                s += _times(_float_lanes(weight, i, 0, dim), _weight(per_sample_weights, j))
            _store_lanes(out, b, 0, dim, s / divisor if mean else s)
        elif dim <= IN_REGISTERS:
            s0 = s1 = s2 = s3 = _lanes_zero(out)
            for j in range(start, stop):
                if prefetching and j + ahead < n:
                    _prefetch_row(weight, ids[j + ahead])
                i, w = ids[j], _weight(per_sample_weights, j)
                if i < 0 or i >= rows:
                    bad += 1
                    continue
                s0 += _times(_float_lanes(weight, i, 0, dim), w)
                s1 += _times(_float_lanes(weight, i, LANES, dim - LANES), w)
                s2 += _times(_float_lanes(weight, i, 2 * LANES, dim - 2 * LANES), w)
                s3 += _times(_float_lanes(weight, i, 3 * LANES, dim - 3 * LANES), w)
            if mean:
                s0, s1, s2, s3 = s0 / divisor, s1 / divisor, s2 / divisor, s3 / divisor
            _store_four(out, b, 0, s0, s1, s2, s3)
        else:
            _zero_row(out, b)
            # Four rows a pass, added to the output row left to right (((out + r0) + r1) + r2) + r3: a quarter
            # of its loads and stores (bags of 32 from 50257 x 768: 0.69-0.83x the time of one row a pass).
            for j in range(start, stop - 3, 4):
                if prefetching:
                    for k in range(j + ahead, min(j + ahead + 4, n)):
                        _prefetch_row(weight, ids[k])
                i0, i1, i2, i3 = ids[j], ids[j + 1], ids[j + 2], ids[j + 3]
                if min(i0, i1, i2, i3) < 0 or max(i0, i1, i2, i3) >= rows:
                    bad += 1
                    continue
                # the weights read once a pass: loaded in the column loop, each was read again after every store
                w0, w1 = _weight(per_sample_weights, j), _weight(per_sample_weights, j + 1)
                w2, w3 = _weight(per_sample_weights, j + 2), _weight(per_sample_weights, j + 3)
                for c in range(0, full, LANES):  # whole vectors: a constant count, plain loads and stores
                    total = _float_lanes(out, b, c, LANES)
                    total += _times(_float_lanes(weight, i0, c, LANES), w0)
                    total += _times(_float_lanes(weight, i1, c, LANES), w1)
                    total += _times(_float_lanes(weight, i2, c, LANES), w2)
                    total += _times(_float_lanes(weight, i3, c, LANES), w3)
                    _store_lanes(out, b, c, LANES, total)
                if full < dim:
                    left = dim - full
                    total = _float_lanes(out, b, full, left)
                    total += _times(_float_lanes(weight, i0, full, left), w0)
                    total += _times(_float_lanes(weight, i1, full, left), w1)
                    total += _times(_float_lanes(weight, i2, full, left), w2)
                    total += _times(_float_lanes(weight, i3, full, left), w3)
                    _store_lanes(out, b, full, left, total)
            for j in range(stop - (stop - start) % 4, stop):
                if prefetching and j + ahead < n:
                    _prefetch_row(weight, ids[j + ahead])
                i, w = ids[j], _weight(per_sample_weights, j)
                if i < 0 or i >= rows:
                    bad += 1
                    continue
                for c in range(0, dim, LANES):
                    row = _times(_float_lanes(weight, i, c, dim - c), w)
                    _store_lanes(out, b, c, dim - c, _float_lanes(out, b, c, dim - c) + row)
            if mean:
                _finish_row(out, b, 0, mean, divisor)
    return bad


# A quantized bag sums its biases apart from its codes, one scalar add a row: adding each decoded value,
# code * scale + bias, is one more vector add per 16 columns, and took 1.52x as long (bags of 16 from
# 100000 x 64 int8, one thread: 359.2 against 235.7 us without the bias's add, benchmarks/call_costs.py at
# ac6744c). _NO_BIAS decodes a row's codes times its scale alone: LLVM drops x + -0.0 (exactly x).
_NO_BIAS = np.float32(-0.0)


@jit.inline
def _bag_lanes(table, kind, row, col, count, scale, w):
    # Columns col:col + 16 of a row as its bag adds them: a quantized row's codes times `scale`, its scale
    # times its weight (the bias is summed apart); a row of a float type decoded, times its weight.
    if kind >= 3:
        return _stored_lanes(table, kind, row, col, count, scale, _NO_BIAS)
    return _times(_stored_lanes(table, kind, row, col, count, scale, _NO_BIAS), w)


@jit.inline
def _bag_sum_stored(table, kind, ids, bounds, per_sample_weights, mean, ahead, out):
    # _bag_sum over a table stored as the storage type numbered `kind` (lanes.KINDS), decoded as it is added;
    # a quantized one (kind 3, 4) as bag_pool_decoded says, its biases summed apart in `biases`.
    # Each kernel below passes its own constant `kind`: one loop per storage type, its branches on `kind`
    # folded away (a `kind` known only at run time took 1.35x as long, bags of 16 from 100000 x 64 int8).
    # The ids' bounds are checked here, as the lookups check them: a bad id's row is skipped (never read
    # past the table) and counted, and the caller names it. A prefetch never faults, so ids not checked
    # yet are prefetched as they are.
    n, dim, rows, bad = ids.shape[0], out.shape[1], table.shape[0], 0
    full = dim - dim % LANES
    for b in range(out.shape[0]):
        start, stop = bounds[b], bounds[b + 1]
        divisor = np.float32(max(stop - start, 1))
        biases = np.float32(0)
        if dim <= LANES:
            s = _lanes_zero(out)
            for j in range(start, stop):
                if j + ahead < n:
                    _prefetch_row(table, ids[j + ahead])
                i, w = ids[j], _weight(per_sample_weights, j)
                if i < 0 or i >= rows:
                    bad += 1
                    continue
                scale, bias = _scale_and_bias(table, kind, i, dim)
                if kind >= 3:
                    scale, biases = _times(scale, w), biases + _times(bias, w)
                s += _bag_lanes(table, kind, i, 0, dim, scale, w)
            if kind >= 3:
                s += biases
            _store_lanes(out, b, 0, dim, s / divisor if mean else s)
        elif dim <= WALKED:
            # 64 columns at a time in four vectors, the bag walked once for each 64 (its rows in the caches after
            # the first walk, which prefetches them; a bias sum is taken again each walk, in the same order).
            for col in range(0, dim, IN_REGISTERS):
                biases = np.float32(0)
                s0 = s1 = s2 = s3 = _lanes_zero(out)
                for j in range(start, stop):
                    if col == 0 and j + ahead < n:
                        _prefetch_row(table, ids[j + ahead])
                    i, w = ids[j], _weight(per_sample_weights, j)
                    if i < 0 or i >= rows:
                        bad += col == 0
                        continue
                    scale, bias = _scale_and_bias(table, kind, i, dim)
                    if kind >= 3:
                        scale, biases = _times(scale, w), biases + _times(bias, w)
                    s0 += _bag_lanes(table, kind, i, col, dim - col, scale, w)
                    s1 += _bag_lanes(table, kind, i, col + LANES, dim - col - LANES, scale, w)
                    s2 += _bag_lanes(table, kind, i, col + 2 * LANES, dim - col - 2 * LANES, scale, w)
                    s3 += _bag_lanes(table, kind, i, col + 3 * LANES, dim - col - 3 * LANES, scale, w)
                if kind >= 3:
                    s0, s1, s2, s3 = s0 + biases, s1 + biases, s2 + biases, s3 + biases
                if mean:
                    s0, s1, s2, s3 = s0 / divisor, s1 / divisor, s2 / divisor, s3 / divisor
                _store_four(out, b, col, s0, s1, s2, s3)
        else:
            _zero_row(out, b)
            for j in range(start, stop):
                if j + ahead < n:
                    _prefetch_row(table, ids[j + ahead])
                i, w = ids[j], _weight(per_sample_weights, j)
                if i < 0 or i >= rows:
                    bad += 1
                    continue
                scale, bias = _scale_and_bias(table, kind, i, dim)
                if kind >= 3:
                    scale, biases = _times(scale, w), biases + _times(bias, w)
                for c in range(0, full, LANES):  # whole vectors: a constant count, plain loads and stores
                    row = _bag_lanes(table, kind, i, c, LANES, scale, w)
                    _store_lanes(out, b, c, LANES, _float_lanes(out, b, c, LANES) + row)
                if full < dim:
                    row = _bag_lanes(table, kind, i, full, dim - full, scale, w)
                    _store_lanes(out, b, full, dim - full, _float_lanes(out, b, full, dim - full) + row)
            if mean or kind >= 3:
                _finish_row(out, b, biases, mean, divisor)
    return bad


# `kind`: the storage type's number in lanes.KINDS.
@jit.kernel()
def _bag_sum_float16(bits, ids, bounds, per_sample_weights, mean, ahead, out):
    return _bag_sum_stored(bits, 0, ids, bounds, per_sample_weights, mean, ahead, out)


@jit.kernel()
def _bag_sum_bfloat16(bits, ids, bounds, per_sample_weights, mean, ahead, out):
    return _bag_sum_stored(bits, 1, ids, bounds, per_sample_weights, mean, ahead, out)


@jit.kernel()
def _bag_sum_float8(codes, ids, bounds, per_sample_weights, mean, ahead, out):
    return _bag_sum_stored(codes, 2, ids, bounds, per_sample_weights, mean, ahead, out)


@jit.kernel()
def _bag_sum_int8(fused, ids, bounds, per_sample_weights, mean, ahead, out):
    return _bag_sum_stored(fused, 3, ids, bounds, per_sample_weights, mean, ahead, out)


@jit.kernel()
def _bag_sum_int4(fused, ids, bounds, per_sample_weights, mean, ahead, out):
    return _bag_sum_stored(fused, 4, ids, bounds, per_sample_weights, mean, ahead, out)


# The parallel kernels run these loops over ranges of bags, a few ranges a thread (jit.over_parts): compiled
# inside numba's parallel loop, a loop ran 9-10% slower per thread than alone (bags of 16, 2 threads: 100000
# x 64 int8 139.4 against 127.5 us, 50257 x 64 float32 64.3 against 58.2).
PARTS = 64
loop: Callable[..., int]  # in _over_bags: the serial kernel, bound by jit.over_parts for each kernel it makes


def _over_bags(table, ids, bounds, per_sample_weights, mean, ahead, out):
    # jit.over_parts' template: `loop` (the serial kernel) over PARTS ranges of bags; returns its bad ids.
    num, bad = out.shape[0], 0
    parts = min(num, PARTS)
    for p in prange(parts):
        lo, hi = num * p // parts, num * (p + 1) // parts
        bad += loop(table, ids, bounds[lo:hi + 1], per_sample_weights, mean, ahead, out[lo:hi])  # noqa: F821 - bound per kernel
    return bad


def _parallel_and_serial(serial: jit.Kernel) -> tuple[jit.Kernel, jit.Kernel]:
    return jit.over_parts(serial, _over_bags), serial


_BAG_SUM = _parallel_and_serial(_bag_sum)
# storage type -> (parallel, serial) kernels; float32 tables take _BAG_SUM.
_BAG_SUMS = {"float16": _parallel_and_serial(_bag_sum_float16), "bfloat16": _parallel_and_serial(_bag_sum_bfloat16),
             "float8_e4m3fn": _parallel_and_serial(_bag_sum_float8), "int8": _parallel_and_serial(_bag_sum_int8),
             "int4": _parallel_and_serial(_bag_sum_int4)}
