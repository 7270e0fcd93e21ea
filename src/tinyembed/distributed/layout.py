"""Where a table's rows and columns live, and which shard serves an id.

A :class:`TableLayout` is one table's shards exactly as the sharding planner
(:mod:`tinyembed.plan.sharding`) describes them: each :class:`Shard` holds rows
``range(row_start, row_stop, row_step)`` and columns ``[col_start, col_stop)`` on one
device. The layout routes ids to those shards; nothing here knows about Ray.

A single table's plan is named, and made by the planner's strategy of that name, so the
placement that runs is the one the planner prints:

    row          ``row_wise``: N contiguous ranges of ceil or floor(V/N) rows, the larger first
    hashed-row   ``row_wise_hashed``: row r on shard ``r mod N``, at local row ``r // N``. The
                 hash is the planner's, ``r mod N``: it deals the hot low rows of a
                 frequency-sorted vocabulary round-robin, and is fixed, so a checkpoint
                 re-shards by arithmetic; ids sharing a stride with N land on one shard
    column       ``column_wise``: D cut into N slices of ceil or floor(D/N) columns, the wider first

A collection (:class:`ShardedEmbeddingCollection`) runs any plan the planner makes,
``table_wise`` and ``data_parallel`` (every device a replica) included.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..checks import check_choice, check_positive_int
from ..plan.sharding import STRATEGIES, DeviceSpec, Shard, ShardingPlan, TableSpec, Workload

__all__ = ["COLLECTION_PLANS", "NOMINAL_DEVICE", "PLANS", "Route", "TableLayout", "layouts_from_plan", "plan_name",
           "plan_table", "plan_tables"]

# Plan name -> the planner's strategy. Adding a single-table plan is adding one entry here.
PLANS = {"row": "row_wise", "hashed-row": "row_wise_hashed", "column": "column_wise"}
# Several tables may also be placed whole, or replicated on every device.
COLLECTION_PLANS = {**PLANS, "table": "table_wise", "data-parallel": "data_parallel"}

# Placement only: a plan made by name asks the planner where the shards go, not what they cost.
NOMINAL_DEVICE = DeviceSpec(memory_bytes=1 << 62, memory_gb_per_s=1.0, network_gb_per_s=1.0,
                             name="nominal device (placement only)")


@dataclass(frozen=True)
class Route:
    """Ids routed to one shard: ``ids[positions]`` are its rows ``local_rows``.

    Attributes:
        shard: index into ``TableLayout.shards``.
        positions: (k,) int64 positions in the routed ids.
        local_rows: (k,) int64 rows inside the shard's block.
    """

    shard: int
    positions: np.ndarray
    local_rows: np.ndarray


@dataclass(frozen=True)
class _RowSet:
    """One set of rows ``range(start, stop, step)`` of a column slice, and the shards holding it
    (several only for data-parallel replicas)."""

    start: int
    stop: int
    step: int
    replicas: tuple[int, ...]


@dataclass(frozen=True)
class _ColumnGroup:
    """The shards holding columns [col_start, col_stop): their row sets partition the rows."""

    col_start: int
    col_stop: int
    row_sets: tuple[_RowSet, ...]
    step: int  # 1: contiguous ranges; N > 1: residues mod N


class TableLayout:
    """One table's shards and the routing of ids to them.

    Args:
        name: the table's name.
        num_embeddings, embedding_dim: V and D.
        shards: the planner's shards of this table: every column slice's row sets must
            partition [0, V), as contiguous ranges (step 1) or residues mod N (step N), and
            the column slices must tile [0, D). A row set held by several shards is replicated.
        strategy: the planner's strategy that placed them (``row_wise``, ...).

    Raises:
        ValueError: the shards do not cover the table exactly once (per replica).
    """

    def __init__(self, name: str, num_embeddings: int, embedding_dim: int, shards, strategy: str):
        self.name = name
        self.num_embeddings = check_positive_int(num_embeddings, "num_embeddings")
        self.embedding_dim = check_positive_int(embedding_dim, "embedding_dim")
        self.shards: tuple[Shard, ...] = tuple(shards)
        self.strategy = strategy
        self._groups = self._build_groups()

    def _build_groups(self) -> tuple[_ColumnGroup, ...]:
        v, d = self.num_embeddings, self.embedding_dim
        if not self.shards:
            raise ValueError(f"table {self.name!r} has no shards")
        by_cols: dict[tuple[int, int], dict[tuple[int, int, int], list[int]]] = {}
        for i, s in enumerate(self.shards):
            if s.table != self.name:
                raise ValueError(f"shard {i} belongs to table {s.table!r}, not {self.name!r}")
            if not (0 <= s.row_start < s.row_stop <= v and s.row_step >= 1 and 0 <= s.col_start < s.col_stop <= d):
                raise ValueError(f"shard {i} of table {self.name!r} ({s}) is outside its {v} x {d} table")
            rows = by_cols.setdefault((s.col_start, s.col_stop), {})
            rows.setdefault((s.row_start, s.row_stop, s.row_step), []).append(i)
        slices = sorted(by_cols)
        if [a for a, _ in slices] != [0] + [b for _, b in slices[:-1]] or slices[-1][1] != d:
            raise ValueError(f"the column slices {slices} of table {self.name!r} do not tile its {d} columns")
        groups = []
        for cols in slices:
            row_sets = tuple(_RowSet(a, b, c, tuple(r)) for (a, b, c), r in sorted(by_cols[cols].items()))
            groups.append(_ColumnGroup(cols[0], cols[1], row_sets, self._row_step(row_sets)))
        return tuple(groups)

    def _row_step(self, row_sets: tuple[_RowSet, ...]) -> int:
        v, steps = self.num_embeddings, {r.step for r in row_sets}
        starts = [r.start for r in row_sets]
        if steps == {1}:
            contiguous = starts[0] == 0 and all(a.stop == b.start for a, b in zip(row_sets, row_sets[1:], strict=False))
            if contiguous and row_sets[-1].stop == v:
                return 1
        elif len(steps) == 1:
            step = steps.pop()
            if starts == list(range(min(step, v))) and all(r.stop == v for r in row_sets):
                return step
        raise ValueError(f"the row sets {[(r.start, r.stop, r.step) for r in row_sets]} of table "
                         f"{self.name!r} do not partition its {v} rows into ranges or residues")

    # -- what the shards hold -------------------------------------------------------------------
    @property
    def dim_slices(self) -> list[tuple[int, int]]:
        """The column slices [(col_start, col_stop)], in order."""
        return [(g.col_start, g.col_stop) for g in self._groups]

    @property
    def replicated(self) -> bool:
        """Whether some rows are held by more than one shard (data parallel)."""
        return any(len(r.replicas) > 1 for g in self._groups for r in g.row_sets)

    def global_rows(self, shard: int) -> np.ndarray:
        """(rows,) int64: the table rows shard ``shard`` holds, in its local order."""
        s = self.shards[shard]
        return np.arange(s.row_start, s.row_stop, s.row_step, dtype=np.int64)

    def primary_shards(self) -> list[int]:
        """One shard per distinct block (the first replica): the shards a checkpoint stores."""
        return [r.replicas[0] for g in self._groups for r in g.row_sets]

    # -- routing --------------------------------------------------------------------------------
    def _split(self, group: _ColumnGroup, ids: np.ndarray) -> list[tuple[_RowSet, np.ndarray, np.ndarray]]:
        """(row set, positions, local rows) of ``ids`` in one column slice; ids already checked."""
        row_sets = group.row_sets
        if group.step == 1:
            starts = np.array([r.start for r in row_sets], dtype=np.int64)
            which = np.searchsorted(starts, ids, side="right") - 1  # (n,) row set of each id
            local = ids - starts[which]
        else:
            which = ids % group.step  # the residue is the row set's index: starts are 0..N-1
            local = ids // group.step
        order = np.argsort(which, kind="stable")
        bounds = np.searchsorted(which[order], np.arange(len(row_sets) + 1))
        return [(r, order[bounds[k]:bounds[k + 1]], local[order[bounds[k]:bounds[k + 1]]])
                for k, r in enumerate(row_sets)]

    def lookup_routes(self, ids: np.ndarray) -> list[Route]:
        """Where to read each of ``ids`` ((n,) int64, checked): one Route per shard that serves
        some of them, every column slice. Replicas share the ids in contiguous blocks, as the
        planner deals samples to data-parallel devices."""
        routes = []
        for group in self._groups:
            for row_set, positions, local in self._split(group, ids):
                count = len(row_set.replicas)
                if count == 1:
                    routes.append(Route(row_set.replicas[0], positions, local))
                    continue
                block = (np.arange(len(positions)) * count) // max(len(positions), 1)
                for k, shard in enumerate(row_set.replicas):
                    mine = block == k
                    routes.append(Route(shard, positions[mine], local[mine]))
        return routes

    def update_routes(self, ids: np.ndarray) -> list[Route]:
        """Where each of ``ids`` is updated: every shard holding it (every replica), one Route
        per shard of the table, empty ones included (each shard counts every step)."""
        routes: dict[int, Route] = {}
        for group in self._groups:
            for row_set, positions, local in self._split(group, ids):
                for shard in row_set.replicas:
                    routes[shard] = Route(shard, positions, local)
        return [routes[i] for i in range(len(self.shards))]

    def owners(self, ids: np.ndarray) -> np.ndarray:
        """(n,) int64: the shard that looks up each id in the first column slice (first replica)."""
        owner = np.empty(len(ids), dtype=np.int64)
        for row_set, positions, _ in self._split(self._groups[0], ids):
            owner[positions] = row_set.replicas[0]
        return owner

    def __repr__(self) -> str:
        return (f"TableLayout({self.name!r}, {self.num_embeddings} x {self.embedding_dim}, "
                f"{self.strategy}, {len(self.shards)} shards)")


def layouts_from_plan(plan: ShardingPlan) -> dict[str, TableLayout]:
    """Each table of a planner's plan as a layout, in the plan's table order."""
    if not isinstance(plan, ShardingPlan):
        raise TypeError(f"plan must be a ShardingPlan from tinyembed.plan.sharding, got {type(plan).__name__}")
    return {t.name: TableLayout(t.name, t.num_rows, t.dim, [s for s in plan.shards if s.table == t.name],
                                plan.strategy)
            for t in plan.tables}


def plan_name(strategy: str) -> str:
    """The plan name of a planner's strategy (``row_wise`` -> ``row``)."""
    return {v: k for k, v in COLLECTION_PLANS.items()}.get(strategy, strategy)


