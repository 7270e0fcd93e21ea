"""tinyembed bench: every operation issue 13 targets, timed against its peers on this machine.

The operations, their suites and their contenders are in :mod:`.bench_ops` (the ``OPS``
registry, with the table of who is compared with whom); the peers, PyTorch and FBGEMM,
are imported only when the bench runs (:mod:`.bench_peers`). Each suite has its shapes:

    table    (V, D) float32 tables (50257x768, 32000x4096, 50257x64, 1000x16), ids (32, 512), bags of 16
    storage  each compressed storage type against float32 at V = 50257, D in 16, 64, 384, 768, 4096;
             ids (32, 512); in rows per second
    qbag     int8 and int4 bags at (V, D, bags, ids per bag) = (1000000, 128, 2048, 32),
             (100000, 64, 4096, 16), (50257, 768, 512, 32)
    rope     q and k of (batch, heads, seq, head_dim) = (8, 6, 512, 64), (1, 32, 2048, 128), float32
    attend   one token's scores against the 50257x768 table

Ids are drawn uniformly or from a seeded Zipf(1.0) (``distributions``). V stays 50257 at
D = 4096 in the storage suite: the float32 table is 0.8 GB and the suite holds about 5
tables at once (4 GB; ``check_memory`` refuses up front where that does not fit).

How a row is timed. First every contender is called once and its result compared with
tinyembed's (:func:`~.bench_ops.to_numpy`; the op's tolerance): a peer that returns other
numbers is not timed, and the row says so. Then tinyembed and its peers run interleaved,
A B A B, in one process, after a warm-up; NumPy gets its own rounds (see
``BenchConfig.numpy_apart``). A ratio is the peer's time over tinyembed's in the same
round, one per repeat: we report their median and their range (min-max), above 1 when
tinyembed is faster. While a row is timed, :func:`.timing.background_cores` measures how
many cores other processes kept busy; above ``disturbed_cores`` the row is timed again
(``retimes`` times at most, after a short pause), keeping the least disturbed attempt; a
row still disturbed is marked (``*``), and its misses are counted apart.

Bytes moved is the least traffic one pass needs (:func:`tinyembed.profile.traffic.bytes_moved`;
RoPE: q and k read and written, twice for the backward; attend: the table read). GB/s is
bytes moved over tinyembed's median time; ``% copy`` compares it with the copy bandwidth
measured in the same run (:func:`.timing.copy_bandwidth`).

One process, two cores: after each torch op its OpenMP worker keeps spinning for a
while (libgomp's default wait policy), on one of the two cores the tinyembed call
that follows wants, and numba's workers (another OpenMP runtime) do the same to
torch. Measured for forward_out on (50257, 768): tinyembed 7.1 ms alone, 10.8 ms
interleaved with torch, 6.3 ms interleaved with ``OMP_WAIT_POLICY=PASSIVE``, which
in turn makes torch's small ops 2-5x slower (its workers must be woken). So each
sample follows ``settle_ms`` of untimed calls of its own contender: int8 bags of 16
from 100000 x 64 took 98 us a call in the first millisecond after 5 ms of torch's
calls and 57 us from the second on; torch's op 63 us after ours, 44 after its own.
We run torch with its default policy; the JSON records it.

Memory (``mem``): the peak of what the tinyembed call allocated beyond what it left
allocated at the end (its output), measured with tracemalloc, in units of the op's
output size. torch's allocations are invisible to tracemalloc.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .. import kernels
from ..checks import check_memory
from ..io.files import write_atomic
from ..io.progress import progress
from .bench_ops import DISTRIBUTIONS, OPS, SUITES, Env, Op, close, draw_ids, to_numpy, workload
from .bench_peers import load_peers
from .timing import Timing, background_cores, copy_bandwidth, cpu_seconds, extra_allocation, interleaved, machine_info

__all__ = ["BenchConfig", "BenchReport", "Ratio", "Row", "OPS", "SUITES", "TARGETS", "CASES", "format_table", "run",
           "draw_ids", "to_numpy", "workload", "write_json"]

CASES: tuple[tuple[int, int], ...] = ((50257, 768), (32000, 4096), (50257, 64), (1000, 16))
STORAGE_CASES: tuple[tuple[int, int], ...] = tuple((50257, dim) for dim in (16, 64, 384, 768, 4096))
QBAG_CASES: tuple[tuple[int, int, int, int], ...] = ((1_000_000, 128, 2048, 32), (100_000, 64, 4096, 16),
                                                    (50257, 768, 512, 32))
ROPE_CASES: tuple[tuple[int, int, int, int], ...] = ((8, 6, 512, 64), (1, 32, 2048, 128))
ATTEND_CASES: tuple[tuple[int, int], ...] = ((50257, 768),)


@dataclass(frozen=True)
class BenchConfig:
    """What to run.

    Args:
        cases, storage_cases, qbag_cases, rope_cases, attend_cases: the shapes of each suite
            (the module docstring); an empty tuple skips the suite.
        distributions: how ids are drawn: 'uniform' or 'zipf' (Zipf(1.0): id i has
            probability proportional to 1 / (i + 1)).
        ops: names from ``OPS``; () means every one.
        ids_shape: (batch, seq) of the table and storage suites' ids; the table suite's bags are
            consecutive runs of ``bag_size`` of them.
        repeats: timed samples of each contender (after ``warmup`` untimed calls).
        min_sample_ms: a contender faster than this is called back to back within a sample until
            the sample lasts about this long, and its time is the sample's per call
            (:func:`.timing.interleaved`): single calls of the 0.1 ms ops spread over 2-3x their median.
        settle_ms: before each of its samples a contender runs untimed for this long
            (:func:`.timing.interleaved`), so that the threads of the contender before it have
            stopped spinning on the cores it wants (the module docstring).
        threads: threads for tinyembed, torch and FBGEMM; None keeps ``kernels.get_num_threads()``.
        copy_mib: size of the array copied to measure copy bandwidth.
        use_torch, use_fbgemm: False runs without that peer even if it is installed.
        numpy_apart: time the NumPy baseline in its own rounds after tinyembed's and the peers'.
            Sharing their rounds, ``np.add.at`` on the 0.5 GB dense gradient of the
            (32000, 4096) case was measured to slow the tinyembed call 6x (about 140 ms
            to 900 ms; torch unchanged): fresh 0.5 GB arrays fault their pages in again.
        disturbed_cores: a row timed while other processes kept more cores than this busy is disturbed.
        retimes: how many more times a disturbed row is timed, at most.
        retime_seconds: how long re-timing may take in all; on a machine that stays busy, re-timing
            every row would only multiply the run time, so once this is spent disturbed rows are marked.
        progress: draw a progress bar on stderr.
    """

    cases: tuple[tuple[int, int], ...] = CASES
    storage_cases: tuple[tuple[int, int], ...] = STORAGE_CASES
    qbag_cases: tuple[tuple[int, int, int, int], ...] = QBAG_CASES
    rope_cases: tuple[tuple[int, int, int, int], ...] = ROPE_CASES
    attend_cases: tuple[tuple[int, int], ...] = ATTEND_CASES
    distributions: tuple[str, ...] = DISTRIBUTIONS
    ops: tuple[str, ...] = ()
    ids_shape: tuple[int, int] = (32, 512)
    bag_size: int = 16
    repeats: int = 5
    min_sample_ms: float = 5.0
    settle_ms: float = 2.0
    warmup: int = 1
    threads: int | None = None
    copy_mib: int = 256
    use_torch: bool = True
    use_fbgemm: bool = True
    numpy_apart: bool = True
    disturbed_cores: float = 0.25
    retimes: int = 2
    retime_seconds: float = 90.0
    retime_pause: float = 0.25
    seed: int = 0
    quick: bool = False
    progress: bool = True

    @classmethod
    def quick_run(cls, **overrides) -> BenchConfig:
        """Under a minute: every op, on fewer and smaller shapes, uniform ids only, 3 repeats, 1 re-time."""
        quick = dict(cases=tuple(c for c in CASES if c != (32000, 4096)),
                     storage_cases=tuple((50257, dim) for dim in (16, 64, 768)),
                     qbag_cases=((100_000, 64, 4096, 16), (50257, 768, 512, 32)), rope_cases=((8, 6, 512, 64),),
                     distributions=("uniform",), repeats=3, retimes=1, retime_seconds=8.0, quick=True)
        return cls(**{**quick, **overrides})

    def __post_init__(self):
        unknown = [op for op in self.ops if op not in OPS]
        if unknown:
            raise ValueError(f"unknown ops {unknown}; known: {', '.join(OPS)}")
        bad = [d for d in self.distributions if d not in DISTRIBUTIONS]
        if bad:
            raise ValueError(f"unknown distributions {bad}; known: {', '.join(DISTRIBUTIONS)}")
        if self.repeats < 1 or self.warmup < 0 or self.retimes < 0 or self.min_sample_ms < 0 or self.settle_ms < 0:
            raise ValueError(f"repeats must be >= 1, warmup, retimes, min_sample_ms and settle_ms >= 0, got "
                             f"{self.repeats}, {self.warmup}, {self.retimes}, {self.min_sample_ms} and "
                             f"{self.settle_ms}")
        n = self.ids_shape[0] * self.ids_shape[1]
        if self.bag_size < 1 or n % self.bag_size:
            raise ValueError(f"bag_size {self.bag_size} must divide the {n} ids")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")

    @property
    def op_names(self) -> tuple[str, ...]:
        return self.ops or tuple(OPS)

    def suite_cases(self, suite: str) -> tuple[tuple[int, ...], ...]:
        return {"table": self.cases, "storage": self.storage_cases, "qbag": self.qbag_cases,
                "rope": self.rope_cases, "attend": self.attend_cases}[suite]

    def tasks(self) -> list[tuple[str, tuple, str, str | None]]:
        """(suite, shape, op, distribution) in the order they run: a shape's data is built once."""
        ops = self.op_names
        return [(suite, tuple(shape), op, dist)
                for suite, spec in SUITES.items() for shape in self.suite_cases(suite)
                for op in ops if OPS[op][0] == suite
                for dist in (self.distributions if spec.draws_ids else (None,))]


