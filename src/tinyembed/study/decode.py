"""`tinyembed study decode`: what a vocabulary costs at decode time, where one token's output projection
reads the whole table.

Generating a token ends with scores against every row of the output projection
(``attend``, the tied token table): at batch 1 each of the V x D values is read once
and used once, so the time is the table's bytes over the memory bandwidth, and a
table stored in fewer bytes is read faster if decoding its rows keeps up. This module measures it:

* :func:`measure_decode`: seconds per token of ``table.attend(h)`` (the call users make,
  h of shape (D,)) for vocabularies from 1k to 256k at the widths of real models, stored as
  float32, bfloat16, int8 and int4; GB/s of table read against this machine's copy
  bandwidth (the roofline, measured in the same run with the same threads).
* :func:`model_decode_costs`: for the published models of :mod:`tinyembed.plan.models`,
  the bytes the output projection reads per generated token, their share of all the
  weight bytes a token reads, and the tokens per second that bound alone allows here.
* :func:`output_coverage`: on real text (English Wikipedia through all-MiniLM-L6-v2's
  WordPiece), the share of output rows the text ever asks for, and what a head pruned
  to the K most frequent rows would save and cost: the share of held-out tokens it
  could not predict (measured on text it did not count).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial

import numpy as np

from ..checks import check_memory, check_number, check_positive_int
from ..io.progress import progress
from ..kernels import get_num_threads
from ..kernels.rows import check_storage, storage_row_bytes
from ..plan.models import MODELS, ModelConfig
from ..profile.timing import background_cores, copy_bandwidth, cpu_seconds, interleaved
from ..tables import as_storage

__all__ = ["DecodeGrid", "DecodePoint", "ModelDecode", "CoveragePoint", "DecodeStudy", "QUICK", "FULL",
           "COPY_BYTES", "measure_decode", "model_decode_costs", "weights_read_per_token", "output_coverage",
           "counted_tokens", "wikipedia_ids", "run_decode_study"]

COPY_BYTES = 1 << 28  # each array of the copy that sets the roofline: far past the last cache
INIT_STD = 0.02  # the tables' rows are N(0, 0.02^2), GPT-2's initialization: int8/int4 scales of real size


@dataclass(frozen=True)
class DecodeGrid:
    """The tables a run times: every (vocabulary, width) whose float32 table fits ``max_table_bytes``,
    in every storage; ``repeats`` timed calls each (the median counts)."""

    vocab_sizes: tuple[int, ...]
    dims: tuple[int, ...]
    storages: tuple[str, ...] = ("float32", "bfloat16", "int8", "int4")
    repeats: int = 7
    max_table_bytes: int = 2 << 30  # float32 bytes of one table built for the study

    def __post_init__(self):
        for v in self.vocab_sizes:
            check_positive_int(v, "vocab_size")
        for d in self.dims:
            check_positive_int(d, "dim")
        for s in self.storages:
            check_storage(s)
        check_positive_int(self.repeats, "repeats")
        if not (self.vocab_sizes and self.dims and self.storages):
            raise ValueError(f"a decode grid needs vocabularies, widths and storages, got {self}")

    def shapes(self) -> list[tuple[int, int]]:
        """(V, D) of the tables built, by vocabulary then width."""
        return [(v, d) for v in self.vocab_sizes for d in self.dims if v * d * 4 <= self.max_table_bytes]


# Widths of real models: 768 (GPT-2, BERT-base, T5-base), 2048 (Gemma-2B, LLaMA-3.2-1B), 4096 (LLaMA-2/3,
# Mistral). 256000 x 4096 float32 is 4 GiB, past max_table_bytes: that one shape is left out (its time is
# the same bytes over the same bandwidth as the 128256 x 4096 one, twice as many).
FULL = DecodeGrid((1024, 4096, 16384, 32000, 50257, 65536, 128256, 256000), (768, 2048, 4096))
QUICK = DecodeGrid((4096, 32000, 128256), (768,), repeats=5)


@dataclass
class DecodePoint:
    """One table's decode step: ``seconds_per_token`` to score one token against all V rows."""

    vocab_size: int
    embedding_dim: int
    storage: str
    table_bytes: int
    seconds_per_token: float  # median of the repeats
    gb_per_s: float  # table bytes read per second: table_bytes / seconds_per_token / 1e9
    percent_of_copy: float  # of the copy bandwidth measured in the same run (over 100: the table sits in a cache)
    spread: float  # (slowest - fastest) / median of the repeats

    def to_dict(self) -> dict:
        return asdict(self)


