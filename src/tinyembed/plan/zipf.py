"""Zipf(alpha) over the rows of a table: rank = row + 1, so row 0 is the hottest.

Row ``r`` of a V-row table has probability ``(r + 1)**-alpha / H(V, alpha)`` with
``H(V, alpha) = sum over k = 1..V of k**-alpha``, as in a frequency-sorted vocabulary.
This is the one Zipf of tinyembed: the sharding planner, the benchmark's id draws and
anything else that wants skewed ids use it, so their numbers describe the same thing.

    zipf_ids             sample row ids (any shape)
    zipf_probabilities   every row's probability, exact, for V <= EXACT_HEAD_ROWS
    zipf_mass            probability of a row range [start, stop), any V
    zipf_residue_mass    probability of each residue row % N (round-robin sharding), any V
    zipf_expected_distinct  expected distinct rows among n draws, any V

Huge tables: a 10^9-row distribution cannot be materialized. Rows below
``EXACT_HEAD_ROWS`` (2^20) are summed and sampled exactly; each rank r above is
treated as the interval [r - 1/2, r + 1/2) of the density x^-alpha (the midpoint
rule), whose integral and inverse are closed-form. The relative error of a rank's
probability is about alpha (alpha + 1) / (24 r^2), below 1e-13 past 2^20; the sampler
and :func:`zipf_mass` use the same definition, so a simulation and its expectation agree.

Examples:
    >>> round(zipf_mass(1000, 1.0, 0, 1), 4)  # share of the hottest row: 1 / H(1000)
    0.1336
    >>> zipf_probabilities(3, 1.0) * 11 / 6   # 1, 1/2, 1/3 over H(3) = 11/6
    array([1.        , 0.5       , 0.33333333])
    >>> zipf_ids(10**9, 1.0, (2, 3), np.random.default_rng(0)).shape
    (2, 3)
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from ..checks import check_int, check_positive, check_positive_int, is_int

__all__ = ["EXACT_HEAD_ROWS", "zipf_ids", "zipf_mass", "zipf_probabilities", "zipf_residue_mass",
           "zipf_expected_distinct"]

EXACT_HEAD_ROWS = 1 << 20  # rows below this are summed and sampled exactly


# -- validation ---------------------------------------------------------------------------------
def check_alpha(alpha, name: str = "zipf alpha") -> float:
    """A Zipf exponent: a finite number > 0 (alpha 0 is the uniform distribution: ask for that)."""
    return check_positive(alpha, name)


def _check_distribution(num_rows, alpha) -> tuple[int, float]:
    return check_positive_int(num_rows, "num_rows"), check_alpha(alpha)


def _as_shape(size) -> tuple[int, ...]:
    shape = (size,) if is_int(size) else size
    if not isinstance(shape, (tuple, list)) or not all(is_int(n) and n >= 0 for n in shape):
        raise ValueError(f"size must be an integer >= 0 or a tuple of them, got {size!r}")
    return tuple(int(n) for n in shape)


# -- sums and inverses of x^-alpha -----------------------------------------------------------
def _power_integral(alpha: float, lo: float, hi: float) -> float:
    """Integral of x**-alpha over [lo, hi], 0 < lo; stable for alpha near 1 and hi near lo."""
    if hi <= lo:
        return 0.0
    log_ratio = math.log1p((hi - lo) / lo)
    c = 1.0 - alpha
    if c == 0.0:
        return log_ratio
    return lo**c * math.expm1(c * log_ratio) / c


def _power_integral_inverse(alpha: float, lo: float, hi: float, q: np.ndarray) -> np.ndarray:
    """x with integral over [lo, x] equal to q times the integral over [lo, hi]; q in [0, 1)."""
    log_ratio = math.log1p((hi - lo) / lo)
    c = 1.0 - alpha
    if c == 0.0:
        return lo * np.exp(q * log_ratio)
    return lo * np.exp(np.log1p(q * math.expm1(c * log_ratio)) / c)


def _zipf_weight_sum(alpha: float, start: int, stop: int) -> float:
    """Sum of (row + 1)**-alpha over rows [start, stop): exact below EXACT_HEAD_ROWS,
    the midpoint integral (rank r as [r - 1/2, r + 1/2)) above."""
    total = 0.0
    head_stop = min(stop, EXACT_HEAD_ROWS)
    if start < head_stop:
        ranks = np.arange(start + 1, head_stop + 1, dtype=np.float64)
        total += float(np.sum(ranks**-alpha))
    tail_start = max(start, EXACT_HEAD_ROWS)
    if tail_start < stop:
        total += _power_integral(alpha, tail_start + 0.5, stop + 0.5)
    return total


@lru_cache(maxsize=16)
def _zipf_normalizer(num_rows: int, alpha: float) -> float:
    return _zipf_weight_sum(alpha, 0, num_rows)


@lru_cache(maxsize=8)
def _head_cdf(alpha: float, head_rows: int) -> np.ndarray:
    """Cumulative unnormalized weights of rows [0, head_rows), read-only (it is shared)."""
    cdf = np.cumsum(np.arange(1, head_rows + 1, dtype=np.float64) ** -alpha)
    cdf.flags.writeable = False
    return cdf


# -- the public distribution -----------------------------------------------------------------
def zipf_probabilities(num_rows: int, alpha: float) -> np.ndarray:
    """Every row's probability, exactly: ``p[r] = (r + 1)**-alpha / H(num_rows, alpha)``.

    Args:
        num_rows: V, 1 <= V <= ``EXACT_HEAD_ROWS`` (above it the distribution is defined
            by the closed-form tail; use :func:`zipf_mass` for ranges of such tables).
        alpha: Zipf exponent (> 0).

    Returns:
        float64 array of shape (V,), decreasing, summing to 1.
    """
    num_rows, alpha = _check_distribution(num_rows, alpha)
    if num_rows > EXACT_HEAD_ROWS:
        raise ValueError(f"zipf_probabilities is exact up to EXACT_HEAD_ROWS={EXACT_HEAD_ROWS} rows, got "
                         f"num_rows={num_rows}; use zipf_mass for ranges of a larger table")
    weights = np.arange(1, num_rows + 1, dtype=np.float64) ** -alpha
    return weights / _zipf_normalizer(num_rows, alpha)


def zipf_mass(num_rows: int, alpha: float, start: int, stop: int) -> float:
    """Probability that one Zipf(alpha) id falls in rows [start, stop).

    Row ``i`` has probability ``(i + 1)**-alpha / H(num_rows, alpha)``. Exact (a
    float64 sum) for rows below ``EXACT_HEAD_ROWS``; above, each rank is the integral of
    x^-alpha over [r - 1/2, r + 1/2), so a 10^9-row table costs no more than a 2^20-row one.

    Args:
        num_rows: V (> 0).
        alpha: Zipf exponent (> 0).
        start, stop: the row range, 0 <= start <= stop <= V.

    Returns:
        A probability in [0, 1].
    """
    num_rows, alpha = _check_distribution(num_rows, alpha)
    if not (is_int(start) and is_int(stop) and 0 <= start <= stop <= num_rows):
        raise ValueError(f"need 0 <= start <= stop <= num_rows={num_rows}, got start={start!r}, stop={stop!r}")
    return _zipf_weight_sum(alpha, int(start), int(stop)) / _zipf_normalizer(num_rows, alpha)


def zipf_residue_mass(num_rows: int, alpha: float, num_devices: int) -> np.ndarray:
    """Probability that one Zipf(alpha) id has ``row % num_devices == d``, for each d.

    Shape (num_devices,), float64, sums to 1. Rows below ``EXACT_HEAD_ROWS`` are summed
    exactly. Above, residue d's rows form a progression of step N, summed by the midpoint
    rule with spacing N (the integral of x^-alpha over each step, divided by N); its
    relative error is about alpha (alpha + 1) N^2 / (24 x^2) at x > 2^20 (1e-6 at N = 4096).
    """
    num_rows, alpha = _check_distribution(num_rows, alpha)
    check_int(num_devices, "num_devices", low=1)
    head = min(num_rows, EXACT_HEAD_ROWS)
    rows = np.arange(head, dtype=np.int64)
    mass = np.bincount(rows % num_devices, weights=(rows + 1.0) ** -alpha, minlength=num_devices)
    for d in range(num_devices):
        first = head + (d - head) % num_devices  # the first row >= head with row % N == d
        if first >= num_rows:
            continue
        last = first + (num_rows - 1 - first) // num_devices * num_devices
        mass[d] += _power_integral(alpha, first + 1 - num_devices / 2, last + 1 + num_devices / 2) / num_devices
    return mass / mass.sum()


def _rank_weights(alpha: float, start: int, stop: int) -> np.ndarray:
    """Unnormalized weights of rows [start, stop), as :func:`zipf_mass` defines them: (row + 1)**-alpha
    below ``EXACT_HEAD_ROWS``, the integral of x**-alpha over [rank - 1/2, rank + 1/2) above."""
    ranks = np.arange(start + 1, stop + 1, dtype=np.float64)
    weights = ranks**-alpha
    tail = ranks > EXACT_HEAD_ROWS
    if tail.any():
        lo, hi, c = ranks[tail] - 0.5, ranks[tail] + 0.5, 1.0 - alpha
        weights[tail] = np.log(hi / lo) if c == 0.0 else (hi**c - lo**c) / c
    return weights


def zipf_expected_distinct(num_rows: int, alpha: float, n: int, chunk_rows: int = 1 << 20) -> float:
    """Expected number of distinct rows among ``n`` independent Zipf(alpha) draws.

    Row ``r`` is drawn at least once with probability ``1 - (1 - p_r)**n``, computed as
    ``-expm1(n * log1p(-p_r))`` so that tail rows with tiny ``p_r`` keep their digits;
    rows are summed ``chunk_rows`` at a time (a memory bound, not a result knob).

    Returns:
        A float in [0, min(num_rows, n)].
    """
    num_rows, alpha = _check_distribution(num_rows, alpha)
    n = check_int(n, "n", low=0)
    chunk_rows = check_positive_int(chunk_rows, "chunk_rows")
    if n == 0:
        return 0.0
    if num_rows == 1:
        return 1.0  # log1p(-1) is -inf; the answer is the one row
    normalizer = _zipf_normalizer(num_rows, alpha)
    touched = math.fsum(
        float(-np.expm1(n * np.log1p(-_rank_weights(alpha, s, min(s + chunk_rows, num_rows)) / normalizer)).sum())
        for s in range(0, num_rows, chunk_rows))
    # Rounding can push the sum a hair past the exact bounds; clamp to them.
    return min(touched, float(num_rows), float(n))


def zipf_ids(num_rows: int, alpha: float, size: int | tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Draw row ids from Zipf(alpha) over rank = row + 1 by inverse CDF.

    One ``rng.random(size)`` call: a uniform below the head's weight is searched in the
    exact cumulative weights of the first ``EXACT_HEAD_ROWS`` rows; one above it goes
    through the closed-form inverse of the integral of x^-alpha, rounded to the nearest
    rank (the same distribution :func:`zipf_mass` sums). The ids depend on the number of
    draws, not on the shape: ``size=(2, 3)`` gives ``size=6``'s ids, reshaped.

    Args:
        num_rows: V (> 0).
        alpha: Zipf exponent (> 0).
        size: an int n for shape (n,), or a shape tuple.
        rng: the source of randomness (seed it for reproducible draws).

    Returns:
        int64 array of shape ``size``, values in [0, V).
    """
    num_rows, alpha = _check_distribution(num_rows, alpha)
    shape = _as_shape(size)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    head = min(num_rows, EXACT_HEAD_ROWS)
    cdf = _head_cdf(alpha, head)
    head_weight = float(cdf[-1])
    tail_weight = _power_integral(alpha, head + 0.5, num_rows + 0.5) if num_rows > head else 0.0
    u = rng.random(shape).reshape(-1) * (head_weight + tail_weight)  # (n,)
    ids = np.empty(u.size, dtype=np.int64)
    in_head = u < head_weight
    # Row i owns the weights [cdf[i-1], cdf[i]); the clip only guards rounding at the top.
    ids[in_head] = np.minimum(np.searchsorted(cdf, u[in_head], side="right"), head - 1)
    if tail_weight > 0.0:
        q = (u[~in_head] - head_weight) / tail_weight
        x = _power_integral_inverse(alpha, head + 0.5, num_rows + 0.5, q)
        ranks = np.clip(np.floor(x + 0.5), head + 1, num_rows)
        ids[~in_head] = ranks.astype(np.int64) - 1
    return ids.reshape(shape)