# -- a row: one op on one shape and distribution ------------------------------------------------
@dataclass(frozen=True)
class Ratio:
    """A peer's time over tinyembed's, one per repeat (the same round): their median and spread."""

    median: float
    low: float
    high: float
    q1: float
    q3: float

    @classmethod
    def paired(cls, peer: Timing, ours: Timing) -> Ratio:
        ratios = np.asarray(peer.times_ms) / np.asarray(ours.times_ms)
        q1, median, q3 = np.percentile(ratios, [25, 50, 75])
        return cls(float(median), float(ratios.min()), float(ratios.max()), float(q1), float(q3))


@dataclass
class Row:
    """One (suite, shape, distribution, op): every contender's times and what follows from them."""

    suite: str
    shape: tuple
    distribution: str | None
    op: str
    timings: dict[str, Timing]            # 'tinyembed', each peer, 'numpy', extras ('lookup')
    peers: tuple[str, ...]                # the contenders compared with tinyembed, in order ('numpy' last)
    bytes_moved: int | None = None
    output_bytes: int | None = None
    rows: int | None = None               # rows looked up per call
    copy_gbps: float = 0.0
    mem_extra: float | None = None        # peak extra allocation / output bytes
    background: float | None = None       # cores other processes kept busy meanwhile (the attempt kept)
    attempts: int = 0
    disturbed: bool = False
    agreement: dict[str, dict] = field(default_factory=dict)   # contender -> max |diff|, allowed, ok
    missing: dict[str, str] = field(default_factory=dict)      # contender -> why it is not timed
    note: str | None = None

    @property
    def case(self) -> str:
        return SUITES[self.suite].label(self.shape)

    @property
    def tinyembed(self) -> Timing | None:
        return self.timings.get("tinyembed")

    def ratio(self, peer: str) -> Ratio | None:
        """``peer``'s time over tinyembed's: above 1, tinyembed is faster."""
        if self.tinyembed is None or peer not in self.timings:
            return None
        return Ratio.paired(self.timings[peer], self.tinyembed)

    def rows_per_second(self, name: str = "tinyembed") -> float | None:
        timing = self.timings.get(name)
        return None if self.rows is None or timing is None else self.rows / (timing.median_ms / 1e3)

    @property
    def gbps(self) -> float | None:
        if self.bytes_moved is None or self.tinyembed is None:
            return None
        return self.bytes_moved / (self.tinyembed.median_ms / 1e3) / 1e9

    @property
    def pct_copy(self) -> float | None:
        return None if self.gbps is None or not self.copy_gbps else 100.0 * self.gbps / self.copy_gbps

    @property
    def layer_over_lookup(self) -> float | None:
        lookup = self.timings.get("lookup")
        return None if lookup is None or self.tinyembed is None else self.tinyembed.median_ms / lookup.median_ms

    def checks(self) -> list[dict]:
        """Each target this row is judged by: label, target, value, met (None: not measured)."""
        return [check for target in TARGETS.get(self.op, ()) for check in target(self)]

    def to_dict(self) -> dict:
        ratios = {peer: None if (r := self.ratio(peer)) is None else asdict(r) for peer in self.peers}
        return {"suite": self.suite, "case": self.case, "shape": list(self.shape), "distribution": self.distribution,
                "op": self.op, "note": self.note,
                "timings": {name: t.to_dict() for name, t in self.timings.items()},
                "tinyembed_ms": None if self.tinyembed is None else self.tinyembed.median_ms,
                "ratios": ratios, "missing": self.missing, "agreement": self.agreement,
                "rows_per_second": {name: self.rows_per_second(name) for name in self.timings if self.rows},
                "bytes_moved": self.bytes_moved, "output_bytes": self.output_bytes, "gbps": self.gbps,
                "pct_copy_bandwidth": self.pct_copy, "mem_extra_x_output": self.mem_extra,
                "background_cores": self.background, "attempts": self.attempts, "disturbed": self.disturbed,
                "layer_over_lookup": self.layer_over_lookup, "checks": self.checks()}


