"""The sharding strategies, each a pure function (tables, workload, device) -> ShardingPlan
registered by name in ``STRATEGIES`` (adding a strategy is adding one function and one
entry), and the planner that applies them and picks the cheapest plan that fits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np

from ..zipf import zipf_mass, zipf_residue_mass
from .batch import _num_lookups, _source_devices, simulated_batch
from .plans import Shard, ShardingPlan, _assemble, _served_by_owner, _table_part
from .specs import DeviceSpec, TableSpec, Workload

__all__ = ["STRATEGIES", "cheapest_fit", "column_wise", "data_parallel", "plan", "recommend", "row_wise",
           "row_wise_hashed", "table_wise"]


def _even_bounds(total: int, parts: int) -> list[int]:
    """Cut [0, total) into ``parts`` ranges whose sizes differ by at most one, larger first."""
    base, extra = divmod(total, parts)
    return [k * base + min(k, extra) for k in range(parts + 1)]


def _table_memory(table: TableSpec, workload: Workload) -> int:
    return (table.num_rows * table.dim * (table.bytes_per_element + workload.optimizer_bytes_per_element)
            + table.num_rows * workload.optimizer_bytes_per_row)


def table_wise(tables: Sequence[TableSpec], workload: Workload, device: DeviceSpec) -> ShardingPlan:
    """Each table whole on one device; the owner looks up every id of its table."""
    n = workload.num_devices
    # Greedy placement: largest table first, onto the device with the least memory so far.
    owner = [0] * len(tables)
    used = [0] * n
    for i in sorted(range(len(tables)), key=lambda i: -_table_memory(tables[i], workload)):
        owner[i] = min(range(n), key=lambda d: used[d])
        used[owner[i]] += _table_memory(tables[i], workload)
    parts = []
    for i, table in enumerate(tables):
        num_ids = _num_lookups(table, workload)
        src = _source_devices(num_ids, workload)
        served = _served_by_owner(src, np.full(num_ids, owner[i], dtype=np.int64), n)
        expected = np.zeros(n)
        expected[owner[i]] = num_ids
        shards = [Shard(table.name, owner[i], 0, table.num_rows, 1, 0, table.dim)]
        parts.append(_table_part(table, workload, shards, served, expected))
    return _assemble("table_wise", tables, workload, device, parts, [
        "table_wise: each table whole on one device, largest first onto the device with the least "
        "memory so far; N tables or fewer leave devices idle (one table: imbalance N)",
        "table_wise: the owner returns each sample's pooled row (or each looked-up row if unpooled) "
        "to the sample's device",
    ])


def _row_wise(tables, workload, device, strategy, owner_of, shards_of, expected_of, notes) -> ShardingPlan:
    n = workload.num_devices
    parts = []
    for table, (ids, src) in zip(tables, simulated_batch(tables, workload), strict=True):
        served = _served_by_owner(src, owner_of(table, ids), n)
        parts.append(_table_part(table, workload, shards_of(table), served, len(ids) * expected_of(table)))
    return _assemble(strategy, tables, workload, device, parts, notes)


def row_wise(tables: Sequence[TableSpec], workload: Workload, device: DeviceSpec) -> ShardingPlan:
    """Each table's rows cut into N contiguous ranges (sizes differ by at most one)."""
    n = workload.num_devices

    def owner_of(table, ids):
        ends = np.asarray(_even_bounds(table.num_rows, n)[1:], dtype=np.int64)
        return np.searchsorted(ends, ids, side="right")

    def shards_of(table):
        b = _even_bounds(table.num_rows, n)
        return [Shard(table.name, d, b[d], b[d + 1], 1, 0, table.dim) for d in range(n) if b[d + 1] > b[d]]

    def expected_of(table):
        b = _even_bounds(table.num_rows, n)
        if table.zipf_alpha is None:
            return np.diff(b) / table.num_rows
        return np.array([zipf_mass(table.num_rows, table.zipf_alpha, b[d], b[d + 1]) for d in range(n)])

    return _row_wise(tables, workload, device, "row_wise", owner_of, shards_of, expected_of, [
        "row_wise: rows cut into N contiguous ranges of ceil or floor(V/N), the larger first; "
        "under Zipf the hot low rows all land on device 0",
        "row_wise: ids go to the owner of their row; pooled tables return partial sums of B_s x D "
        "from every device to every other (dense reduce-scatter), unpooled ones each looked-up row",
    ])


def row_wise_hashed(tables: Sequence[TableSpec], workload: Workload, device: DeviceSpec) -> ShardingPlan:
    """Row r on device r mod N: the hot rows of a sorted vocabulary are dealt round-robin."""
    n = workload.num_devices

    def shards_of(table):
        return [Shard(table.name, d, d, table.num_rows, n, 0, table.dim) for d in range(min(n, table.num_rows))]

    def expected_of(table):
        if table.zipf_alpha is None:
            return np.array([len(range(d, table.num_rows, n)) for d in range(n)]) / table.num_rows
        return zipf_residue_mass(table.num_rows, table.zipf_alpha, n)

    return _row_wise(tables, workload, device, "row_wise_hashed", lambda t, ids: ids % n, shards_of,
                     expected_of, [
        "row_wise_hashed: row r on device r mod N, which deals the hot rows round-robin; the id "
        "remapping (r // N on its device) is free",
        "row_wise_hashed: communication as row_wise",
    ])


