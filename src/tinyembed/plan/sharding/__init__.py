"""Sharding plans for embedding tables beyond one device: a planner and its cost model.

Given tables (rows V, width D, bytes per element, lookups per sample, access skew), N
devices (memory, memory bandwidth, network bandwidth) and a batch, every strategy of
``STRATEGIES`` places the tables on the devices and is scored by an explicit cost model,
in the manner of TorchRec's planner. Nothing runs on real devices; the numbers are
estimates, and every plan carries the assumptions behind them.

    table_wise       each table whole on one device (largest first, onto the emptiest)
    row_wise         each table's rows cut into N contiguous ranges (Megatron's vocab-parallel)
    row_wise_hashed  row r on device r mod N
    column_wise      each table's D columns cut into N slices
    data_parallel    every device holds every table

What a plan reports, per device and per batch:

* memory: weights (rows x columns x bytes per element) plus optimizer state (per
  element and per row), and whether the fullest device fits;
* lookups and memory traffic, counted on one simulated batch. Each table's ids are
  drawn from its distribution with a seeded Generator and routed to the device that
  owns their row. Zipf(alpha) is over rank = row + 1, so row 0 is the hottest, as in a
  frequency-sorted vocabulary; contiguous ``row_wise`` therefore puts the hot rows on
  device 0, which ``row_wise_hashed`` spreads. The analytic expectation
  (:func:`zipf_mass`, :func:`zipf_residue_mass`) is reported next to the simulation;
* load imbalance: max / mean of per-device memory traffic (1 is perfect balance; N
  means one device does all the work);
* network bytes, from a traffic matrix ``T[src, dst]``: input ids (int64) sent to the
  devices that look them up; outputs sent back to the devices of their samples (a
  pooled table sends ``B_s x D`` per sample block, row-wise as a dense reduce-scatter of
  partial sums; an unpooled table sends each looked-up row); in training, the outputs'
  gradients come back the same way (``data_parallel``: a ring all-reduce of the dense
  weight gradient instead);
* time per batch = max device memory traffic / memory bandwidth + max device link
  bytes (the larger of sent and received) / network bandwidth.

The package, one module per concern:

    specs        TableSpec, DeviceSpec, Workload: the inputs, validated
    batch        the simulated batch: draw_ids, simulated_batch
    plans        Shard, ShardingPlan and the cost model that fills them
    strategies   the strategy functions, STRATEGIES, plan, recommend, cheapest_fit
    format       format_plans
    scenarios    Scenario and ready ones (LLaMA-3-8B's vocabulary, a 10^9-row recommender)

The Zipf distribution itself (exact head, closed-form tail for huge tables) is
:mod:`tinyembed.plan.zipf`.

Examples:
    >>> tokens = TableSpec("tokens", num_rows=1000, dim=8, zipf_alpha=1.0)
    >>> device = DeviceSpec(memory_bytes=1 << 20, memory_gb_per_s=100.0, network_gb_per_s=10.0)
    >>> plans = plan([tokens], Workload(batch_size=64, num_devices=4), device)
    >>> [p.strategy for p in plans]
    ['table_wise', 'row_wise', 'row_wise_hashed', 'column_wise', 'data_parallel']
    >>> plans[0].load_imbalance   # one table on 4 devices: one device does all the work
    4.0
    >>> plans[0].memory_bytes     # 1000 x 8 float32 on device 0
    (32000, 0, 0, 0)
    >>> round(zipf_mass(1000, 1.0, 0, 1), 4)  # share of the hottest row: 1 / H(1000)
    0.1336
"""

from ..zipf import EXACT_HEAD_ROWS, zipf_mass, zipf_residue_mass
from .batch import draw_ids, simulated_batch
from .format import format_plans
from .plans import ID_BYTES, Shard, ShardingPlan
from .scenarios import GIB, Scenario, llama3_8b_vocab_scenario, recommendation_scenario
from .specs import DeviceSpec, TableSpec, Workload
from .strategies import (
    STRATEGIES,
    cheapest_fit,
    column_wise,
    data_parallel,
    plan,
    recommend,
    row_wise,
    row_wise_hashed,
    table_wise,
)

__all__ = [
    "EXACT_HEAD_ROWS",
    "GIB",
    "ID_BYTES",
    "STRATEGIES",
    "DeviceSpec",
    "Scenario",
    "Shard",
    "ShardingPlan",
    "TableSpec",
    "Workload",
    "cheapest_fit",
    "column_wise",
    "data_parallel",
    "draw_ids",
    "format_plans",
    "llama3_8b_vocab_scenario",
    "plan",
    "recommend",
    "recommendation_scenario",
    "row_wise",
    "row_wise_hashed",
    "simulated_batch",
    "table_wise",
    "zipf_mass",
    "zipf_residue_mass",
]