# -- targets (issue 13, and issue 5's that still stand), one small function each ---------------------
def _check(label: str, name: str, value: float | None, ok: Callable[[float], bool], why: str | None = None) -> dict:
    """``label`` is the short name the table shows; ``name`` states the target."""
    check = {"label": label, "target": name, "value": value, "met": None if value is None else bool(ok(value))}
    if value is None and why:
        check["why"] = why
    return check


def _vs(peer: str, at_least: float) -> Callable[[Row], list[dict]]:
    def judge(row: Row) -> list[dict]:
        ratio = row.ratio(peer)
        why = row.missing.get(peer) or row.note or f"{peer} not timed"
        return [_check(f"vs {peer}", f"{peer}/tinyembed >= {at_least}", None if ratio is None else ratio.median,
                       lambda r: r >= at_least, why)]
    return judge


def _memory(row: Row) -> list[dict]:
    return [_check("mem", "extra memory <= 1 output", row.mem_extra, lambda m: m <= 1.0)]


def _copy_share(row: Row) -> list[dict]:
    if row.shape[1] < 256:
        return []
    return [_check("copy%", "% copy bandwidth >= 80 (D >= 256)", row.pct_copy, lambda p: p >= 80.0)]


def _layer_cost(row: Row) -> list[dict]:
    return [_check("layer/lookup", "layer/lookup <= 1.2", row.layer_over_lookup, lambda r: r <= 1.2)]


