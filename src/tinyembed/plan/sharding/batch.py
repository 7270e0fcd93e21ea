"""The simulated batch every plan routes: which row ids each table looks up, and from which device.

Ids are drawn with a seeded Generator per table, so every strategy and every N of a
workload sees the same ids; samples are dealt to the devices in contiguous blocks.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from ...checks import check_int
from ..zipf import zipf_ids
from .specs import TableSpec, Workload

__all__ = ["draw_ids", "simulated_batch"]


def draw_ids(table: TableSpec, num_ids: int, rng: np.random.Generator) -> np.ndarray:
    """Draw ``num_ids`` row ids of ``table`` from its access distribution.

    Uniform when ``table.zipf_alpha`` is None; else :func:`~tinyembed.plan.zipf.zipf_ids`
    (Zipf over rank = row + 1, the distribution :func:`~tinyembed.plan.zipf.zipf_mass` sums).

    Returns:
        int64 array of shape (num_ids,), values in [0, table.num_rows).
    """
    check_int(num_ids, "num_ids", low=0)
    if table.zipf_alpha is None:
        return rng.integers(0, table.num_rows, size=num_ids, dtype=np.int64)
    return zipf_ids(table.num_rows, table.zipf_alpha, num_ids, rng)


def _num_lookups(table: TableSpec, workload: Workload) -> int:
    return int(round(workload.batch_size * table.lookups_per_sample))


def _local_batch_sizes(batch_size: int, num_devices: int) -> np.ndarray:
    """Samples on each device, shape (N,): device s holds samples [ceil(sB/N), ceil((s+1)B/N))."""
    starts = -((-np.arange(num_devices + 1, dtype=np.int64) * batch_size) // num_devices)
    return np.diff(starts)


def _source_devices(num_ids: int, workload: Workload) -> np.ndarray:
    """Device of each id's sample, shape (num_ids,): ids are dealt to samples in order."""
    b, n = workload.batch_size, workload.num_devices
    sample = (np.arange(num_ids, dtype=np.int64) * b) // max(num_ids, 1)
    return (sample * n) // b


@lru_cache(maxsize=16)
def _cached_ids(table: TableSpec, num_ids: int, seed: int, index: int) -> np.ndarray:
    # The draw depends on neither the strategy nor N, so every plan of a batch shares it.
    ids = draw_ids(table, num_ids, np.random.default_rng([seed, index]))
    ids.flags.writeable = False
    return ids


def simulated_batch(tables: Sequence[TableSpec], workload: Workload) -> list[tuple[np.ndarray, np.ndarray]]:
    """The batch every plan of ``(tables, workload)`` routes: per table, (ids, source devices).

    Table ``i`` draws ``round(B * lookups_per_sample)`` ids with
    ``np.random.default_rng([workload.seed, i])``; id j belongs to sample
    ``j * B // num_ids``, which lives on device ``sample * N // B``.

    Returns:
        One pair per table of read-only int64 arrays of shape (num_ids,): the row ids and
        the device each id starts on.
    """
    out = []
    for i, table in enumerate(tables):
        num_ids = _num_lookups(table, workload)
        out.append((_cached_ids(table, num_ids, workload.seed, i), _source_devices(num_ids, workload)))
    return out
