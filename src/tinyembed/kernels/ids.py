"""The contract of every kernel: ids, offsets and outputs checked once, up front.

Kernels take validated inputs so that their hot loops can run unchecked (NumPy's
``mode='clip'``, compiled loops that never test a bound). Each check names the bad
value, its position and what was allowed.
"""

from __future__ import annotations

from typing import NoReturn

import numpy as np

from . import jit

__all__ = ["id_array", "check_ids", "check_offsets", "check_out", "bag_bounds"]


def id_array(ids, name: str = "input") -> np.ndarray:
    """``ids`` (a Tensor, an array, a list) as an array of integers, not copied, not yet checked against
    a table: for a kernel that checks the ids itself (:func:`check_ids` names a bad one after).

    Raises:
        TypeError: for float, bool, complex or object arrays.
    """
    if hasattr(ids, "data") and not isinstance(ids, np.ndarray):  # a Tensor
        ids = ids.data
    arr = np.asarray(ids)
    if arr.dtype.kind not in "iu":
        if arr.size == 0 and arr.dtype.kind == "f" and not isinstance(ids, np.ndarray):
            return arr.astype(np.int64)  # `[]` comes in as float64: treat as empty ids
        raise TypeError(f"{name} must hold integer ids, got dtype {arr.dtype}")
    return arr


def check_ids(ids, num_embeddings: int, name: str = "input") -> np.ndarray:
    """Validate ids and return them as an int64 array (any shape, 0-d included).

    Raises:
        TypeError: for float, bool, complex or object arrays.
        IndexError: naming the first id outside [0, num_embeddings) and its position.
    """
    arr = id_array(ids, name)
    if arr.dtype == np.int64 and arr.size >= _COMPILED_MIN_IDS and jit.available():
        checked = np.empty(arr.shape, dtype=np.int64)
        if not _copy_checked.compiled()(np.ascontiguousarray(arr).reshape(-1), num_embeddings, checked.reshape(-1)):
            return checked
        # a bad id: the NumPy checks below name it
    # Checked in the ids' own dtype: a uint64 beyond int64 is named as itself, not wrapped.
    # Two reductions are cheaper than a boolean mask; the mask is built only to name a bad id.
    if arr.size and (arr.min() < 0 or arr.max() >= num_embeddings):
        bad = (arr < 0) | (arr >= num_embeddings)
        where = tuple(int(i) for i in np.argwhere(bad)[0]) if arr.ndim else ()
        raise IndexError(
            f"{name} id {int(arr[where])} at position {where} is out of range "
            f"for a table of {num_embeddings} rows (valid: 0..{num_embeddings - 1})"
        )
    # Always a copy: backward closures keep the ids, and the caller may reuse its array.
    return np.array(arr, dtype=np.int64)


def name_bad_id(ids, num_embeddings: int, name: str = "input") -> NoReturn:
    """Raise :func:`check_ids`' error for ``ids``, where a compiled loop that checks its ids counted a bad one."""
    check_ids(ids, num_embeddings, name)
    raise AssertionError("a compiled loop counted a bad id that check_ids did not find")


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
    n = len(off)
    if include_last_offset and n == 0:
        raise ValueError("include_last_offset=True needs at least one offset")
    # The bounds are made once, in int64, the input's total after the offsets (np.diff and np.append
    # were half of a small bag's fixed cost).
    bounds = np.empty(n if include_last_offset else n + 1, dtype=np.int64)
    if off.dtype == np.int64 and n >= _COMPILED_MIN_OFFSETS and jit.available():
        if _bounds_checked.compiled()(np.ascontiguousarray(off), num_ids, bounds):
            return bounds
        # a bad offset: the NumPy checks below name it
    bounds[:n] = off
    if n and bounds[0] != 0:
        raise ValueError(f"offsets[0] must be 0 (the first bag starts the input), got {int(bounds[0])}")
    falls = bounds[1:n] < bounds[:n - 1] if n > 1 else None
    if falls is not None and falls.any():
        i = int(np.argmax(falls)) + 1
        raise ValueError(f"offsets must not decrease: offsets[{i}] = {int(bounds[i])} < {int(bounds[i - 1])}")
    if n and bounds[n - 1] > num_ids:
        raise ValueError(f"offset {int(bounds[n - 1])} runs past the input of {num_ids} ids")
    if not include_last_offset:
        bounds[n] = num_ids
    return bounds


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


# From this many int64 ids, check_ids checks and copies them in one compiled pass: NumPy's min, max and
# copy are three (65536 ids, best of 5: 34.6 us in NumPy, 14.8 us compiled, the copy alone 12.0 us).
_COMPILED_MIN_IDS = 1024


@jit.kernel()
def _copy_checked(ids, num_embeddings, out):
    # Every id compared and copied in one pass, without a branch (so the loop is vectorized); returns
    # how many are out of range.
    bad = 0
    for t in range(ids.shape[0]):
        i = ids[t]
        bad += (i < 0) | (i >= num_embeddings)
        out[t] = i
    return bad


# From this many int64 offsets, check_offsets checks and copies them in one compiled pass (1024 offsets:
# 3.6 us in NumPy, its compares and copies each a pass and a temporary).
_COMPILED_MIN_OFFSETS = 64


@jit.kernel()
def _bounds_checked(offsets, num_ids, bounds):
    # Copies the offsets into `bounds`, and the input's size after them when there is room for it;
    # returns whether they start at 0, never decrease and stay within the input.
    n = offsets.shape[0]
    ok = offsets[0] == 0 and offsets[n - 1] <= num_ids
    for b in range(n):
        bounds[b] = offsets[b]
        if b and offsets[b] < offsets[b - 1]:
            ok = False
    if bounds.shape[0] > n:
        bounds[n] = num_ids
    return ok
