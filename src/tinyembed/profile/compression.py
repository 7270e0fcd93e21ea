"""What each way of shrinking an embedding table costs, measured on a real table.

For a dense (V, D) table and a list of methods, :func:`compress` builds each
compressed table and measures it against the original: bytes, compression ratio,
mean and minimum row cosine similarity, relative Frobenius error, recall@10 of
nearest neighbours over sampled rows, and lookup time relative to the dense table.

Methods are a registry of builders ``(table, counts, seed) -> EmbeddingTable``.
Post-hoc methods (precision, quantization, SVD, pruning) convert the table; the
trainable ones (hashing, QR, mixed-dim) have no conversion, so they are fitted to
reproduce the original rows with full-batch Adam, and their figures say so.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial

import numpy as np

from ..checks import check_memory
from ..io import assets, safetensors
from ..io.progress import progress
from ..nn import Embedding
from ..nn.init import normal
from ..optim import Adam
from ..tables import FactorizedEmbedding, HashedEmbedding, MixedDimEmbedding, PrunedEmbedding, QREmbedding, as_storage
from ..tensor import Tensor
from .timing import interleaved

__all__ = ["METHODS", "DEFAULT_METHODS", "CompressionResult", "compress", "format_results", "row_cosines",
           "neighbour_recall", "token_counts", "fit_rows", "needs_counts", "minilm_table", "minilm_counts",
           "read_table"]


# -- measurements ----------------------------------------------------------------------------
def row_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of each row of ``a`` with the same row of ``b`` (float64; 1 for two zero rows)."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    dot = np.einsum("ij,ij->i", a, b)
    both_zero = (na == 0) & (nb == 0)
    return np.where(both_zero, 1.0, dot / np.maximum(na * nb, 1e-30))


def _top_k_neighbours(table: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """(len(queries), k) ids of each query row's k most cosine-similar rows, itself excluded."""
    unit = table / np.maximum(np.linalg.norm(table, axis=1, keepdims=True), 1e-30)
    sims = unit[queries] @ unit.T  # (q, V)
    sims[np.arange(len(queries)), queries] = -np.inf
    return np.argpartition(-sims, k - 1, axis=1)[:, :k]


def neighbour_recall(original: np.ndarray, compressed: np.ndarray, queries: np.ndarray, k: int = 10) -> float:
    """Share of each query's k nearest neighbours (cosine, in the original) that the compressed table keeps."""
    k = min(k, len(original) - 1)  # a tiny table has fewer neighbours than k
    if k < 1:
        return 1.0
    truth = _top_k_neighbours(original.astype(np.float32), queries, k)
    found = _top_k_neighbours(compressed.astype(np.float32), queries, k)
    hits = [len(np.intersect1d(t, f)) for t, f in zip(truth, found, strict=True)]
    return float(np.mean(hits) / k)


# -- fitting trainable tables -------------------------------------------------------------------
def fit_rows(table, target: np.ndarray, steps: int = 200, lr: float = 0.05, batch: int = 4096,
             seed: int = 0):
    """Train a trainable table so that its rows reproduce ``target`` (V, D): Adam on mean squared error.

    Minibatches of ``batch`` random ids per step. Returns the table.
    """
    rng = np.random.default_rng(seed)
    opt = Adam(table.parameters(), lr=lr)
    target = target.astype(np.float32)
    for _ in range(steps):
        ids = rng.integers(0, len(target), size=min(batch, len(target)))
        diff = table(ids) - Tensor(target[ids])
        loss = (diff * diff).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return table


def token_counts(tokenizer_json: bytes, text: str, vocab_size: int) -> np.ndarray:
    """How often each token id occurs in ``text`` under a Hugging Face ``tokenizer.json`` (needs `tokenizers`)."""
    try:
        from tokenizers import Tokenizer
    except ImportError as e:
        raise ImportError("token counts need Hugging Face tokenizers: pip install 'tinyembed[text]'") from e
    tokenizer = Tokenizer.from_str(tokenizer_json.decode("utf-8"))
    # A model's tokenizer.json may pad to and truncate at its context length: count the text as it is.
    tokenizer.no_padding()
    tokenizer.no_truncation()
    lines = [line for line in text.splitlines() if line.strip()]
    ids = np.concatenate([np.asarray(e.ids, dtype=np.int64) for e in tokenizer.encode_batch(lines)])
    return np.bincount(ids, minlength=vocab_size)[:vocab_size]


# -- the tables to compress ---------------------------------------------------------------------
def minilm_table() -> np.ndarray:
    """The real all-MiniLM-L6-v2 word table, (30522, 384) float32, from the model's PyPI wheel."""
    return assets.minilm_tensor("embeddings.word_embeddings.weight")


def minilm_counts(vocab_size: int) -> np.ndarray:
    """(vocab_size,) token frequencies of real text: gensim's Lee news corpus through the
    MiniLM tokenizer, for the methods that rank ids by frequency."""
    text = assets.gensim_test_data("lee_background.cor").decode("utf-8", errors="replace")
    return token_counts(assets.minilm_tokenizer_json(), text, vocab_size)


