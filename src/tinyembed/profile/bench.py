"""tinyembed bench: the lookup kernels against PyTorch and textbook NumPy, on this machine.

For every case (a (V, D) float32 table and (32, 512) ids drawn uniformly or from a
seeded Zipf(1.0)), each operation runs as tinyembed, as PyTorch (with
``torch.set_num_threads`` equal to our thread count) and, where there is a
textbook one-liner, as plain NumPy. tinyembed and torch run interleaved, A B A B, in one
process, after a warm-up; NumPy then gets its own rounds (see ``BenchConfig.numpy_apart``
for the measured reason). We report medians and the spread of the repeats.

What is compared with what (the ``OPS`` registry; every pair returns the same numbers,
which tests/test_bench.py checks):

    op               tinyembed                        torch                                   numpy
    forward          Embedding(ids)                   nn.Embedding(ids)                       weight[ids]
    forward_out      Embedding(ids, out=buf)          index_select(out=buf) (1)               np.take(out=buf) (2)
    dense_backward   kernels.scatter_add_rows (3)     aten.embedding_dense_backward           np.zeros + np.add.at
    sparse_backward  RowSparseGrad.from_rows          aten.embedding_sparse_backward
                                                      + .coalesce() (4)
    bag_sum/mean     EmbeddingBag(ids, offsets)       F.embedding_bag(ids, offsets)           reshape(B, 16, D).sum
    int8_bag         QuantizedEmbedding.bag (sum)     quantized.embedding_bag_byte_rowwise_offsets
                                                      on embedding_bag_byte_prepack(weight)
    layer_forward    EmbeddingLayer(ids): token +     nn.Embedding(ids) + pe[:seq]            weight[ids] + pe
                     sinusoidal positions

(1) torch has no ``embedding(out=)``; its CPU embedding *is* ``index_select`` on the
    flattened ids, so this is the same work writing into a preallocated tensor.
(2) ``np.take`` with ``out=`` and the default ``mode='raise'`` buffers the whole output.
(3) What ``Embedding``'s backward calls for a dense gradient.
(4) torch's sparse backward only wraps the ids and gradient rows in an uncoalesced
    sparse tensor; ``.coalesce()`` sums repeated rows, which is what
    ``RowSparseGrad`` always holds (sorted, unique rows). Without it the two are not
    the same result.

The layer row also times the token lookup alone (``Embedding(ids)``) in the same
interleaving and reports ``layer / lookup``: adding positions should cost at most 20%.

Bytes moved is the least traffic one pass over the data needs
(:func:`tinyembed.profile.traffic.bytes_moved`, which has the formulas; the int8 bag reads
fused rows of D + 8 bytes and writes float32 bags).

GB/s is bytes moved over tinyembed's median time; ``% copy`` compares it with the
copy bandwidth measured in the same run (:func:`.timing.copy_bandwidth`: ``np.copyto`` of a
large array in one chunk per thread, counting bytes read plus bytes written, the
same accounting). Temporaries are not counted as moved: they show up as time.

One process, two cores: after each torch op its OpenMP worker keeps spinning for a
while (libgomp's default wait policy), on one of the two cores the tinyembed call
that follows wants. Measured for forward_out on (50257, 768): tinyembed 7.1 ms
alone, 10.8 ms interleaved with torch, 6.3 ms interleaved with
``OMP_WAIT_POLICY=PASSIVE``, which in turn makes torch's small ops 2-5x slower
(its workers must be woken). We run torch as it comes; the JSON records the policy.

Memory (``mem``): the peak of what the tinyembed call allocated beyond what it left
allocated at the end (its output), measured with tracemalloc (NumPy reports its
array allocations to it), in units of the op's output size. torch's allocations are
invisible to tracemalloc, so only tinyembed's are reported.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from .. import kernels
from ..checks import check_memory
from ..io.files import write_atomic
from ..io.progress import progress
from ..kernels.rows import storage_row_bytes
from ..nn.embedding import Embedding, EmbeddingBag
from ..plan.zipf import zipf_ids
from ..positional import EmbeddingLayer, PositionalEncoding
from ..sparse import RowSparseGrad
from ..tables.quantized import QuantizedEmbedding
from ..tensor import Tensor
from .timing import Timing, background_cores, copy_bandwidth, cpu_seconds, extra_allocation, interleaved, machine_info
from .traffic import bytes_moved

__all__ = ["BenchConfig", "BenchReport", "Row", "Workload", "OPS", "TARGETS", "CASES", "format_table", "run",
           "to_numpy", "write_json"]

CASES: tuple[tuple[int, int], ...] = ((50257, 768), (32000, 4096), (50257, 64), (1000, 16))
DISTRIBUTIONS = ("uniform", "zipf")


@dataclass(frozen=True)
class BenchConfig:
    """What to run.

    Args:
        cases: (V, D) tables.
        distributions: how ids are drawn: 'uniform' or 'zipf' (Zipf(1.0): id i has
            probability proportional to 1 / (i + 1)).
        ops: names from ``OPS``.
        ids_shape: (batch, seq) of the ids; bags are consecutive runs of ``bag_size`` of them.
        repeats: timed calls of each contender (after ``warmup`` untimed ones).
        threads: threads for tinyembed and torch; None keeps ``kernels.get_num_threads()``.
        copy_mib: size of the array copied to measure copy bandwidth.
        use_torch: False runs without torch even if it is installed.
        numpy_apart: time the NumPy baseline in its own rounds after tinyembed's and torch's.
            Sharing their rounds, ``np.add.at`` on the 0.5 GB dense gradient of the
            (32000, 4096) case was measured to slow the tinyembed call 6x (about 140 ms
            to 900 ms; torch unchanged): fresh 0.5 GB arrays fault their pages in again.
            tinyembed and torch, whose ratio the targets judge, always share rounds.
        progress: draw a progress bar on stderr.
    """

    cases: tuple[tuple[int, int], ...] = CASES
    distributions: tuple[str, ...] = DISTRIBUTIONS
    ops: tuple[str, ...] = ()  # () means every op of OPS
    ids_shape: tuple[int, int] = (32, 512)
    bag_size: int = 16
    repeats: int = 5
    warmup: int = 1
    threads: int | None = None
    copy_mib: int = 256
    use_torch: bool = True
    numpy_apart: bool = True
    seed: int = 0
    quick: bool = False
    progress: bool = True

    @classmethod
    def quick_run(cls, **overrides) -> BenchConfig:
        """Under a minute: no (32000, 4096) table, uniform ids only, 3 repeats."""
        quick = dict(cases=tuple(c for c in CASES if c != (32000, 4096)), distributions=("uniform",),
                     repeats=3, quick=True)
        return cls(**{**quick, **overrides})

    def __post_init__(self):
        unknown = [op for op in self.ops if op not in OPS]
        if unknown:
            raise ValueError(f"unknown ops {unknown}; known: {', '.join(OPS)}")
        bad = [d for d in self.distributions if d not in DISTRIBUTIONS]
        if bad:
            raise ValueError(f"unknown distributions {bad}; known: {', '.join(DISTRIBUTIONS)}")
        if self.repeats < 1 or self.warmup < 0:
            raise ValueError(f"repeats must be >= 1 and warmup >= 0, got {self.repeats} and {self.warmup}")
        n = self.ids_shape[0] * self.ids_shape[1]
        if self.bag_size < 1 or n % self.bag_size:
            raise ValueError(f"bag_size {self.bag_size} must divide the {n} ids")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")

    @property
    def op_names(self) -> tuple[str, ...]:
        return self.ops or tuple(OPS)


# -- the data of one case -------------------------------------------------------------------
def _import_torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def draw_ids(rng: np.random.Generator, vocab: int, shape: tuple, distribution: str) -> np.ndarray:
    """int64 ids in [0, vocab): uniform, or Zipf(1.0) with id i drawn with probability ∝ 1 / (i + 1)."""
    if distribution == "uniform":
        return rng.integers(0, vocab, size=shape, dtype=np.int64)
    return zipf_ids(vocab, 1.0, shape, rng)


class Table:
    """One (V, D) table and everything built from it, each built the first time an op asks."""

    def __init__(self, vocab: int, dim: int, n: int, seq: int, seed: int, torch=None):
        self.vocab, self.dim, self.n, self.seq, self.torch = vocab, dim, n, seq, torch
        rng = np.random.default_rng([seed, vocab, dim])
        self.weight = rng.standard_normal((vocab, dim), dtype=np.float32)     # (V, D)
        self.grad = rng.standard_normal((n, dim), dtype=np.float32)           # (n, D): gradient of each looked-up row

    # tinyembed: frozen modules over the same array (no autograd graph, like torch's below)
    @cached_property
    def emb(self) -> Embedding:
        return Embedding.from_pretrained(self.weight, freeze=True)

    @cached_property
    def bags(self) -> dict[str, EmbeddingBag]:
        return {mode: EmbeddingBag.from_pretrained(self.weight, mode=mode) for mode in ("sum", "mean")}

    @cached_property
    def quantized(self) -> QuantizedEmbedding:
        return QuantizedEmbedding.from_float(self.weight, bits=8)

    @cached_property
    def sinusoidal(self) -> PositionalEncoding:
        """The layer's positions, what positional="sinusoidal" builds; kept here typed, for ``pe``."""
        return PositionalEncoding(self.dim, max_len=self.seq)

    @cached_property
    def layer(self) -> EmbeddingLayer:
        return EmbeddingLayer(self.vocab, self.dim, max_len=self.seq, positional=self.sinusoidal, token_table=self.emb)

    @cached_property
    def pe(self) -> np.ndarray:
        """(seq, D) float32 positions, as the layer adds them."""
        return self.sinusoidal.encoding(np.arange(self.seq))

    # torch: tensors sharing our arrays (torch.from_numpy copies nothing)
    @cached_property
    def weight_t(self):
        return self.torch.from_numpy(self.weight)

    @cached_property
    def grad_t(self):
        return self.torch.from_numpy(self.grad)

    @cached_property
    def emb_t(self):
        return self.torch.nn.Embedding.from_pretrained(self.weight_t, freeze=True)

    @cached_property
    def packed_t(self):
        return self.torch.ops.quantized.embedding_bag_byte_prepack(self.weight_t)

    @cached_property
    def pe_t(self):
        return self.torch.from_numpy(self.pe)


