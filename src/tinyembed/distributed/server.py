"""ShardServer: the process behind one Ray actor, holding shards of any number of tables.

A plain class (:mod:`.runtime` makes it a Ray actor), so it can be read and tested on its
own. Every method takes one request for all the shards it holds, keyed by shard key, so
a batch costs one round trip per server whatever the number of tables. It counts what
arrives and leaves, per shard: rows and bytes of ids, of looked-up rows and of gradients,
the figures :meth:`ShardedEmbedding.stats` reports and the benchmark sets beside the
planner's prediction. Each shard writes its own checkpoint file (:meth:`ShardServer.save`).
"""

from __future__ import annotations

import hashlib
import os
import socket
from collections import Counter
from typing import Any

import numpy as np

from ..io import safetensors
from .shard import TableShard

__all__ = ["COUNTERS", "ShardServer", "file_sha256"]

# What each shard counts, per request kind; bytes are those of the arrays' data.
COUNTERS = ("lookups", "ids_received", "id_bytes_received", "rows_sent", "row_bytes_sent",
            "steps", "grad_rows_received", "grad_bytes_received", "exchange_bytes")


class ShardServer:
    """Shards of several tables, each under a key; the counters of their traffic.

    Args:
        index: the server's number (the planner's device).
    """

    def __init__(self, index: int):
        self.index = index
        self.shards: dict[str, TableShard] = {}
        self.traffic: dict[str, Counter] = {}
        self._pending: dict[str, np.ndarray] = {}  # gradients held between square_sums and step

    def ping(self) -> dict[str, Any]:
        """Who serves: index, process id and host (a test kills the process by its pid)."""
        return {"index": self.index, "pid": os.getpid(), "host": socket.gethostname()}

    def create(self, specs: dict[str, dict]) -> None:
        """New zero shards: key -> {num_rows, num_cols, dtype, optimizer, options}."""
        for key, spec in specs.items():
            self.shards[key] = TableShard(spec["num_rows"], spec["num_cols"], spec["dtype"], spec["optimizer"],
                                          spec["options"])
            self.traffic[key] = Counter()

    def drop(self, keys: list[str]) -> None:
        for key in keys:
            self.shards.pop(key, None)
            self.traffic.pop(key, None)

    def write(self, items: dict[str, tuple[np.ndarray, dict[str, np.ndarray], dict[str, int]]]) -> None:
        """Set rows: key -> (local rows, {array name: values}, {counter: value})."""
        for key, (rows, arrays, counters) in items.items():
            self.shards[key].write(rows, arrays, counters)

    def read(self, items: dict[str, np.ndarray | None]) -> dict[str, tuple[dict[str, np.ndarray], dict[str, int]]]:
        """Rows of the weight and state: key -> local rows (None: all) -> (arrays, counters)."""
        out = {}
        for key, rows in items.items():
            shard = self.shards[key]
            arrays = shard.arrays() if rows is None else {k: v[rows] for k, v in shard.arrays().items()}
            out[key] = (arrays, shard.counters())
        return out

    def lookup(self, items: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The rows asked for: key -> (k,) local rows -> (k, cols)."""
        out = {}
        for key, rows in items.items():
            out[key] = self.shards[key].lookup(rows)
            t = self.traffic[key]
            t["lookups"] += 1
            t["ids_received"] += len(rows)
            t["id_bytes_received"] += rows.nbytes
            t["rows_sent"] += len(rows)
            t["row_bytes_sent"] += out[key].nbytes
        return out

    def square_sums(self, items: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, np.ndarray]:
        """Each slice's share of a row statistic: key -> (rows, grad) -> (k,) float64.

        The gradient is kept for the :meth:`step` that follows, so it travels once.
        """
        out = {}
        for key, (rows, grad) in items.items():
            out[key] = self.shards[key].square_sums(rows, grad)
            self._pending[key] = grad
            t = self.traffic[key]
            t["grad_rows_received"] += len(rows)
            t["grad_bytes_received"] += rows.nbytes + grad.nbytes
            t["exchange_bytes"] += out[key].nbytes
        return out

    def step(self, items: dict[str, tuple[np.ndarray, np.ndarray | None, dict, np.ndarray | None]]) -> None:
        """One optimizer step per shard: key -> (rows, grad, options, whole-row statistic).

        ``grad`` is None when :meth:`square_sums` already delivered it for this step.
        """
        for key, (rows, grad, options, mean_sq) in items.items():
            shard = self.shards[key]
            t = self.traffic[key]
            if grad is None:
                grad = self._pending.pop(key)
            else:
                t["grad_rows_received"] += len(rows)
                t["grad_bytes_received"] += rows.nbytes + grad.nbytes
            if mean_sq is not None:
                t["exchange_bytes"] += mean_sq.nbytes
            shard.step(rows, grad, options, mean_sq)
            t["steps"] += 1

    def stats(self, keys: list[str], reset: bool = False) -> dict[str, dict[str, int]]:
        """The traffic counters of ``keys`` (zeros for none yet); ``reset`` starts them again."""
        out = {key: {name: int(self.traffic[key][name]) for name in COUNTERS} for key in keys}
        if reset:
            for key in keys:
                self.traffic[key].clear()
        return out

    def save(self, items: dict[str, tuple[str, dict[str, str]]]) -> dict[str, dict[str, Any]]:
        """Write each shard's safetensors file: key -> (path, metadata) -> {bytes, sha256}.

        The file holds the weight block and the optimizer's arrays; its counters go into the
        metadata. The caller writes into a temporary directory it renames whole.
        """
        out = {}
        for key, (path, metadata) in items.items():
            shard = self.shards[key]
            meta = {**metadata, **{f"counter.{k}": str(v) for k, v in shard.counters().items()}}
            safetensors.save(shard.arrays(), path, metadata=meta)
            out[key] = {"bytes": os.path.getsize(path), "sha256": file_sha256(path)}
        return out


def file_sha256(path) -> str:
    """The hex sha256 of a file's bytes (a checkpoint's manifest records each shard file's)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
