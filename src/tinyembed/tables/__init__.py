"""Embedding tables: one protocol, many ways to store a vocabulary.

The protocol (lookup, nbytes, compression_ratio, to_dense, bag, save/load) is
:mod:`tinyembed.nn.table`: the dense :class:`tinyembed.nn.Embedding` offers it too, and nn
sits below this package. Here are the tables that store a vocabulary in less:

    precision    float16 / bfloat16 / float8_e4m3fn storage
    quantized    row-wise int8/int4 in FBGEMM's fused layout
    hashing      HashedEmbedding (k universal hashes into B buckets), QREmbedding (quotient-remainder)
    factorized   FactorizedEmbedding: low rank, ALBERT-style, or truncated SVD of a table
    mixed_dim    MixedDimEmbedding: frequency-ranked blocks with their own widths (Ginart et al.)
    pruned       PrunedEmbedding: the K most frequent rows plus hashed out-of-vocabulary rows
    storage      as_storage: a float table stored as float32, float16, bfloat16, float8_e4m3fn, int8 or int4
"""

from ..nn.table import TABLE_TYPES, EmbeddingTable, as_float_table, load_table, register_table, take_array
from .factorized import FactorizedEmbedding
from .hashing import HashedEmbedding, QREmbedding
from .mixed_dim import MixedDimEmbedding, power_law_dims
from .precision import ReducedPrecisionEmbedding
from .pruned import PrunedEmbedding, oov_bucket
from .quantized import QuantizedEmbedding
from .storage import STORAGE_BUILDERS, as_storage

__all__ = [
    "EmbeddingTable", "TABLE_TYPES", "as_float_table", "load_table", "register_table", "take_array",
    "ReducedPrecisionEmbedding", "QuantizedEmbedding", "HashedEmbedding", "QREmbedding",
    "FactorizedEmbedding", "MixedDimEmbedding", "PrunedEmbedding", "power_law_dims", "oov_bucket",
    "as_storage", "STORAGE_BUILDERS",
]