class Workload:
    """A table and one draw of ids: what every op of a row reads."""

    def __init__(self, table: Table, distribution: str, ids_shape: tuple, bag_size: int, seed: int):
        self.table, self.distribution = table, distribution
        rng = np.random.default_rng([seed, table.vocab, table.dim, DISTRIBUTIONS.index(distribution)])
        self.ids = draw_ids(rng, table.vocab, ids_shape, distribution)               # (batch, seq)
        self.flat = self.ids.reshape(-1)                                            # (n,)
        self.offsets = np.arange(0, self.flat.size, bag_size, dtype=np.int64)       # (B,)
        self.bag_size = bag_size

    @classmethod
    def build(cls, vocab: int, dim: int, distribution: str = "uniform", ids_shape=(32, 512),
              bag_size: int = 16, seed: int = 0, use_torch: bool = True) -> Workload:
        torch = _import_torch() if use_torch else None
        table = Table(vocab, dim, ids_shape[0] * ids_shape[1], ids_shape[1], seed, torch)
        return cls(table, distribution, ids_shape, bag_size, seed)

    @property
    def torch(self):
        return self.table.torch

    @cached_property
    def distinct(self) -> int:
        return int(np.unique(self.flat).size)

    @cached_property
    def ids_t(self):
        return self.torch.from_numpy(self.ids)

    @cached_property
    def flat_t(self):
        return self.torch.from_numpy(self.flat)

    @cached_property
    def offsets_t(self):
        return self.torch.from_numpy(self.offsets)


