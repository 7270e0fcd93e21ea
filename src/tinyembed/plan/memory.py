"""How much memory the embedding tables of a language model take.

For a model configuration (vocabulary size V, width D, context length, tied or
untied output head, kind of position embedding) this module computes:

* parameter counts of the token table, the output head and the position
  embeddings, and their share of all parameters when the total is known;
* bytes of one V x D token table in every storage type of
  :data:`tinyembed.kernels.rows.STORAGE_TYPES` (float32 to row-wise int4);
* optimizer memory for a dense Adam step versus row-sparse updates, where a
  batch of ``n`` tokens touches only the rows of the tokens it contains.

Only the published configurations in :mod:`tinyembed.plan.models` are typed in, each
with its source; every other number is computed from them. ``format_table`` renders
reports for people and prints the assumptions next to the numbers;
``MemoryReport.to_dict`` is for programs.

Examples:
    >>> from tinyembed.plan.models import MODELS
    >>> report = embedding_memory(MODELS["gpt2"], batch_tokens=16384)
    >>> report.input_embedding_params
    38597376
    >>> report.token_table_bytes["float32"] == 50257 * 768 * 4
    True
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

from ..checks import check_nonnegative_int, check_positive_int
from ..kernels.rows import STORAGE_TYPES, storage_row_bytes
from .models import ModelConfig
from .zipf import zipf_expected_distinct

__all__ = [
    "DISTRIBUTIONS",
    "MemoryReport",
    "embedding_memory",
    "expected_unique_rows",
    "expected_unique_rows_uniform",
    "format_bytes",
    "format_params",
    "format_table",
]

FLOAT32_BYTES = 4
INDEX_BYTES = 8  # a row-sparse gradient stores one int64 row index per touched row


# ---------------------------------------------------------------------------
# Expected unique rows touched by a batch
# ---------------------------------------------------------------------------


def expected_unique_rows_uniform(vocab_size: int, n_tokens: int) -> float:
    """Expected distinct rows among ``n_tokens`` uniform draws from ``vocab_size`` rows.

    ``V * (1 - (1 - 1/V)**n)``, computed as ``-V * expm1(n * log1p(-1/V))``:
    for a large V, ``1 - 1/V`` rounds away most of ``1/V`` and the naive
    formula loses digits; log1p/expm1 keep them.

    Args:
        vocab_size: rows V (> 0).
        n_tokens: tokens in the batch (>= 0).

    Returns:
        Expected number of rows touched, in [0, min(V, n)].
    """
    _check_unique_rows_args(vocab_size, n_tokens)
    if n_tokens == 0:
        return 0.0
    if vocab_size == 1:
        return 1.0  # log1p(-1) is -inf; the answer is simply the one row
    untouched_fraction_minus_1 = math.expm1(n_tokens * math.log1p(-1.0 / vocab_size))
    return -vocab_size * untouched_fraction_minus_1


def _check_unique_rows_args(vocab_size: int, n_tokens: int) -> None:
    check_positive_int(vocab_size, "vocab_size")
    check_nonnegative_int(n_tokens, "batch tokens")


# Token distribution -> expected unique rows as a function of
# (vocab_size, n_tokens, zipf_alpha). Adding a distribution is one entry. Zipf is
# tinyembed's one Zipf (:mod:`tinyembed.plan.zipf`): alpha > 0, 'uniform' is alpha 0.
DISTRIBUTIONS: dict[str, Callable[[int, int, float], float]] = {
    "zipf": lambda v, n, alpha: zipf_expected_distinct(v, alpha, n),
    "uniform": lambda v, n, alpha: expected_unique_rows_uniform(v, n),
}


def expected_unique_rows(
    vocab_size: int, n_tokens: int, distribution: str = "zipf", zipf_alpha: float = 1.0
) -> float:
    """Expected distinct rows a batch of ``n_tokens`` touches, under ``distribution``."""
    if distribution not in DISTRIBUTIONS:
        known = ", ".join(DISTRIBUTIONS)
        raise ValueError(f"distribution must be one of {known}; got {distribution!r}")
    return DISTRIBUTIONS[distribution](vocab_size, n_tokens, zipf_alpha)


# ---------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class MemoryReport:
    """Embedding parameters and memory of one model under one batch assumption.

    Bytes are for ONE V x D token table (an untied output head is a second
    table of the same size). "Touched" bytes count each array a step reads
    or writes once: the weights, the gradient and the optimizer state.
    """

    # the configuration
    name: str
    source: str
    vocab_size: int
    hidden_size: int
    context_length: int | None
    tied: bool
    positional: str
    # the batch assumption behind the sparse numbers
    batch_tokens: int
    distribution: str
    zipf_alpha: float | None  # None unless distribution == "zipf"
    # parameters
    input_embedding_params: int
    output_embedding_params: int  # 0 when tied: a shared table is counted once
    position_params: int
    embedding_params: int
    total_params: int | None  # None when unknown
    embedding_share: float | None  # embedding_params / total_params, None when unknown
    # storage of one token table: storage type (kernels.rows.STORAGE_TYPES) -> bytes
    token_table_bytes: dict[str, int]
    # dense Adam: every row has a gradient and two moments
    dense_grad_bytes: int  # V*D float32
    dense_adam_state_bytes: int  # exp_avg + exp_avg_sq, 2*V*D float32
    dense_adam_bytes: int  # gradient + state
    # sparse updates: only the rows in the batch have a gradient
    expected_unique_rows: float
    sparse_grad_bytes: int  # unique rows * (D float32 values + int64 index)
    sparse_adam_state_bytes: int  # torch.optim.SparseAdam keeps dense moments: 2*V*D float32
    rowwise_adagrad_state_bytes: int  # one float32 accumulator per row: V*4
    # bytes a step must touch
    step_dense_adam_touched_bytes: int  # weight, grad, 2 moments over all V rows
    step_sparse_adam_touched_bytes: int  # the same over the unique rows, plus indices
    step_rowwise_adagrad_touched_bytes: int  # weight + grad rows, 1 float/row state, indices

    def to_dict(self) -> dict:
        """Plain dict of every field (JSON-serializable)."""
        return asdict(self)


def embedding_memory(
    config: ModelConfig,
    batch_tokens: int = 16384,
    distribution: str = "zipf",
    zipf_alpha: float = 1.0,
) -> MemoryReport:
    """Compute the embedding parameters and memory of ``config``.

    Args:
        config: the model.
        batch_tokens: tokens in one training batch (>= 0); decides how many
            rows a sparse update touches.
        distribution: how tokens are drawn from the vocabulary, a key of
            ``DISTRIBUTIONS`` ("zipf" or "uniform"). Rank ``i`` of a Zipf
            vocabulary has probability ∝ ``1 / i**zipf_alpha``.
        zipf_alpha: Zipf exponent (> 0), used only for "zipf".

    Returns:
        A ``MemoryReport``; all ``*_bytes`` fields are bytes, ``*_params``
        fields are parameter counts.

    Note:
        Sparse updates apply to the input table. An untied output head's
        gradient is dense whatever the batch, because the softmax gives every
        vocabulary row a gradient.
    """
    check_nonnegative_int(batch_tokens, "batch_tokens")
    unique_rows = expected_unique_rows(
        config.vocab_size, batch_tokens, distribution, zipf_alpha
    )
    v, d = config.vocab_size, config.hidden_size
    row_float32_bytes = d * FLOAT32_BYTES

    dense_grad_bytes = v * row_float32_bytes
    dense_adam_state_bytes = 2 * v * row_float32_bytes

    share = None
    if config.total_params is not None:
        share = config.embedding_params / config.total_params

    # Bytes per touched row of each sparse step. Expected unique rows is
    # fractional; bytes are rounded to whole bytes.
    sparse_grad_row_bytes = row_float32_bytes + INDEX_BYTES
    sparse_adam_row_bytes = 4 * row_float32_bytes + INDEX_BYTES  # weight, grad, exp_avg, exp_avg_sq
    rowwise_adagrad_row_bytes = 2 * row_float32_bytes + FLOAT32_BYTES + INDEX_BYTES  # weight, grad, state

    return MemoryReport(
        name=config.name,
        source=config.source,
        vocab_size=v,
        hidden_size=d,
        context_length=config.context_length,
        tied=config.tied,
        positional=config.positional,
        batch_tokens=batch_tokens,
        distribution=distribution,
        zipf_alpha=float(zipf_alpha) if distribution == "zipf" else None,
        input_embedding_params=config.input_embedding_params,
        output_embedding_params=config.output_embedding_params,
        position_params=config.position_params,
        embedding_params=config.embedding_params,
        total_params=config.total_params,
        embedding_share=share,
        token_table_bytes={storage: v * storage_row_bytes(storage, d) for storage in STORAGE_TYPES},
        dense_grad_bytes=dense_grad_bytes,
        dense_adam_state_bytes=dense_adam_state_bytes,
        dense_adam_bytes=dense_grad_bytes + dense_adam_state_bytes,
        expected_unique_rows=unique_rows,
        sparse_grad_bytes=round(unique_rows * sparse_grad_row_bytes),
        sparse_adam_state_bytes=2 * v * row_float32_bytes,
        rowwise_adagrad_state_bytes=v * FLOAT32_BYTES,
        step_dense_adam_touched_bytes=4 * v * row_float32_bytes,
        step_sparse_adam_touched_bytes=round(unique_rows * sparse_adam_row_bytes),
        step_rowwise_adagrad_touched_bytes=round(unique_rows * rowwise_adagrad_row_bytes),
    )


# ---------------------------------------------------------------------------
# Rendering for people
# ---------------------------------------------------------------------------


def format_params(count: float | None) -> str:
    """A parameter count in decimal units: 124439808 -> '124.4M'."""
    if count is None:
        return "unknown"
    for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(count) >= scale:
            return f"{count / scale:.1f}{unit}"
    return f"{count:g}"


def format_bytes(n_bytes: float | None) -> str:
    """A byte count in binary units: 154389504 -> '147.2 MiB'."""
    if n_bytes is None:
        return "unknown"
    for unit, scale in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(n_bytes) >= scale:
            return f"{n_bytes / scale:.1f} {unit}"
    return f"{n_bytes:.0f} B"


def _format_share(share: float | None) -> str:
    return "unknown" if share is None else f"{100 * share:.1f}%"


Column = tuple[str, Callable[[MemoryReport], str]]


def _storage_bytes_cell(storage: str) -> Callable[[MemoryReport], str]:
    """The cell of one storage type's column (a function per column: a lambda in the loop would see the last)."""
    return lambda r: format_bytes(r.token_table_bytes[storage])

