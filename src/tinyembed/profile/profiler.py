"""EmbeddingProfiler: what embedding lookups cost on this machine, and why.

Every method measures or simulates one thing and returns plain dataclasses
(each with ``to_dict``) that the report renders and users can use in their own
code. Timings use :func:`tinyembed.profile.timing.interleaved` (warm-up, repeats,
medians) on the same lookup paths users run: ``Embedding`` and the tables of
:mod:`tinyembed.tables`, which call :mod:`tinyembed.kernels`.

Examples:
    >>> from tinyembed.nn import Embedding
    >>> profiler = EmbeddingProfiler(repeats=3)
    >>> [m] = profiler.measure_lookup_performance(Embedding(1000, 16, seed=0), [2], [8])
    >>> m.tokens, m.unique_rows <= 16
    (16, True)
"""

from __future__ import annotations

import functools
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from ..checks import check_nonnegative_int, check_positive_int
from ..io.progress import progress
from ..kernels.rows import check_storage, storage_row_bytes
from ..nn import Embedding
from ..plan.memory import embedding_memory
from ..plan.models import MODELS
from ..positional import ALiBi, LearnedPositionalEmbedding, PositionalEncoding, RotaryEmbedding
from ..tables import as_storage
from ..tensor import Tensor, no_grad
from . import cachesim, rowcache, timing
from .machine import MachineInfo, measure_machine
from .patterns import DEFAULT_PATTERNS, AccessPattern
from .traffic import bytes_moved

__all__ = [
    "EmbeddingProfiler", "LookupMeasurement", "MemoryScaling", "PositionalComparison",
    "AccessPatternResult", "CacheAnalysis", "make_table",
]

def _check_sizes(values, name: str) -> list[int]:
    """A non-empty list of positive ints, or an error naming the first bad value."""
    # A scalar (a float or a string too) is one value, so its error names it.
    values = [values] if isinstance(values, (str, bytes)) or not np.iterable(values) else list(values)
    if not values:
        raise ValueError(f"{name} must not be empty")
    return [check_positive_int(v, name) for v in values]


def _pattern(pattern: str | AccessPattern, alpha: float | None) -> AccessPattern:
    if isinstance(pattern, AccessPattern):
        return pattern
    if alpha is None:
        return AccessPattern.parse(pattern)
    return AccessPattern(str(pattern), alpha)


def make_table(num_embeddings: int, embedding_dim: int, dtype: str = "float32", seed: int = 0):
    """A random N(0, 1) table stored as ``dtype``, a storage type of
    :data:`tinyembed.kernels.rows.STORAGE_TYPES` (float32, float16, bfloat16, float8_e4m3fn, int8, int4)."""
    check_storage(dtype)
    num_embeddings, embedding_dim = _check_sizes([num_embeddings, embedding_dim], "table sizes")
    weight = np.random.default_rng(seed).standard_normal((num_embeddings, embedding_dim), dtype=np.float32)
    return as_storage(weight, dtype)


def _lookup(table, out_shape: tuple | None = None) -> Callable[[np.ndarray], Any]:
    """The call a user makes to look rows up: Embedding's forward (no autograd), else ``lookup``.

    With ``out_shape`` every table writes into one preallocated float32 output, as the copy
    that measures the roofline does: a fresh output of tens of MiB is a fresh mmap,
    and its page faults (slow after the profiler's large tables fragment memory)
    would be timed instead of the lookup. ``tinyembed bench`` times both ways.
    """
    if not (isinstance(table, Embedding) or callable(getattr(table, "lookup", None))):
        raise TypeError(f"table must be an Embedding, an EmbeddingTable or a 2-D array, got {type(table).__name__}")
    out = None if out_shape is None else np.empty(out_shape + (table.embedding_dim,), np.float32)
    if isinstance(table, Embedding):
        def forward(ids):
            with no_grad():
                return table(ids, out=out)
        return forward
    return table.lookup if out is None else partial(table.lookup, out=out)