# op -> the targets it is judged by (each a function of the row).
TARGETS: dict[str, tuple[Callable[[Row], list[dict]], ...]] = {
    "forward": (_vs("torch", 1.0), _memory),
    "forward_out": (_vs("torch", 1.0), _copy_share),
    "dense_backward": (_vs("torch", 1.0),),
    "sparse_backward": (_vs("torch", 1.0),),
    "bag_sum": (_vs("torch", 1.0),),
    "bag_mean": (_vs("torch", 1.0),),
    "bag_weighted": (_vs("torch", 1.0),),
    "layer_forward": (_layer_cost, _memory),
    **{op: (_vs("float32", 1.0),) for op, (suite, _) in OPS.items() if suite == "storage"},
    **{op: (_vs("torch.quantized", 1.0), _vs("fbgemm", 1.0)) for op, (suite, _) in OPS.items() if suite == "qbag"},
    "rope": (_vs("torch", 1.0),),
    "rope_backward": (_vs("torch", 1.0),),
    "attend": (_vs("torch", 0.9),),
    "attend_int8": (_vs("float32", 2.0),),
}


# -- running --------------------------------------------------------------------------------
@dataclass
class BenchReport:
    machine: dict
    config: dict
    copy_bandwidth: dict
    rows: list[Row]
    total_seconds: float
    peer_notes: dict[str, str] = field(default_factory=dict)   # why a peer is missing
    retimed: dict = field(default_factory=dict)                # rows re-timed, seconds it took, budget spent

    def summary(self) -> dict:
        """Targets met, missed (and how many of those on disturbed rows), not measured; also per suite."""
        def count(rows: list[Row]) -> dict:
            checks = [(c, row.disturbed) for row in rows for c in row.checks()]
            return {"met": sum(c["met"] is True for c, _ in checks),
                    "missed": sum(c["met"] is False for c, _ in checks),
                    "missed_disturbed": sum(c["met"] is False and disturbed for c, disturbed in checks),
                    "not_measured": sum(c["met"] is None for c, _ in checks)}
        suites = dict.fromkeys(row.suite for row in self.rows)
        return {**count(self.rows), "by_suite": {s: count([r for r in self.rows if r.suite == s]) for s in suites},
                "by_target": self._by_target(),
                "disturbed_rows": sum(row.disturbed for row in self.rows),
                "mismatches": sum(not a["ok"] for row in self.rows for a in row.agreement.values())}

    def _by_target(self) -> list[dict]:
        """Each (case, op, check) over the id distributions: the lowest and highest value, met and missed."""
        groups: dict[tuple[str, str, str], list[dict]] = {}
        for row in self.rows:
            for check in row.checks():
                if check["value"] is not None:
                    groups.setdefault((row.case, row.op, check["label"]), []).append(check)
        return [{"case": case, "op": op, "label": label, "low": min(c["value"] for c in checks),
                 "high": max(c["value"] for c in checks), "met": sum(c["met"] for c in checks),
                 "missed": sum(not c["met"] for c in checks)} for (case, op, label), checks in groups.items()]

    def to_dict(self) -> dict:
        return {"machine": self.machine, "config": self.config, "copy_bandwidth": self.copy_bandwidth,
                "peer_notes": self.peer_notes, "retimed": self.retimed, "total_seconds": self.total_seconds,
                "targets": self.summary(),
                "rows": [row.to_dict() for row in self.rows]}


