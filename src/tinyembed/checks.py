"""Argument checks: the one set of validators every layer, table, planner and command uses.

Each check returns the value in its plain Python form (``int``, ``float``, ``np.dtype``)
or raises naming the argument, what it must be, and what it got. They run before any
work, so a call that fails has changed nothing. Id arrays, offsets and output buffers
are checked where the kernels define them (:mod:`tinyembed.kernels.ids`).

Examples:
    >>> check_positive_int(3, "embedding_dim")
    3
    >>> check_int(0, "rank", low=1, high=8)
    Traceback (most recent call last):
    ...
    ValueError: rank must be an integer in [1, 8], got 0
    >>> check_number(float("inf"), "alpha", low=0)
    Traceback (most recent call last):
    ...
    ValueError: alpha must be a finite number >= 0, got inf
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Literal, overload

import numpy as np

__all__ = [
    "is_int", "is_number", "check_int", "check_positive_int", "check_nonnegative_int", "check_number",
    "check_positive", "check_probability", "check_bool", "check_type", "check_choice", "check_float_dtype",
    "check_padding_idx", "check_finite", "check_hyperparameter", "check_betas", "check_memory",
    "available_memory", "FLOAT_DTYPES",
]

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def is_int(value: Any) -> bool:
    """An integer, Python's or NumPy's, and not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def is_number(value: Any) -> bool:
    """A real number (int or float, Python's or NumPy's), and not a bool."""
    return isinstance(value, (numbers.Real, np.number)) and not isinstance(value, (bool, np.bool_))


def _or_none(none_ok: bool) -> str:
    return " or None" if none_ok else ""


# Only none_ok=True can give None, so callers that never pass it get a plain int (or float) back.
@overload
def check_int(value: Any, name: str, *, low: int | None = None, high: int | None = None,
              none_ok: Literal[False] = False) -> int: ...
@overload
def check_int(value: Any, name: str, *, low: int | None = None, high: int | None = None,
              none_ok: bool) -> int | None: ...
def check_int(value: Any, name: str, *, low: int | None = None, high: int | None = None,
              none_ok: bool = False) -> int | None:
    """``value`` as an int in [low, high] (either bound may be None), or None if ``none_ok``."""
    if value is None and none_ok:
        return None
    if not is_int(value) or (low is not None and value < low) or (high is not None and value > high):
        if low == 1 and high is None:
            what = "a positive integer"
        elif high is None:
            what = "an integer" if low is None else f"an integer >= {low}"
        else:
            what = f"an integer <= {high}" if low is None else f"an integer in [{low}, {high}]"
        raise ValueError(f"{name} must be {what}{_or_none(none_ok)}, got {value!r}")
    return int(value)


def check_positive_int(value: Any, name: str) -> int:
    """``value`` as an int >= 1."""
    return check_int(value, name, low=1)


def check_nonnegative_int(value: Any, name: str) -> int:
    """``value`` as an int >= 0."""
    return check_int(value, name, low=0)


@overload
def check_number(value: Any, name: str, *, low: float | None = None, high: float | None = None,
                 low_open: bool = False, high_open: bool = False, finite: bool = True,
                 none_ok: Literal[False] = False) -> float: ...
@overload
def check_number(value: Any, name: str, *, low: float | None = None, high: float | None = None,
                 low_open: bool = False, high_open: bool = False, finite: bool = True,
                 none_ok: bool) -> float | None: ...
def check_number(value: Any, name: str, *, low: float | None = None, high: float | None = None,
                 low_open: bool = False, high_open: bool = False, finite: bool = True,
                 none_ok: bool = False) -> float | None:
    """``value`` as a float within the bounds (open or closed; NaN never passes)."""
    if value is None and none_ok:
        return None
    ok = is_number(value) and not math.isnan(value) and (math.isfinite(value) or not finite)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        kind = "a finite number" if finite else "a number"
        bounds = []
        if low is not None:
            bounds.append(f"{'>' if low_open else '>='} {low:g}")
        if high is not None:
            bounds.append(f"{'<' if high_open else '<='} {high:g}")
        raise ValueError(f"{name} must be {kind}{' ' if bounds else ''}{' and '.join(bounds)}"
                         f"{_or_none(none_ok)}, got {value!r}")
    return float(value)


