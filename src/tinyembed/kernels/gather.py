"""The lookup: rows of a table at ids, alone or with position rows added in the same pass.

Why not ``weight[ids]``: it allocates and checks bounds; ``np.take(..., mode='raise',
out=...)`` buffers the whole output. Validated ids let us use ``mode='clip'``, which
writes straight into ``out`` and splits over threads; the compiled gather (:mod:`.jit`)
is faster still.
"""

from __future__ import annotations

import numpy as np

from . import jit, threads
from .ids import check_ids, check_out, name_bad_id
from .jit import prange
from .lanes import LANES, _float_lanes, _store_lanes, _times
from .rows import _install_helpers, _prefetch_row, _run, _with_serial, prefetch_distance

__all__ = ["gather_rows", "gather_add_rows", "lookup_rows"]


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
    if out is None:  # not empty_aligned: a copy of 8-byte words ran as fast into any output, 2 us a call sooner
        out = np.empty(ids.shape + (dim,), dtype=weight.dtype)
    else:
        check_out(out, ids.shape + (dim,), weight.dtype)
    out2d = out.reshape(flat.size, dim)  # not (-1, dim): a zero-width table has D = 0
    if flat.size and threads.jit_ok(weight) and out2d.flags.c_contiguous:
        _run(_GATHER, out2d.nbytes, *_as_words(weight, out2d), flat, _ahead(weight))
        return out

    def work(a, b):
        np.take(weight, flat[a:b], axis=0, out=out2d[a:b], mode="clip")

    if flat.size:
        threads.run_chunks(work, threads.chunks(flat.size, dim * weight.itemsize))
    return out


def lookup_rows(weight: np.ndarray, ids, out: np.ndarray | None = None,
                name: str = "input") -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``weight`` at ids not validated yet: :func:`check_ids` and :func:`gather_rows` in one.

    The compiled path checks each id inside the gather loop, so a call costs one pass
    and no separate check; a bad id then raises :func:`check_ids`' error (naming the
    id and its position), with ``out`` possibly partly written.

    Args:
        weight: (V, D) table; ids: integer ids (ndarray, Tensor or nested lists), any shape.
        out: optional (*ids.shape, D) array of ``weight.dtype`` to write into.

    Returns:
        (rows (*ids.shape, D), ids as an array of their own integer dtype; not a copy when
        the caller passed a C-contiguous integer ndarray).
    """
    arr = np.asarray(ids.data if hasattr(ids, "data") and not isinstance(ids, np.ndarray) else ids)
    dim = weight.shape[1]
    if arr.dtype.kind not in "iu" or not threads.jit_ok(weight) or not arr.size:
        checked = check_ids(ids, weight.shape[0], name)  # the ids as given: `[]` is empty ids, not floats
        return gather_rows(weight, checked, out=out), checked
    if out is None:
        out = np.empty(arr.shape + (dim,), dtype=weight.dtype)  # as gather_rows
    else:
        check_out(out, arr.shape + (dim,), weight.dtype)
    flat = np.ascontiguousarray(arr).reshape(-1)
    if _run(_GATHER_CHECKED, out.nbytes, *_as_words(weight, out.reshape(flat.size, dim)), flat, _ahead(weight)):
        name_bad_id(arr, weight.shape[0], name)
    return out, arr


def gather_add_rows(weight: np.ndarray, ids: np.ndarray, addend: np.ndarray, scale: float = 1.0,
                    out: np.ndarray | None = None) -> np.ndarray:
    """``weight[ids] * scale + addend``, broadcast over sequences, in one pass: token plus position.

    Each cache-sized chunk is gathered, scaled and added to while it is still in
    cache, so the sum costs about what the lookup alone does and needs no
    temporary beyond the output. Rounding is the same as ``(weight[ids] * scale) + addend``.

    Args:
        weight: (V, D) table.
        ids: (*, S) integer ids, at least 1-D, checked here (the compiled loop checks each as it adds
            its row): a bad id raises :func:`.ids.check_ids`' error, naming its position in ``ids``.
        addend: (S, D) array of ``weight.dtype``: row ``s`` is added at sequence position ``s``.
        out: optional (*ids.shape, D) array to write into (partly written when an id is bad).

    Returns:
        (*ids.shape, D) array of ``weight.dtype``.
    """
    seq, dim = ids.shape[-1], weight.shape[1]
    if addend.shape != (seq, dim):
        raise ValueError(f"addend must be ({seq}, {dim}) for ids of shape {ids.shape}, got {addend.shape}")
    if out is None:  # not empty_aligned: each row is written once, as fast on a cache line as off one
        out = np.empty(ids.shape + (dim,), weight.dtype)
    else:
        check_out(out, ids.shape + (dim,), weight.dtype)
    out2d = out.reshape(ids.size, dim)
    if ids.size and threads.jit_ok(weight) and addend.flags.c_contiguous and addend.dtype == weight.dtype:
        # int64 for the loop: a uint64 beyond int64 wraps to a negative id, which the loop counts as bad
        flat = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
        times = None if scale == 1.0 else weight.dtype.type(scale)  # None: compiled without the multiply
        if _run(_GATHER_ADD, out2d.nbytes, weight, flat, addend, times, _ahead(weight), out2d):
            name_bad_id(ids, weight.shape[0])
        return out
    flat = check_ids(ids, weight.shape[0]).reshape(-1)
    step = max(1, threads.CHUNK_BYTES // (dim * weight.itemsize))

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
        threads.run_chunks(work, threads.chunks(flat.size, dim * weight.itemsize))
    return out


# -- compiled (tinyembed.kernels.jit) ----------------------------------------------------------------
def _as_words(weight: np.ndarray, out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The table and output as 8-byte words when a row is a whole number of them: a copy moves the
    same bits in fewer, wider steps (1.25x faster measured for 16 float32 values a row)."""
    if (weight.shape[1] * weight.itemsize) % 8 == 0:
        # A view's `aligned` flag says whether its address is a multiple of 8 (ctypes.data cost 1.6 us a call).
        words, out_words = weight.view(np.uint64), out.view(np.uint64)
        if words.flags.aligned and out_words.flags.aligned:
            return words, out_words
    return weight, out


