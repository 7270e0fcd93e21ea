"""Checkpoints of sharded tables: a safetensors file per shard and a JSON manifest, never pickle.

A checkpoint is a directory::

    manifest.json                       format, optimizer, and per table: shape, dtype, plan,
                                        hyper-parameters, step, and each shard's file, rows,
                                        columns, tensors, byte size and sha256
    t0-NAME.shard-00000.safetensors     shard 0's block: "weight" (rows, cols) and the
    t0-NAME.shard-00001.safetensors     optimizer's arrays ("exp_avg", "exp_avg_sq" or "sum");
    ...                                 its counters (SparseAdam's step) in the metadata

Each shard writes its own file (on its actor); everything goes into a temporary
directory renamed whole (:func:`tinyembed.io.files.atomic_directory`), so a checkpoint is
complete or absent. A data-parallel table stores one copy of each block.

Loading checks everything before anything is loaded: every file is present, of the
recorded size and sha256, and holds the tensors, shapes, dtypes and counters the manifest
says (a :class:`CheckpointError` names the file otherwise). The rows are then read in
blocks from the memory-mapped files and re-sharded to any shard count or plan.
:func:`load_embedding` and :func:`save_embedding` move a checkpoint into one in-process
``nn.Embedding`` with its optimizer, and back.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..checks import check_float_dtype
from ..io import safetensors
from ..io.files import atomic_directory, write_atomic
from ..nn import Embedding
from ..optim import Optimizer
from ..plan.sharding import Shard
from .engine import ShardedTables, open_tables
from .errors import CheckpointError
from .layout import PLANS, TableLayout, plan_table
from .runtime import ShardServers
from .server import file_sha256
from .shard import OPTIMIZERS, optimizer_options

__all__ = ["MANIFEST", "Checkpoint", "load_embedding", "read_checkpoint", "save_embedding", "save_tables"]

MANIFEST = "manifest.json"
FORMAT = "tinyembed-sharded-checkpoint"
VERSION = 1
_BLOCK_ROWS = 1 << 16  # rows read from the files and sent to the shards at a time


def _file_name(table_index: int, name: str, shard: int) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:64]
    return f"t{table_index}-{safe}.shard-{shard:05d}.safetensors"


def _state_layout(optimizer: str, dtype: np.dtype, options: dict) -> tuple[dict[str, tuple[int, np.dtype]],
                                                                           list[str]]:
    """A shard's arrays (name -> (ndim: 2 per value, 1 per row; dtype)) and counters, the weight first."""
    state = OPTIMIZERS[optimizer].initial_state((1, 1), dtype, options)
    arrays = {"weight": (2, dtype), **{k: (v.ndim, v.dtype) for k, v in state.items() if isinstance(v, np.ndarray)}}
    return arrays, [k for k, v in state.items() if not isinstance(v, np.ndarray)]


# -- writing ---------------------------------------------------------------------------------------
def _table_entry(name: str, layout: TableLayout, dtype: np.dtype, plan: str, options: dict, steps: int,
                 counters: dict[str, int], files: list[dict]) -> dict[str, Any]:
    return {"num_embeddings": layout.num_embeddings, "embedding_dim": layout.embedding_dim, "dtype": dtype.name,
            "plan": plan, "strategy": layout.strategy, "options": options, "step": steps, "counters": counters,
            "shards": files}


def _shard_entry(file: str, index: int, shard: Shard, tensors: dict[str, list[int]], info: dict) -> dict[str, Any]:
    return {"file": file, "shard": index, "device": shard.device,
            "rows": [shard.row_start, shard.row_stop, shard.row_step], "cols": [shard.col_start, shard.col_stop],
            "tensors": tensors, "bytes": info["bytes"], "sha256": info["sha256"]}


def _tensor_shapes(shard: Shard, arrays: dict[str, tuple[int, np.dtype]]) -> dict[str, list[int]]:
    return {k: [shard.num_rows, shard.num_cols] if ndim == 2 else [shard.num_rows] for k, (ndim, _) in arrays.items()}