def check_positive(value: Any, name: str) -> float:
    """``value`` as a finite float > 0."""
    return check_number(value, name, low=0, low_open=True)


def check_probability(value: Any, name: str, *, high_open: bool = False) -> float:
    """``value`` as a float in [0, 1] (or [0, 1) with ``high_open``)."""
    return check_number(value, name, low=0, high=1, high_open=high_open)


def check_bool(value: Any, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be a bool, got {value!r}")
    return bool(value)


def check_type(value: Any, kind: type | tuple[type, ...], name: str) -> Any:
    """``value`` itself, if it is an instance of ``kind``; a TypeError naming both otherwise."""
    if not isinstance(value, kind):
        expected = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise TypeError(f"{name} must be {expected}, got {type(value).__name__}: {value!r:.80}")
    return value


def check_choice(value: Any, choices, name: str) -> Any:
    """``value`` itself, if it is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(repr(c) for c in choices)}, got {value!r}")
    return value


def check_float_dtype(dtype: Any, name: str = "dtype") -> np.dtype:
    """float32 or float64, as a NumPy dtype."""
    dtype = np.dtype(dtype)
    if dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be float32 or float64, got {dtype}")
    return dtype


def check_finite(array: np.ndarray, name: str) -> np.ndarray:
    """``array`` itself if every value is finite (non-float arrays always are); else a ValueError
    naming the first NaN or infinity and where it is (row and column of a 2-D array)."""
    if array.dtype.kind not in "fc":
        return array
    bad = ~np.isfinite(array)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        place = f"row {where[0]}, column {where[1]}" if len(where) == 2 else f"index {where}"
        raise ValueError(f"{name} holds a non-finite value {array[where]} at {place}")
    return array


def check_padding_idx(padding_idx: Any, num_embeddings: int) -> int | None:
    """The padding row of a table of ``num_embeddings`` rows; negative counts from the end, as in PyTorch."""
    if padding_idx is None:
        return None
    if not is_int(padding_idx):
        raise TypeError(f"padding_idx must be an int, got {padding_idx!r}")
    if not -num_embeddings <= padding_idx < num_embeddings:
        raise ValueError(
            f"padding_idx {padding_idx} is out of range for {num_embeddings} embeddings "
            f"(valid: {-num_embeddings}..{num_embeddings - 1})"
        )
    return int(padding_idx) % num_embeddings


# -- memory ---------------------------------------------------------------------------------
def available_memory() -> int | None:
    """Bytes the kernel says new allocations can take now (MemAvailable), or None where unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def check_memory(needed: int, what: str) -> None:
    """Refuse work whose estimated peak ``needed`` (bytes) exceeds the memory available now,
    naming both figures, instead of letting the kernel kill the process part way."""
    available = available_memory()
    if available is not None and needed > available:
        raise MemoryError(f"{what} needs about {needed / 2**30:.1f} GiB, but this machine has "
                          f"{available / 2**30:.1f} GiB available")


# -- optimizer hyperparameters: PyTorch's style, naming the optimizer and the value ----------
def check_hyperparameter(owner: str, name: str, value: float, *, low: float = 0.0, strict: bool = False,
                         what: str = "") -> None:
    """Raise ValueError naming ``owner`` and ``name=value`` unless ``value >= low`` (``> low`` if
    ``strict``); NaN fails too."""
    if not (value > low if strict else value >= low):
        what = f" ({what})" if what else ""
        raise ValueError(f"{owner}: invalid {name}={value!r}{what}, expected {name} {'>' if strict else '>='} {low}")


def check_betas(owner: str, betas: tuple[float, float]) -> None:
    for i, beta in enumerate(betas):
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"{owner}: invalid betas[{i}]={beta!r} in betas={betas!r}, expected 0 <= beta < 1")