def _random_table(rng: np.random.Generator, vocab: int, dim: int) -> np.ndarray:
    weight = rng.standard_normal((vocab, dim), dtype=np.float32)  # (V, D)
    weight *= np.float32(INIT_STD)
    return weight


def measure_decode(grid: DecodeGrid, *, seed: int = 0, copy_gbps: float | None = None,
                   show_progress: bool = False) -> list[DecodePoint]:
    """Time ``table.attend(h)`` for one token (h of shape (D,)) for every table of ``grid``.

    Each table is random N(0, 0.02^2) rows stored as each storage (:func:`tinyembed.tables.as_storage`:
    an ``Embedding`` for float32, whose attend is one BLAS product; the others decode their rows in
    the kernel :func:`tinyembed.kernels.rows.attend_decoded`). The storages of one shape take turns
    (:func:`tinyembed.profile.timing.interleaved`, a warm-up round first); the time is the median.

    Args:
        copy_gbps: the roofline; default :func:`copy_bandwidth` of :data:`COPY_BYTES` on the kernels' threads.
    """
    copy_gbps = copy_gbps or copy_bandwidth(COPY_BYTES, get_num_threads())
    rng = np.random.default_rng(seed)
    points = []
    for v, d in progress(grid.shapes(), "decode", enabled=show_progress):
        stored = sum(v * storage_row_bytes(s, d) for s in grid.storages if s != "float32")
        check_memory(2 * v * d * 4 + stored, f"a {v} x {d} decode table in {len(grid.storages)} storages")
        weight = _random_table(rng, v, d)
        h = rng.standard_normal(d, dtype=np.float32)  # (D,): one token's hidden state
        tables = {s: as_storage(weight, s) for s in grid.storages}
        del weight  # the float32 Embedding keeps it (shared, not copied); the others have their rows
        calls: dict[str, Callable[[], object]] = {s: partial(t.attend, h) for s, t in tables.items()}
        timings = interleaved(calls, grid.repeats, warmup=1)
        for s, table in tables.items():
            seconds = timings[s].median_ms / 1e3
            gbps = table.nbytes / seconds / 1e9
            points.append(DecodePoint(v, d, s, int(table.nbytes), seconds, gbps, 100 * gbps / copy_gbps,
                                      timings[s].spread))
        del tables
    return points


# -- the published models -------------------------------------------------------------------------
# Models that do not generate token by token: they have no decode step to bound.
NOT_GENERATING = {"bert-base": "an encoder: it fills in masked tokens, it does not generate"}
# What the weights-read count gets wrong for a model, said beside its row.
NOTES = {"t5-base": "encoder-decoder: the weights read count the encoder, which runs once per input, "
                    "so the head's share per generated token is larger than shown"}


def weights_read_per_token(config: ModelConfig) -> int | None:
    """Parameters one generated token reads (batch 1), or None when the total is unknown.

    Every weight matrix is read whole, the output projection included (a tied table is read whole
    by the head); an untied input table and a learned position table give one row each, left out.
    """
    if config.total_params is None:
        return None
    untied_input = 0 if config.tied else config.input_embedding_params
    return config.total_params - untied_input - config.position_params