def save_tables(tables: ShardedTables, path, names: list[str], plans: dict[str, str], *, replace: bool = False,
                planner: dict | None = None) -> Path:
    """Write tables ``names`` of a set as a checkpoint at ``path`` (see the module docstring).

    Args:
        plans: table -> the plan's name, recorded so that a load can keep it.
        planner: the planner's plan as a dict (a collection records the plan it ran).
        replace: replace an existing checkpoint at ``path``.

    Returns:
        The checkpoint directory.
    """
    out = Path(os.path.abspath(path))
    arrays, _ = _state_layout(tables.optimizer, tables.dtype, next(iter(tables.options.values())))
    with atomic_directory(out, replace=replace) as staging:
        requests: dict[int, dict[str, tuple[str, dict[str, str]]]] = {}
        files: dict[str, tuple[int, str, Shard]] = {}
        for t, name in enumerate(names):
            layout = tables.layouts[name]
            for i in layout.primary_shards():
                file, key, shard = _file_name(t, name, i), tables.keys[name][i], layout.shards[i]
                metadata = {"format": FORMAT, "table": name, "shard": str(i)}
                requests.setdefault(shard.device, {})[key] = (str(staging / file), metadata)
                files[key] = (i, file, shard)
        written = tables.servers.call("save", requests, f"save the checkpoint {out}")  # each shard its own file
        info = {key: result for by_key in written.values() for key, result in by_key.items()}
        entries = {}
        for name in names:
            layout = tables.layouts[name]
            counters = tables.read(name, np.zeros(0, dtype=np.int64))[1]
            shard_files = [_shard_entry(file, i, shard, _tensor_shapes(shard, arrays), info[key])
                           for key, (i, file, shard) in files.items() if key in tables.keys[name]]
            entries[name] = _table_entry(name, layout, tables.dtype, plans[name], tables.options[name],
                                         tables.steps[name], counters, shard_files)
        manifest = {"format": FORMAT, "version": VERSION, "optimizer": tables.optimizer, "tables": entries,
                    "planner": planner}
        write_atomic(staging / MANIFEST, json.dumps(manifest, indent=1) + "\n")
    return out


# -- reading ---------------------------------------------------------------------------------------
@dataclass
class _StoredTable:
    name: str
    layout: TableLayout  # the stored blocks (one per replica set)
    dtype: np.dtype
    plan: str
    options: dict[str, Any]
    step: int
    counters: dict[str, int]
    files: list[Path]


