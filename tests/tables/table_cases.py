"""One representative table of every registered table type, for the protocol tests (test_protocol.py).

Add an entry to ``CASES`` with every new table type: test_protocol.py fails while a type in
``tinyembed.nn.TABLE_TYPES`` has none. A type may have several entries (its storage types,
combiners, float64); names are the test ids.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tinyembed.nn import Embedding
from tinyembed.nn.table import EmbeddingTable
from tinyembed.tables import (
    FactorizedEmbedding,
    HashedEmbedding,
    MixedDimEmbedding,
    PrunedEmbedding,
    QREmbedding,
    QuantizedEmbedding,
    ReducedPrecisionEmbedding,
)


@dataclass(frozen=True)
class Case:
    """How to build one representative table, and which of its rows are equal only up to rounding.

    batch_rounding: its rows are a BLAS matrix product, whose rounding depends on how many rows
        it computes at once (FactorizedEmbedding's docstring), so ``lookup(ids)`` equals
        ``to_dense()[ids]`` up to float32 rounding, not bit for bit.
    forward_rounding: its differentiable forward (``table(ids)``) computes rows by other float
        operations than ``lookup``, so the two agree up to float32 rounding.
    """

    make: Callable[[], EmbeddingTable]
    batch_rounding: bool = False
    forward_rounding: bool = False


def _rows(num=23, dim=10, seed=1):
    return np.random.default_rng(seed).standard_normal((num, dim)).astype(np.float32)


def _mixed(dtype=np.float32):
    # V = 20, D = 8; block 0 is full width, so it has no projection.
    return MixedDimEmbedding(20, 8, [4, 6, 10], [8, 3, 1], id_rank=np.random.default_rng(9).permutation(20),
                             seed=0, dtype=dtype)


def _pruned(keep=20, oov_buckets=6):
    rng = np.random.default_rng(0)
    table, counts = rng.standard_normal((60, 5)).astype(np.float32), rng.integers(0, 8, size=60)  # many ties
    return PrunedEmbedding.from_counts(table, counts, keep=keep, oov_buckets=oov_buckets, seed=7)


CASES: dict[str, Case] = {
    "Embedding": Case(lambda: Embedding(23, 6, seed=0)),
    "Embedding-float64": Case(lambda: Embedding(23, 6, dtype=np.float64, seed=1)),
    # Factorized and mixed-dimension rows are BLAS products, in lookup and in forward alike.
    "Factorized": Case(lambda: FactorizedEmbedding(12, 6, rank=3, seed=0), batch_rounding=True, forward_rounding=True),
    "Factorized-float64": Case(lambda: FactorizedEmbedding(12, 6, rank=3, seed=0, dtype=np.float64),
                               batch_rounding=True, forward_rounding=True),
    "MixedDim": Case(_mixed, batch_rounding=True, forward_rounding=True),
    "MixedDim-float64": Case(lambda: _mixed(np.float64), batch_rounding=True, forward_rounding=True),
    "Hashed-sum": Case(lambda: HashedEmbedding(37, 6, num_buckets=11, num_hashes=2, seed=1)),
    # The mean combiner: forward multiplies the bucket sum by 1/k, lookup divides it by k.
    "Hashed-mean-signed": Case(lambda: HashedEmbedding(37, 6, num_buckets=11, num_hashes=3, seed=2, combiner="mean",
                                                       signed=True), forward_rounding=True),
    "Hashed-one-hash": Case(lambda: HashedEmbedding(37, 6, num_buckets=11, num_hashes=1, seed=3)),
    "Hashed-float64": Case(lambda: HashedEmbedding(20, 3, num_buckets=7, seed=0, dtype=np.float64)),
    "QR-mult": Case(lambda: QREmbedding(37, 6, num_collisions=5, combiner="mult", seed=4)),
    "QR-add": Case(lambda: QREmbedding(37, 6, num_collisions=5, combiner="add", seed=5)),
    "QR-concat": Case(lambda: QREmbedding(37, 6, num_collisions=5, combiner="concat", seed=6)),
    "QR-concat-float64": Case(lambda: QREmbedding(20, 4, num_collisions=3, combiner="concat", seed=0,
                                                  dtype=np.float64)),
    "ReducedPrecision-float16": Case(lambda: ReducedPrecisionEmbedding(_rows(), "float16")),
    "ReducedPrecision-bfloat16": Case(lambda: ReducedPrecisionEmbedding(_rows(), "bfloat16")),
    "ReducedPrecision-float8_e4m3fn": Case(lambda: ReducedPrecisionEmbedding(_rows(), "float8_e4m3fn")),
    "Quantized-int8": Case(lambda: QuantizedEmbedding.from_float(_rows(seed=10), bits=8)),
    "Quantized-int4": Case(lambda: QuantizedEmbedding.from_float(_rows(seed=10), bits=4)),
    "Quantized-int4-odd-width": Case(lambda: QuantizedEmbedding.from_float(_rows(dim=7, seed=7), bits=4)),
    "Pruned": Case(_pruned),
    "Pruned-keep-all": Case(lambda: _pruned(keep=60, oov_buckets=0)),  # no OOV rows at all
}
