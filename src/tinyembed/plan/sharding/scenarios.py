"""Ready planning questions: LLaMA-3-8B's vocabulary on consumer cards, and a 10^9-row
recommendation model on a GPU cluster."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

from ..models import MODELS
from .plans import ShardingPlan
from .specs import DeviceSpec, TableSpec, Workload
from .strategies import plan

__all__ = ["GIB", "Scenario", "llama3_8b_vocab_scenario", "recommendation_scenario"]


@dataclass(frozen=True)
class Scenario:
    """Inputs of a planning question: the tables, one device type and the workloads to compare."""

    name: str
    description: str
    tables: tuple[TableSpec, ...]
    device: DeviceSpec
    workloads: tuple[Workload, ...]

    def plans(self, strategies: Iterable[str] | None = None) -> list[ShardingPlan]:
        """Every strategy under every workload, in that order (``format_plans`` groups them)."""
        strategies = None if strategies is None else list(strategies)
        return [p for w in self.workloads for p in plan(self.tables, w, self.device, strategies)]

    def to_dict(self) -> dict:
        return asdict(self)


GIB = 1 << 30


def llama3_8b_vocab_scenario(
    zipf_alpha: float = 1.0, num_devices: Sequence[int] = (2, 4, 8), training: bool = True
) -> Scenario:
    """LLaMA-3-8B's token table (128,256 x 4,096 bfloat16, 1.05 GB) on 2, 4 and 8 cards of 24 GiB.

    Each sample is one token (an unpooled lookup); a batch is 8 sequences of 8,192 tokens.
    In training, Adam in mixed precision keeps an float32 master copy and two float32 moments:
    12 B per value. The cards are RTX 4090-class: 24 GiB, 1,008 GB/s GDDR6X peak, about
    25 GB/s between cards over PCIe 4.0 x16 (32 GB/s nominal). The untied output head
    (another V x D) is a matmul, not a lookup, and is left out. ``zipf_alpha`` is the
    token skew (pass a measured one).
    """
    config = MODELS["llama3-8b"]
    table = TableSpec("llama3-8b tokens", config.vocab_size, config.hidden_size, bytes_per_element=2,
                      lookups_per_sample=1.0, zipf_alpha=zipf_alpha, pooled=False)
    device = DeviceSpec(24 * GIB, 1008.0, 25.0, name="24 GiB card (RTX 4090-class, PCIe 4.0)")
    workloads = tuple(Workload(batch_size=8 * 8192, num_devices=n,
                               optimizer_bytes_per_element=12 if training else 0, training=training)
                      for n in num_devices)
    description = (
        f"LLaMA-3-8B token table ({config.vocab_size:,} x {config.hidden_size:,} bfloat16), one token per "
        f"sample, 65,536 tokens per batch, Zipf({zipf_alpha:g}) token ids, "
        + ("training with mixed-precision Adam (12 B state per value)" if training else "inference")
    )
    return Scenario("llama3-8b vocabulary", description, (table,), device, workloads)


def recommendation_scenario(
    zipf_alpha: float = 1.0, num_devices: Sequence[int] = (8, 16), training: bool = True
) -> Scenario:
    """A 10^9-row item table (dim 128 float32, 512 GB) and three smaller ones on 8 and 16 GPUs of 80 GiB.

    Tables (pooled): item_id 10^9 x 128 (1 id per sample), user_segment 10^7 x 64 (4 ids,
    uniform, as hashed ids are), query_tokens 250,000 x 64 (20 ids), item_category
    10^6 x 64 (1 id). Batch 65,536 samples; in training FBGEMM's row-wise Adagrad keeps
    4 B per row. The GPUs are A100 80GB-class: 80 GiB, 2,039 GB/s HBM2e, and a 400 Gb/s
    (50 GB/s) network link per GPU, the bottleneck once a job spans machines (NVLink
    inside one machine is faster). ``zipf_alpha`` is the id skew of the Zipf tables.
    """
    tables = (
        TableSpec("item_id", 1_000_000_000, 128, lookups_per_sample=1.0, zipf_alpha=zipf_alpha),
        TableSpec("user_segment", 10_000_000, 64, lookups_per_sample=4.0, zipf_alpha=None),
        TableSpec("query_tokens", 250_000, 64, lookups_per_sample=20.0, zipf_alpha=zipf_alpha),
        TableSpec("item_category", 1_000_000, 64, lookups_per_sample=1.0, zipf_alpha=zipf_alpha),
    )
    device = DeviceSpec(80 * GIB, 2039.0, 50.0, name="80 GiB GPU (A100-class, 400 Gb/s network)")
    workloads = tuple(Workload(batch_size=65_536, num_devices=n, optimizer_bytes_per_row=4 if training else 0,
                               training=training)
                      for n in num_devices)
    description = (
        f"a 10^9 x 128 float32 item table (512 GB) and three smaller pooled tables, 65,536 samples per "
        f"batch, Zipf({zipf_alpha:g}) ids, "
        + ("training with row-wise Adagrad (4 B state per row)" if training else "inference")
    )
    return Scenario("10^9-row recommendation", description, tables, device, workloads)