class Checkpoint:
    """A checked checkpoint directory: its tables, and their rows read from the files.

    Use :func:`read_checkpoint` to open one.
    """

    def __init__(self, path: Path, manifest: dict[str, Any]):
        self.path = path
        self.manifest = manifest
        self.optimizer: str = manifest["optimizer"]
        self.tables: dict[str, _StoredTable] = {}
        self._arrays: dict[Path, dict[str, np.ndarray]] = {}
        where = path / MANIFEST
        if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
            raise CheckpointError(f"{where}: not a tinyembed sharded checkpoint of version {VERSION} "
                                  f"(format {manifest.get('format')!r}, version {manifest.get('version')!r})")
        if self.optimizer not in OPTIMIZERS:
            raise CheckpointError(f"{where}: unknown optimizer {self.optimizer!r}")
        for name, entry in manifest["tables"].items():
            self.tables[name] = self._check_table(name, entry)

    def _check_table(self, name: str, entry: dict) -> _StoredTable:
        where = self.path / MANIFEST
        try:
            dtype = check_float_dtype(entry["dtype"])
            options = optimizer_options(self.optimizer, entry["embedding_dim"], dtype, entry["options"])
            shards = [Shard(name, s["device"], *s["rows"], *s["cols"]) for s in entry["shards"]]
            layout = TableLayout(name, entry["num_embeddings"], entry["embedding_dim"], shards, entry["strategy"])
            step, counters = int(entry["step"]), {k: int(v) for k, v in entry["counters"].items()}
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(f"{where}: table {name!r} is not described correctly: {e}") from None
        if layout.replicated:
            raise CheckpointError(f"{where}: table {name!r} lists a block twice")
        arrays, counter_names = _state_layout(self.optimizer, dtype, options)
        if sorted(counters) != sorted(counter_names):
            raise CheckpointError(f"{where}: table {name!r} has counters {sorted(counters)}, a {self.optimizer} "
                                  f"table has {sorted(counter_names)}")
        files = []
        for s, shard in zip(entry["shards"], layout.shards, strict=True):
            file = self.path / str(s["file"])
            if file.parent != self.path:
                raise CheckpointError(f"{where}: shard file {s['file']!r} is outside the checkpoint")
            expected = {k: (tuple(v), arrays[k][1]) for k, v in _tensor_shapes(shard, arrays).items()}
            self._check_file(file, s, expected, {"table": name, "shard": str(s["shard"]),
                                                 **{f"counter.{k}": str(v) for k, v in counters.items()}})
            files.append(file)
        return _StoredTable(name, layout, dtype, entry["plan"], options, step, counters, files)

    @staticmethod
    def _check_file(file: Path, entry: dict, expected: dict[str, tuple[tuple, np.dtype]],
                    metadata: dict[str, str]) -> None:
        if not file.is_file():
            raise CheckpointError(f"{file}: missing (the manifest lists it)")
        size = file.stat().st_size
        if size != entry["bytes"]:
            raise CheckpointError(f"{file}: {size} bytes, the manifest says {entry['bytes']} (truncated or replaced)")
        if file_sha256(file) != entry["sha256"]:
            raise CheckpointError(f"{file}: its sha256 differs from the manifest's (the file was changed)")
        try:
            infos, meta = safetensors.read_header(file)
        except ValueError as e:
            raise CheckpointError(f"{file}: not a readable safetensors file: {e}") from None
        found = {k: (tuple(info.shape), np.dtype(safetensors.NUMPY_DTYPES.get(info.dtype, "V")))
                 for k, info in infos.items()}
        if found != expected:
            raise CheckpointError(f"{file}: holds {_describe(found)}, the manifest implies {_describe(expected)}")
        differs = {k: meta.get(k) for k, v in metadata.items() if meta.get(k) != v}
        if differs:
            raise CheckpointError(f"{file}: its metadata {differs} disagrees with the manifest {metadata}")

    def table(self, name: str | None) -> _StoredTable:
        """The table ``name``, or the only one."""
        if name is None:
            if len(self.tables) != 1:
                raise ValueError(f"{self.path} holds tables {sorted(self.tables)}: pass table=")
            return next(iter(self.tables.values()))
        if name not in self.tables:
            raise KeyError(f"{self.path} has no table {name!r}; it holds {sorted(self.tables)}")
        return self.tables[name]

    def read_rows(self, name: str, rows: np.ndarray) -> dict[str, np.ndarray]:
        """Table rows ``rows`` ((k,) int64) of the weight and state arrays at full width, from the files."""
        stored = self.tables[name]
        layout = stored.layout
        out: dict[str, np.ndarray] = {}
        for route in layout.update_routes(rows):
            shard = layout.shards[route.shard]
            for k, values in self._load(stored.files[route.shard]).items():
                if k not in out:
                    shape = (len(rows), layout.embedding_dim) if values.ndim == 2 else (len(rows),)
                    out[k] = np.empty(shape, dtype=values.dtype)
                if values.ndim == 2:
                    out[k][route.positions, shard.col_start:shard.col_stop] = values[route.local_rows]
                else:
                    out[k][route.positions] = values[route.local_rows]
        return out

    def _load(self, file: Path) -> dict[str, np.ndarray]:
        if file not in self._arrays:
            self._arrays[file] = safetensors.load(file)  # memory-mapped: only the rows read come from disk
        return self._arrays[file]