@dataclass
class ModelDecode:
    """A published model at batch-1 decode, its weights stored as ``storage``."""

    name: str
    vocab_size: int
    hidden_size: int
    tied: bool
    storage: str
    head_bytes: int  # the output projection, V rows of ``storage`` (int8/int4 with their per-row scale and bias)
    weight_bytes: int | None  # every weight read per token, at the head's bytes per parameter; None if unknown
    head_share: float | None  # head_bytes / weight_bytes
    gb_per_s: float  # the decode bandwidth this machine measured for the storage (see measured_at)
    measured_at: str  # the measured table that rate comes from, "V x D"
    head_tokens_per_s: float  # the bound the output projection alone sets at that rate
    weights_tokens_per_s: float | None  # the bound of all the weights read at the same rate
    note: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def _rate(points: list[DecodePoint], storage: str, dim: int) -> DecodePoint | None:
    """The measured point a model's head is judged by: its storage, the width nearest ``dim`` (by ratio),
    and of those the largest table, the one caches help least."""
    mine = [p for p in points if p.storage == storage]
    if not mine:
        return None
    width = min({p.embedding_dim for p in mine}, key=lambda d: abs(np.log(d / dim)))
    return max((p for p in mine if p.embedding_dim == width), key=lambda p: p.table_bytes)


def model_decode_costs(points: list[DecodePoint], models: dict[str, ModelConfig] | None = None
                       ) -> list[ModelDecode]:
    """Each published model's output projection per generated token, for each storage measured.

    A storage's bytes per weight are its row bytes over the row width (int8 and int4 include their
    per-row scale and bias; the other matrices are counted as rows of the same width). The tokens per
    second divide the GB/s measured for that storage (at the width nearest the model's, the largest
    table of it) by the bytes: bounds from memory traffic alone, before any arithmetic the rest of
    the model does.
    """
    rows = []
    for config in (MODELS if models is None else models).values():
        if config.name in NOT_GENERATING:
            continue
        read = weights_read_per_token(config)
        for storage in dict.fromkeys(p.storage for p in points):
            rate = _rate(points, storage, config.hidden_size)
            assert rate is not None  # the storage was measured
            row = storage_row_bytes(storage, config.hidden_size)
            head = config.vocab_size * row
            weights = None if read is None else int(round(read * row / config.hidden_size))
            bytes_per_s = rate.gb_per_s * 1e9
            rows.append(ModelDecode(
                config.name, config.vocab_size, config.hidden_size, config.tied, storage, head, weights,
                None if weights is None else head / weights, rate.gb_per_s,
                f"{rate.vocab_size} x {rate.embedding_dim}", bytes_per_s / head,
                None if weights is None else bytes_per_s / weights, NOTES.get(config.name, "")))
    return rows


# -- real text: which output rows it asks for ---------------------------------------------------------
@dataclass
class CoveragePoint:
    """An output head pruned to the ``kept_rows`` most frequent rows (counted on the first part of the text)."""

    kept_rows: int
    bytes_saved: float  # share of the head's rows (and bytes, and read time) left out
    held_out_miss: float  # share of held-out tokens whose row is not kept: what the pruned head cannot predict

    def to_dict(self) -> dict:
        return asdict(self)


def output_coverage(ids, vocab_size: int, kept=(1000, 2000, 5000, 10000, 20000),
                    held_out: float = 0.2) -> tuple[float, list[CoveragePoint]]:
    """(share of the V rows the whole stream ever asks for, the pruned heads) of a token stream.

    Rows are ranked by their counts in the first ``1 - held_out`` of the stream (ties: the lower id
    first); the last ``held_out`` is the text each pruned head is judged on, never counted. Sizes of
    ``kept`` at least V are left out (nothing pruned).
    """
    ids = np.asarray(ids)
    vocab_size = check_positive_int(vocab_size, "vocab_size")
    if ids.ndim != 1 or ids.dtype.kind not in "iu":
        raise ValueError(f"ids must be a 1-D integer stream, got {ids.dtype} of shape {ids.shape}")
    if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
        bad = int(np.flatnonzero((ids < 0) | (ids >= vocab_size))[0])
        raise ValueError(f"id {int(ids[bad])} at position {bad} is outside [0, {vocab_size})")
    split = counted_tokens(len(ids), held_out)
    counts = np.bincount(ids[:split], minlength=vocab_size)
    ever = np.count_nonzero(np.bincount(ids, minlength=vocab_size)) / vocab_size
    order = np.argsort(-counts, kind="stable")  # most frequent first
    test = ids[split:]
    points = []
    for k in kept:
        k = check_positive_int(k, "kept rows")
        if k >= vocab_size:
            continue
        keep = np.zeros(vocab_size, dtype=bool)
        keep[order[:k]] = True
        points.append(CoveragePoint(k, 1 - k / vocab_size, float(1 - keep[test].mean())))
    return float(ever), points