def plan_tables(tables: dict[str, tuple[int, int]], num_shards: int, plan: str, bytes_per_element: int = 4
                ) -> ShardingPlan:
    """The planner's plan named ``plan`` for tables ``{name: (V, D)}`` on ``num_shards`` devices
    (placement only: the device figures are nominal)."""
    check_choice(plan, tuple(COLLECTION_PLANS), "plan")
    num_shards = check_positive_int(num_shards, "num_shards")
    specs = [TableSpec(name, num_rows, dim, bytes_per_element=bytes_per_element, pooled=False)
             for name, (num_rows, dim) in tables.items()]
    return STRATEGIES[COLLECTION_PLANS[plan]](specs, Workload(batch_size=1, num_devices=num_shards), NOMINAL_DEVICE)


def plan_table(name: str, num_embeddings: int, embedding_dim: int, num_shards: int, plan: str,
               bytes_per_element: int = 4) -> TableLayout:
    """The layout of one table under a named plan (see the module docstring), by the planner.

    Raises:
        ValueError: an unknown plan, or ``num_shards`` < 1 or more than the rows (row plans)
            or columns (column plan): a shard would be empty.
    """
    check_choice(plan, tuple(PLANS), "plan")
    num_embeddings = check_positive_int(num_embeddings, "num_embeddings")
    embedding_dim = check_positive_int(embedding_dim, "embedding_dim")
    num_shards = check_positive_int(num_shards, "num_shards")
    if plan == "column" and num_shards > embedding_dim:
        raise ValueError(f"num_shards={num_shards} is more than the table's {embedding_dim} columns: "
                         "a column plan would leave shards empty")
    if plan != "column" and num_shards > num_embeddings:
        raise ValueError(f"num_shards={num_shards} is more than the table's {num_embeddings} rows: "
                         f"a {plan} plan would leave shards empty")
    sharding = plan_tables({name: (num_embeddings, embedding_dim)}, num_shards, plan, bytes_per_element)
    return layouts_from_plan(sharding)[name]
