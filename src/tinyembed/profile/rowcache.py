"""Hot-row caching: how many lookups a software cache of table rows would serve.

FBGEMM's split-table embeddings keep the rows used most in a cache in fast memory
(GPU memory in front of host memory) and fetch the rest; TorchRec's planner sizes
that cache from a hit-rate curve. These functions compute such curves for a stream
of row ids, the rows in cache counted in rows (multiply by the row's bytes for memory):

    lru_hit_rates    an LRU cache of each capacity, all from one pass of LRU stack
                     distances (Mattson et al., 1970): an access hits a capacity-C LRU
                     cache iff fewer than C distinct other rows were used since the
                     previous access to its row; first accesses are compulsory misses.
    lfu_hit_rates    an LFU cache, simulated once per capacity: evict the cached row
                     with the fewest accesses, the least recently used among equals.
    hot_set_curve    a static cache holding the k most frequent rows of the whole
                     stream (an oracle: it knows the future), for comparison.

Unlike FBGEMM, the caches here are fully associative and updated after every id,
not once per batch, and a row is one entry whatever its size.

Examples:
    >>> ids = [1, 2, 1, 3, 1, 2]
    >>> lru_hit_rates(ids, [1, 2, 3]).tolist()
    [0.0, 0.3333333333333333, 0.5]
    >>> hot_set_curve(ids, [0, 1, 2, 3]).tolist()   # row 1 serves 3 of the 6 lookups
    [0.0, 0.5, 0.8333333333333334, 1.0]
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np

from .cachesim import _as_stream, lru_stack_distances

__all__ = ["LFU_ADMISSIONS", "RowCacheCurves", "hot_set_curve", "lfu_hit_rates", "lru_hit_rates",
           "row_cache_curves"]

# How a missed row enters a full LFU cache:
#   'always'     it always replaces the victim (the textbook LFU).
#   'frequency'  FBGEMM's rule (lfu_cache_populate): it replaces the victim only if its
#                own count, this access included, is at least the victim's; otherwise it
#                is read from the table and not cached.
LFU_ADMISSIONS = ("always", "frequency")


def _stream(ids) -> np.ndarray:
    x = _as_stream(ids, "ids")
    if x.size == 0:
        raise ValueError("ids is empty: a hit rate needs at least one lookup")
    return x


def _sizes(values, name: str, minimum: int) -> np.ndarray:
    """1-D int64 array of cache sizes >= minimum."""
    arr = np.asarray(values)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence, got shape {arr.shape}")
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must be integers (rows), got dtype {arr.dtype}")
    if arr.min() < minimum:
        i = int(np.argmax(arr < minimum))
        raise ValueError(f"{name} must be >= {minimum}, got {int(arr[i])} at position {i}")
    return arr.astype(np.int64)


def lru_hit_rates(ids, capacities) -> np.ndarray:
    """Hit rate of an LRU row cache of each capacity, over the lookups ``ids``.

    Args:
        ids: row ids (integers >= 0), any shape, read in C order.
        capacities: rows the cache holds (integers >= 1), 1-D.

    Returns:
        float64 array shaped like ``capacities``: hits / len(ids), non-decreasing in
        capacity (an LRU cache holds everything a smaller one holds).
    """
    x = _stream(ids)
    capacities = _sizes(capacities, "capacities", 1)
    distances = lru_stack_distances(x)
    reuses = np.sort(distances[distances >= 0])
    hits = np.searchsorted(reuses, capacities, side="left")   # reuses at distance < C
    return hits / x.size


def _lfu_hits(rows: list[int], capacity: int, frequency_admission: bool) -> int:
    """Hits of one LFU cache of ``capacity`` rows over ``rows``; the policy is lfu_hit_rates'."""
    count: dict[int, int] = {}     # accesses so far of every row seen, cached or not
    cached: dict[int, tuple[int, int]] = {}  # row -> (count, time) of its live heap entry
    heap: list[tuple[int, int, int]] = []    # (count, last access, row); stale entries skipped
    hits = 0
    for time, row in enumerate(rows):
        c = count.get(row, 0) + 1
        count[row] = c
        if row in cached:
            hits += 1
        elif len(cached) >= capacity:
            while cached.get(heap[0][2]) != heap[0][:2]:   # an older entry of a row since used again
                heapq.heappop(heap)
            if frequency_admission and c < heap[0][0]:
                continue
            del cached[heapq.heappop(heap)[2]]
        cached[row] = (c, time)
        heapq.heappush(heap, (c, time, row))
        if len(heap) > 2 * capacity + 64:     # drop stale entries: the heap stays O(capacity)
            heap = [(c_, t_, r_) for r_, (c_, t_) in cached.items()]
            heapq.heapify(heap)
    return hits