def _describe(tensors: dict[str, tuple[tuple, np.dtype]]) -> str:
    return ", ".join(f"{k} {list(shape)} {dtype}" for k, (shape, dtype) in sorted(tensors.items()))


def read_checkpoint(path) -> Checkpoint:
    """Open and check a checkpoint directory (every file against the manifest).

    Raises:
        CheckpointError: the manifest is missing or malformed, or a shard file is missing,
            truncated, changed or holds other tensors than the manifest implies; named.
    """
    root = Path(os.path.abspath(path))
    where = root / MANIFEST
    if not where.is_file():
        raise CheckpointError(f"{where}: missing: {root} is not a sharded checkpoint")
    try:
        manifest = json.loads(where.read_text(encoding="utf-8"))
        return Checkpoint(root, manifest)
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, AttributeError) as e:
        raise CheckpointError(f"{where}: malformed manifest: {type(e).__name__}: {e}") from None


def copy_rows(checkpoint: Checkpoint, name: str, tables: ShardedTables, target: str) -> None:
    """Send a stored table's rows and state to the shards of ``tables``' table ``target``, block by block."""
    stored = checkpoint.tables[name]
    for start in range(0, stored.layout.num_embeddings, _BLOCK_ROWS):
        rows = np.arange(start, min(start + _BLOCK_ROWS, stored.layout.num_embeddings), dtype=np.int64)
        tables.write(target, rows, checkpoint.read_rows(name, rows), stored.counters)
    tables.options[target] = dict(stored.options)
    tables.steps[target] = stored.step


def check_fits(stored: _StoredTable, layout: TableLayout, dtype: np.dtype, optimizer: str, checkpoint: Checkpoint,
               target: str) -> None:
    """Refuse to load a stored table into a table of another shape, dtype or optimizer."""
    where = checkpoint.path / MANIFEST
    have = (stored.layout.num_embeddings, stored.layout.embedding_dim)
    want = (layout.num_embeddings, layout.embedding_dim)
    if have != want:
        raise CheckpointError(f"{where}: table {stored.name!r} is {have[0]} x {have[1]}, but table {target!r} is "
                              f"{want[0]} x {want[1]}: a checkpoint loads into a table of the same shape")
    if stored.dtype != dtype or checkpoint.optimizer != optimizer:
        raise CheckpointError(f"{where}: table {stored.name!r} is {stored.dtype} trained by {checkpoint.optimizer}, "
                              f"table {target!r} is {dtype} trained by {optimizer}")


def load_table(cls, path, *, num_shards: int | None, plan: str | None, table: str | None, address: str | None,
               num_cpus: float, timeout: float, servers: ShardServers | None = None):
    """A :class:`ShardedEmbedding` (``cls``) from a checkpoint, re-sharded (see ``ShardedEmbedding.load``)."""
    checkpoint = read_checkpoint(path)
    stored = checkpoint.table(table)
    if plan is None:
        plan = stored.plan if stored.plan in PLANS else "row"
    if num_shards is None:
        num_shards = len(stored.layout.shards)
    layout = plan_table("table", stored.layout.num_embeddings, stored.layout.embedding_dim, num_shards, plan,
                        stored.dtype.itemsize)
    if servers is not None and len(servers) < num_shards:
        raise ValueError(f"num_shards={num_shards} needs as many servers, got {len(servers)}")
    tables = open_tables(servers, num_shards, {"table": layout}, stored.dtype, checkpoint.optimizer, stored.options,
                         lambda tables: copy_rows(checkpoint, stored.name, tables, "table"), num_cpus=num_cpus,
                         address=address, timeout=timeout)
    return cls._of(tables, "table", plan)


def restore_tables(tables: ShardedTables, path, names: dict[str, str], *, restart: bool = False) -> None:
    """Load tables of a checkpoint into living tables: target name -> stored name. Everything is
    checked first; then, with ``restart``, lost actors are replaced before the rows are sent."""
    checkpoint = read_checkpoint(path)
    pairs = [(target, checkpoint.table(stored)) for target, stored in names.items()]
    for target, stored in pairs:
        check_fits(stored, tables.layouts[target], tables.dtype, tables.optimizer, checkpoint, target)
    if restart:
        tables.restart_lost()
    for target, stored in pairs:
        copy_rows(checkpoint, stored.name, tables, target)