# -- the operations ----------------------------------------------------------------------------
@dataclass
class Op:
    """The contenders of one operation on one workload, and what it moves.

    ``tinyembed`` is always there; ``torch`` is None without torch, ``numpy`` where
    there is no textbook one-liner. ``extra`` holds further tinyembed calls timed in the
    same interleaving (the layer's token lookup alone).
    """

    tinyembed: Callable[[], Any]
    torch: Callable[[], Any] | None
    numpy: Callable[[], Any] | None
    bytes_moved: int
    output_bytes: int
    extra: dict[str, Callable[[], Any]] = field(default_factory=dict)


def _moved(op: str, w: Workload) -> int:
    """Bytes moved by ``op`` on ``w``'s table; the int8 bag reads fused rows (:mod:`.traffic`)."""
    t, item = w.table, w.table.weight.itemsize
    stored = storage_row_bytes("int8", t.dim) if op == "int8_bag" else t.dim * item
    return bytes_moved("bag_sum" if op == "int8_bag" else op, n=w.flat.size, dim=t.dim, row_bytes=stored,
                       out_itemsize=4 if op == "int8_bag" else item, vocab=t.vocab, bags=w.offsets.size,
                       distinct=w.distinct, positions=w.ids.shape[1])


def _forward(w: Workload) -> Op:
    t = w.table
    return Op(tinyembed=lambda: t.emb(w.ids),
              torch=(lambda: t.emb_t(w.ids_t)) if w.torch else None,
              numpy=lambda: t.weight[w.ids],
              bytes_moved=_moved("forward", w), output_bytes=w.flat.size * t.dim * 4)