# Table sections: (title, columns). Each column is (header, cell formatter);
# adding a column or a section is adding one entry.
_TABLE_SECTIONS: list[tuple[str, list[Column]]] = [
    (
        "Embedding parameters (a tied table counted once)",
        [
            ("model", lambda r: r.name),
            ("vocab", lambda r: f"{r.vocab_size:,}"),
            ("dim", lambda r: f"{r.hidden_size:,}"),
            ("context", lambda r: "-" if r.context_length is None else f"{r.context_length:,}"),
            ("positions", lambda r: r.positional),
            ("token emb", lambda r: format_params(r.input_embedding_params)),
            ("output head", lambda r: "tied" if r.tied else format_params(r.output_embedding_params)),
            ("pos emb", lambda r: format_params(r.position_params)),
            ("embedding", lambda r: format_params(r.embedding_params)),
            ("model total", lambda r: format_params(r.total_params)),
            ("share", lambda r: _format_share(r.embedding_share)),
        ],
    ),
    (
        "One V x D token table: storage",
        [("model", lambda r: r.name)]
        + [(storage, _storage_bytes_cell(storage)) for storage in STORAGE_TYPES],
    ),
    (
        "One V x D token table: optimizer memory and bytes touched per step",
        [
            ("model", lambda r: r.name),
            ("Adam grad+state", lambda r: format_bytes(r.dense_adam_bytes)),
            ("rows/step", lambda r: f"{r.expected_unique_rows:,.0f}"),
            ("sparse grad", lambda r: format_bytes(r.sparse_grad_bytes)),
            ("SparseAdam state", lambda r: format_bytes(r.sparse_adam_state_bytes)),
            ("RW-Adagrad state", lambda r: format_bytes(r.rowwise_adagrad_state_bytes)),
            ("step dense Adam", lambda r: format_bytes(r.step_dense_adam_touched_bytes)),
            ("step SparseAdam", lambda r: format_bytes(r.step_sparse_adam_touched_bytes)),
        ],
    ),
]