def lfu_hit_rates(ids, capacities, admission: str = "always") -> np.ndarray:
    """Hit rate of an LFU row cache of each capacity, over the lookups ``ids``.

    The policy: every row's access count is kept for the whole stream, also while the
    row is not cached (as FBGEMM's ``lfu_state``, one counter per table row, does), so
    a row evicted once comes back with its history. A missed row is inserted; when the
    cache is full the cached row with the smallest count goes, and of rows with equal
    counts the least recently used. ``admission='frequency'`` adds FBGEMM's rule (see
    ``LFU_ADMISSIONS``).

    Each capacity is its own simulation: a heap of (count, last access, row) with stale
    entries skipped, O(n log capacity) in Python, about a second per capacity for
    500,000 ids. A capacity at least the number of distinct rows never evicts and is
    not simulated: its hit rate is 1 - distinct / n.

    Args:
        ids: row ids (integers >= 0), any shape, read in C order.
        capacities: rows the cache holds (integers >= 1), 1-D.
        admission: 'always' or 'frequency'.

    Returns:
        float64 array shaped like ``capacities``: hits / len(ids).
    """
    x = _stream(ids)
    capacities = _sizes(capacities, "capacities", 1)
    if admission not in LFU_ADMISSIONS:
        raise ValueError(f"admission must be one of {LFU_ADMISSIONS}, got {admission!r}")
    distinct = int(np.unique(x).size)
    rows = x.tolist()  # Python ints: dict and heap work an order faster on them than on NumPy scalars
    rates = np.empty(capacities.size)
    for j, capacity in enumerate(capacities.tolist()):
        hits = x.size - distinct if capacity >= distinct else _lfu_hits(rows, capacity, admission == "frequency")
        rates[j] = hits / x.size
    return rates


def hot_set_curve(ids, ks) -> np.ndarray:
    """Share of the lookups ``ids`` that the ``k`` most frequent rows serve, for each k.

    A static cache filled with the k rows looked up most over the whole stream, chosen
    knowing the whole stream: the best a static cache of k rows can do. LRU and LFU,
    which see only the past, stay below it on independent draws from one distribution;
    on a stream whose hot set changes they can beat it.

    Args:
        ids: row ids (integers >= 0), any shape, read in C order.
        ks: rows in the hot set (integers >= 0), 1-D.

    Returns:
        float64 array shaped like ``ks``, non-decreasing in k, 1.0 once k reaches the
        number of distinct rows.
    """
    x = _stream(ids)
    ks = _sizes(ks, "ks", 0)
    counts = np.sort(np.unique(x, return_counts=True)[1])[::-1]   # most frequent first
    served = np.concatenate(([0], np.cumsum(counts)))              # served[k]: by the top k
    return served[np.minimum(ks, counts.size)] / x.size


@dataclass(frozen=True)
class RowCacheCurves:
    """Hit rates of row caches of several capacities over one stream of ids."""

    capacities: list[int]
    lookups: int
    distinct_rows: int
    lru: list[float]
    lfu: list[float]
    hot_set: list[float]
    lfu_admission: str = "always"

    def to_dict(self) -> dict:
        return {"capacities": list(self.capacities), "lookups": self.lookups,
                "distinct_rows": self.distinct_rows, "lru": list(self.lru), "lfu": list(self.lfu),
                "hot_set": list(self.hot_set), "lfu_admission": self.lfu_admission}


def row_cache_curves(ids, capacities, admission: str = "always") -> RowCacheCurves:
    """LRU, LFU and hot-set hit rates of every capacity (rows) over ``ids``."""
    x = _stream(ids)
    capacities = _sizes(capacities, "capacities", 1)
    return RowCacheCurves(
        capacities=capacities.tolist(), lookups=int(x.size), distinct_rows=int(np.unique(x).size),
        lru=lru_hit_rates(x, capacities).tolist(), lfu=lfu_hit_rates(x, capacities, admission).tolist(),
        hot_set=hot_set_curve(x, capacities).tolist(), lfu_admission=admission)