def _forward_out(w: Workload) -> Op:
    t = w.table
    out = np.empty(w.ids.shape + (t.dim,), np.float32)
    out_np = np.empty_like(out)
    torch_fn = None
    if w.torch:
        out_t = w.torch.empty(w.ids.shape + (t.dim,), dtype=w.torch.float32)
        out_rows = out_t.view(-1, t.dim)  # (n, D) view: index_select writes straight into out_t

        def torch_fn():
            w.torch.index_select(t.weight_t, 0, w.flat_t, out=out_rows)
            return out_t
    return Op(tinyembed=lambda: t.emb(w.ids, out=out),
              torch=torch_fn,
              numpy=lambda: np.take(t.weight, w.ids, axis=0, out=out_np),
              bytes_moved=_moved("forward_out", w), output_bytes=out.nbytes)


def _numpy_add_at(rows: np.ndarray, values: np.ndarray, num_rows: int) -> np.ndarray:
    out = np.zeros((num_rows, values.shape[1]), dtype=values.dtype)
    np.add.at(out, rows, values)
    return out


def _dense_backward(w: Workload) -> Op:
    t = w.table
    torch_fn = None
    if w.torch:
        grad3 = t.grad_t.view(*w.ids.shape, t.dim)  # (batch, seq, D), as autograd passes it
        torch_fn = lambda: w.torch.ops.aten.embedding_dense_backward(grad3, w.ids_t, t.vocab, -1, False)  # noqa: E731
    return Op(tinyembed=lambda: kernels.scatter_add_rows(w.flat, t.grad, t.vocab),
              torch=torch_fn,
              numpy=lambda: _numpy_add_at(w.flat, t.grad, t.vocab),
              bytes_moved=_moved("dense_backward", w), output_bytes=t.vocab * t.dim * 4)


def _sparse_backward(w: Workload) -> Op:
    t = w.table
    torch_fn = None
    if w.torch:
        grad3 = t.grad_t.view(*w.ids.shape, t.dim)
        torch_fn = lambda: w.torch.ops.aten.embedding_sparse_backward(  # noqa: E731
            grad3, w.ids_t, t.vocab, -1, False).coalesce()
    return Op(tinyembed=lambda: RowSparseGrad.from_rows(w.flat, t.grad, (t.vocab, t.dim)),
              torch=torch_fn, numpy=None,
              bytes_moved=_moved("sparse_backward", w), output_bytes=w.distinct * (8 + t.dim * 4))