# -- one in-process table ----------------------------------------------------------------------------
def load_embedding(path, table: str | None = None) -> tuple[Embedding, Optimizer]:
    """A checkpoint's table as one ``nn.Embedding(sparse=True)`` and its optimizer, state included:
    stepping them continues exactly as the sharded table would."""
    checkpoint = read_checkpoint(path)
    stored = checkpoint.table(table)
    rows = np.arange(stored.layout.num_embeddings, dtype=np.int64)
    arrays = checkpoint.read_rows(stored.name, rows)
    embedding = Embedding.from_pretrained(arrays.pop("weight"), freeze=False, sparse=True)
    optimizer = OPTIMIZERS[checkpoint.optimizer].cls(embedding.parameters(), **stored.options)
    state = {**arrays, **stored.counters}
    if state:
        group = {k: v for k, v in optimizer.param_groups[0].items() if k != "params"}
        optimizer.load_state_dict({"state": {0: state}, "param_groups": [{**group, "params": [0]}]})
    return embedding, optimizer


def save_embedding(path, embedding: Embedding, optimizer: Optimizer, *, name: str = "table", step: int = 0,
                   replace: bool = False) -> Path:
    """Write one in-process table and its optimizer as a one-shard checkpoint (``row`` plan), which
    ``ShardedEmbedding.load(path, num_shards=N)`` spreads over N actors.

    Args:
        optimizer: an SGD, SparseAdam or RowWiseAdagrad holding ``embedding.weight``.
        step: the steps taken, for the manifest (SparseAdam's own count wins).
    """
    by_class = {spec.cls: n for n, spec in OPTIMIZERS.items()}
    if type(optimizer) not in by_class:
        raise TypeError(f"optimizer must be one of {', '.join(c.__name__ for c in by_class)}, "
                        f"got {type(optimizer).__name__}")
    opt_name = by_class[type(optimizer)]
    weight = embedding.weight
    group = next((g for g in optimizer.param_groups if any(p is weight for p in g["params"])), None)
    if group is None:
        raise ValueError("the optimizer does not hold this embedding's weight")
    dtype = weight.dtype
    options = optimizer_options(opt_name, embedding.embedding_dim, dtype,
                                {k: v for k, v in group.items() if k != "params"})
    layout = plan_table(name, embedding.num_embeddings, embedding.embedding_dim, 1, "row", dtype.itemsize)
    state = optimizer.state.get(weight) or OPTIMIZERS[opt_name].initial_state(weight.shape, dtype, options)
    arrays = {"weight": weight.data, **{k: v for k, v in state.items() if isinstance(v, np.ndarray)}}
    counters = {k: int(v) for k, v in state.items() if not isinstance(v, np.ndarray)}
    step = counters.get("step", step)
    out = Path(os.path.abspath(path))
    file = _file_name(0, name, 0)
    with atomic_directory(out, replace=replace) as staging:
        metadata = {"format": FORMAT, "table": name, "shard": "0", **{f"counter.{k}": str(v) for k, v in
                                                                    counters.items()}}
        safetensors.save(arrays, staging / file, metadata=metadata)
        info = {"bytes": (staging / file).stat().st_size, "sha256": file_sha256(staging / file)}
        shard = layout.shards[0]
        shapes = {k: list(v.shape) for k, v in arrays.items()}
        entry = _table_entry(name, layout, dtype, "row", options, step, counters,
                             [_shard_entry(file, 0, shard, shapes, info)])
        manifest = {"format": FORMAT, "version": VERSION, "optimizer": opt_name, "tables": {name: entry},
                    "planner": None}
        write_atomic(staging / MANIFEST, json.dumps(manifest, indent=1) + "\n")
    return out
