"""`tinyembed study capacity`: what a vocabulary costs and what it buys, by training.

After Tao et al., "Scaling Laws with Vocabulary: Larger Models Deserve Larger Vocabularies"
(NeurIPS 2024), at this machine's scale: fix a compute budget (IsoFLOPs), vary the
vocabulary and the width, and compare a tokenizer-independent loss. The model is
:class:`~tinyembed.train.lm.WindowLM` (tied output), the text a real corpus
(:mod:`.data`: split by article, the held-out articles never seen by training or by the
BPE trainer), the tokenizers our byte tokenizer and our BPE at several vocabulary sizes.

For every budget C, tokenizer and width D, the run trains ``steps = C // (F * batch)``
steps, F the training FLOPs per token (:mod:`.flops`). A run is skipped when the budget buys
it fewer than ``min_steps`` steps (its model is too large for the budget to say anything),
or more than ``max_epochs`` passes over the training text (the corpus, not the compute,
would limit it; Tao et al. never repeat data). Each run has its own learning-rate schedule,
a linear warmup then a cosine to a tenth of the peak at its last step (as Chinchilla's
IsoFLOPs runs do, so a short run is not judged halfway through a long schedule). Then it is scored on the held-out text:

    bits per byte        total negative log-likelihood in bits / held-out UTF-8 bytes
    ... int8, int4       the same after storing every vocabulary table of the trained model
                         as FBGEMM's int8 / int4 rows (:func:`tinyembed.tables.as_storage`)

For each budget the lowest bits per byte wins (the IsoFLOPs optimum); the Pareto fronts of
bits per byte against parameters and against the table's bytes are computed over all
tied runs. A few shapes are also trained untied at the largest budget. Last, the training
step of the largest model is timed against the machine's matrix product
(:mod:`.throughput`).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import numpy as np

from ..checks import check_positive_int
from ..io.progress import ProgressBar
from ..kernels.rows import storage_row_bytes
from ..optim import AdamW
from ..plan.models import ModelConfig
from ..profile.timing import background_cores, cpu_seconds
from ..tables import as_storage
from ..train.lm import Examples, LMConfig, WindowLM, train_step
from .data import SplitText, encode_stream, split_articles, train_tokenizers
from .flops import held_out_bits_per_byte, train_flops_per_token
from .throughput import measure_step_throughput

__all__ = ["CapacityConfig", "CapacityPoint", "PlannedRun", "plan_runs", "learning_rate", "train_run",
           "tables_stored_as", "isoflops", "pareto_front", "vocabulary_trend", "finding", "run_capacity_study"]


@dataclass(frozen=True)
class CapacityConfig:
    """The grid and how each point trains.

    The default is the full study (under 30 minutes here, see the README for why this grid);
    :meth:`quick_run` is the 2-minute one.
    """

    corpus: str = "wikipedia"
    vocab_sizes: tuple[int, ...] = (1024, 2048, 4096, 8192, 16384)  # BPE ids; the byte tokenizer always runs
    widths: tuple[int, ...] = (32, 64, 128, 256)
    budgets: tuple[float, ...] = (1.3e11, 4e11, 1.2e12)  # training FLOPs per run, about 3x apart
    context: int = 8  # tokens before the predicted one: a larger vocabulary sees more bytes
    hidden_per_width: int = 4  # the hidden layer is 4 D wide, as a Transformer's MLP
    batch_size: int = 512
    lr: float = 3e-2  # peak; a sweep of 1e-3..3e-2 on four shapes at two budgets found 3e-2 best or tied
    weight_decay: float = 0.01
    warmup_fraction: float = 0.05
    final_lr_fraction: float = 0.1
    min_steps: int = 50
    max_epochs: float = 2.0
    untied: tuple[tuple[str, int], ...] = (("byte", 64), ("bpe-4096", 64), ("bpe-16384", 64))
    storages: tuple[str, ...] = ("int8", "int4")
    held_out_every: int = 10
    eval_bytes: int | None = 50_000  # held-out bytes scored (None: all 231 kB of the held-out articles)
    seed: int = 0
    throughput_repeats: int = 5
    throughput_matmul_n: int = 2048  # the reference product is n x n times n x n, float32
    quick: bool = False

    def __post_init__(self):
        for name in ("context", "hidden_per_width", "batch_size", "min_steps", "held_out_every"):
            check_positive_int(getattr(self, name), name)
        for width in self.widths:
            check_positive_int(width, "width")
        if not self.budgets or any(not (b > 0 and math.isfinite(b)) for b in self.budgets):
            raise ValueError(f"budgets must be positive FLOPs, got {self.budgets}")

    @classmethod
    def quick_run(cls) -> CapacityConfig:
        """Six points and one untied one in under two minutes: three vocabularies, one width, two budgets,
        scored on 40 kB of the held-out text."""
        return cls(vocab_sizes=(1024, 4096), widths=(32,), budgets=(3e10, 1e11), batch_size=256, min_steps=50,
                   untied=(("bpe-4096", 32),), eval_bytes=40_000, throughput_repeats=3, quick=True)

    def lm_config(self, vocab_size: int, width: int, tied: bool = True) -> LMConfig:
        return LMConfig(vocab_size=vocab_size, context=self.context, dim=width, hidden=self.hidden_per_width * width,
                        batch_size=self.batch_size, lr=self.lr, weight_decay=self.weight_decay, seed=self.seed,
                        tied=tied)


@dataclass(frozen=True)
class PlannedRun:
    """One training run of the grid: a tokenizer, a width and a budget."""

    tokenizer: str
    vocab_size: int
    width: int
    budget: float
    tied: bool
    flops_per_token: int
    batch_size: int
    steps: int  # 0 when skipped
    epochs: float  # passes over the training text the budget buys
    skipped: str = ""  # why the run is skipped ("" when it runs)

    @property
    def flops(self) -> int:
        """Training FLOPs the run spends: its whole steps, at most the budget."""
        return self.steps * self.flops_per_token * self.batch_size


@dataclass
class CapacityPoint:
    """One trained model and what it scored. Parameters follow :mod:`tinyembed.plan.memory`: the
    embedding counts the token table, an untied output table and the learned positions."""

    tokenizer: str
    vocab_size: int
    embedding_dim: int
    hidden: int
    context: int
    tied: bool
    budget: float
    flops: int
    steps: int
    tokens_trained: int
    epochs: float
    embedding_parameters: int
    total_parameters: int
    embedding_share: float
    table_bytes_float32: int  # every V x D table of the model (two when untied)
    table_bytes_int8: int
    tokens_per_byte: float  # of the held-out text
    bits_per_byte: float
    quantized_bits_per_byte: dict[str, float]  # storage -> bits per byte with the tables stored so
    final_train_loss: float  # nats per token, mean of the last tenth of the steps
    train_seconds: float
    eval_seconds: float

    @property
    def train_flops_per_s(self) -> float:
        return self.flops / self.train_seconds if self.train_seconds > 0 else 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "train_flops_per_s": self.train_flops_per_s}


def plan_runs(config: CapacityConfig, vocab_sizes: dict[str, int], train_tokens: dict[str, int]) -> list[PlannedRun]:
    """Every run of the grid (budget x tokenizer x width, then the untied ones at the largest budget)
    with the steps its budget buys; a skipped run has ``steps=0`` and says why.

    Args:
        vocab_sizes, train_tokens: per tokenizer name, its ids and the tokens of the training text.
    """
    runs = []
    for budget in sorted(config.budgets):
        for name, v in vocab_sizes.items():
            for width in config.widths:
                runs.append(_planned(config, name, v, train_tokens[name], width, budget, True))
    for name, width in config.untied:
        if name in vocab_sizes:
            runs.append(_planned(config, name, vocab_sizes[name], train_tokens[name], width, max(config.budgets),
                                 False))
    return runs


def _planned(config: CapacityConfig, name: str, vocab_size: int, train_tokens: int, width: int, budget: float,
             tied: bool) -> PlannedRun:
    f = train_flops_per_token(WindowLM(config.lm_config(vocab_size, width, tied)))
    steps = int(budget // (f * config.batch_size))
    epochs = steps * config.batch_size / train_tokens
    skipped = (f"the budget buys {steps} steps, fewer than {config.min_steps}" if steps < config.min_steps else
               f"the budget buys {epochs:.1f} passes over the text, more than {config.max_epochs:g}"
               if epochs > config.max_epochs else "")
    return PlannedRun(name, vocab_size, width, budget, tied, f, config.batch_size, 0 if skipped else steps, epochs,
                      skipped)


def learning_rate(step: int, steps: int, peak: float, warmup_fraction: float, final_fraction: float) -> float:
    """Linear warmup over the first ``warmup_fraction`` of the steps, then a cosine from ``peak`` down to
    ``final_fraction * peak`` at the last step (``step`` counts from 0).

    Examples:
        >>> [round(learning_rate(s, 10, 1.0, 0.2, 0.1), 3) for s in range(10)]
        [0.5, 1.0, 0.966, 0.868, 0.722, 0.55, 0.378, 0.232, 0.134, 0.1]
    """
    warmup = max(1, round(warmup_fraction * steps))
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup + 1) / max(1, steps - warmup)
    return peak * (final_fraction + (1 - final_fraction) * 0.5 * (1 + math.cos(math.pi * progress)))


def train_run(lm_config: LMConfig, train: Examples, steps: int, *, warmup_fraction: float = 0.05,
              final_lr_fraction: float = 0.1, on_step: Callable[[int], None] | None = None
              ) -> tuple[WindowLM, float, float]:
    """Train a fresh model of ``lm_config`` for ``steps`` batches drawn from ``train`` without
    replacement (reshuffled each pass, seeded by ``lm_config.seed``).

    Returns:
        (the model in eval mode, wall seconds of the steps, mean loss of the last tenth of the steps)
    """
    model = WindowLM(lm_config)
    optimizer = AdamW(model.parameters(), lr=lm_config.lr, weight_decay=lm_config.weight_decay)
    rng = np.random.default_rng(lm_config.seed)
    batch = lm_config.batch_size
    order, at = rng.permutation(len(train)), 0
    losses = []
    start = time.perf_counter()
    for step in range(steps):
        lr = learning_rate(step, steps, lm_config.lr, warmup_fraction, final_lr_fraction)
        for group in optimizer.param_groups:
            group["lr"] = lr
        if at + batch > len(order):  # a new pass over the training text
            order, at = rng.permutation(len(train)), 0
        losses.append(train_step(model, optimizer, *train.batch(order[at:at + batch])))
        at += batch
        if on_step is not None:
            on_step(step + 1)
    seconds = time.perf_counter() - start
    model.eval()
    return model, seconds, float(np.mean(losses[-max(1, steps // 10):])) if losses else math.nan


@contextmanager
def tables_stored_as(model: WindowLM, storage: str):
    """Within the block, every vocabulary table of ``model`` holds the values ``storage`` keeps
    (quantized and decoded back: what a lookup and the output projection read from it)."""
    tables = list({id(t): t for t in (model.embed.tokens, model.output_table)}.values())
    originals = [t.weight.data for t in tables]
    try:
        for t in tables:
            t.weight.data = as_storage(t.weight.data, storage).to_dense().astype(t.weight.data.dtype)
        yield model
    finally:
        for t, data in zip(tables, originals, strict=True):
            t.weight.data = data


def isoflops(points: list[dict]) -> list[dict]:
    """For each budget, the tied point with the lowest bits per byte, and the best per vocabulary.

    Returns:
        one dict per budget, ascending: ``budget``, ``best`` (the winning point), ``by_vocabulary``
        (vocab_size -> the best point of that vocabulary over the widths).
    """
    out = []
    for budget in sorted({p["budget"] for p in points if p["tied"]}):
        at = [p for p in points if p["tied"] and p["budget"] == budget]
        by_vocab: dict[int, dict] = {}
        for p in at:
            if p["vocab_size"] not in by_vocab or p["bits_per_byte"] < by_vocab[p["vocab_size"]]["bits_per_byte"]:
                by_vocab[p["vocab_size"]] = p
        out.append({"budget": budget, "best": min(at, key=lambda p: p["bits_per_byte"]),
                    "by_vocabulary": dict(sorted(by_vocab.items()))})
    return out


def pareto_front(points: list[dict], x: str, y: str = "bits_per_byte") -> list[int]:
    """Indices of the points no other point beats on both ``x`` and ``y`` (lower is better), by ``x``.

    Examples:
        >>> pareto_front([{"x": 1, "y": 3}, {"x": 2, "y": 4}, {"x": 3, "y": 2}], "x", "y")
        [0, 2]
    """
    front, best = [], math.inf
    for i in sorted(range(len(points)), key=lambda i: (points[i][x], points[i][y])):
        if points[i][y] < best:
            front.append(i)
            best = points[i][y]
    return front


def vocabulary_trend(sizes: list[int]) -> str:
    """How the best vocabulary moves over budgets in ascending order, in words.

    Examples:
        >>> vocabulary_trend([1024, 4096, 4096])
        'the best vocabulary grows with the budget here'
    """
    if len(sizes) < 2:
        return "one budget only: no trend to tell"
    if all(a <= b for a, b in zip(sizes, sizes[1:], strict=False)) and sizes[-1] > sizes[0]:
        return "the best vocabulary grows with the budget here"
    if all(a >= b for a, b in zip(sizes, sizes[1:], strict=False)) and sizes[-1] < sizes[0]:
        return "the best vocabulary shrinks as the budget grows here"
    if len(set(sizes)) == 1:
        return "the best vocabulary is the same at every budget here"
    return "the best vocabulary does not move one way with the budget here"


def finding(budgets: list[dict], widths: list[int] | tuple[int, ...] = (),
            vocab_sizes: list[int] | tuple[int, ...] = ()) -> str:
    """One paragraph: each budget's best vocabulary and its lead over the next best vocabulary, whether the
    best vocabulary grows with the budget, and which optima sit at an edge of the grid (``widths``,
    ``vocab_sizes``: the grid's, where a wider grid could move them)."""
    parts = []
    for b in budgets:
        best = b["best"]
        others = [p for v, p in b["by_vocabulary"].items() if int(v) != best["vocab_size"]]
        runner = min(others, key=lambda p: p["bits_per_byte"]) if others else None
        lead = (f", {runner['bits_per_byte'] - best['bits_per_byte']:.3f} ahead of {runner['tokenizer']}"
                if runner else "")
        parts.append(f"{b['budget']:.2g} FLOPs -> {best['tokenizer']} (V={best['vocab_size']}, "
                     f"D={best['embedding_dim']}, {best['bits_per_byte']:.3f} bits/byte{lead})")
    sizes = [b["best"]["vocab_size"] for b in budgets]
    text = (f"Best vocabulary by budget: {'; '.join(parts)}: {vocabulary_trend(sizes)} "
            f"({' -> '.join(map(str, sizes))}).")
    edges = []
    for name, key, bounds in (("width", "embedding_dim", widths), ("vocabulary", "vocab_size", vocab_sizes)):
        at_edge = [f"{b['budget']:.2g}" for b in budgets if bounds and b["best"][key] in (min(bounds), max(bounds))]
        if at_edge:
            edges.append(f"the best {name} is at the edge of the grid at {', '.join(at_edge)} FLOPs")
    if edges:
        text += f" Note: {'; '.join(edges)}, so a wider grid could move those optima."
    return text


def _point(run: PlannedRun, config: CapacityConfig, model: WindowLM, train_tokens: int, held: dict,
           seconds: float, loss: float) -> CapacityPoint:
    """Score a trained model on the held-out stream and describe it."""
    c = model.config
    start = time.perf_counter()
    score = lambda: held_out_bits_per_byte(model, held["stream"], c.context, held["pad"], held["bytes"])  # noqa: E731
    bpb = score()
    quantized = {}
    for storage in config.storages:
        with tables_stored_as(model, storage):
            quantized[storage] = score()
    tables = 1 if c.tied else 2
    total = model.num_parameters()
    plan = ModelConfig(name=run.tokenizer, vocab_size=c.vocab_size, hidden_size=c.dim, context_length=c.context,
                       tied=c.tied, positional="learned", total_params=total)
    return CapacityPoint(
        tokenizer=run.tokenizer, vocab_size=c.vocab_size, embedding_dim=c.dim, hidden=c.hidden, context=c.context,
        tied=c.tied, budget=run.budget, flops=run.flops, steps=run.steps, tokens_trained=run.steps * c.batch_size,
        epochs=run.steps * c.batch_size / train_tokens, embedding_parameters=plan.embedding_params,
        total_parameters=total, embedding_share=plan.embedding_params / total,
        table_bytes_float32=tables * c.vocab_size * storage_row_bytes("float32", c.dim),
        table_bytes_int8=tables * c.vocab_size * storage_row_bytes("int8", c.dim),
        tokens_per_byte=len(held["stream"]) / held["bytes"], bits_per_byte=bpb, quantized_bits_per_byte=quantized,
        final_train_loss=loss, train_seconds=seconds, eval_seconds=time.perf_counter() - start)


def run_capacity_study(config: CapacityConfig | None = None, *, text: str | None = None, show_progress: bool = True,
                       on_point: Callable[[CapacityPoint], None] | None = None) -> dict:
    """Train and score the whole grid; the results as a JSON-ready dict (see :mod:`.results`).

    Args:
        text: the corpus's text (default: ``config.corpus``, prepared if need be).
        on_point: called with each point as it is scored.
    """
    from ..text.corpus import corpus_text  # noqa: PLC0415 - prepares the corpus on first use

    config = config or CapacityConfig()
    started, load_before = time.perf_counter(), cpu_seconds()
    split = split_articles(corpus_text(config.corpus) if text is None else text, config.held_out_every,
                           config.eval_bytes)
    tokenizers = train_tokenizers(split.train, config.vocab_sizes)
    streams = _streams(tokenizers, split, config.context)
    runs = plan_runs(config, {name: t.vocab_size for name, t in tokenizers.items()},
                     {name: len(s["train"]) for name, s in streams.items()})
    todo = [r for r in runs if r.steps]
    if not todo:
        raise ValueError(f"no run of the grid fits its budget: {runs[0].skipped if runs else 'the grid is empty'}")
    bar = ProgressBar(sum(r.flops for r in todo) / 1e9, desc="capacity", enabled=show_progress)
    done_flops, points = 0.0, []
    for k, run in enumerate(todo, 1):
        s = streams[run.tokenizer]
        label = f"run {k}/{len(todo)}: {run.tokenizer} D={run.width}{'' if run.tied else ' untied'} " \
                f"@ {run.budget:.2g} FLOPs"

        def on_step(step, run=run, label=label, before=done_flops):
            bar.update((before + step * run.flops_per_token * config.batch_size) / 1e9, label)

        model, seconds, loss = train_run(config.lm_config(run.vocab_size, run.width, run.tied), s["train"], run.steps,
                                         warmup_fraction=config.warmup_fraction,
                                         final_lr_fraction=config.final_lr_fraction, on_step=on_step)
        point = _point(run, config, model, len(s["train"]), s["held"], seconds, loss)
        done_flops += run.flops
        points.append(point)
        if on_point is not None:
            on_point(point)
    bar.update(done_flops / 1e9, "scored", final=True)
    largest = max(todo, key=lambda r: r.flops_per_token)  # the largest model trained
    throughput = measure_step_throughput(config.lm_config(largest.vocab_size, largest.width),
                                         repeats=config.throughput_repeats, matmul_n=config.throughput_matmul_n,
                                         seed=config.seed)
    seconds = time.perf_counter() - started
    records = [p.to_dict() for p in points]
    budgets = isoflops(records)
    tied = [i for i, p in enumerate(records) if p["tied"]]
    return {
        "config": json.loads(json.dumps(asdict(config))),  # tuples as lists, as the saved file reads back
        "corpus": {"name": config.corpus, "train_lines": len(split.train), "train_bytes": split.train_bytes,
                   "held_out_articles": split.held_out_articles, "held_out_lines": len(split.held_out),
                   "held_out_bytes": split.held_out_bytes, "held_out_every": config.held_out_every},
        "tokenizers": [{"name": name, "vocab_size": t.vocab_size, "train_tokens": len(streams[name]["train"]),
                        "held_out_tokens": len(streams[name]["held"]["stream"]),
                        "tokens_per_byte": len(streams[name]["held"]["stream"]) / split.held_out_bytes}
                       for name, t in tokenizers.items()],
        "flops_convention": "matrix products only, 2 per multiply-add; training = 3x the forward "
                            "(forward, input and weight gradients); budgets count training only",
        "points": records,
        "skipped": [{"tokenizer": r.tokenizer, "vocab_size": r.vocab_size, "embedding_dim": r.width,
                     "budget": r.budget, "tied": r.tied, "reason": r.skipped} for r in runs if r.skipped],
        "isoflops": [{"budget": b["budget"], "best": b["best"],
                      "by_vocabulary": {str(v): p for v, p in b["by_vocabulary"].items()}} for b in budgets],
        "finding": finding(budgets, config.widths, [t.vocab_size for t in tokenizers.values()]),
        "trend": vocabulary_trend([b["best"]["vocab_size"] for b in budgets]),
        "pareto": {"total_parameters": [tied[i] for i in pareto_front([records[i] for i in tied], "total_parameters")],
                   "table_bytes_float32": [tied[i] for i in pareto_front([records[i] for i in tied],
                                                                         "table_bytes_float32")]},
        "step_throughput": throughput.to_dict(),
        "seconds": seconds,
        "background_cores": background_cores(load_before, cpu_seconds(), seconds),
    }


def _streams(tokenizers: dict, split: SplitText, context: int) -> dict[str, dict]:
    """Per tokenizer: the training examples and the held-out stream with what scoring needs."""
    held_bytes = split.held_out_bytes
    out = {}
    for name, tokenizer in tokenizers.items():
        pad = tokenizer.pad_id
        out[name] = {"train": Examples.of_lines([encode_stream(tokenizer, split.train)], context, pad),
                     "held": {"stream": encode_stream(tokenizer, split.held_out), "pad": pad, "bytes": held_bytes}}
    return out