def _bag(mode: str) -> Callable[[Workload], Op]:
    def build(w: Workload) -> Op:
        t = w.table
        bag = t.bags[mode]
        reduce = getattr(np, mode)
        torch_fn = None
        if w.torch:
            torch_fn = lambda: w.torch.nn.functional.embedding_bag(  # noqa: E731
                w.flat_t, t.weight_t, w.offsets_t, mode=mode)
        return Op(tinyembed=lambda: bag(w.flat, w.offsets),
                  torch=torch_fn,
                  numpy=lambda: reduce(t.weight[w.flat].reshape(-1, w.bag_size, t.dim), axis=1),
                  bytes_moved=_moved(f"bag_{mode}", w), output_bytes=w.offsets.size * t.dim * 4)
    return build


def _int8_bag(w: Workload) -> Op:
    t = w.table
    quantized = t.quantized
    torch_fn = None
    if w.torch:
        packed = t.packed_t
        torch_fn = lambda: w.torch.ops.quantized.embedding_bag_byte_rowwise_offsets(  # noqa: E731
            packed, w.flat_t, w.offsets_t, False, 0, False, None, None, False)  # mode 0: sum
    return Op(tinyembed=lambda: quantized.bag(w.flat, w.offsets, mode="sum"),
              torch=torch_fn, numpy=None,
              bytes_moved=_moved("int8_bag", w), output_bytes=w.offsets.size * t.dim * 4)


def _layer_forward(w: Workload) -> Op:
    t = w.table
    layer, pe, seq = t.layer, t.pe, w.ids.shape[1]
    torch_fn = None
    if w.torch:
        pe_t = t.pe_t
        torch_fn = lambda: t.emb_t(w.ids_t) + pe_t[:seq]  # noqa: E731
    return Op(tinyembed=lambda: layer(w.ids),
              torch=torch_fn,
              numpy=lambda: t.weight[w.ids] + pe[:seq],
              bytes_moved=_moved("layer_forward", w), output_bytes=w.flat.size * t.dim * 4,
              extra={"lookup": lambda: t.emb(w.ids)})


# name -> (workload -> Op). Adding an operation is adding one function and one entry.
OPS: dict[str, Callable[[Workload], Op]] = {
    "forward": _forward,
    "forward_out": _forward_out,
    "dense_backward": _dense_backward,
    "sparse_backward": _sparse_backward,
    "bag_sum": _bag("sum"),
    "bag_mean": _bag("mean"),
    "int8_bag": _int8_bag,
    "layer_forward": _layer_forward,
}


def to_numpy(result) -> np.ndarray:
    """Any contender's result as a dense ndarray: Tensor, ndarray, RowSparseGrad, torch dense or sparse."""
    if isinstance(result, Tensor):
        return result.data
    if isinstance(result, RowSparseGrad):
        return result.to_dense()
    if isinstance(result, np.ndarray):
        return result
    if getattr(result, "is_sparse", False):
        result = result.to_dense()
    return result.numpy()


# -- targets (issue 5), one small function per op --------------------------------------------
@dataclass
class Row:
    """One (case, op): times of each contender and what follows from them."""

    vocab: int
    dim: int
    distribution: str
    op: str
    tinyembed: Timing
    torch: Timing | None
    numpy: Timing | None
    bytes_moved: int
    output_bytes: int
    copy_gbps: float
    distinct_ids: int
    mem_extra: float | None = None       # peak extra allocation / output bytes
    lookup: Timing | None = None         # layer_forward only: the token lookup alone
    background: float | None = None      # cores other processes kept busy meanwhile

    @property
    def case(self) -> str:
        return f"{self.vocab}x{self.dim} {self.distribution}"

    @property
    def ratio(self) -> float | None:
        """torch / tinyembed median time: above 1, tinyembed is faster."""
        return None if self.torch is None else self.torch.median_ms / self.tinyembed.median_ms

    @property
    def numpy_ratio(self) -> float | None:
        return None if self.numpy is None else self.numpy.median_ms / self.tinyembed.median_ms

    @property
    def gbps(self) -> float:
        return self.bytes_moved / (self.tinyembed.median_ms / 1e3) / 1e9

    @property
    def pct_copy(self) -> float:
        return 100.0 * self.gbps / self.copy_gbps

    @property
    def layer_over_lookup(self) -> float | None:
        return None if self.lookup is None else self.tinyembed.median_ms / self.lookup.median_ms

    def checks(self) -> list[dict]:
        """Each target of issue 5 this row is judged by: name, value, met (None: not measured)."""
        return [check for target in TARGETS.get(self.op, ()) for check in target(self)]

    def to_dict(self) -> dict:
        d = {"case": self.case, "vocab": self.vocab, "dim": self.dim, "distribution": self.distribution,
             "op": self.op, "distinct_ids": self.distinct_ids,
             "tinyembed": self.tinyembed.to_dict(),
             "torch": None if self.torch is None else self.torch.to_dict(),
             "numpy": None if self.numpy is None else self.numpy.to_dict(),
             "tinyembed_ms": self.tinyembed.median_ms,
             "torch_ms": None if self.torch is None else self.torch.median_ms,
             "numpy_ms": None if self.numpy is None else self.numpy.median_ms,
             "ratio_torch_over_tinyembed": self.ratio, "ratio_numpy_over_tinyembed": self.numpy_ratio,
             "bytes_moved": self.bytes_moved, "output_bytes": self.output_bytes, "gbps": self.gbps,
             "pct_copy_bandwidth": self.pct_copy, "mem_extra_x_output": self.mem_extra,
             "background_cores": self.background,
             "checks": self.checks()}
        if self.lookup is not None:
            d["lookup"] = self.lookup.to_dict()
            d["layer_over_lookup"] = self.layer_over_lookup
        return d