def read_table(path: str, tensor: str | None = None) -> np.ndarray:
    """A (V, D) table from a ``.npy`` file (never unpickled) or the tensor ``tensor`` of a
    ``.safetensors`` file; a missing ``tensor`` is refused naming the ones the file holds."""
    if path.endswith(".npy"):
        return np.load(path, allow_pickle=False)
    if not tensor:
        names = sorted(safetensors.read_header(path)[0])
        raise ValueError(f"a tensor name is needed to pick a table from {path!r}; it holds {names}")
    return safetensors.load_tensor(path, tensor, copy=True)


def unfit(methods, shape: tuple[int, int], counts: np.ndarray | None = None) -> dict[str, str]:
    """{method: why it cannot compress a table of ``shape`` (with these ``counts``)} for the methods
    among ``methods`` that cannot; unknown names are reported too."""
    why = {}
    for m in methods:
        if m not in METHODS:
            why[m] = f"unknown method; known: {', '.join(METHODS)}"
        elif METHODS[m].needs_counts and counts is None:
            why[m] = "it ranks ids by frequency and needs token counts (--counts)"
        elif (reason := METHODS[m].fits(*shape)) is not None:
            why[m] = reason
    return why


def needs_counts(methods) -> list[str]:
    """The methods among ``methods`` that rank ids by frequency (they need token counts)."""
    return [m for m in methods if METHODS[m].needs_counts]


# -- the methods --------------------------------------------------------------------------------
def _fitted(build: Callable[[np.ndarray, np.ndarray, int], object], lr: float, steps: int = 300):
    """A builder that makes a fresh trainable table and fits it to the original rows.

    The learning rates below were picked from {0.005, 0.02, 0.05} on the MiniLM table.
    """
    def builder(table, counts, seed):
        return fit_rows(build(table, counts, seed), table, steps=steps, lr=lr, seed=seed)
    return builder


def _stored(storage):
    def builder(table, counts, seed):
        return as_storage(table, storage)
    return builder


def _low_rank(rank):
    def builder(table, counts, seed):
        return FactorizedEmbedding.from_float(table, rank)
    return builder


