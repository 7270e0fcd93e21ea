"""A plan and its cost model: where each table's shards are, and what they cost per batch.

A strategy decides, per table, which device holds which rows and columns (``Shard``) and
which device serves which ids; :func:`_table_part` turns that into memory, memory
traffic and a traffic matrix ``T[src, dst]``, and :func:`_assemble` sums the tables into
a ``ShardingPlan`` with its time estimate and the assumptions behind it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from .batch import _local_batch_sizes
from .specs import DeviceSpec, TableSpec, Workload

__all__ = ["ID_BYTES", "Shard", "ShardingPlan"]

ID_BYTES = 8  # ids travel as int64


@dataclass(frozen=True)
class Shard:
    """The part of one table one device holds: rows ``range(row_start, row_stop, row_step)``
    and columns ``[col_start, col_stop)``. A data-parallel replica is a whole-table shard."""

    table: str
    device: int
    row_start: int
    row_stop: int
    row_step: int
    col_start: int
    col_stop: int

    @property
    def num_rows(self) -> int:
        return len(range(self.row_start, self.row_stop, self.row_step))

    @property
    def num_cols(self) -> int:
        return self.col_stop - self.col_start

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ShardingPlan:
    """One strategy applied to all tables, with its cost-model estimate.

    Per-device tuples have length N (device d at index d). Byte counts are per batch
    except memory. "Simulated" numbers come from one batch drawn with ``workload.seed``;
    "expected" ones from the analytic access probabilities.
    """

    strategy: str
    tables: tuple[TableSpec, ...]
    workload: Workload
    device: DeviceSpec
    shards: tuple[Shard, ...]
    # memory held, per device
    weight_bytes: tuple[int, ...]
    optimizer_bytes: tuple[int, ...]
    memory_bytes: tuple[int, ...]  # weights + optimizer state
    fits: bool  # max(memory_bytes) <= device.memory_bytes
    # work per batch, per device
    lookups: tuple[int, ...]  # simulated ids looked up (a column-wise id counts on every slice)
    expected_lookups: tuple[float, ...]
    memory_traffic_bytes: tuple[int, ...]  # simulated bytes read (+ written by the update in training)
    expected_memory_traffic_bytes: tuple[float, ...]
    load_imbalance: float  # max / mean of memory_traffic_bytes (simulated)
    expected_load_imbalance: float  # the same of the expected traffic
    # network per batch: totals over all devices, bytes that leave their device
    input_ids_bytes: int
    output_bytes: int  # forward outputs
    backward_bytes: int  # output gradients, or data_parallel's gradient all-reduce
    network_bytes: int  # input_ids_bytes + output_bytes + backward_bytes
    sent_bytes: tuple[int, ...]
    received_bytes: tuple[int, ...]
    # the cost model
    memory_time_s: float
    network_time_s: float
    time_s: float
    assumptions: tuple[str, ...]

    @property
    def num_devices(self) -> int:
        return self.workload.num_devices

    @property
    def max_memory_bytes(self) -> int:
        return max(self.memory_bytes)

    def to_dict(self) -> dict:
        """Plain dict of every field (JSON-serializable)."""
        return asdict(self)


@dataclass
class _TablePart:
    """One table under one strategy, before the tables are summed (device-indexed arrays)."""

    shards: list[Shard]
    weight_bytes: np.ndarray  # (N,) int64
    optimizer_bytes: np.ndarray  # (N,) int64
    lookups: np.ndarray  # (N,) int64
    expected_lookups: np.ndarray  # (N,) float64
    memory_traffic: np.ndarray  # (N,) int64
    expected_memory_traffic: np.ndarray  # (N,) float64
    ids_traffic: np.ndarray  # (N, N) int64 bytes, [src, dst]
    output_traffic: np.ndarray  # (N, N) int64
    backward_traffic: np.ndarray  # (N, N) int64


def _served_by_owner(src: np.ndarray, owner: np.ndarray, num_devices: int) -> np.ndarray:
    """served[h, s]: ids from samples on device s looked up on device h, shape (N, N)."""
    flat = np.bincount(owner * num_devices + src, minlength=num_devices * num_devices)
    return flat.reshape(num_devices, num_devices).astype(np.int64)


def _off_diagonal(matrix: np.ndarray) -> np.ndarray:
    out = np.array(matrix, dtype=np.int64)
    np.fill_diagonal(out, 0)  # what stays on its device does not cross the network
    return out


def _table_part(
    table: TableSpec,
    workload: Workload,
    shards: list[Shard],
    served: np.ndarray,
    expected_lookups: np.ndarray,
    replicated: bool = False,
) -> _TablePart:
    """Memory, traffic and lookups of one table from where its shards are and who served which ids.

    Args:
        served: (N, N) int64, ids from samples on device s looked up on device h, at [h, s].
        expected_lookups: (N,) float64, the expectation of ``served.sum(axis=1)``.
        replicated: data parallel: outputs stay local; training all-reduces gradients.
    """
    n = workload.num_devices
    rows = np.zeros(n, dtype=np.int64)
    cols = np.zeros(n, dtype=np.int64)
    for shard in shards:
        rows[shard.device] = shard.num_rows
        cols[shard.device] = shard.num_cols
    elem = table.bytes_per_element
    weight = rows * cols * elem
    # Every shard keeps its own per-row state (a column slice is its own table to the optimizer).
    optimizer = rows * cols * workload.optimizer_bytes_per_element + rows * workload.optimizer_bytes_per_row

    lookups = served.sum(axis=1)
    forward_per_lookup = cols * elem
    # The sparse update reads and writes each looked-up row's values and optimizer state.
    update_per_lookup = (cols * (2 * elem + 2 * workload.optimizer_bytes_per_element)
                         + 2 * workload.optimizer_bytes_per_row)
    if not workload.training:
        per_lookup, dense_update = forward_per_lookup, np.zeros(n, dtype=np.int64)
    elif replicated:
        # Data parallel updates the whole replica with the all-reduced dense gradient.
        per_lookup = forward_per_lookup
        dense_update = rows * update_per_lookup
    else:
        per_lookup, dense_update = forward_per_lookup + update_per_lookup, np.zeros(n, dtype=np.int64)
    memory_traffic = lookups * per_lookup + dense_update
    expected_traffic = expected_lookups * per_lookup + dense_update

    ids_traffic = _off_diagonal(served.T * ID_BYTES)
    zeros = np.zeros((n, n), dtype=np.int64)
    if replicated:
        output = zeros
    elif table.pooled:
        # Each holder sends every other device one (partial) pooled row per sample: dense,
        # like TorchRec's output all-to-all and row-wise reduce-scatter.
        output = _off_diagonal(np.outer(cols, _local_batch_sizes(workload.batch_size, n)) * elem)
    else:
        output = _off_diagonal(served * cols[:, None] * elem)
    if not workload.training:
        backward = zeros
    elif replicated:
        backward = zeros.copy()
        if n > 1:
            # Ring all-reduce: each device sends 2 (N - 1) chunks of 1/N of the gradient to its neighbour.
            per_device = 2 * (n - 1) * table.weight_bytes // n
            backward[np.arange(n), (np.arange(n) + 1) % n] = per_device
    else:
        backward = output.T.copy()  # output gradients retrace the outputs' path

    return _TablePart(
        shards=shards,
        weight_bytes=weight,
        optimizer_bytes=optimizer,
        lookups=lookups,
        expected_lookups=np.asarray(expected_lookups, dtype=np.float64),
        memory_traffic=memory_traffic,
        expected_memory_traffic=expected_traffic,
        ids_traffic=ids_traffic,
        output_traffic=output,
        backward_traffic=backward,
    )


def _imbalance(work: np.ndarray) -> float:
    mean = float(np.mean(work))
    return float(np.max(work)) / mean if mean > 0 else 1.0


def _ints(values: np.ndarray) -> tuple[int, ...]:
    return tuple(int(v) for v in values)


def _floats(values: np.ndarray) -> tuple[float, ...]:
    return tuple(float(v) for v in values)


def _common_assumptions(tables: Sequence[TableSpec], workload: Workload, device: DeviceSpec) -> list[str]:
    n = workload.num_devices
    out = [
        f"time = max device memory traffic / {device.memory_gb_per_s:g} GB/s + max device link bytes "
        f"(larger of sent, received) / {device.network_gb_per_s:g} GB/s; no overlap of memory and "
        "network, no latency, full-duplex links into a non-blocking switch",
        f"batch of {workload.batch_size:,} samples dealt in contiguous blocks of ceil or floor(B/{n}) "
        "per device; each sample's ids start on its device",
        f"ids travel as int64 ({ID_BYTES} B), lengths/offsets not counted; outputs and their gradients "
        "travel in the table's dtype; bytes that stay on their device are not counted",
        "memory traffic reads D values per lookup (no cache, repeated ids not deduplicated); "
        + ("training adds the update's read and write of each looked-up row and its optimizer state"
           if workload.training else "inference: no backward"),
        "device memory holds only embedding weights and optimizer state "
        f"({workload.optimizer_bytes_per_element} B per value + {workload.optimizer_bytes_per_row} B per row); "
        "no activations, buffers or dense model",
        f"load imbalance = max / mean of per-device memory traffic in one simulated batch (seed "
        f"{workload.seed}); 'expected' uses the analytic access probabilities",
    ]
    if any(t.zipf_alpha is not None for t in tables):
        out.append("Zipf ids over rank = row + 1: row 0 is the hottest, as in a frequency-sorted vocabulary")
    return out


def _assemble(
    strategy: str,
    tables: Sequence[TableSpec],
    workload: Workload,
    device: DeviceSpec,
    parts: list[_TablePart],
    assumptions: list[str],
) -> ShardingPlan:
    def total(name: str) -> np.ndarray:
        return sum(getattr(p, name) for p in parts)

    weight, optimizer = total("weight_bytes"), total("optimizer_bytes")
    memory = weight + optimizer
    traffic, expected_traffic = total("memory_traffic"), total("expected_memory_traffic")
    ids, output, backward = total("ids_traffic"), total("output_traffic"), total("backward_traffic")
    network = ids + output + backward  # (N, N) [src, dst]
    sent, received = network.sum(axis=1), network.sum(axis=0)
    memory_time = float(np.max(traffic)) / (device.memory_gb_per_s * 1e9)
    network_time = float(np.max(np.maximum(sent, received))) / (device.network_gb_per_s * 1e9)
    return ShardingPlan(
        strategy=strategy,
        tables=tuple(tables),
        workload=workload,
        device=device,
        shards=tuple(s for p in parts for s in p.shards),
        weight_bytes=_ints(weight),
        optimizer_bytes=_ints(optimizer),
        memory_bytes=_ints(memory),
        fits=bool(np.max(memory) <= device.memory_bytes),
        lookups=_ints(total("lookups")),
        expected_lookups=_floats(total("expected_lookups")),
        memory_traffic_bytes=_ints(traffic),
        expected_memory_traffic_bytes=_floats(expected_traffic),
        load_imbalance=_imbalance(traffic),
        expected_load_imbalance=_imbalance(expected_traffic),
        input_ids_bytes=int(ids.sum()),
        output_bytes=int(output.sum()),
        backward_bytes=int(backward.sum()),
        network_bytes=int(network.sum()),
        sent_bytes=_ints(sent),
        received_bytes=_ints(received),
        memory_time_s=memory_time,
        network_time_s=network_time,
        time_s=memory_time + network_time,
        assumptions=tuple(_common_assumptions(tables, workload, device) + assumptions),
    )