def _check(label: str, name: str, value: float | None, ok: Callable[[float], bool]) -> dict:
    """``label`` is the short name the table shows; ``name`` states the target."""
    return {"label": label, "target": name, "value": value, "met": None if value is None else bool(ok(value))}


def _vs_torch(at_least: float) -> Callable[[Row], list[dict]]:
    return lambda row: [_check("vs torch", f"torch/tinyembed >= {at_least}", row.ratio, lambda r: r >= at_least)]


def _memory(row: Row) -> list[dict]:
    return [_check("mem", "extra memory <= 1 output", row.mem_extra, lambda m: m <= 1.0)]


def _copy_share(row: Row) -> list[dict]:
    if row.dim < 256:
        return []
    return [_check("copy%", "% copy bandwidth >= 80 (D >= 256)", row.pct_copy, lambda p: p >= 80.0)]


def _layer_cost(row: Row) -> list[dict]:
    return [_check("layer/lookup", "layer/lookup <= 1.2", row.layer_over_lookup, lambda r: r <= 1.2)]


# op -> the targets it is judged by (each a function of the row).
TARGETS: dict[str, tuple[Callable[[Row], list[dict]], ...]] = {
    "forward": (_vs_torch(1.0), _memory),
    "forward_out": (_vs_torch(1.0), _copy_share),
    "dense_backward": (_vs_torch(1.0),),
    "sparse_backward": (_vs_torch(1.0),),
    "bag_sum": (_vs_torch(1.0),),
    "bag_mean": (_vs_torch(1.0),),
    "int8_bag": (_vs_torch(0.8),),
    "layer_forward": (_layer_cost, _memory),
}


# -- running --------------------------------------------------------------------------------
@dataclass
class BenchReport:
    machine: dict
    config: dict
    copy_bandwidth: dict
    rows: list[Row]
    total_seconds: float
    torch_note: str | None = None  # why torch is missing, if it is

    def to_dict(self) -> dict:
        checks = [c for row in self.rows for c in row.checks()]
        return {"machine": self.machine, "config": self.config, "copy_bandwidth": self.copy_bandwidth,
                "torch_note": self.torch_note, "total_seconds": self.total_seconds,
                "targets": {"met": sum(c["met"] is True for c in checks),
                            "missed": sum(c["met"] is False for c in checks),
                            "not_measured": sum(c["met"] is None for c in checks)},
                "rows": [row.to_dict() for row in self.rows]}