def _pruned(keep_share, max_oov_buckets):
    def builder(table, counts, seed):
        keep = max(1, int(len(table) * keep_share))
        oov = min(max_oov_buckets, max(1, len(table) // 16))  # OOV rows stay small beside the kept ones
        return PrunedEmbedding.from_counts(table, counts, keep=keep, oov_buckets=oov, seed=seed)
    return builder


# Fitted tables start at the original's scale: an N(0, 1) start is far from rows of std ~0.05.
def _hashed(table, counts, seed):
    v, d = table.shape
    return HashedEmbedding(v, d, num_buckets=v // 4, num_hashes=2, seed=seed,
                           init=normal(std=float(table.std()) / np.sqrt(2)))  # a sum of 2 rows


def _qr(table, counts, seed):
    v, d = table.shape
    return QREmbedding(v, d, num_collisions=4, combiner="mult", seed=seed,
                       init=normal(std=float(np.sqrt(table.std()))))  # a product of 2 rows


def _mixed_dim(table, counts, seed):
    return MixedDimEmbedding.from_counts(counts, table.shape[1], seed=seed)


@dataclass(frozen=True)
class Method:
    """One way to compress: how to build it, what it needs, and what it is.

    ``fits(V, D)`` says why a V x D table cannot be compressed this way (None if it can), so a
    run checks every method it was asked for before measuring any.
    """

    build: Callable
    description: str
    needs_counts: bool = False
    fits: Callable[[int, int], str | None] = lambda v, d: None


def _rank_fits(rank: int) -> Callable[[int, int], str | None]:
    return lambda v, d: None if rank <= min(v, d) else f"rank {rank} needs a table of at least {rank} x {rank}"


def _rows_fit(v: int, d: int) -> str | None:
    return None if v >= 16 else f"it needs at least 16 rows to group or hash, the table has {v}"


# name -> Method. Adding a method is adding an entry.
METHODS: dict[str, Method] = {
    "float16": Method(_stored("float16"), "float16 storage"),
    "bfloat16": Method(_stored("bfloat16"), "bfloat16 storage (ml_dtypes)"),
    "float8_e4m3fn": Method(_stored("float8_e4m3fn"), "float8 e4m3 storage (ml_dtypes)"),
    "int8": Method(_stored("int8"), "row-wise int8, float32 scale and bias (FBGEMM layout)"),
    "int4": Method(_stored("int4"), "row-wise int4, float16 scale and bias (FBGEMM layout)"),
    "lowrank-128": Method(_low_rank(128), "truncated SVD, rank 128 (ALBERT-style factors)", fits=_rank_fits(128)),
    "lowrank-64": Method(_low_rank(64), "truncated SVD, rank 64", fits=_rank_fits(64)),
    "prune-50%": Method(_pruned(0.5, 1024), "keep the 50% most frequent rows, min(1024, V/16) hashed OOV rows",
                        needs_counts=True, fits=_rows_fit),
    "hash-25%": Method(_fitted(_hashed, lr=0.005), "2-hash table with V/4 buckets, fitted by Adam", fits=_rows_fit),
    "qr-4": Method(_fitted(_qr, lr=0.02), "quotient-remainder, 4 collisions, mult, fitted by Adam", fits=_rows_fit),
    "mixed-dim": Method(_fitted(_mixed_dim, lr=0.05), "frequency blocks with power-law widths, fitted by Adam",
                        needs_counts=True, fits=_rows_fit),
}
DEFAULT_METHODS = list(METHODS)


@dataclass
class CompressionResult:
    """One method's measurements against the original table."""

    method: str
    description: str
    nbytes: int
    compression_ratio: float
    mean_cosine: float
    min_cosine: float
    relative_frobenius_error: float
    recall_at_10: float
    lookup_time_ratio: float  # compressed lookup time / dense lookup time (median, interleaved)
    build_seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


def compress(table: np.ndarray, methods: list[str] | None = None, counts: np.ndarray | None = None,
             sample: int = 1000, seed: int = 0, repeats: int = 7, show_progress: bool = True,
             ) -> list[CompressionResult]:
    """Build each method's table from ``table`` (V, D) and measure it; the first row is dense float32.

    Args:
        counts: (V,) token frequencies, for the methods that rank ids by frequency.
        sample: rows sampled (seeded) for recall@10.
        repeats: timing repeats (medians).

    Raises:
        ValueError: a method that cannot compress this table (see :func:`unfit`), named with
            the reason, before anything is built; a method cannot run is never left out silently.
        MemoryError: the measurements would not fit in the memory available.
    """
    table = np.ascontiguousarray(table, dtype=np.float32)
    if table.ndim != 2:
        raise ValueError(f"table must be 2-D (V, D), got shape {table.shape}")
    methods = DEFAULT_METHODS if methods is None else list(methods)
    if counts is not None and np.shape(counts) != (len(table),):
        raise ValueError(f"counts must have one entry per row ({len(table)}), got shape {np.shape(counts)}")
    refused = unfit(methods, table.shape, counts)
    if refused:
        raise ValueError("; ".join(f"{m} cannot compress this {table.shape[0]}x{table.shape[1]} table: {why}"
                                   for m, why in refused.items()))
    # The table, a built copy, its dense rows, their float64 cosines and the neighbour search's
    # (sample, V) similarities: about six tables' worth at once.
    check_memory(6 * table.nbytes + 8 * min(sample, len(table)) * len(table), f"compressing a {table.shape} table")
    rng = np.random.default_rng(seed)
    queries = rng.choice(len(table), size=min(sample, len(table)), replace=False)
    lookup_ids = rng.integers(0, len(table), size=(32, 512))
    # Both write into an output made once: a fresh 24 MiB output per call would time page faults.
    out_dense, out_built = (np.empty(lookup_ids.shape + (table.shape[1],), np.float32) for _ in range(2))
    dense = Embedding.from_pretrained(table)
    frobenius = np.linalg.norm(table)

    results = []
    for name in progress(["dense"] + methods, desc="compress", enabled=show_progress):
        start = time.perf_counter()
        built = dense if name == "dense" else METHODS[name].build(table, counts, seed)
        build_seconds = time.perf_counter() - start
        approx = built.to_dense()
        cos = row_cosines(table, approx)
        times = interleaved({"dense": partial(dense.lookup, lookup_ids, out=out_dense),
                             "built": partial(built.lookup, lookup_ids, out=out_built)}, repeats)
        results.append(CompressionResult(
            method=name,
            description="dense float32 (the original)" if name == "dense" else METHODS[name].description,
            nbytes=built.nbytes,
            compression_ratio=built.compression_ratio,
            mean_cosine=float(cos.mean()),
            min_cosine=float(cos.min()),
            relative_frobenius_error=float(np.linalg.norm(approx - table) / frobenius),
            recall_at_10=neighbour_recall(table, approx, queries),
            lookup_time_ratio=times["built"].median_ms / times["dense"].median_ms,
            build_seconds=build_seconds,
        ))
    return results


def format_results(results: list[CompressionResult]) -> str:
    """A fixed-width table for people."""
    width = max([len("method")] + [len(r.method) for r in results])  # float8_e4m3fn is 13 characters
    head = (f"{'method':<{width}} {'bytes':>10} {'ratio':>6} {'mean cos':>9} {'min cos':>8} "
            f"{'rel err':>8} {'R@10':>5} {'lookup':>7}  what")
    lines = [head, "-" * len(head)]
    for r in results:
        lines.append(f"{r.method:<{width}} {r.nbytes / 2**20:>7.1f}MiB {r.compression_ratio:>6.2f} "
                     f"{r.mean_cosine:>9.6f} {r.min_cosine:>8.4f} {r.relative_frobenius_error:>8.4f} "
                     f"{r.recall_at_10:>5.3f} {r.lookup_time_ratio:>6.2f}x  {r.description}")
    return "\n".join(lines)