@jit.kernel(parallel=True)
def _gather(weight, out, ids, ahead):
    # An explicit loop over a row's values: faster than np.take and than torch here. The `ahead > 0`
    # test is redundant (NOT_AHEAD is never < n - t) but measured: without it this loop ran no faster
    # on 2 threads than on 1 (50257x768, 32x512 ids: 5.6 ms against 4.0-4.6 with it).
    n = ids.shape[0]
    for t in prange(n):
        if ahead > 0 and t + ahead < n:
            _prefetch_row(weight, ids[t + ahead])
        row, o = weight[ids[t]], out[t]
        for d in range(row.shape[0]):
            o[d] = row[d]


@jit.kernel(parallel=True)
def _gather_checked(weight, out, ids, ahead):
    # The bounds are checked here, in the copy loop: no separate pass over the ids. A bad id's
    # row is skipped (never read past the table) and counted; the caller names it.
    rows, bad, n = weight.shape[0], 0, ids.shape[0]
    for t in prange(n):
        if ahead > 0 and t + ahead < n:
            k = ids[t + ahead]
            if k >= 0 and k < rows:
                _prefetch_row(weight, k)
        i = ids[t]
        if i < 0 or i >= rows:
            bad += 1
        else:
            row, o = weight[i], out[t]
            for d in range(row.shape[0]):
                o[d] = row[d]
    return bad


def _ahead(weight: np.ndarray) -> int:
    """Rows ahead to prefetch: a copy of a row waits on its load, and a second thread only helps once
    the loads of rows to come are on their way (50257x768, 32x512 ids, 2 threads: 6.4 -> 3.3-4.0 ms)."""
    _install_helpers(globals())
    return prefetch_distance(weight)


@jit.kernel(parallel=True)
def _gather_add(weight, ids, addend, scale, ahead, out):
    # One pass: each output row written once, sixteen columns at a time (.lanes), from its table row times
    # `scale` (None: no multiply, compiled apart; 1000 x 16, 32 x 512 ids: 32-34 us against 36-37 multiplying
    # by 1, the copy alone 30-32) and its position row. Threads take whole sequences (ids has n = sequences x
    # seq entries): each position's row follows from the loop, not from t % seq, a 64-bit division per row.
    # The ids' bounds are checked here, as in _gather_checked: a bad id's row is skipped and counted, no
    # pass over them before (check_ids: 5.7 us beside a 50257 x 64 layer call of 238 us, 32 x 512 ids).
    seq, dim = addend.shape
    n, full, rows, bad = ids.shape[0], dim - dim % LANES, weight.shape[0], 0
    for r in prange(n // seq):
        for s in range(seq):
            t = r * seq + s
            if t + ahead < n:
                _prefetch_row(weight, ids[t + ahead])  # a prefetch never faults: ids not checked yet are fine
            i = ids[t]
            if i < 0 or i >= rows:
                bad += 1
                continue
            for c in range(0, full, LANES):
                row = _times(_float_lanes(weight, i, c, LANES), scale)
                _store_lanes(out, t, c, LANES, row + _float_lanes(addend, s, c, LANES))
            if full < dim:
                row = _times(_float_lanes(weight, i, full, dim - full), scale)
                _store_lanes(out, t, full, dim - full, row + _float_lanes(addend, s, full, dim - full))
    return bad


# (parallel, serial) pairs: small work runs on the calling thread (threads.LAUNCH_MIN_BYTES).
_GATHER, _GATHER_CHECKED, _GATHER_ADD = _with_serial(_gather), _with_serial(_gather_checked), _with_serial(_gather_add)
