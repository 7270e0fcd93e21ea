"""ShardedEmbeddingCollection: several named tables placed by the sharding planner's plan.

The planner (:mod:`tinyembed.plan.sharding`) chooses where each table's rows and
columns go; the collection starts one actor per device of that plan and puts each
shard exactly where the plan says, so ``format_plans([collection.plan])`` prints the
plan that runs (TorchRec's planner -> plan -> DistributedModelParallel). Lookups of
all tables travel together, one request per actor; so do the updates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any

import numpy as np

from ..checks import check_float_dtype
from ..nn import pretrained_weight
from ..plan.sharding import DeviceSpec, Shard, ShardingPlan, TableSpec, Workload, format_plans
from ..tensor import Tensor
from .embedding import ShardedEmbedding, _block_reader, _row_blocks
from .engine import ShardedTables, open_tables
from .layout import NOMINAL_DEVICE, layouts_from_plan, plan_name, plan_tables
from .runtime import DEFAULT_NUM_CPUS, ShardServers
from .shard import optimizer_options

__all__ = ["ShardedEmbeddingCollection"]

_DTYPES = {4: np.float32, 8: np.float64}


class ShardedEmbeddingCollection:
    """Named tables on the devices of a planner's plan, one Ray actor per device.

    Args:
        plan: a :class:`~tinyembed.plan.sharding.ShardingPlan` (from ``plan``,
            ``recommend`` or :meth:`from_pretrained`); its tables store 4-byte (float32)
            or 8-byte (float64) values.
        optimizer: ``'sgd'``, ``'sparse_adam'`` or ``'rowwise_adagrad'``, for every table;
            other keyword arguments are its hyper-parameters.
        weights: optional initial rows by table name, (V, D) each; a table not given is
            drawn as ``nn.Embedding(V, D, seed=seed + i, init=init)`` (i its index in the plan).
        address, num_cpus, timeout, servers: as :class:`ShardedEmbedding` (shared ``servers``
            need at least as many actors as the plan has devices).

    Examples (a collection starts one actor per device of the plan)::

        plan = tinyembed.plan.sharding.recommend(tables, workload, device)
        tables = ShardedEmbeddingCollection(plan, optimizer="rowwise_adagrad", lr=0.05, seed=0)
        out = tables({"user": user_ids, "item": item_ids})   # {name: Tensor}
        loss.backward(); tables.step()
        print(tables.describe())
    """

    def __init__(self, plan: ShardingPlan, optimizer: str = "sgd", *, weights: Mapping[str, Any] | None = None,
                 seed: int | None = None, init="normal", address: str | None = None,
                 num_cpus: float = DEFAULT_NUM_CPUS, timeout: float = 60.0, servers: ShardServers | None = None,
                 **optimizer_kwargs):
        layouts = layouts_from_plan(plan)
        widths = {t.bytes_per_element for t in plan.tables}
        if len(widths) != 1 or not widths <= set(_DTYPES):
            raise ValueError(f"the plan's tables store {sorted(widths)} bytes per value; a sharded collection "
                             "holds float32 (4) or float64 (8) tables, all alike")
        dtype = check_float_dtype(_DTYPES[widths.pop()])
        options = optimizer_options(optimizer, plan.tables[0].dim, dtype, optimizer_kwargs)
        weights = dict(weights or {})
        unknown = sorted(set(weights) - set(layouts))
        if unknown:
            raise KeyError(f"weights for tables {unknown} that the plan does not have ({', '.join(layouts)})")
        draws = {}
        for i, (name, layout) in enumerate(layouts.items()):
            if name in weights:
                w = pretrained_weight(weights[name])
                if w.shape != (layout.num_embeddings, layout.embedding_dim):
                    raise ValueError(f"weights[{name!r}] has shape {w.shape}, the plan's table is "
                                     f"({layout.num_embeddings}, {layout.embedding_dim})")
                draws[name] = _block_reader(w.astype(dtype, copy=False))
            else:
                table_seed = None if seed is None else seed + i
                draws[name] = _row_blocks(init, layout.num_embeddings, layout.embedding_dim, table_seed, dtype)
        if servers is not None and len(servers) < plan.num_devices:
            raise ValueError(f"the plan has {plan.num_devices} devices, but {len(servers)} servers were given")
        def fill(tables: ShardedTables) -> None:
            for name, draw in draws.items():
                tables.init_rows(name, draw)
        tables = open_tables(servers, plan.num_devices, layouts, dtype, optimizer, options, fill, num_cpus=num_cpus,
                             address=address, timeout=timeout)
        self._attach(tables, plan)

    def _attach(self, tables: ShardedTables, plan: ShardingPlan) -> None:
        self._tables = tables
        self.plan = plan
        label = plan_name(plan.strategy)
        self.tables = {name: ShardedEmbedding._of(tables, name, label) for name in tables.layouts}

    @classmethod
    def from_pretrained(cls, weights: Mapping[str, Any], num_shards: int, plan: str = "row",
                        optimizer: str = "sgd", **kwargs) -> ShardedEmbeddingCollection:
        """Tables holding ``weights`` ({name: (V, D)}) on ``num_shards`` actors under a named plan
        (``row``, ``hashed-row``, ``column``, ``table``, ``data-parallel``), placed by the planner."""
        arrays = {name: pretrained_weight(w) for name, w in weights.items()}
        if not arrays:
            raise ValueError("weights must name at least one table")
        dtypes = {a.dtype for a in arrays.values()}
        dtype = dtypes.pop() if len(dtypes) == 1 else np.dtype(np.float32)
        sharding = plan_tables({n: a.shape for n, a in arrays.items()}, num_shards, plan, dtype.itemsize)
        return cls(sharding, optimizer, weights=arrays, **kwargs)

    # -- lookups and training ----------------------------------------------------------------------
    def __getitem__(self, name: str) -> ShardedEmbedding:
        if name not in self.tables:
            raise KeyError(f"no table {name!r}; the tables are {', '.join(repr(n) for n in self.tables)}")
        return self.tables[name]

    def __call__(self, ids_by_table: Mapping[str, Any]) -> dict[str, Tensor]:
        return self.forward(ids_by_table)

    def forward(self, ids_by_table: Mapping[str, Any]) -> dict[str, Tensor]:
        """Every table's rows of its ids, in one request per actor: {name: Tensor (*ids.shape, D)}.
        Every table's ids are checked before any actor is asked."""
        looked_up = self._tables.lookup(ids_by_table)
        return {name: self.tables[name]._output(data, ids) for name, (data, ids) in looked_up.items()}

    def lookup(self, ids_by_table: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """As :meth:`forward`, arrays outside the graph."""
        return {name: data for name, (data, _) in self._tables.lookup(ids_by_table).items()}

    def step(self) -> None:
        """Apply the optimizer to every table's collected gradient, one request per actor, and spend them."""
        grads = {name: t.grad for name, t in self.tables.items() if t.grad is not None}
        if grads:
            self._tables.step(grads)
        for name in grads:
            self.tables[name].weight.grad = None

    def zero_grad(self) -> None:
        for table in self.tables.values():
            table.zero_grad()

    @property
    def lr(self) -> float:
        return next(iter(self.tables.values())).lr

    @lr.setter
    def lr(self, value: float) -> None:
        for table in self.tables.values():
            table.lr = value

    # -- inspection, checkpoints, lifetime -----------------------------------------------------------
    def describe(self) -> str:
        """The planner's table for the plan that runs (its cost estimate, when the plan was made for
        real devices), and where each shard is."""
        if self.plan.device == NOMINAL_DEVICE:  # placed by name: the planner's costs would be of nothing
            lines = [f"The planner's {self.plan.strategy} plan on {self.plan.num_devices} actors (placement only)."]
        else:
            lines = [format_plans([self.plan])]
        lines += ["", "Shards (rows range(start, stop, step) x columns [start, stop)):"]
        for name, table in self.tables.items():
            for i, s in enumerate(table.shards):
                lines.append(f"  {name} shard {i}: device {s.device}, rows range({s.row_start}, {s.row_stop}, "
                             f"{s.row_step}) ({s.num_rows:,}), columns [{s.col_start}, {s.col_stop})")
        return "\n".join(lines)

    def stats(self, reset: bool = False) -> dict[str, Any]:
        """Every shard's traffic and the driver's timings (see :meth:`ShardedEmbedding.stats`)."""
        return self._tables.stats(reset)

    def save(self, path, *, replace: bool = False):
        """A checkpoint of every table (see :mod:`.checkpoint`), the plan recorded in its manifest."""
        from .checkpoint import save_tables  # noqa: PLC0415

        names = list(self.tables)
        return save_tables(self._tables, path, names, {n: self.tables[n].plan for n in names}, replace=replace,
                           planner=self.plan.to_dict())

    @classmethod
    def load(cls, path, plan: ShardingPlan | None = None, *, address: str | None = None,
             num_cpus: float = DEFAULT_NUM_CPUS, timeout: float = 60.0, servers: ShardServers | None = None
             ) -> ShardedEmbeddingCollection:
        """A collection from a checkpoint, placed by ``plan`` (default: the plan it was saved with);
        every file, and that every table fits the plan, is checked before any actor starts."""
        from .checkpoint import check_fits, copy_rows, read_checkpoint  # noqa: PLC0415

        checkpoint = read_checkpoint(path)
        if plan is None:
            if not checkpoint.manifest.get("planner"):
                raise ValueError(f"{path} records no plan (it was not saved by a collection): pass plan=")
            plan = plan_from_dict(checkpoint.manifest["planner"])
        layouts = layouts_from_plan(plan)
        stored = {name: checkpoint.table(name) for name in layouts}
        first = next(iter(stored.values()))
        for name, s in stored.items():
            check_fits(s, layouts[name], first.dtype, checkpoint.optimizer, checkpoint, name)
        if servers is not None and len(servers) < plan.num_devices:
            raise ValueError(f"the plan has {plan.num_devices} devices, but {len(servers)} servers were given")
        def fill(tables: ShardedTables) -> None:
            for name in layouts:
                copy_rows(checkpoint, name, tables, name)
        tables = open_tables(servers, plan.num_devices, layouts, first.dtype, checkpoint.optimizer, first.options, fill,
                             num_cpus=num_cpus, address=address, timeout=timeout)
        collection = cls.__new__(cls)
        collection._attach(tables, plan)
        return collection

    def load_state(self, path) -> None:
        """Set every table's rows and optimizer state from a checkpoint holding tables of the same names and shapes."""
        from .checkpoint import restore_tables  # noqa: PLC0415

        restore_tables(self._tables, path, {n: n for n in self.tables})

    def restore(self, path) -> None:
        """Recover from a lost shard: replace the dead actors with new ones and load every shard
        from the checkpoint at ``path`` (checked first), so the table is as it was saved.
        The steps since that checkpoint are lost with the shard; the surviving shards go back too."""
        from .checkpoint import restore_tables  # noqa: PLC0415

        restore_tables(self._tables, path, {n: n for n in self.tables}, restart=True)
        self.zero_grad()  # a gradient of the steps the checkpoint does not hold

    def close(self) -> None:
        """Stop the actors."""
        self._tables.close()

    def __enter__(self) -> ShardedEmbeddingCollection:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        tables = ", ".join(f"{n}: {t.num_embeddings}x{t.embedding_dim}" for n, t in self.tables.items())
        return (f"ShardedEmbeddingCollection({self.plan.strategy} on {self.plan.num_devices} devices, {tables}, "
                f"optimizer={self._tables.optimizer!r})")


def plan_from_dict(data: dict[str, Any]) -> ShardingPlan:
    """A ShardingPlan from its ``to_dict()`` (as a checkpoint's manifest records it)."""
    values: dict[str, Any] = {}
    for f in fields(ShardingPlan):
        value = data[f.name]
        if f.name == "tables":
            value = tuple(TableSpec(**t) for t in value)
        elif f.name == "workload":
            value = Workload(**value)
        elif f.name == "device":
            value = DeviceSpec(**value)
        elif f.name == "shards":
            value = tuple(Shard(**s) for s in value)
        elif isinstance(value, list):
            value = tuple(value)
        values[f.name] = value
    return ShardingPlan(**values)