def _render_section(title: str, columns: list[Column], reports: list[MemoryReport]) -> list[str]:
    rows = [[cell(r) for _, cell in columns] for r in reports]
    widths = [
        max(len(header), *(len(row[i]) for row in rows)) for i, (header, _) in enumerate(columns)
    ]

    def line(cells: list[str]) -> str:
        # The first column (model name) reads left to right; numbers align right.
        parts = [cells[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join(parts).rstrip()

    header = line([h for h, _ in columns])
    return [title, header, "-" * len(header), *(line(row) for row in rows)]


def _assumptions(reports: list[MemoryReport]) -> str:
    batches = sorted({(r.batch_tokens, r.distribution, r.zipf_alpha) for r in reports}, key=str)
    described = "; ".join(
        f"{n:,} tokens per batch drawn "
        + (f"zipf(alpha={alpha:g})" if dist == "zipf" else dist)
        + " over the vocabulary"
        for n, dist, alpha in batches
    )
    text = (
        f"Assumptions: {described}. Bytes are per V x D token table; an untied "
        "output head is a second table whose gradient is always dense. int8/int4 "
        "are row-wise with a float32/float16 scale and bias per row. Optimizer state is float32; "
        "step bytes count weight, gradient and state once each."
    )
    return textwrap.fill(text, width=100)


def format_table(reports: Iterable[MemoryReport]) -> str:
    """Render reports as fixed-width text tables, one row per model.

    Params use decimal units (K/M/B), bytes binary units (KiB/MiB/GiB). The
    batch and distribution assumptions are printed below the numbers.
    """
    reports = list(reports)
    if not reports:
        return "No models."
    lines: list[str] = []
    for title, columns in _TABLE_SECTIONS:
        if lines:
            lines.append("")
        lines.extend(_render_section(title, columns, reports))
    lines.append("")
    lines.append(_assumptions(reports))
    return "\n".join(lines)
