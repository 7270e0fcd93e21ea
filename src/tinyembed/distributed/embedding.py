"""ShardedEmbedding: one table whose rows live on Ray actors, used like ``nn.Embedding``.

A lookup returns a Tensor in the graph like :func:`tinyembed.nn.functional.embedding`'s;
its backward coalesces the output's gradient into a :class:`RowSparseGrad` (one row per
distinct id, summed as ``nn.Embedding(sparse=True)`` sums them), which collects in
``table.weight.grad``. ``step()`` sends each shard its rows of that gradient; the shard
applies the optimizer to them (fused, as in TorchRec) and the gradient is spent, so
there is no ``zero_grad`` between batches.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..checks import check_float_dtype, check_positive_int, check_type
from ..nn import init as init_
from ..nn import pretrained_weight
from ..plan.sharding import Shard
from ..sparse import RowSparseGrad
from ..tensor import Tensor, is_grad_enabled
from .engine import ShardedTables, open_tables
from .layout import TableLayout, plan_table
from .runtime import DEFAULT_NUM_CPUS, ShardServers
from .shard import optimizer_options

__all__ = ["ShardedEmbedding"]

# Initializers that draw values one after another, so a table can be drawn block by block
# and still equal the same draw made whole.
_STREAMED_INITS = ("normal", "uniform")


class ShardedEmbedding:
    """A (num_embeddings, embedding_dim) table split over Ray actors, with a fused optimizer.

    Args:
        num_embeddings, embedding_dim: V and D.
        num_shards: N, one actor each (1 <= N <= V for row plans, <= D for ``column``).
        plan: ``'row'``, ``'hashed-row'`` or ``'column'`` (:mod:`.layout`).
        optimizer: ``'sgd'``, ``'sparse_adam'`` or ``'rowwise_adagrad'``; the keyword
            arguments not listed here are its hyper-parameters, defaults as tinyembed.optim's
            (``lr=0.01``, ``betas=(0.9, 0.999)``, ...).
        dtype: float32 (default) or float64.
        seed, init: as :class:`tinyembed.nn.Embedding`: the initial table equals
            ``nn.Embedding(V, D, seed=seed, init=init)``'s. It is drawn here and sent to the
            shards block by block (``'normal'`` and ``'uniform'``; other initializers draw it whole).
        address: a Ray cluster to join (``"host:port"``); None starts Ray on this machine.
        num_cpus: the CPU share of each actor (default 0.25: 8 shards fit on 2 cores).
        timeout: seconds a call may take before :class:`ShardTimeoutError`.
        servers: actors to place the shards on (:class:`ShardServers`, at least N of them,
            shared with other tables); by default the table starts its own, and ``close()``
            stops them.

    Shape:
        input (*) integer ids -> output (*, embedding_dim).

    Examples (each table starts its own actors; ``close()`` stops them)::

        t = ShardedEmbedding(10_000, 64, num_shards=4, plan="hashed-row", optimizer="sgd", lr=0.1, seed=0)
        x = t(ids)                # Tensor (..., 64)
        x.backward(g); t.step()   # each shard updates its rows
        t.save("ckpt"); t.close()
        t = ShardedEmbedding.load("ckpt", num_shards=2)
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, num_shards: int = 2, plan: str = "row",
                 optimizer: str = "sgd", *, dtype=np.float32, seed: int | None = None, init="normal",
                 address: str | None = None, num_cpus: float = DEFAULT_NUM_CPUS, timeout: float = 60.0,
                 servers: ShardServers | None = None, _weight: np.ndarray | None = None, **optimizer_kwargs):
        dtype = check_float_dtype(dtype)
        layout = plan_table("table", num_embeddings, embedding_dim, num_shards, plan, dtype.itemsize)
        options = optimizer_options(optimizer, layout.embedding_dim, dtype, optimizer_kwargs)
        if _weight is None:
            draw = _row_blocks(init, layout.num_embeddings, layout.embedding_dim, seed, dtype)
        elif _weight.shape != (layout.num_embeddings, layout.embedding_dim):
            raise ValueError(f"_weight has shape {_weight.shape}, expected ({num_embeddings}, {embedding_dim})")
        if servers is not None and len(servers) < len(layout.shards):
            raise ValueError(f"num_shards={num_shards} needs as many servers, got {len(servers)}")
        # Everything is checked: now start the actors.
        rows = draw if _weight is None else _block_reader(_weight.astype(dtype, copy=False))
        tables = open_tables(servers, num_shards, {"table": layout}, dtype, optimizer, options,
                             lambda tables: tables.init_rows("table", rows), num_cpus=num_cpus, address=address,
                             timeout=timeout)
        self._attach(tables, "table", plan)

    @classmethod
    def _of(cls, tables: ShardedTables, name: str, plan: str) -> ShardedEmbedding:
        """A table of a set made elsewhere (a collection, a checkpoint); it does not own the servers."""
        table = cls.__new__(cls)
        table._attach(tables, name, plan)
        return table

    def _attach(self, tables: ShardedTables, name: str, plan: str) -> None:
        self._tables = tables
        self.name = name
        self.plan = plan
        layout = tables.layouts[name]
        self.num_embeddings, self.embedding_dim = layout.num_embeddings, layout.embedding_dim
        # The table in the autograd graph: a leaf whose .grad collects the row-sparse gradient.
        # It holds no rows (they live on the shards), so its data is empty.
        self.weight = Tensor(np.empty((0, self.embedding_dim), dtype=tables.dtype), requires_grad=True)

    @classmethod
    def from_pretrained(cls, embeddings, num_shards: int = 2, plan: str = "row", optimizer: str = "sgd",
                        **kwargs) -> ShardedEmbedding:
        """A sharded table holding ``embeddings`` (V, D), trained by ``optimizer``.

        The rows are checked (2-D, float, finite) before any actor starts; float32 and
        float64 keep their dtype, other input becomes float32, as :meth:`nn.Embedding.from_pretrained`.
        """
        weight = pretrained_weight(embeddings)
        kwargs.setdefault("dtype", weight.dtype)
        return cls(weight.shape[0], weight.shape[1], num_shards, plan, optimizer, _weight=weight, **kwargs)

    # -- lookups ---------------------------------------------------------------------------------
    def __call__(self, ids) -> Tensor:
        return self.forward(ids)

    def forward(self, ids) -> Tensor:
        """Rows of ``ids`` as a Tensor in the graph (its backward fills ``self.weight.grad``)."""
        data, checked = self._tables.lookup({self.name: ids})[self.name]
        return self._output(data, checked)

    def _output(self, data: np.ndarray, ids: np.ndarray) -> Tensor:
        if not (is_grad_enabled() and self.weight.requires_grad):
            return Tensor(data)
        shape = (self.num_embeddings, self.embedding_dim)
        rows = ids.reshape(-1)

        def backward(g):  # (*ids.shape, D) -> one summed row per distinct id, as nn.Embedding(sparse=True)
            return (RowSparseGrad.from_rows(rows, g.reshape(rows.size, shape[1]), shape),)

        return Tensor._from_op(data, (self.weight,), backward, "sharded_embedding", saved=())

    def lookup(self, ids) -> np.ndarray:
        """Rows of ``ids`` as an array, outside the graph: (*ids.shape, D)."""
        return self._tables.lookup({self.name: ids})[self.name][0]

    # -- training ------------------------------------------------------------------------------
    @property
    def grad(self) -> RowSparseGrad | None:
        """The gradient collected since the last step (None if there is none)."""
        grad = self.weight.grad
        if grad is not None and not isinstance(grad, RowSparseGrad):
            # Only this table's lookups reach its weight; a dense gradient came from using the
            # (empty) weight itself in an expression.
            raise TypeError(f"table {self.name!r} has a dense gradient {grad.shape}: use the table's lookups, "
                            "not its weight, in the graph")
        return grad

    def step(self) -> None:
        """Apply the optimizer to the collected gradient on the shards, and spend it. No gradient:
        nothing happens (as an optimizer skips a parameter without ``.grad``)."""
        grad = self.grad
        if grad is None:
            return
        self._tables.step({self.name: grad})
        self.weight.grad = None

    def zero_grad(self) -> None:
        """Drop the collected gradient without applying it."""
        self.weight.grad = None

    @property
    def lr(self) -> float:
        return float(self._tables.options[self.name]["lr"])

    @lr.setter
    def lr(self, value: float) -> None:
        self._tables.set_options(self.name, lr=value)

    @property
    def optimizer(self) -> str:
        return self._tables.optimizer

    @property
    def optimizer_options(self) -> dict[str, Any]:
        """The optimizer's hyper-parameters, the defaults included."""
        return dict(self._tables.options[self.name])

    # -- inspection ------------------------------------------------------------------------------
    def to_dense(self) -> np.ndarray:
        """The whole table, gathered from the shards: (V, D)."""
        return self._tables.read(self.name)[0]["weight"]

    def optimizer_state(self) -> dict[str, Any]:
        """The optimizer's state gathered at full size, as one table's optimizer holds it:
        SparseAdam ``{"step", "exp_avg" (V, D), "exp_avg_sq" (V, D)}``, RowWiseAdagrad ``{"sum" (V,)}``."""
        arrays, counters = self._tables.read(self.name)
        arrays.pop("weight")
        return {**counters, **arrays}

    @property
    def shards(self) -> tuple[Shard, ...]:
        """Where the table lives: the planner's shards (rows, columns, device)."""
        return self._tables.layouts[self.name].shards

    @property
    def layout(self) -> TableLayout:
        """The shards and the routing of ids to them."""
        return self._tables.layouts[self.name]

    @property
    def num_shards(self) -> int:
        return len(self.shards)

    def stats(self, reset: bool = False) -> dict[str, Any]:
        """Per shard its block and traffic (ids and rows received and sent, gradient rows, bytes),
        and the driver's time per phase of lookups and steps; ``reset`` starts the counts again."""
        stats = self._tables.stats(reset)
        stats["shards"] = [s for s in stats["shards"] if s["table"] == self.name]
        return stats

    # -- checkpoints ---------------------------------------------------------------------------
    def save(self, path, *, replace: bool = False):
        """Write a checkpoint directory: one safetensors file per shard (rows and optimizer state),
        each written by its shard, and ``manifest.json``; all into a temporary directory
        renamed whole. Returns the directory's path."""
        from .checkpoint import save_tables  # noqa: PLC0415 - checkpoint builds tables of this class

        return save_tables(self._tables, path, [self.name], {self.name: self.plan}, replace=replace)

    @classmethod
    def load(cls, path, num_shards: int | None = None, plan: str | None = None, *, table: str | None = None,
             address: str | None = None, num_cpus: float = DEFAULT_NUM_CPUS, timeout: float = 60.0,
             servers: ShardServers | None = None) -> ShardedEmbedding:
        """A table from a checkpoint, on ``num_shards`` actors under ``plan`` (default: as saved).

        Every file is checked against the manifest before any actor starts; the rows and the
        optimizer state are then re-sharded to the new layout. ``table`` picks one table of a
        collection's checkpoint; the other arguments are as the constructor's.
        """
        from .checkpoint import load_table  # noqa: PLC0415

        return load_table(cls, path, num_shards=num_shards, plan=plan, table=table, address=address,
                          num_cpus=num_cpus, timeout=timeout, servers=servers)

    def load_state(self, path) -> None:
        """Set this table's rows and optimizer state from a checkpoint of a table of the same
        shape (any shard count or plan); refused, naming both shapes, otherwise."""
        from .checkpoint import restore_tables  # noqa: PLC0415

        restore_tables(self._tables, path, {self.name: self.name})

    # -- lifetime ------------------------------------------------------------------------------
    def restore(self, path) -> None:
        """Recover from a lost shard: replace the dead actors with new ones and load every shard
        from the checkpoint at ``path`` (checked first), so the table is as it was saved.
        The steps since that checkpoint are lost with the shard; the surviving shards go back too."""
        from .checkpoint import restore_tables  # noqa: PLC0415

        restore_tables(self._tables, path, {self.name: self.name}, restart=True)
        self.zero_grad()  # a gradient of the steps the checkpoint does not hold

    def close(self) -> None:
        """Stop this table's actors (a table of a collection: drop its shards)."""
        self._tables.close()

    def __enter__(self) -> ShardedEmbedding:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        options = self._tables.options[self.name]
        return (f"ShardedEmbedding({self.num_embeddings}, {self.embedding_dim}, num_shards={self.num_shards}, "
                f"plan={self.plan!r}, optimizer={self.optimizer!r}, lr={options['lr']:g})")


def _row_blocks(init, num_rows: int, dim: int, seed: int | None, dtype: np.dtype):
    """``draw(k)``: the next k rows of ``nn.Embedding(num_rows, dim, seed=seed, init=init)``'s table."""
    check_positive_int(num_rows, "num_embeddings")
    rng = np.random.default_rng(seed)
    initializer = init_.get(init)
    if isinstance(init, str) and init in _STREAMED_INITS:
        return lambda k: initializer((k, dim), rng, dtype)
    return _block_reader(initializer((num_rows, dim), rng, dtype))


def _block_reader(weight: np.ndarray):
    """``draw(k)`` over the rows of ``weight``, in order."""
    check_type(weight, np.ndarray, "weight")
    position = [0]

    def draw(k: int) -> np.ndarray:
        block = weight[position[0]:position[0] + k]
        position[0] += k
        return block

    return draw
