"""The planner's inputs: tables, the device type and the batch, validated on construction."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ...checks import check_bool, check_int, check_positive
from ..zipf import check_alpha

__all__ = ["DeviceSpec", "TableSpec", "Workload"]


@dataclass(frozen=True)
class TableSpec:
    """One embedding table as the planner sees it.

    Args:
        name: unique among the tables of a plan.
        num_rows: V, rows (> 0).
        dim: D, values per row (> 0).
        bytes_per_element: 4 for float32, 2 for bfloat16/float16, 1 for int8 (> 0).
        lookups_per_sample: ids per sample (TorchRec's pooling factor, > 0); a batch of
            B samples looks up ``round(B * lookups_per_sample)`` ids.
        zipf_alpha: Zipf exponent (> 0) of the ids over rank = row + 1 (row 0 is the
            hottest); None draws ids uniformly.
        pooled: True if a sample's ids are summed into one D-vector (EmbeddingBag, sent
            as one row per sample), False if every looked-up row is sent (token lookups).
    """

    name: str
    num_rows: int
    dim: int
    bytes_per_element: int = 4
    lookups_per_sample: float = 1.0
    zipf_alpha: float | None = None
    pooled: bool = True

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"table name must be a non-empty string, got {self.name!r}")
        check_int(self.num_rows, "num_rows", low=1)
        check_int(self.dim, "dim", low=1)
        check_int(self.bytes_per_element, "bytes_per_element", low=1)
        check_positive(self.lookups_per_sample, "lookups_per_sample")
        if self.zipf_alpha is not None:
            check_alpha(self.zipf_alpha, "zipf_alpha (None for uniform)")
        check_bool(self.pooled, "pooled")

    @property
    def weight_bytes(self) -> int:
        """Bytes of the whole V x D table."""
        return self.num_rows * self.dim * self.bytes_per_element

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class DeviceSpec:
    """One device; every device of a plan is the same.

    Args:
        memory_bytes: memory available for embedding weights and optimizer state (> 0).
        memory_gb_per_s: memory bandwidth, 1e9 bytes per second (> 0).
        network_gb_per_s: bandwidth of the device's link to the others, 1e9 bytes per
            second in each direction (> 0).
        name: what the numbers describe, for reports.
    """

    memory_bytes: int
    memory_gb_per_s: float
    network_gb_per_s: float
    name: str = ""

    def __post_init__(self):
        check_int(self.memory_bytes, "memory_bytes", low=1)
        check_positive(self.memory_gb_per_s, "memory_gb_per_s")
        check_positive(self.network_gb_per_s, "network_gb_per_s")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Workload:
    """One batch on N devices.

    Args:
        batch_size: B, samples in the global batch (> 0); each device holds a
            contiguous block of ceil or floor(B / N) of them and their ids.
        num_devices: N (> 0).
        optimizer_bytes_per_element: optimizer state per weight value: 0 for inference
            or plain SGD, 8 for Adam's two float32 moments, 12 for Adam with an float32
            master copy of bfloat16 weights.
        optimizer_bytes_per_row: optimizer state per row: 4 for FBGEMM's row-wise
            Adagrad (one float32 per row).
        training: True adds the backward: output gradients over the network and the
            update's reads and writes of weights and optimizer state.
        seed: seed of the simulated batch (>= 0).
    """

    batch_size: int
    num_devices: int
    optimizer_bytes_per_element: int = 0
    optimizer_bytes_per_row: int = 0
    training: bool = False
    seed: int = 0

    def __post_init__(self):
        check_int(self.batch_size, "batch_size", low=1)
        check_int(self.num_devices, "num_devices", low=1)
        check_int(self.optimizer_bytes_per_element, "optimizer_bytes_per_element", low=0)
        check_int(self.optimizer_bytes_per_row, "optimizer_bytes_per_row", low=0)
        check_bool(self.training, "training")
        check_int(self.seed, "seed", low=0)

    def to_dict(self) -> dict:
        return asdict(self)
