"""The driver's side of sharded tables: validate and route, one request per server, assemble.

:class:`ShardedTables` holds the layouts of one or more tables placed on a set of
:class:`~.runtime.ShardServers` and moves rows between this process and the shards:

* a lookup checks every table's ids first (a bad id raises before any shard is asked),
  deduplicates them, sends each server one request with all its shards' rows, waits for
  all servers at once, and assembles the rows in the ids' order;
* a step sends each server one request with its shards' rows of the coalesced gradients
  (a RowSparseGrad: one row per distinct id) and the optimizer's current options; every
  shard steps, rows or not, as one table's optimizer counts every step;
* the times of the three phases (validate and route, Ray round trip, assemble) add up in
  :attr:`ShardedTables.timings`, the latency breakdown the benchmark prints.
"""

from __future__ import annotations

import secrets
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .. import kernels
from ..sparse import RowSparseGrad
from .layout import TableLayout
from .runtime import ShardServers
from .shard import OPTIMIZERS, optimizer_options

__all__ = ["PHASES", "ShardedTables", "open_tables"]

PHASES = ("validate_route_s", "round_trip_s", "assemble_s")


class ShardedTables:
    """Tables placed on shard servers, with their optimizer.

    Args:
        servers: the actors; shard ``i`` of a table lives on server ``layout.shards[i].device``.
        layouts: table name -> layout.
        dtype: float32 or float64, every table's.
        optimizer: a name of :data:`~.shard.OPTIMIZERS`; options: its full hyper-parameters.
        owns_servers: :meth:`close` stops the servers (else it only drops this set's shards).
    """

    def __init__(self, servers: ShardServers, layouts: dict[str, TableLayout], dtype, optimizer: str,
                 options: dict, owns_servers: bool):
        self.servers = servers
        self.layouts = dict(layouts)
        self.dtype = np.dtype(dtype)
        self.optimizer = optimizer
        self.options = {name: dict(options) for name in self.layouts}
        self.steps = {name: 0 for name in self.layouts}
        self.owns_servers = owns_servers
        self.closed = False
        self.timings: dict[str, dict[str, float]] = defaultdict(lambda: dict.fromkeys(("calls",) + PHASES, 0.0))
        uid = secrets.token_hex(4)  # tables sharing servers never share keys
        self.keys = {name: [f"{uid}/{name}/{i}" for i in range(len(layout.shards))]
                     for name, layout in self.layouts.items()}
        for name, layout in self.layouts.items():
            for shard in layout.shards:
                if not 0 <= shard.device < len(servers):
                    raise ValueError(f"table {name!r} has a shard on device {shard.device}, but there are "
                                     f"{len(servers)} servers")
        for name, layout in self.layouts.items():
            for key, shard in zip(self.keys[name], layout.shards, strict=True):
                servers.owners.setdefault(shard.device, []).append(f"shard {key.split('/', 1)[1]}")
        self._create(range(len(servers)))

    def _create(self, devices) -> None:
        """Create this set's (zero) shards on the servers ``devices``."""
        specs: dict[int, dict[str, dict]] = defaultdict(dict)
        for name, layout in self.layouts.items():
            for key, shard in zip(self.keys[name], layout.shards, strict=True):
                if shard.device in devices:
                    specs[shard.device][key] = {"num_rows": shard.num_rows, "num_cols": shard.num_cols,
                                                "dtype": self.dtype.name, "optimizer": self.optimizer,
                                                "options": self.options[name]}
        self.servers.call("create", dict(specs), "create the shards")

    def restart_lost(self) -> None:
        """Replace lost actors with new ones holding this set's shards, empty (fill them from a checkpoint)."""
        self._check_open()
        if not self.owns_servers:
            raise RuntimeError("these tables share their actors with others: restore the set that made them")
        if self.servers.lost:
            self._create(self.servers.replace_lost())

    # -- lookups ---------------------------------------------------------------------------------
    def lookup(self, ids_by_table: Mapping[str, Any]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Rows of every table's ids, in one request per server.

        Args:
            ids_by_table: table name -> integer ids of any shape.

        Returns:
            table name -> (rows (*ids.shape, D), the checked ids as int64 (*ids.shape)).

        Raises:
            KeyError / IndexError / TypeError: an unknown table, an id out of range (named with
                its position), non-integer ids. Raised before any shard is asked.
        """
        start = time.perf_counter()
        checked, uniques = {}, {}
        payloads: dict[int, dict[str, np.ndarray]] = defaultdict(dict)
        for name, raw in ids_by_table.items():
            layout = self._layout(name)
            ids = kernels.check_ids(raw, layout.num_embeddings, f"ids of table {name!r}")
            unique, inverse = np.unique(ids.reshape(-1), return_inverse=True)
            checked[name], uniques[name] = (ids, inverse), unique
        routes = {name: self.layouts[name].lookup_routes(unique) for name, unique in uniques.items()}
        for name, table_routes in routes.items():
            for route in table_routes:
                if len(route.local_rows):
                    shard = self.layouts[name].shards[route.shard]
                    payloads[shard.device][self.keys[name][route.shard]] = route.local_rows
        routed = time.perf_counter()
        results = self.servers.call("lookup", dict(payloads), "lookup")
        returned = time.perf_counter()
        out = {}
        for name, table_routes in routes.items():
            layout = self.layouts[name]
            rows = np.empty((len(uniques[name]), layout.embedding_dim), dtype=self.dtype)  # (k, D)
            for route in table_routes:
                if len(route.local_rows):
                    shard = layout.shards[route.shard]
                    rows[route.positions, shard.col_start:shard.col_stop] = \
                        results[shard.device][self.keys[name][route.shard]]
            ids, inverse = checked[name]
            # NumPy's single-threaded take, not the kernels' parallel gather: its threads keep spinning
            # after the copy, and on a small machine they take the cores Ray's messages need (the round
            # trip measured 7 ms against 13-17 ms with 8,192 ids on 2 cores).
            out[name] = (np.take(rows, inverse.reshape(ids.shape), axis=0), ids)  # (*ids.shape, D)
        self._time("lookup", start, routed, returned)
        return out

    # -- updates ---------------------------------------------------------------------------------
    def step(self, grads: Mapping[str, RowSparseGrad]) -> None:
        """Apply each table's optimizer to its gradient (coalesced: one row per id), on the shards."""
        start = time.perf_counter()
        spec = OPTIMIZERS[self.optimizer]
        payloads: dict[int, dict[str, Any]] = defaultdict(dict)
        shares: dict[int, dict[str, Any]] = defaultdict(dict)  # slices that must first send their part
        waiting: list[tuple[int, str, str, np.ndarray]] = []
        for name, grad in grads.items():
            layout = self._layout(name)
            if grad.shape != (layout.num_embeddings, layout.embedding_dim) or grad.dtype != self.dtype:
                raise ValueError(f"table {name!r} is {layout.num_embeddings} x {layout.embedding_dim} {self.dtype}, "
                                 f"its gradient {grad.shape} {grad.dtype}")
            options = self.options[name]
            sliced = spec.row_statistic and len(layout.dim_slices) > 1
            # Row-wise Adagrad on column slices needs mean(g**2) over the whole row. Without weight
            # decay the gradient alone gives it, computed here as the optimizer does; with it, each
            # slice first sends its share of the sum (one more round trip).
            exchange = sliced and options["weight_decay"] != 0
            mean_sq = np.mean(grad.values * grad.values, axis=1) if sliced and not exchange else None
            for route in layout.update_routes(grad.indices):
                shard = layout.shards[route.shard]
                key = self.keys[name][route.shard]
                values = np.ascontiguousarray(grad.values[route.positions, shard.col_start:shard.col_stop])
                statistic = None if mean_sq is None else mean_sq[route.positions]
                payloads[shard.device][key] = (route.local_rows, values, options, statistic)
                if exchange:  # the values go with the shares, and the shard keeps them for this step
                    shares[shard.device][key] = (route.local_rows, values)
                    waiting.append((shard.device, key, name, route.positions))
        routed = time.perf_counter()
        if waiting:
            self._exchange_row_statistic(shares, waiting, payloads, grads)
        self.servers.call("step", dict(payloads), "step")
        for name in grads:
            self.steps[name] += 1
        self._time("step", start, routed, time.perf_counter())

    def _exchange_row_statistic(self, shares, waiting, payloads, grads) -> None:
        """Fill in mean((g + weight_decay * w)**2) over whole rows from every slice's share."""
        parts = self.servers.call("square_sums", dict(shares), "step (row sums of the column slices)")
        totals = {name: np.zeros(grad.nnz_rows) for name, grad in grads.items()}  # float64 sums
        for server, key, name, positions in waiting:
            totals[name][positions] += parts[server][key]
        for server, key, name, positions in waiting:
            rows, _, options, _ = payloads[server][key]
            mean_sq = (totals[name][positions] / self.layouts[name].embedding_dim).astype(self.dtype)
            payloads[server][key] = (rows, None, options, mean_sq)

    def set_options(self, name: str, **changes) -> None:
        """Change a table's hyper-parameters (the learning rate, say), checked by the optimizer."""
        layout = self._layout(name)
        self.options[name] = optimizer_options(self.optimizer, layout.embedding_dim, self.dtype,
                                               {**self.options[name], **changes})

    # -- rows in and out ---------------------------------------------------------------------------
    def write(self, name: str, rows: np.ndarray, arrays: dict[str, np.ndarray],
              counters: dict[str, int] | None = None) -> None:
        """Set table rows ``rows`` ((k,) int64, unique) on every shard holding them (every replica).

        Args:
            arrays: name -> (k, D) per-value arrays (the weight, Adam's moments) or (k,)
                per-row arrays (Adagrad's sums), as the shards name them.
            counters: the state's counters (SparseAdam's step), set on every shard.
        """
        layout = self._layout(name)
        payloads: dict[int, dict[str, Any]] = defaultdict(dict)
        for route in layout.update_routes(rows):
            shard = layout.shards[route.shard]
            block = {k: (v[route.positions, shard.col_start:shard.col_stop] if v.ndim == 2 else v[route.positions])
                     for k, v in arrays.items()}
            payloads[shard.device][self.keys[name][route.shard]] = (route.local_rows, block, counters or {})
        self.servers.call("write", dict(payloads), f"write rows of table {name!r}")

    def read(self, name: str, rows: np.ndarray | None = None) -> tuple[dict[str, np.ndarray], dict[str, int]]:
        """Table rows ``rows`` (None: all) of the weight and every state array, at full width.

        Returns:
            ({name: (k, D) or (k,) array}, {counter: value}).
        """
        layout = self._layout(name)
        rows = np.arange(layout.num_embeddings, dtype=np.int64) if rows is None else rows
        primary = set(layout.primary_shards())
        routes = [r for r in layout.update_routes(rows) if r.shard in primary]
        payloads: dict[int, dict[str, Any]] = defaultdict(dict)
        for route in routes:
            payloads[layout.shards[route.shard].device][self.keys[name][route.shard]] = route.local_rows
        results = self.servers.call("read", dict(payloads), f"read table {name!r}")
        arrays: dict[str, np.ndarray] = {}
        counters: dict[str, int] = {}
        for route in routes:
            shard = layout.shards[route.shard]
            block, counters = results[shard.device][self.keys[name][route.shard]]
            for k, v in block.items():
                if k not in arrays:
                    shape = (len(rows), layout.embedding_dim) if v.ndim == 2 else (len(rows),)
                    arrays[k] = np.empty(shape, dtype=v.dtype)
                if v.ndim == 2:
                    arrays[k][route.positions, shard.col_start:shard.col_stop] = v
                else:
                    arrays[k][route.positions] = v
        return arrays, counters

    def init_rows(self, name: str, draw: Callable[[int], np.ndarray], block_rows: int = 1 << 16) -> None:
        """Fill a table block by block: ``draw(k)`` gives the next k rows (k, D), in row order."""
        layout = self._layout(name)
        for start in range(0, layout.num_embeddings, block_rows):
            stop = min(start + block_rows, layout.num_embeddings)
            self.write(name, np.arange(start, stop, dtype=np.int64), {"weight": draw(stop - start)})

    # -- bookkeeping ---------------------------------------------------------------------------------
    def stats(self, reset: bool = False) -> dict[str, Any]:
        """Per shard: where it is, its block, and its traffic counters; and the driver's timings."""
        self._check_open()
        keys_by_server: dict[int, list[str]] = defaultdict(list)
        for name, layout in self.layouts.items():
            for key, shard in zip(self.keys[name], layout.shards, strict=True):
                keys_by_server[shard.device].append(key)
        counters = self.servers.call("stats", {s: (keys, reset) for s, keys in keys_by_server.items()}, "stats")
        shards = []
        for name, layout in self.layouts.items():
            for i, (key, shard) in enumerate(zip(self.keys[name], layout.shards, strict=True)):
                shards.append({"table": name, "shard": i, "device": shard.device,
                               "rows": shard.num_rows, "cols": shard.num_cols,
                               "row_range": [shard.row_start, shard.row_stop, shard.row_step],
                               "col_range": [shard.col_start, shard.col_stop], **counters[shard.device][key]})
        timings = {op: dict(t) for op, t in self.timings.items()}
        if reset:
            self.timings.clear()
        return {"shards": shards, "timings": timings}

    def close(self) -> None:
        """Stop the servers if this set owns them, else drop its shards from them. Safe to call twice."""
        if self.closed:
            return
        self.closed = True
        if self.owns_servers:
            self.servers.close()
        elif not self.servers.lost:
            by_server: dict[int, list[str]] = defaultdict(list)
            for name, layout in self.layouts.items():
                for key, shard in zip(self.keys[name], layout.shards, strict=True):
                    by_server[shard.device].append(key)
                    held = self.servers.owners.get(shard.device, [])
                    if f"shard {key.split('/', 1)[1]}" in held:
                        held.remove(f"shard {key.split('/', 1)[1]}")
            self.servers.call("drop", dict(by_server), "close")

    def _check_open(self) -> None:
        if self.closed:
            raise RuntimeError(f"the sharded tables {', '.join(repr(n) for n in self.layouts)} are closed")

    def _layout(self, name: str) -> TableLayout:
        self._check_open()
        if name not in self.layouts:
            raise KeyError(f"no table {name!r}; the tables are {', '.join(repr(n) for n in self.layouts)}")
        return self.layouts[name]

    def _time(self, op: str, start: float, routed: float, returned: float) -> None:
        t = self.timings[op]
        end = time.perf_counter()
        t["calls"] += 1
        t["validate_route_s"] += routed - start
        t["round_trip_s"] += returned - routed
        t["assemble_s"] += end - returned


def open_tables(servers: ShardServers | None, num_servers: int, layouts: dict[str, TableLayout], dtype,
                optimizer: str, options: dict, fill: Callable[[ShardedTables], None], *, num_cpus: float,
                address: str | None, timeout: float) -> ShardedTables:
    """Tables over ``servers``, or over ``num_servers`` new ones they then own; ``fill(tables)`` sends
    their rows. If anything fails, servers started here are closed: no actor is left running."""
    owns = servers is None
    if servers is None:
        servers = ShardServers(num_servers, num_cpus=num_cpus, address=address, timeout=timeout)
    try:
        tables = ShardedTables(servers, layouts, dtype, optimizer, options, owns_servers=owns)
        fill(tables)
    except BaseException:
        if owns:
            servers.close()
        raise
    return tables