def counted_tokens(tokens: int, held_out: float) -> int:
    """Tokens at the start of a ``tokens`` stream that rank the rows; the ``held_out`` share after them judges.

    Raises:
        ValueError: ``held_out`` is not in (0, 1), or leaves one part empty.
    """
    held_out = check_number(held_out, "held_out", low=0, high=1, low_open=True, high_open=True)
    split = int(round(tokens * (1 - held_out)))
    if not 0 < split < tokens:
        raise ValueError(f"held_out={held_out} of {tokens} tokens leaves nothing to count or nothing to judge")
    return split


def wikipedia_ids() -> tuple[np.ndarray, int, str]:
    """(the prepared Wikipedia corpus as all-MiniLM-L6-v2 WordPiece ids, the tokenizer's vocabulary,
    what the stream is). Needs ``tinyembed[text]``; prepared once into the cache."""
    from ..text import minilm_token_ids  # noqa: PLC0415 - needs tokenizers and the prepared text
    from ..text.tokenizers import HFTokenizer  # noqa: PLC0415

    stream = minilm_token_ids("wikipedia")
    return (stream.ids.astype(np.int64), HFTokenizer.minilm().vocab_size,
            f"{stream.source} in all-MiniLM-L6-v2's WordPiece")


# -- the study --------------------------------------------------------------------------------------
@dataclass
class DecodeStudy:
    """Everything ``tinyembed study decode`` measures, for the table, the JSON and the report."""

    grid: DecodeGrid
    points: list[DecodePoint]
    models: list[ModelDecode]
    text: dict | None  # source, vocab_size, tokens, held_out_tokens; None when no text was given
    rows_ever_predicted: float | None
    coverage: list[CoveragePoint]
    copy_gbps: float
    threads: int
    seconds: float
    background_cores: float | None
    quick: bool

    def to_dict(self) -> dict:
        return {"config": json.loads(json.dumps(asdict(self.grid))), "quick": self.quick,
                "copy_gbps": self.copy_gbps, "copy_bytes": COPY_BYTES, "threads": self.threads,
                "points": [p.to_dict() for p in self.points], "models": [m.to_dict() for m in self.models],
                "models_left_out": {name: why for name, why in NOT_GENERATING.items() if name in MODELS},
                "text": self.text, "rows_ever_predicted": self.rows_ever_predicted,
                "coverage": [c.to_dict() for c in self.coverage], "seconds": self.seconds,
                "background_cores": self.background_cores}


def run_decode_study(grid: DecodeGrid | None = None, *, quick: bool = False, text: bool = True,
                     held_out: float = 0.2, show_progress: bool = True) -> DecodeStudy:
    """Measure ``grid`` (default QUICK or FULL by ``quick``), the published models' bounds, and real
    text's coverage (:func:`wikipedia_ids`; ``text=False`` leaves it out)."""
    started, load_before = time.perf_counter(), cpu_seconds()
    grid = grid or (QUICK if quick else FULL)
    about: dict | None = None
    ever: float | None = None
    coverage: list[CoveragePoint] = []
    if text:  # first: a missing tokenizer fails before the timing
        ids, vocab, source = wikipedia_ids()
        ever, coverage = output_coverage(ids, vocab, held_out=held_out)
        about = {"source": source, "vocab_size": vocab, "tokens": int(len(ids)),
                 "held_out": held_out, "held_out_tokens": len(ids) - counted_tokens(len(ids), held_out)}
    threads = get_num_threads()
    copy_gbps = copy_bandwidth(COPY_BYTES, threads)
    points = measure_decode(grid, copy_gbps=copy_gbps, show_progress=show_progress)
    seconds = time.perf_counter() - started
    return DecodeStudy(grid, points, model_decode_costs(points), about, ever, coverage, copy_gbps, threads,
                       seconds, background_cores(load_before, cpu_seconds(), seconds), quick)