def _agree(ours: np.ndarray, theirs: np.ndarray, compare: Callable[[np.ndarray, np.ndarray], Any]) -> dict:
    """How far ``theirs`` is from ``ours``, and whether within what ``compare`` allows.

    In the results' own dtype and few passes: a 0.5 GB dense gradient gets two temporaries
    of its size (fresh pages are slow to fault in on a busy VM), not six in float64.
    """
    if ours.shape != theirs.shape:
        return {"ok": False, "max_abs_diff": None, "allowed_there": None,
                "why": f"shape {theirs.shape}, ours {ours.shape}"}
    if not ours.size:
        return {"ok": True, "max_abs_diff": 0.0, "allowed_there": 0.0}
    diff = np.subtract(ours, theirs)
    np.abs(diff, out=diff)
    allowed = np.broadcast_to(np.asarray(compare(ours, theirs)), diff.shape)
    outside = ~(diff <= allowed)  # NaN counts as outside
    ok = not outside.any()
    where = int(np.argmax(outside)) if not ok else int(np.argmax(diff))
    return {"ok": ok, "max_abs_diff": float(diff.max()), "allowed_there": float(allowed.reshape(-1)[where])}


def _verify(spec: Op) -> tuple[dict[str, dict], dict[str, str]]:
    """Call every contender once and compare its result with tinyembed's before timing anything."""
    assert spec.tinyembed is not None
    ours = to_numpy(spec.tinyembed()).copy()  # a copy: out= contenders overwrite their buffers
    others = dict(spec.peers)
    if spec.numpy is not None:
        others["numpy"] = spec.numpy
    agreement, missing = {}, {}
    for name, fn in others.items():
        result = _agree(ours, to_numpy(fn()), spec.compare.get(name, close()))
        agreement[name] = result
        if not result["ok"]:
            missing[name] = (f"returned other numbers than tinyembed (max |diff| {result['max_abs_diff']}, "
                             f"allowed {result['allowed_there']} where it first exceeds that"
                             f"{'; ' + result['why'] if 'why' in result else ''})")
    return agreement, missing


@dataclass
class _Retiming:
    """What re-timing disturbed rows has cost so far in this run, against ``BenchConfig.retime_seconds``."""

    budget: float
    seconds: float = 0.0
    rows: int = 0

    @property
    def left(self) -> bool:
        return self.seconds < self.budget