def column_wise(tables: Sequence[TableSpec], workload: Workload, device: DeviceSpec) -> ShardingPlan:
    """Each table's D columns cut into N slices; every slice looks up every id of its table."""
    n = workload.num_devices
    parts = []
    for t, table in enumerate(tables):
        num_ids = _num_lookups(table, workload)
        per_source = np.bincount(_source_devices(num_ids, workload), minlength=n)
        bounds = _even_bounds(table.dim, n)
        shards, served, expected = [], np.zeros((n, n), dtype=np.int64), np.zeros(n)
        for k in range(n):
            if bounds[k + 1] == bounds[k]:
                continue  # D < N: fewer slices than devices
            d = (k + t) % n  # rotate so that the wider first slices of many tables spread out
            shards.append(Shard(table.name, d, 0, table.num_rows, 1, bounds[k], bounds[k + 1]))
            served[d] = per_source
            expected[d] = num_ids
        parts.append(_table_part(table, workload, shards, served, expected))
    return _assemble("column_wise", tables, workload, device, parts, [
        "column_wise: D cut into N slices of ceil or floor(D/N) columns, the wider first; slice k "
        "of table t on device (k + t) mod N; D < N leaves devices without a slice",
        "column_wise: every id goes to every slice's device (ids cost N-fold); each slice returns "
        "its B_s x D_k (pooled) or looked-up rows' D_k columns; each slice keeps its own per-row "
        "optimizer state",
        "column_wise: a narrow slice is read as efficiently as a wide row; real memory moves whole "
        "32-64 B sectors, so slices narrower than that cost more than counted here",
    ])


def data_parallel(tables: Sequence[TableSpec], workload: Workload, device: DeviceSpec) -> ShardingPlan:
    """Every device holds every table and looks up its own samples' ids."""
    n = workload.num_devices
    parts = []
    for table in tables:
        num_ids = _num_lookups(table, workload)
        per_source = np.bincount(_source_devices(num_ids, workload), minlength=n)
        shards = [Shard(table.name, d, 0, table.num_rows, 1, 0, table.dim) for d in range(n)]
        parts.append(_table_part(table, workload, shards, np.diag(per_source).astype(np.int64),
                                 per_source.astype(np.float64), replicated=True))
    return _assemble("data_parallel", tables, workload, device, parts, [
        "data_parallel: every device holds every table (memory N-fold) and looks up its own ids; "
        "no forward communication",
        "data_parallel: training all-reduces the dense weight gradient by ring (2(N-1)/N of the "
        "table's bytes sent per device) and every device updates its whole replica",
    ])


# Strategy name -> function (tables, workload, device) -> ShardingPlan. Adding a strategy
# is adding one entry.
STRATEGIES: dict[str, Callable[[Sequence[TableSpec], Workload, DeviceSpec], ShardingPlan]] = {
    "table_wise": table_wise,
    "row_wise": row_wise,
    "row_wise_hashed": row_wise_hashed,
    "column_wise": column_wise,
    "data_parallel": data_parallel,
}


def _check_plan_args(tables, workload, device, strategies) -> tuple[list[TableSpec], list[str]]:
    tables = list(tables)
    if not tables:
        raise ValueError("tables must not be empty")
    for t in tables:
        if not isinstance(t, TableSpec):
            raise TypeError(f"tables must be TableSpec, got {type(t).__name__}: {t!r}")
    names = [t.name for t in tables]
    duplicates = sorted({x for x in names if names.count(x) > 1})
    if duplicates:
        raise ValueError(f"table names must be unique, repeated: {duplicates}")
    if not isinstance(workload, Workload):
        raise TypeError(f"workload must be a Workload, got {type(workload).__name__}")
    if not isinstance(device, DeviceSpec):
        raise TypeError(f"device must be a DeviceSpec, got {type(device).__name__}")
    if strategies is None:
        strategies = list(STRATEGIES)
    elif isinstance(strategies, str):
        strategies = [strategies]
    else:
        strategies = list(strategies)
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown:
        raise ValueError(f"unknown strategies {unknown}; known: {', '.join(STRATEGIES)}")
    return tables, strategies


def plan(
    tables: Iterable[TableSpec],
    workload: Workload,
    device: DeviceSpec,
    strategies: Iterable[str] | None = None,
) -> list[ShardingPlan]:
    """Every strategy (default: all of ``STRATEGIES``, in its order) applied to ``tables``."""
    tables, strategies = _check_plan_args(tables, workload, device, strategies)
    return [STRATEGIES[name](tables, workload, device) for name in strategies]


def cheapest_fit(plans: Iterable[ShardingPlan]) -> ShardingPlan | None:
    """The fitting plan with the least estimated time (ties: less memory, then the earlier); None if none fits."""
    fitting = [p for p in plans if p.fits]
    if not fitting:
        return None
    return min(fitting, key=lambda p: (p.time_s, p.max_memory_bytes))


def recommend(
    tables: Iterable[TableSpec],
    workload: Workload,
    device: DeviceSpec,
    strategies: Iterable[str] | None = None,
) -> ShardingPlan | None:
    """The cheapest plan that fits in device memory, or None if no strategy fits."""
    return cheapest_fit(plan(tables, workload, device, strategies))
