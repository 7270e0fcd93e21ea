"""Embedding tables: one protocol, many ways to store a vocabulary.

    base         the protocol (lookup, nbytes, compression_ratio, to_dense, bag, save/load)
    precision    float16 / bfloat16 / float8_e4m3fn storage
    quantized    row-wise int8/int4 in FBGEMM's fused layout
    hashing      HashedEmbedding (k universal hashes into B buckets), QREmbedding (quotient-remainder)
    factorized   FactorizedEmbedding: low rank, ALBERT-style, or truncated SVD of a table
    mixed_dim    MixedDimEmbedding: frequency-ranked blocks with their own widths (Ginart et al.)
    pruned       PrunedEmbedding: the K most frequent rows plus hashed out-of-vocabulary rows

The dense :class:`tinyembed.nn.Embedding` offers the same protocol.
"""

from ..nn.table import TABLE_TYPES, EmbeddingTable, as_float_table, load_table, register_table, take_array
from .factorized import FactorizedEmbedding
from .hashing import HashedEmbedding, QREmbedding
from .mixed_dim import MixedDimEmbedding, power_law_dims
from .precision import ReducedPrecisionEmbedding
from .pruned import PrunedEmbedding, oov_bucket
from .quantized import QuantizedEmbedding

__all__ = [
    "EmbeddingTable", "TABLE_TYPES", "as_float_table", "load_table", "register_table", "take_array",
    "ReducedPrecisionEmbedding", "QuantizedEmbedding", "HashedEmbedding", "QREmbedding",
    "FactorizedEmbedding", "MixedDimEmbedding", "PrunedEmbedding", "power_law_dims", "oov_bucket",
]