def _measure(suite: str, shape: tuple, dist: str | None, op: str, work, config: BenchConfig,
             copy_gbps: float, retiming: _Retiming) -> Row:
    spec = OPS[op][1](work)
    row = Row(suite, shape, dist, op, {}, (), spec.bytes_moved, spec.output_bytes, spec.rows, copy_gbps,
              missing=dict(spec.missing), note=spec.note)
    if spec.tinyembed is None:
        return row
    row.agreement, mismatched = _verify(spec)
    row.missing.update(mismatched)
    fns = {"tinyembed": spec.tinyembed, **{p: fn for p, fn in spec.peers.items() if p not in mismatched},
           **spec.extra}
    baseline = {} if spec.numpy is None or "numpy" in mismatched else {"numpy": spec.numpy}
    if not config.numpy_apart:
        fns, baseline = {**fns, **baseline}, {}
    row.peers = tuple(p for p in (*spec.peers, "numpy") if p in fns or p in baseline)
    best: tuple[dict[str, Timing], float | None] | None = None
    for attempt in range(1, config.retimes + 2):
        if attempt > 1:
            time.sleep(config.retime_pause)  # let a passing burst pass
        before, start = cpu_seconds(), time.perf_counter()
        timings = interleaved(fns, config.repeats, config.warmup, config.min_sample_ms, config.settle_ms)
        if baseline:
            timings.update(interleaved(baseline, config.repeats, config.warmup, config.min_sample_ms,
                                       config.settle_ms))
        seconds = time.perf_counter() - start
        background = background_cores(before, cpu_seconds(), seconds)
        if attempt > 1:
            retiming.seconds += seconds + config.retime_pause
            retiming.rows += attempt == 2
        if best is None or (background is not None and (best[1] is None or background < best[1])):
            best = (timings, background)
        row.attempts = attempt
        if background is None or background <= config.disturbed_cores or not retiming.left:
            break
    assert best is not None  # at least one attempt ran
    row.timings, row.background = best
    row.disturbed = row.background is not None and row.background > config.disturbed_cores
    if spec.output_bytes:
        row.mem_extra = extra_allocation(spec.tinyembed) / spec.output_bytes
    return row


def _check_memory(config: BenchConfig) -> None:
    """Refuse up front, rather than be killed part way, when the largest shape's data does not fit."""
    n = config.ids_shape[0] * config.ids_shape[1]
    needs = [(SUITES[suite].memory(shape, n), suite, shape) for suite, shape, _, _ in config.tasks()]
    if needs:
        needed, suite, shape = max(needs)
        check_memory(needed, f"tinyembed bench's {suite} {SUITES[suite].label(shape)} case")


def run(config: BenchConfig | None = None) -> BenchReport:
    """Run the benchmark described by ``config`` (default: the full one) and return its report.

    Thread counts of tinyembed and torch (which FBGEMM's CPU kernels use) are set for the run
    and restored afterwards.
    """
    config = config or BenchConfig()
    _check_memory(config)
    start, cpu_start = time.perf_counter(), cpu_seconds()
    peers = load_peers(config.use_torch, config.use_fbgemm)
    torch = peers.torch
    threads = config.threads or kernels.get_num_threads()
    saved = kernels.get_num_threads(), (torch.get_num_threads() if torch else None)
    kernels.set_num_threads(threads)
    if torch is not None:
        torch.set_num_threads(threads)
    env = Env(peers, config.ids_shape, config.bag_size, config.seed)
    retiming = _Retiming(config.retime_seconds)
    try:
        nbytes = config.copy_mib << 20
        bandwidth = {"bytes_per_copy": 2 * nbytes, "threads": threads,
                     "all_threads_gbps": copy_bandwidth(nbytes, threads),
                     "one_thread_gbps": copy_bandwidth(nbytes, 1)}
        rows: list[Row] = []
        key: tuple | None = None
        data: Any = None
        works: dict[str | None, Any] = {}  # the current shape's workloads, by distribution
        for suite, shape, op, dist in progress(config.tasks(), desc="tinyembed bench", enabled=config.progress):
            spec = SUITES[suite]
            if key != (suite, shape):
                data = None  # free the previous shape's tables first: the largest are GBs
                works.clear()
                key, data = (suite, shape), spec.data(shape, env)
            if dist not in works:
                works[dist] = spec.workload(data, dist or "uniform", env) if spec.workload else data
            rows.append(_measure(suite, shape, dist, op, works[dist], config, bandwidth["all_threads_gbps"],
                                 retiming))
        data = None
        works.clear()
    finally:
        kernels.set_num_threads(saved[0])
        if torch is not None:
            torch.set_num_threads(saved[1])
    config_dict = {**asdict(config), "ops": list(config.op_names), "threads": threads}
    seconds = time.perf_counter() - start
    machine = {**machine_info(threads, torch), "fbgemm_gpu": None if peers.fbgemm is None else peers.fbgemm.version,
               "background_cores": background_cores(cpu_start, cpu_seconds(), seconds)}
    retimed = {"rows": retiming.rows, "seconds": retiming.seconds, "budget_spent": not retiming.left}
    return BenchReport(machine, config_dict, bandwidth, rows, seconds, dict(peers.notes or {}), retimed)