def _as_table(table):
    if isinstance(table, np.ndarray):
        if table.ndim != 2:
            raise ValueError(f"a table array must be 2-D (V, D), got shape {table.shape}")
        return Embedding.from_pretrained(table)
    return table


def _storage(table) -> tuple[str, float, int]:
    """(storage type, stored bytes per row, bytes per output element) of a table; a table without
    a storage type (hashed, low rank, ...) is labelled by its class."""
    label = getattr(table, "storage", None) or type(table).__name__
    if isinstance(table, Embedding):
        return label, table.weight.data.nbytes / table.num_embeddings, table.weight.data.itemsize
    return label, table.nbytes / table.num_embeddings, 4


# -- results --------------------------------------------------------------------------------
@dataclass
class LookupMeasurement:
    """One lookup workload's timing: (batch_size, seq_len) ids from ``pattern``.

    ``bytes_moved`` is the least traffic: the ids, each looked-up row read once from
    the table as stored, and the output written once; ``gb_per_s`` is that over the
    median time, ``percent_of_peak`` against the machine's best copy bandwidth.
    """

    num_embeddings: int
    embedding_dim: int
    dtype: str
    pattern: str
    batch_size: int
    seq_len: int
    tokens: int
    unique_rows: int
    median_s: float
    min_s: float
    max_s: float
    bytes_moved: int
    tokens_per_s: float
    gb_per_s: float
    percent_of_peak: float | None

    @property
    def spread(self) -> float:
        """(max - min) / median of the repeats."""
        return (self.max_s - self.min_s) / self.median_s if self.median_s > 0 else 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "spread": self.spread}


@dataclass
class MemoryScaling:
    """Bytes of a V x D table per storage format, and the real models' embedding shares."""

    vocab_sizes: list[int]
    dims: list[int]
    dtypes: list[str]
    bytes: dict[str, list[list[int]]]  # dtype -> [vocab index][dim index] -> bytes
    models: list[dict]

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class PositionalComparison:
    """One positional encoding: its cost, and whether it works past the training length."""

    name: str
    parameters: int
    cached_bytes: int
    time_s: float
    what_is_timed: str
    train_len: int
    test_len: int
    extrapolates: bool
    evidence: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class AccessPatternResult:
    """Lookup cost and locality of one access pattern on one table."""

    pattern: str
    tokens: int
    unique_rows: float  # per batch, mean over the measured batches
    median_s: float
    gb_per_s: float
    dedup_median_s: float  # unique rows gathered once, then expanded
    hot_set_ks: list[int]
    hot_set_share: list[float]  # share of lookups served by the k most frequent rows

    @property
    def unique_share(self) -> float:
        return self.unique_rows / self.tokens

    def to_dict(self) -> dict:
        return {**asdict(self), "unique_share": self.unique_share}


@dataclass
class CacheAnalysis:
    """Simulated cache hits of one pattern's lookups, beside perf's counts where it can count."""

    pattern: str
    num_embeddings: int
    embedding_dim: int
    row_bytes: int
    lookups: int
    line_accesses: int
    warmup_accesses: int
    levels: list[cachesim.LevelStats]
    simulate_s: float
    perf: cachesim.PerfCounts | None = None
    assumptions: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["levels"] = [level.to_dict() for level in self.levels]
        out["perf"] = None if self.perf is None else self.perf.to_dict()
        return out