def _measure(op: str, w: Workload, config: BenchConfig, copy_gbps: float) -> Row:
    spec = OPS[op](w)
    fns = {"tinyembed": spec.tinyembed}
    if spec.torch is not None:
        fns["torch"] = spec.torch
    fns.update(spec.extra)
    baseline = {} if spec.numpy is None else {"numpy": spec.numpy}
    if not config.numpy_apart:
        fns, baseline = {**fns, **baseline}, {}
    before, start = cpu_seconds(), time.perf_counter()
    timings = interleaved(fns, config.repeats, config.warmup)
    if baseline:
        timings.update(interleaved(baseline, config.repeats, config.warmup))
    background = background_cores(before, cpu_seconds(), time.perf_counter() - start)
    mem = extra_allocation(spec.tinyembed) / spec.output_bytes if spec.output_bytes else None
    return Row(w.table.vocab, w.table.dim, w.distribution, op, timings["tinyembed"], timings.get("torch"),
               timings.get("numpy"), spec.bytes_moved, spec.output_bytes, copy_gbps, w.distinct,
               mem_extra=mem, lookup=timings.get("lookup"), background=background)


def run(config: BenchConfig | None = None) -> BenchReport:
    """Run the benchmark described by ``config`` (default: the full one) and return its report.

    Thread counts of tinyembed and torch are set for the run and restored afterwards.
    """
    config = config or BenchConfig()
    # The largest case holds its table about 8 times at once (ours and torch's, gradients, the NumPy
    # baseline's dense gradient, bags): refuse up front rather than be killed part way.
    vocab, dim = max(config.cases, key=lambda c: c[0] * c[1])
    check_memory(8 * vocab * dim * 4, f"tinyembed bench's {vocab}x{dim} case")
    start, cpu_start = time.perf_counter(), cpu_seconds()
    torch = _import_torch() if config.use_torch else None
    torch_note = None
    if torch is None:
        torch_note = "torch not installed" if config.use_torch else "torch not used (use_torch=False)"
    threads = config.threads or kernels.get_num_threads()
    saved = kernels.get_num_threads(), (torch.get_num_threads() if torch else None)
    kernels.set_num_threads(threads)
    if torch is not None:
        torch.set_num_threads(threads)
    try:
        nbytes = config.copy_mib << 20
        bandwidth = {"bytes_per_copy": 2 * nbytes, "threads": threads,
                     "all_threads_gbps": copy_bandwidth(nbytes, threads),
                     "one_thread_gbps": copy_bandwidth(nbytes, 1)}
        n = config.ids_shape[0] * config.ids_shape[1]
        tasks = [(case, dist, op) for case in config.cases for dist in config.distributions
                 for op in config.op_names]
        rows, table, workload = [], None, None
        for (vocab, dim), dist, op in progress(tasks, desc="tinyembed bench", enabled=config.progress):
            if table is None or (table.vocab, table.dim) != (vocab, dim):
                table = workload = None  # free the previous table first: the largest is 0.5 GB
                table = Table(vocab, dim, n, config.ids_shape[1], config.seed, torch)
            if workload is None or workload.distribution != dist:
                workload = Workload(table, dist, config.ids_shape, config.bag_size, config.seed)
            rows.append(_measure(op, workload, config, bandwidth["all_threads_gbps"]))
    finally:
        kernels.set_num_threads(saved[0])
        if torch is not None:
            torch.set_num_threads(saved[1])
    config_dict = {**asdict(config), "ops": list(config.op_names), "threads": threads}
    seconds = time.perf_counter() - start
    machine = {**machine_info(threads, torch),
               "background_cores": background_cores(cpu_start, cpu_seconds(), seconds)}
    return BenchReport(machine, config_dict, bandwidth, rows, seconds, torch_note)


# -- output ---------------------------------------------------------------------------------
def _ms(t: Timing | None) -> str:
    return "-" if t is None else f"{t.median_ms:.3f}" if t.median_ms < 10 else f"{t.median_ms:.1f}"


def _pct(t: Timing | None) -> str:
    return "" if t is None else f"{100 * t.spread:.0f}%"


def _target_text(row: Row) -> str:
    parts = []
    for c in row.checks():
        mark = "n/a" if c["met"] is None else "ok" if c["met"] else "MISS"
        parts.append(f"{c['label']} {mark}")
    return "; ".join(parts)


