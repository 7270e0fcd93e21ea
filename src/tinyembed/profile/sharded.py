"""Sharded tables measured on Ray: what each shard receives and sends against the planner's
prediction, and what lookups and training steps cost against one in-process table.

Measurements only: the tables are :mod:`tinyembed.distributed`'s, the predictions the
sharding planner's (:mod:`tinyembed.plan.sharding`), the ids the access patterns'
(:mod:`.patterns`: uniform, Zipf, the real Wikipedia token stream).

Traffic, per shard and per training batch (forward, backward, step), counted by the
shard on what arrives and leaves: ids received (int64), rows sent, gradient rows
received (with their int64 row ids). The planner, given the same table, batch and N,
simulates a batch of the same distribution; its per-device lookups priced its way (8 B
per id, D_s * 4 B per row out, the same again for the gradient) are the prediction,
with every sample off the device: the measured tables run from one driver that holds
every sample, where the planner's own link totals leave the samples already on a device
out. ``text`` has no distribution in the planner; it is predicted as Zipf(1.0), the
planner's model of token ids. :func:`traffic_notes` says which assumption of the cost
model a disagreement comes from.

Throughput is honest about the machine: with 2 cores the shards share the CPUs of the
driver, so the point is the overhead (validate and route, Ray round trip, assemble)
and the traffic, not a speed-up.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from ..checks import check_positive_int
from ..distributed import PLANS, ShardedEmbedding, ShardServers, ray_session
from ..nn import Embedding
from ..optim import SGD
from ..plan.sharding import STRATEGIES, DeviceSpec, TableSpec, Workload
from ..tensor import no_grad
from .patterns import AccessPattern
from .timing import interleaved

__all__ = ["ShardTraffic", "ThroughputRow", "TrafficComparison", "format_throughput", "format_traffic",
           "measure_throughput", "measure_traffic", "traffic_notes"]

ID_BYTES = 8
_PLANNER_DEVICE = DeviceSpec(memory_bytes=1 << 40, memory_gb_per_s=100.0, network_gb_per_s=10.0,
                             name="nominal device (traffic is counted, not timed)")


@dataclass
class ShardTraffic:
    """One shard, per batch (means over the batches)."""

    shard: int
    lookups: float  # ids routed to it before deduplication: what the planner counts
    rows_received: float  # distinct ids it was asked for
    rows_sent: float
    grad_rows_received: float
    bytes_received: float  # ids + gradient rows and their row ids
    bytes_sent: float  # looked-up rows
    predicted_lookups: float  # the planner's simulated lookups on this device
    predicted_bytes_received: float  # ids and output gradients, per lookup
    predicted_bytes_sent: float  # looked-up rows, per lookup


@dataclass
class TrafficComparison:
    """One plan under one access pattern: every shard, measured and predicted."""

    pattern: str
    plan: str
    num_shards: int
    vocab: int
    dim: int
    batch_ids: int
    batches: int
    shards: list[ShardTraffic]
    predicted_imbalance: float  # the planner's max / mean per-device traffic (its simulated batch)
    lookup_imbalance: float  # measured max / mean of lookups before deduplication
    row_imbalance: float  # measured max / mean of distinct rows served
    predicted_from: str  # the distribution the planner was given
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _imbalance(values) -> float:
    values = np.asarray(values, dtype=np.float64)
    return float(values.max() / values.mean()) if values.mean() > 0 else 1.0


def _planner_prediction(pattern: AccessPattern, plan: str, num_shards: int, vocab: int, dim: int, batch_ids: int):
    alpha = None if pattern.name == "uniform" else (pattern.alpha if pattern.name == "zipf" else 1.0)
    spec = TableSpec("table", vocab, dim, bytes_per_element=4, lookups_per_sample=1.0, zipf_alpha=alpha, pooled=False)
    workload = Workload(batch_size=batch_ids, num_devices=num_shards, training=True)
    predicted = STRATEGIES[PLANS[plan]]([spec], workload, _PLANNER_DEVICE)
    source = "uniform" if alpha is None else f"Zipf({alpha:g}) over rank = row + 1"
    return predicted, source


def _routed_lookups(table: ShardedEmbedding, ids: np.ndarray) -> np.ndarray:
    counts = np.zeros(table.num_shards)
    for route in table.layout.lookup_routes(ids.reshape(-1)):
        counts[route.shard] += len(route.positions)
    return counts


def measure_traffic(patterns=("uniform", "zipf-1", "text"), plans=("row", "hashed-row", "column"),
                    num_shards: int = 4, vocab: int = 30522, dim: int = 64, batch_shape: tuple[int, int] = (16, 512),
                    batches: int = 4, seed: int = 0, address: str | None = None) -> list[TrafficComparison]:
    """Train a sharded table on batches of each pattern under each plan, counting every shard's traffic.

    Args:
        patterns: access patterns by label (``uniform``, ``zipf-1``, ``text``, ...).
        plans: single-table plans of :mod:`tinyembed.distributed`.
        vocab, dim: the table (the default is MiniLM's vocabulary, which the text stream needs).
        batch_shape: ids per batch as (sequences, tokens).
        batches: batches per pattern and plan (the means are per batch).
        address: a Ray cluster; None starts Ray here for the measurement (and stops it after).
    """
    num_shards = check_positive_int(num_shards, "num_shards")
    batches = check_positive_int(batches, "batches")
    parsed = [AccessPattern.parse(p) for p in patterns]
    out = []
    with ray_session(address):
        servers = ShardServers(num_shards)
        try:
            for pattern in parsed:
                rng = np.random.default_rng(seed)
                id_batches = [pattern.ids(vocab, batch_shape, rng) for _ in range(batches)]
                grad = np.full(batch_shape + (dim,), 1e-3, dtype=np.float32)
                for plan in plans:
                    out.append(_measure_plan(servers, pattern, plan, num_shards, vocab, dim, id_batches, grad))
        finally:
            servers.close()
    return out


def _measure_plan(servers, pattern, plan, num_shards, vocab, dim, id_batches, grad) -> TrafficComparison:
    table = ShardedEmbedding(vocab, dim, num_shards=num_shards, plan=plan, optimizer="sgd", lr=0.01, seed=0,
                             servers=servers)
    try:
        lookups = np.zeros(num_shards)
        table.stats(reset=True)
        for ids in id_batches:
            lookups += _routed_lookups(table, ids)
            table(ids).backward(grad)
            table.step()
        counted = table.stats()["shards"]
    finally:
        table.close()
    n = len(id_batches)
    batch_ids = id_batches[0].size
    predicted, source = _planner_prediction(pattern, plan, num_shards, vocab, dim, batch_ids)
    shards = []
    for s in counted:
        cols, d = s["cols"], s["device"]
        predicted_lookups = float(predicted.lookups[d])
        shards.append(ShardTraffic(
            shard=s["shard"], lookups=lookups[s["shard"]] / n, rows_received=s["ids_received"] / n,
            rows_sent=s["rows_sent"] / n, grad_rows_received=s["grad_rows_received"] / n,
            bytes_received=(s["id_bytes_received"] + s["grad_bytes_received"]) / n, bytes_sent=s["row_bytes_sent"] / n,
            predicted_lookups=predicted_lookups,
            predicted_bytes_received=predicted_lookups * (ID_BYTES + cols * 4),
            predicted_bytes_sent=predicted_lookups * cols * 4))
    comparison = TrafficComparison(
        pattern=pattern.label, plan=plan, num_shards=num_shards, vocab=vocab, dim=dim, batch_ids=batch_ids,
        batches=n, shards=shards, predicted_imbalance=predicted.load_imbalance,
        lookup_imbalance=_imbalance([s.lookups for s in shards]),
        row_imbalance=_imbalance([s.rows_received for s in shards]), predicted_from=source)
    comparison.notes = traffic_notes(comparison)
    return comparison


def traffic_notes(c: TrafficComparison) -> list[str]:
    """Where measurement and prediction disagree, which assumption of the cost model was wrong."""
    notes = []
    predicted_rows = sum(s.predicted_lookups for s in c.shards)
    rows = sum(s.rows_received for s in c.shards)
    if predicted_rows and rows < 0.9 * predicted_rows:
        notes.append(f"repeated ids: the cost model reads and sends a row per lookup; the table deduplicates "
                     f"each batch, so the shards sent {rows / predicted_rows:.0%} of the predicted rows "
                     f"(and got one coalesced gradient row per distinct id)")
    predicted_share = np.array([s.predicted_lookups for s in c.shards]) / max(predicted_rows, 1)
    share = np.array([s.lookups for s in c.shards]) / max(sum(s.lookups for s in c.shards), 1)
    worst = int(np.argmax(np.abs(share - predicted_share)))
    if abs(share[worst] - predicted_share[worst]) > 0.02:
        where = (f"shard {c.shards[worst].shard} served {share[worst]:.1%} of the lookups, the planner's "
                 f"{c.predicted_from} gave it {predicted_share[worst]:.1%}")
        if c.pattern == "text":
            notes.append(f"the access distribution: real WordPiece ids are only roughly in frequency order "
                         f"(the vocabulary lists common pieces early, not by rank): {where}")
        else:
            notes.append(f"one simulated batch: {where} (the planner draws one batch, these are "
                         f"{c.batches})")
    if c.row_imbalance < 0.9 * c.lookup_imbalance:
        notes.append(f"load = lookups: after deduplication a hot row costs one row, so the work the shards did "
                     f"is {c.row_imbalance:.2f}x imbalanced, not {c.lookup_imbalance:.2f}x")
    return notes


# -- throughput ---------------------------------------------------------------------------------------
@dataclass
class ThroughputRow:
    """Median milliseconds per batch of one setup and operation, and where the time went."""

    setup: str  # "in-process" or "N shards"
    op: str  # "lookup" or "train step"
    batch_ids: int
    median_ms: float
    ids_per_s: float
    validate_route_ms: float | None = None
    round_trip_ms: float | None = None
    assemble_ms: float | None = None
    other_ms: float | None = None  # train step: the driver's backward (coalescing) and the rest

    def to_dict(self) -> dict:
        return asdict(self)


def measure_throughput(shard_counts=(1, 2, 4), vocab: int = 30522, dim: int = 64,
                       batch_shape: tuple[int, int] = (16, 512), pattern: str = "zipf-1", repeats: int = 7,
                       plan: str = "row", seed: int = 0, address: str | None = None) -> list[ThroughputRow]:
    """Lookups and training steps (lookup, backward, SGD step) of one batch: one in-process
    ``nn.Embedding`` against sharded tables of each shard count, medians of ``repeats``
    taken in turns, and the sharded tables' latency broken into phases."""
    ids = AccessPattern.parse(pattern).ids(vocab, batch_shape, np.random.default_rng(seed))
    grad = np.full(batch_shape + (dim,), 1e-3, dtype=np.float32)
    single = Embedding(vocab, dim, sparse=True, seed=0)
    single_opt = SGD(single.parameters(), lr=0.01)

    def single_lookup():
        with no_grad():
            return single(ids)

    def single_step():
        single_opt.zero_grad()
        single(ids).backward(grad)
        single_opt.step()

    rows = []
    with ray_session(address):
        servers = ShardServers(max(shard_counts))
        tables = {n: ShardedEmbedding(vocab, dim, num_shards=n, plan=plan, optimizer="sgd", lr=0.01, seed=0,
                                      servers=servers) for n in shard_counts}
        try:
            for op, single_fn in (("lookup", single_lookup), ("train step", single_step)):
                fns = {"in-process": single_fn}
                for n, table in tables.items():
                    fns[f"{n} shards"] = _lookup_fn(table, ids) if op == "lookup" else _step_fn(table, ids, grad)
                for fn in fns.values():  # warm up (the first gather of a shape compiles), then count afresh
                    fn()
                for table in tables.values():
                    table.stats(reset=True)
                timings = interleaved(fns, repeats, warmup=0)
                calls = {n: table.stats()["timings"] for n, table in tables.items()}
                for setup, timing in timings.items():
                    row = ThroughputRow(setup, op, ids.size, timing.median_ms, ids.size / timing.median_ms * 1e3)
                    if setup != "in-process":
                        _breakdown(row, calls[int(setup.split()[0])], repeats)
                    rows.append(row)
        finally:
            for table in tables.values():
                table.close()
            servers.close()
    return rows


def _lookup_fn(table, ids):
    return lambda: table.lookup(ids)


def _step_fn(table, ids, grad):
    def step():
        table(ids).backward(grad)
        table.step()
    return step


def _breakdown(row: ThroughputRow, timings: dict, calls: int) -> None:
    """Mean phase times per batch; ``other`` is the median's remainder (never below 0)."""
    phases = {"validate_route_s": 0.0, "round_trip_s": 0.0, "assemble_s": 0.0}
    for op in timings.values():
        for k in phases:
            phases[k] += op[k] / calls
    row.validate_route_ms = phases["validate_route_s"] * 1e3
    row.round_trip_ms = phases["round_trip_s"] * 1e3
    row.assemble_ms = phases["assemble_s"] * 1e3
    row.other_ms = max(0.0, row.median_ms - sum(phases.values()) * 1e3)


# -- text -------------------------------------------------------------------------------------------------
def _kib(n: float) -> str:
    return f"{n / 1024:,.1f}"


def format_traffic(comparisons: list[TrafficComparison], per_shard: bool = True) -> str:
    """The comparison as text: a summary per pattern and plan, the notes, then (optionally) every shard."""
    if not comparisons:
        return "No measurements."
    c0 = comparisons[0]
    lines = [f"Traffic per training batch (lookup, backward, step) of a {c0.vocab:,} x {c0.dim} float32 table on "
             f"{c0.num_shards} local Ray actors, {c0.batch_ids:,} ids a batch, means of {c0.batches} batches; "
             "predicted = the sharding planner on the same table, batch and N.", ""]
    header = (f"{'pattern':<10} {'plan':<10} {'imbalance: predicted':>21} {'lookups':>8} {'rows':>6}  "
              f"{'rows sent: predicted':>20} {'measured':>9}  {'KiB in+out: predicted':>21} {'measured':>9}")
    lines += [header, "-" * len(header)]
    for c in comparisons:
        predicted_rows = sum(s.predicted_lookups for s in c.shards)
        rows = sum(s.rows_sent for s in c.shards)
        predicted_bytes = sum(s.predicted_bytes_received + s.predicted_bytes_sent for s in c.shards)
        measured_bytes = sum(s.bytes_received + s.bytes_sent for s in c.shards)
        lines.append(f"{c.pattern:<10} {c.plan:<10} {c.predicted_imbalance:>21.2f} {c.lookup_imbalance:>8.2f} "
                     f"{c.row_imbalance:>6.2f}  {predicted_rows:>20,.0f} {rows:>9,.0f}  "
                     f"{_kib(predicted_bytes):>21} {_kib(measured_bytes):>9}")
    lines += ["", "imbalance = max / mean over the shards: predicted of the planner's traffic, measured of the "
              "lookups routed (before deduplication) and of the distinct rows served.", ""]
    lines.append("Where they disagree, the assumption of the cost model that was wrong:")
    plans_of: dict[tuple[str, str], list[str]] = {}  # a note that holds for several plans is said once
    for c in comparisons:
        for note in c.notes:
            plans_of.setdefault((c.pattern, note), []).append(c.plan)
    for (pattern, note), plans in plans_of.items():
        lines.append(f"  {pattern} ({', '.join(plans)}): {note}")
    if per_shard:
        lines += ["", "Per shard, per batch (KiB in = ids + gradient rows, out = looked-up rows):"]
        header = (f"{'pattern':<10} {'plan':<10} {'shard':>5} {'lookups: predicted':>18} {'routed':>7} "
                  f"{'rows in':>8} {'rows out':>8} {'grad rows':>9}  {'KiB in: pred.':>13} {'meas.':>7}  "
                  f"{'KiB out: pred.':>14} {'meas.':>7}")
        lines += [header, "-" * len(header)]
        for c in comparisons:
            for s in c.shards:
                lines.append(f"{c.pattern:<10} {c.plan:<10} {s.shard:>5} {s.predicted_lookups:>18,.0f} "
                             f"{s.lookups:>7,.0f} {s.rows_received:>8,.0f} {s.rows_sent:>8,.0f} "
                             f"{s.grad_rows_received:>9,.0f}  {_kib(s.predicted_bytes_received):>13} "
                             f"{_kib(s.bytes_received):>7}  {_kib(s.predicted_bytes_sent):>14} "
                             f"{_kib(s.bytes_sent):>7}")
    return "\n".join(lines)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def format_throughput(rows: list[ThroughputRow]) -> str:
    """The throughput rows as a text table, with the latency breakdown of the sharded ones."""
    if not rows:
        return "No measurements."
    header = (f"{'op':<11} {'setup':<11} {'ms/batch':>9} {'M ids/s':>8}  {'validate+route':>14} "
              f"{'Ray round trip':>14} {'assemble':>9} {'other':>7}")
    lines = [f"Throughput, {rows[0].batch_ids:,} ids a batch (medians; phases in ms, means per batch; other = "
             "the driver's backward and the rest of a step):", header, "-" * len(header)]
    for r in rows:
        lines.append(f"{r.op:<11} {r.setup:<11} {r.median_ms:>9.2f} {r.ids_per_s / 1e6:>8.2f}  "
                     f"{_ms(r.validate_route_ms):>14} {_ms(r.round_trip_ms):>14} {_ms(r.assemble_ms):>9} "
                     f"{_ms(r.other_ms):>7}")
    return "\n".join(lines)