# -- the profiler -------------------------------------------------------------------------------
class EmbeddingProfiler:
    """Measure embedding lookups on this machine.

    Args:
        repeats: timed repeats per measurement (medians are reported).
        warmup: untimed runs before them.
        seed: seeds every id batch, so runs are comparable.
        show_progress: draw a progress bar on stderr for the long sweeps.
        min_sample_ms: a call faster than this is repeated back to back within each repeat and
            timed per call, as ``tinyembed bench`` times (:func:`.timing.interleaved`): the bench's
            0.1-0.3 ms lookups, timed one call at a time, spread over 2-3x their median here.
    """

    def __init__(self, repeats: int = 5, warmup: int = 1, seed: int = 0, show_progress: bool = False,
                 min_sample_ms: float = 5.0):
        self.repeats = _check_sizes(repeats, "repeats")[0]
        self.warmup = check_nonnegative_int(warmup, "warmup")
        if not min_sample_ms >= 0:
            raise ValueError(f"min_sample_ms must be >= 0, got {min_sample_ms!r}")
        self.min_sample_ms = float(min_sample_ms)
        self.seed = seed
        self.show_progress = show_progress
        self._machine: MachineInfo | None = None

    def _rng(self, *salt: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, *salt])

    def _timed(self, fns: dict[str, Callable[[], Any]]) -> dict[str, timing.Timing]:
        return timing.interleaved(fns, self.repeats, self.warmup, self.min_sample_ms)

    def _progress(self, items, desc: str):
        return progress(items, desc=desc, enabled=self.show_progress)

    # -- the machine ------------------------------------------------------------------------
    def machine(self, copy_bytes: int = 256 << 20) -> MachineInfo:
        """Cores, caches and copy bandwidth (1 thread and all), measured once per profiler."""
        if self._machine is None:
            self._machine = measure_machine(copy_bytes=copy_bytes, repeats=self.repeats)
        return self._machine

    def _percent_of_peak(self, gb_per_s: float) -> float | None:
        return None if self._machine is None else 100.0 * gb_per_s / self._machine.peak_gbps

    # -- lookup throughput --------------------------------------------------------------------
    def measure_lookup_performance(self, table, batch_sizes: Sequence[int], seq_lengths: Sequence[int],
                                   pattern: str | AccessPattern = "uniform",
                                   alpha: float | None = None) -> list[LookupMeasurement]:
        """Time lookups of (batch, seq) ids for every batch size and sequence length.

        Args:
            table: an ``Embedding``, any table of :mod:`tinyembed.tables`, or a (V, D) array.
            pattern: a name of :data:`~tinyembed.profile.patterns.PATTERNS` ('zipf-1.2'
                carries its alpha) or an :class:`AccessPattern`.
            alpha: the Zipf exponent, for 'zipf' and 'sorted'.

        Percent of peak is filled in once :meth:`machine` has measured the bandwidth.
        """
        batch_sizes = _check_sizes(batch_sizes, "batch_sizes")
        seq_lengths = _check_sizes(seq_lengths, "seq_lengths")
        access = _pattern(pattern, alpha)
        table = _as_table(table)
        _lookup(table)  # a table it cannot look up fails here, before any work
        results = []
        shapes = [(b, s) for b in batch_sizes for s in seq_lengths]
        for k, (b, s) in enumerate(self._progress(shapes, "lookups")):
            ids = access.ids(table.num_embeddings, (b, s), self._rng(1, k))
            measured = self._timed({"lookup": functools.partial(_lookup(table, out_shape=(b, s)), ids)})["lookup"]
            results.append(self._lookup_measurement(table, access, ids, measured))
        return results

    def lookup_scaling(self, vocab_sizes: Sequence[int], dims: Sequence[int],
                       dtypes: Sequence[str] = ("float32",), batch_size: int = 32, seq_len: int = 512,
                       pattern: str | AccessPattern = "uniform") -> list[LookupMeasurement]:
        """Lookup throughput over vocabulary size, width and storage dtype at one batch shape.

        The storage types of one (V, D) take turns on the same ids (:func:`.timing.interleaved`), so
        they compare within a round: timed one after the other, a float16 table measured 0.34x and
        then 1.09x the float32 one of the same shape in two runs of the report.
        """
        vocab_sizes = _check_sizes(vocab_sizes, "vocab_sizes")
        dims = _check_sizes(dims, "dims")
        for d in dtypes:
            check_storage(d)
        access = _pattern(pattern, None)
        results = []
        for vocab, dim in self._progress([(v, d) for v in vocab_sizes for d in dims], "lookup scaling"):
            tables = {t: make_table(vocab, dim, t, seed=self.seed) for t in dtypes}
            ids = access.ids(vocab, (batch_size, seq_len), self._rng(1, 0))
            timings = self._timed({t: functools.partial(_lookup(table, out_shape=ids.shape), ids)
                                   for t, table in tables.items()})
            results += [self._lookup_measurement(tables[t], access, ids, timings[t]) for t in tables]
        return results

    def _lookup_measurement(self, table, access: AccessPattern, ids: np.ndarray,
                            measured: timing.Timing) -> LookupMeasurement:
        """What a timed lookup of (batch, seq) ``ids`` from ``table`` moved and how fast."""
        label, row_bytes, out_itemsize = _storage(table)
        (b, s), n = ids.shape, ids.size
        moved = int(bytes_moved("forward", n=n, dim=table.embedding_dim, row_bytes=row_bytes,
                                out_itemsize=out_itemsize))
        median = measured.median_ms / 1e3
        gbps = moved / median / 1e9
        return LookupMeasurement(
            num_embeddings=table.num_embeddings, embedding_dim=table.embedding_dim, dtype=label,
            pattern=access.label, batch_size=b, seq_len=s, tokens=n, unique_rows=int(np.unique(ids).size),
            median_s=median, min_s=measured.min_ms / 1e3, max_s=measured.max_ms / 1e3, bytes_moved=moved,
            tokens_per_s=n / median, gb_per_s=gbps, percent_of_peak=self._percent_of_peak(gbps))

    # -- memory ---------------------------------------------------------------------------------
    def analyze_memory_scaling(self, vocab_sizes: Sequence[int], dims: Sequence[int],
                               dtypes: Sequence[str] = ("float32", "bfloat16", "int8", "int4")) -> MemoryScaling:
        """Bytes of every (V, D, format) table, and the published models' embedding shares.

        Storage types are those of :data:`tinyembed.kernels.rows.STORAGE_TYPES` (FBGEMM's
        row-wise layouts for int8 and int4: a scale and a bias per row).
        """
        vocab_sizes = _check_sizes(vocab_sizes, "vocab_sizes")
        dims = _check_sizes(dims, "dims")
        for d in dtypes:
            check_storage(d)
        grid = {d: [[v * storage_row_bytes(d, dim) for dim in dims] for v in vocab_sizes] for d in dtypes}
        models = []
        for name, config in MODELS.items():
            report = embedding_memory(config)
            models.append({"name": name, "vocab_size": config.vocab_size, "hidden_size": config.hidden_size,
                           "tied": config.tied, "embedding_params": report.embedding_params,
                           "total_params": report.total_params, "embedding_share": report.embedding_share,
                           "token_table_bytes": {d: report.token_table_bytes[d] for d in dtypes}})
        return MemoryScaling(vocab_sizes, dims, list(dtypes), grid, models)

    # -- positional encodings --------------------------------------------------------------------
    def compare_positional_encodings(self, batch_size: int = 8, seq_len: int = 512, dim: int = 384,
                                     num_heads: int = 6, train_len: int | None = None,
                                     test_len: int | None = None) -> list[PositionalComparison]:
        """Sinusoidal, learned, RoPE and ALiBi: parameters, memory, time per batch, extrapolation.

        Each is timed on what it adds to one forward pass of a (batch, seq, dim) model with
        ``num_heads`` heads: sinusoidal and learned add rows to the token embeddings; RoPE
        rotates the queries and keys; ALiBi builds its (heads, seq, seq) bias and adds it to
        the attention scores. Extrapolation asks each for positions up to ``test_len``
        (default 4x ``train_len``, which defaults to ``seq_len``).
        """
        batch_size, seq_len, dim, num_heads = _check_sizes([batch_size, seq_len, dim, num_heads],
                                                           "batch_size, seq_len, dim and num_heads")
        if dim % num_heads or (dim // num_heads) % 2:
            raise ValueError(f"dim {dim} must split into {num_heads} heads of even size")
        train_len = seq_len if train_len is None else _check_sizes(train_len, "train_len")[0]
        test_len = 4 * train_len if test_len is None else _check_sizes(test_len, "test_len")[0]
        head_dim = dim // num_heads
        rng = self._rng(3)
        x = Tensor(rng.standard_normal((batch_size, seq_len, dim), dtype=np.float32))
        q = rng.standard_normal((batch_size, num_heads, seq_len, head_dim), dtype=np.float32)
        scores = rng.standard_normal((batch_size, num_heads, seq_len, seq_len), dtype=np.float32)

        sinusoidal = PositionalEncoding(dim, max_len=train_len)
        learned = LearnedPositionalEmbedding(train_len, dim, seed=self.seed)
        rope = RotaryEmbedding(head_dim)
        alibi = ALiBi(num_heads)

        def time_of(fn) -> float:
            with no_grad():
                return self._timed({"f": fn})["f"].median_ms / 1e3

        rows = []
        for name, module, fn, what, cached, check in [
            ("sinusoidal", sinusoidal, lambda: sinusoidal(x), "x + PE (B, S, D)",
             sinusoidal.encoding(np.arange(train_len)).nbytes, lambda: _sinusoidal_extrapolates(sinusoidal, test_len)),
            ("learned", learned, lambda: learned(x), "x + table rows (B, S, D)", 0,
             lambda: _learned_extrapolates(learned, test_len)),
            ("rope", rope, lambda: rope.apply(q, q), "rotate q and k (B, H, S, D/H)",
             2 * seq_len * head_dim * 4, lambda: _rope_extrapolates(rope, head_dim, test_len, rng)),
            ("alibi", alibi, lambda: scores + alibi.bias(seq_len, seq_len, dtype=np.float32),
             "scores + bias (B, H, S, S)",
             num_heads * seq_len * seq_len * 4, lambda: _alibi_extrapolates(alibi, test_len)),
        ]:
            ok, evidence = check()
            rows.append(PositionalComparison(
                name=name, parameters=module.num_parameters(),
                cached_bytes=int(cached), time_s=time_of(fn), what_is_timed=what, train_len=train_len,
                test_len=test_len, extrapolates=ok, evidence=evidence))
        return rows

    # -- access patterns --------------------------------------------------------------------------
    def access_pattern_analysis(self, table=None, patterns: Sequence[str | AccessPattern] = DEFAULT_PATTERNS,
                                batch_size: int = 32, seq_len: int = 512, batches: int = 4,
                                hot_set_ks: Sequence[int] = (10, 100, 1000, 10000)) -> list[AccessPatternResult]:
        """Time, unique rows per batch and hot-set curve of each pattern on one table.

        Args:
            table: default a random 30522 x 384 float32 table (the MiniLM word table's shape,
                so the real text pattern fits).
            batches: batches drawn per pattern for the unique-row and hot-set statistics.

        The deduplicated time gathers each distinct row once and expands by the inverse
        index (as FBGEMM's linearize-and-dedup): it pays when a batch repeats rows.
        """
        batch_size, seq_len, batches = _check_sizes([batch_size, seq_len, batches],
                                                    "batch_size, seq_len and batches")
        hot_set_ks = _check_sizes(hot_set_ks, "hot_set_ks")
        accesses = [_pattern(p, None) for p in patterns]  # every name checked before any work
        labels = [a.label for a in accesses]
        repeated = sorted({label for label in labels if labels.count(label) > 1})
        if repeated:
            raise ValueError(f"patterns must be distinct, got {', '.join(repeated)} more than once")
        table = make_table(30522, 384, seed=self.seed) if table is None else _as_table(table)
        lookup = _lookup(table)
        _, row_bytes, out_itemsize = _storage(table)
        vocab, dim = table.num_embeddings, table.embedding_dim
        drawn = {}
        for k, access in enumerate(self._progress(accesses, "access patterns")):
            rng = self._rng(4, k)  # one generator per pattern: its batches are independent draws
            drawn[access.label] = [access.ids(vocab, (batch_size, seq_len), rng) for _ in range(batches)]

        def dedup(ids):
            unique, inverse = np.unique(ids, return_inverse=True)
            rows = lookup(unique)
            rows = rows.data if isinstance(rows, Tensor) else rows
            return rows[inverse.reshape(ids.shape)]

        # Every pattern and both strategies take turns in one loop: their times compare directly.
        fns: dict[str, Callable[[], Any]] = {}
        for label, batches_ in drawn.items():
            fns[label] = functools.partial(lookup, batches_[0])
            fns[label + " dedup"] = functools.partial(dedup, batches_[0])
        timings = self._timed(fns)
        results = []
        per_token = bytes_moved("forward", n=1, dim=dim, row_bytes=row_bytes, out_itemsize=out_itemsize)
        for label, batches_ in drawn.items():
            median = timings[label].median_ms / 1e3
            everything = np.concatenate([d.reshape(-1) for d in batches_])
            results.append(AccessPatternResult(
                pattern=label, tokens=batch_size * seq_len,
                unique_rows=float(np.mean([np.unique(d).size for d in batches_])), median_s=median,
                gb_per_s=batch_size * seq_len * per_token / median / 1e9,
                dedup_median_s=timings[label + " dedup"].median_ms / 1e3, hot_set_ks=hot_set_ks,
                hot_set_share=rowcache.hot_set_curve(everything, hot_set_ks).tolist()))
        return results

    # -- caches -------------------------------------------------------------------------------------
    def cache_analysis(self, pattern: str | AccessPattern = "text", num_embeddings: int = 30522,
                       embedding_dim: int = 384, itemsize: int = 4, lookups: int = 50_000,
                       warmup_lookups: int = 10_000, caches=None, perf: bool = False,
                       alpha: float | None = None) -> CacheAnalysis:
        """Replay the cache lines that ``lookups`` row reads touch through L1/L2/L3.

        Args:
            pattern: where the ids come from (default the real text stream).
            caches: the :class:`~tinyembed.profile.machine.CacheLevel` list to simulate;
                default this machine's (sysfs).
            warmup_lookups: lookups replayed first and not counted (a cold cache says little).
            perf: also run the same lookups under ``perf stat`` where it can count.
        """
        num_embeddings, embedding_dim, itemsize, lookups = _check_sizes(
            [num_embeddings, embedding_dim, itemsize, lookups], "num_embeddings, embedding_dim, itemsize and lookups")
        check_nonnegative_int(warmup_lookups, "warmup_lookups")
        access = _pattern(pattern, alpha)
        if caches is None:
            caches = self.machine().caches if self._machine is not None else _sysfs_caches()
        if not caches:
            raise ValueError("no caches to simulate: sysfs lists none here; pass caches=[CacheLevel(...)]")
        hierarchy = cachesim.CacheHierarchy.from_machine(caches)
        ids = access.ids(num_embeddings, (warmup_lookups + lookups,), self._rng(5))
        row_bytes = embedding_dim * itemsize
        # Only the table's reads are replayed: the output is written in order, once.
        trace = cachesim.row_line_trace(ids, row_bytes, hierarchy.line_bytes)
        # Rows straddle lines unevenly: count the warm-up lookups' own lines.
        warm = len(cachesim.row_line_trace(ids[:warmup_lookups], row_bytes, hierarchy.line_bytes))
        start = time.perf_counter()
        levels = hierarchy.simulate(trace, warmup=warm)
        seconds = time.perf_counter() - start
        counts = None
        if perf:
            with tempfile.TemporaryDirectory(prefix="tinyembed-perf-") as tmp:
                np.save(Path(tmp) / "ids.npy", ids)
                counts = cachesim.perf_cache_misses(_perf_snippet(num_embeddings, embedding_dim, Path(tmp) / "ids.npy"))
        return CacheAnalysis(
            pattern=access.label, num_embeddings=num_embeddings, embedding_dim=embedding_dim,
            row_bytes=row_bytes, lookups=lookups, line_accesses=len(trace) - warm, warmup_accesses=warm,
            levels=levels, simulate_s=seconds, perf=counts,
            assumptions=["table rows only (ids and the output are streamed, not replayed)",
                         "one core, LRU per set, no prefetcher, virtual = physical addresses",
                         "an access that misses a level goes to the next (no bypass)"])

    def row_cache_analysis(self, ids=None, capacities: Sequence[int] = (64, 256, 1024, 4096, 16384),
                           max_lookups: int = 200_000) -> rowcache.RowCacheCurves:
        """Hit rate of LRU and LFU row caches (FBGEMM's embedding cache) against capacity.

        ``ids`` default to the real text stream's first ``max_lookups`` tokens.
        """
        capacities = _check_sizes(capacities, "capacities")
        max_lookups = _check_sizes(max_lookups, "max_lookups")[0]
        if ids is None:
            from .patterns import text_stream  # noqa: PLC0415
            ids = text_stream()
        ids = np.asarray(ids).reshape(-1)[:max_lookups]
        return rowcache.row_cache_curves(ids, capacities)


def _sysfs_caches():
    from .machine import read_cache_levels  # noqa: PLC0415
    return read_cache_levels()


def _perf_snippet(num_embeddings: int, embedding_dim: int, ids_path: Path) -> str:
    """A program doing the simulated lookups with the same kernel, for perf to count."""
    return ("import numpy as np\n"
            "from tinyembed import kernels\n"
            f"w = np.ones(({num_embeddings}, {embedding_dim}), np.float32)\n"
            f"ids = np.load({str(ids_path)!r}, allow_pickle=False)\n"
            "kernels.gather_rows(w, ids)\n")


# -- extrapolation checks: does the encoding still do its job past train_len? ------------------
def _sinusoidal_extrapolates(pe: PositionalEncoding, test_len: int) -> tuple[bool, str]:
    # Its job: a distinct, bounded code per position whose similarity depends only on the offset.
    table = pe.encoding(np.arange(test_len), dtype=np.float64)
    gram = table @ table.T
    offsets = np.arange(1, 17)
    spread = max(float(np.ptp(np.diagonal(gram, offset=k))) for k in offsets)
    nearest = float(np.min(np.linalg.norm(table[1:] - table[:-1], axis=1)))
    ok = bool(spread < 1e-6 and nearest > 1e-3 and np.isfinite(table).all())
    return ok, (f"positions 0..{test_len - 1}: <PE(i), PE(i+k)> varies by {spread:.1e} over i "
                f"(k <= 16); neighbours >= {nearest:.3f} apart")


def _learned_extrapolates(learned: LearnedPositionalEmbedding, test_len: int) -> tuple[bool, str]:
    try:
        learned.added_rows(test_len)
    except ValueError as e:
        return False, f"position {test_len - 1} refused: {e}".split(":")[0] + f": no row past {learned.max_len - 1}"
    return True, f"rows up to {test_len - 1} exist"


def _rope_extrapolates(rope: RotaryEmbedding, head_dim: int, test_len: int, rng) -> tuple[bool, str]:
    # Its job: q.k depends only on the offset. Same q and k at every position.
    v = rng.standard_normal((1, 1, 1, head_dim)).repeat(test_len, axis=2)
    q, k = rope.apply(v, v)
    scores = q.data[0, 0] @ k.data[0, 0].T
    spread = max(float(np.ptp(np.diagonal(scores, offset=-d))) for d in range(0, 17))
    scale = float(np.abs(scores).max())
    ok = bool(spread <= 1e-4 * scale)
    return ok, f"positions 0..{test_len - 1}: q.k at a fixed offset varies by {spread / scale:.1e} (relative)"


def _alibi_extrapolates(alibi: ALiBi, test_len: int) -> tuple[bool, str]:
    bias = alibi.bias(test_len, test_len)  # (H, S, S)
    distance = np.arange(test_len)[:, None] - np.arange(test_len)[None, :]
    lower = distance >= 0
    expected = -np.asarray(alibi.slopes)[:, None, None] * distance
    error = float(np.max(np.abs(np.where(lower, bias - expected, 0.0))))
    return bool(error < 1e-3), f"bias = -slope x distance up to {test_len - 1} (max error {error:.1e})"