def format_table(report: BenchReport) -> str:
    """The report as a fixed-width table, with the machine, the copy bandwidth and the notes."""
    m, bw = report.machine, report.copy_bandwidth
    lines = [
        f"tinyembed bench: {m['cpu_model']}, {m['cores']} cores, numpy {m['numpy']}, "
        f"torch {m['torch'] or 'MISSING'}, {m['threads']} threads",
        f"copy bandwidth (read + write, {bw['bytes_per_copy'] >> 21} MiB copied): "
        f"{bw['all_threads_gbps']:.1f} GB/s with {bw['threads']} threads (the peak below), "
        f"{bw['one_thread_gbps']:.1f} GB/s with 1",
        f"ids {tuple(report.config['ids_shape'])}, bags of {report.config['bag_size']}, "
        f"{report.config['repeats']} repeats after {report.config['warmup']} warm-up, medians; "
        f"+-% = (max - min) / median; tinyembed and torch interleaved"
        + (", numpy in its own rounds after them" if report.config.get("numpy_apart") else ", numpy too"),
    ]
    disturbed = [row for row in report.rows if row.background is not None and row.background > 0.2]
    if disturbed:
        lines.append(f"WARNING: {len(disturbed)} of {len(report.rows)} rows were timed while other processes kept "
                     f"more than 0.2 of {m['cores']} cores busy (column bg): their times are disturbed; "
                     f"rerun on an idle machine.")
    if report.torch_note:
        lines.append(f"NOTE: {report.torch_note}: the torch columns are empty and no ratio is computed.")
    header = (f"{'case':<19} {'op':<15} {'tinyemb ms':>10} {'+-%':>4} {'torch ms':>9} {'+-%':>4} "
              f"{'numpy ms':>9} {'torch/te':>8} {'MB moved':>8} {'GB/s':>6} {'%copy':>5} {'mem':>5} {'bg':>3}  targets")
    lines += ["", header, "-" * len(header)]
    previous = None
    for row in report.rows:
        case = row.case if row.case != previous else ""
        previous = row.case
        ratio = "-" if row.ratio is None else f"{row.ratio:.2f}"
        mem = "-" if row.mem_extra is None else f"{row.mem_extra:.2f}"
        bg = "-" if row.background is None else f"{row.background:.1f}"
        op = row.op
        lines.append(f"{case:<19} {op:<15} {_ms(row.tinyembed):>10} {_pct(row.tinyembed):>4} "
                     f"{_ms(row.torch):>9} {_pct(row.torch):>4} {_ms(row.numpy):>9} {ratio:>8} "
                     f"{row.bytes_moved / 1e6:>8.1f} {row.gbps:>6.1f} {row.pct_copy:>5.0f} {mem:>5} {bg:>3}  "
                     f"{_target_text(row)}")
        if row.lookup is not None:
            lookup = f"{'':<19} {'  token lookup':<15} {_ms(row.lookup):>10} {_pct(row.lookup):>4}"
            lines.append(lookup.ljust(header.index("targets")) + f"layer/lookup = {row.layer_over_lookup:.2f}")
    summary = report.to_dict()["targets"]
    lines += [
        "",
        "torch/te > 1: tinyembed is faster. mem: peak extra allocation of the tinyembed call, in outputs.",
        "bg: cores kept busy by other processes while the row was timed (above ~0.2, its times are disturbed).",
        "targets: torch/tinyembed >= 1.0 (int8_bag >= 0.8); %copy >= 80 for forward_out with D >= 256;",
        "         layer/lookup <= 1.2; extra memory <= 1 output (forward, layer_forward).",
        "sparse_backward's torch time includes .coalesce() (RowSparseGrad is always coalesced);",
        "forward_out's torch is index_select(out=), its numpy np.take(out=).",
        f"targets met {summary['met']}, missed {summary['missed']}, not measured {summary['not_measured']}; "
        f"total {report.total_seconds:.1f} s",
    ]
    return "\n".join(lines)


def write_json(report: BenchReport, path: str | os.PathLike) -> None:
    """Write the report's JSON to ``path`` atomically: a temporary file beside it, then a rename."""
    write_atomic(path, json.dumps(report.to_dict(), indent=2) + "\n")