# -- output ---------------------------------------------------------------------------------
def _ms(t: Timing | None) -> str:
    return "-" if t is None else f"{t.median_ms:.3f}" if t.median_ms < 10 else f"{t.median_ms:.1f}"


def _pct(t: Timing | None) -> str:
    return "" if t is None else f"{100 * t.spread:.0f}%"


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _target_text(row: Row) -> str:
    parts = []
    for c in row.checks():
        mark = "n/a" if c["met"] is None else "ok" if c["met"] else "MISS*" if row.disturbed else "MISS"
        parts.append(f"{c['label']} {mark}")
    return "; ".join(parts)


SUITE_TITLES = {
    "table": "float32 table: lookups, gradients, bags, the embedding layer; peers torch and numpy",
    "storage": "compressed lookups against the float32 lookup of the same rows (V, D); rows per second",
    "qbag": "quantized bags (V x D, bags x ids per bag) against torch's quantized ops and FBGEMM",
    "rope": "RoPE on q and k (batch x heads x seq x head_dim), float32, against torch (Hugging Face's formula)",
    "attend": "attend: one token's scores against every row (the tied output projection)",
}
_HEADER = (f"{'case':<19} {'ids':<7} {'op':<20} {'tinyemb ms':>10} {'+-%':>4}  {'peer':<15} {'peer ms':>8} "
           f"{'+-%':>4} {'peer/te':>7} {'min-max':>11} {'Mrows/s':>7} {'GB/s':>5} {'%copy':>5} {'mem':>5} "
           f"{'bg':>4}  targets")


def _row_lines(row: Row, case: str) -> list[str]:
    te = row.tinyembed
    bg = "-" if row.background is None else f"{row.background:.1f}" + ("*" if row.disturbed else "")
    mrows = None if row.rows_per_second() is None else row.rows_per_second() / 1e6  # type: ignore[operator]
    start = f"{case:<19} {row.distribution or '-':<7} {row.op:<20} {_ms(te):>10} {_pct(te):>4}  "
    tail = (f" {_num(mrows):>7} {_num(row.gbps):>5} {_num(row.pct_copy, 0):>5} {_num(row.mem_extra, 2):>5} "
            f"{bg:>4}  {_target_text(row)}" + (f"  [{row.note}]" if row.note else ""))
    timed = []
    for peer in row.peers:
        ratio = row.ratio(peer)
        spread = "" if ratio is None else f"{ratio.low:.2f}-{ratio.high:.2f}"
        timed.append(f"{peer:<15} {_ms(row.timings[peer]):>8} {_pct(row.timings[peer]):>4} "
                     f"{_num(None if ratio is None else ratio.median, 2):>7} {spread:>11}")
    untimed = [f"{peer:<15} not timed: {why}" for peer, why in row.missing.items()]
    first = timed[0] if timed else f"{'-':<15} {'-':>8} {'':>4} {'-':>7} {'':>11}"
    indent = " " * len(start)
    lines = [start + first + tail] + [indent + cell for cell in timed[1:] + untimed]
    if "lookup" in row.timings:
        lines.append(f"{'':<19} {'':<7} {'  token lookup':<20} {_ms(row.timings['lookup']):>10} "
                     f"{_pct(row.timings['lookup']):>4}  layer/lookup = {row.layer_over_lookup:.2f}")
    return lines


def format_table(report: BenchReport) -> str:
    """The report as fixed-width tables, one per suite, with the machine, the copy bandwidth and the notes."""
    m, bw, cfg = report.machine, report.copy_bandwidth, report.config
    lines = [
        f"tinyembed bench: {m['cpu_model']}, {m['cores']} cores, numpy {m['numpy']}, "
        f"torch {m['torch'] or 'MISSING'}, fbgemm_gpu {m.get('fbgemm_gpu') or 'MISSING'}, {m['threads']} threads",
        f"copy bandwidth (read + write, {bw['bytes_per_copy'] >> 21} MiB copied): "
        f"{bw['all_threads_gbps']:.1f} GB/s with {bw['threads']} threads (the peak below), "
        f"{bw['one_thread_gbps']:.1f} GB/s with 1",
        f"{cfg['repeats']} repeats after {cfg['warmup']} warm-up, interleaved with the peers, medians; "
        f"calls under {cfg.get('min_sample_ms', 0):g} ms repeated back to back within a repeat, timed per call, "
        f"after {cfg.get('settle_ms', 0):g} ms of untimed calls; "
        f"+-% = (max - min) / median; peer/te = median of the per-round ratios, min-max their range"
        + ("; numpy in its own rounds" if cfg.get("numpy_apart") else ""),
        f"a row timed while other processes kept more than {cfg['disturbed_cores']} cores busy is timed again "
        f"(up to {cfg['retimes']} times, {cfg['retime_seconds']:.0f} s in all): {report.retimed.get('rows', 0)} rows "
        f"re-timed in {report.retimed.get('seconds', 0.0):.0f} s"
        + (", budget spent" if report.retimed.get("budget_spent") else "") + "; bg * = still disturbed",
    ]
    for peer, note in report.peer_notes.items():
        lines.append(f"NOTE: {peer}: {note}; its columns are empty and its targets not measured.")
    summary = report.summary()
    if summary["disturbed_rows"]:
        lines.append(f"WARNING: {summary['disturbed_rows']} of {len(report.rows)} rows stayed disturbed by other "
                     f"processes (bg *): their times are not to be trusted; rerun on an idle machine.")
    if summary["mismatches"]:
        lines.append(f"WARNING: {summary['mismatches']} peers returned other numbers than tinyembed and were "
                     f"not timed (see their rows).")
    suite = None
    previous = None
    for row in report.rows:
        if row.suite != suite:
            suite, previous = row.suite, None
            lines += ["", f"== {suite}: {SUITE_TITLES[suite]}", _HEADER, "-" * len(_HEADER)]
        case = row.case if row.case != previous else ""
        previous = row.case
        lines += _row_lines(row, case)
    lines += [
        "",
        "peer/te > 1: tinyembed is faster. mem: peak extra allocation of the tinyembed call, in outputs.",
        "bg: cores kept busy by other processes while the row was timed; MISS* = missed on a disturbed row.",
        "targets: vs torch >= 1.0 (attend >= 0.9); compressed lookups vs float32 >= 1.0; quantized bags vs",
        "         torch.quantized and vs fbgemm >= 1.0; attend_int8 vs float32 >= 2.0; %copy >= 80 for forward_out",
        "         with D >= 256; layer/lookup <= 1.2; extra memory <= 1 output (forward, layer_forward).",
        "sparse_backward's torch time includes .coalesce(); forward_out's torch is index_select(out=), its numpy "
        "np.take(out=);",
        "rope_backward times forward and backward; fbgemm holds our 8-bit codes with float16 scale and bias.",
        "",
        "by target (over the id distributions: lowest-highest value, met/missed):",
        *(f"  {t['case']:<20} {t['op']:<24} {t['label']:<20} {t['low']:.2f}-{t['high']:.2f}  "
          f"{t['met']}/{t['missed']}" for t in summary["by_target"]),
        "targets by suite: " + "; ".join(f"{s} {c['met']} met, {c['missed']} missed"
                                         for s, c in summary["by_suite"].items()),
        f"targets met {summary['met']}, missed {summary['missed']} ({summary['missed_disturbed']} of them on "
        f"disturbed rows), not measured {summary['not_measured']}; total {report.total_seconds:.1f} s",
    ]
    return "\n".join(lines)


def write_json(report: BenchReport, path: str | os.PathLike) -> None:
    """Write the report's JSON to ``path`` atomically: a temporary file beside it, then a rename."""
    write_atomic(path, json.dumps(report.to_dict(), indent=2) + "\n")

