"""A float table stored as any storage type of tinyembed's one vocabulary.

:data:`tinyembed.kernels.rows.STORAGE_TYPES` names the types (float32, float16,
bfloat16, float8_e4m3fn, int8, int4) and their bytes per row; this module builds the
table that stores each: a dense :class:`~tinyembed.nn.Embedding`, a
:class:`ReducedPrecisionEmbedding` or a :class:`QuantizedEmbedding`. Each of them says
which type it is in its ``storage`` attribute.

Examples:
    >>> table = as_storage(np.ones((4, 8), dtype=np.float32), "int8")
    >>> table.storage, table.nbytes
    ('int8', 64)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..kernels.rows import STORAGE_TYPES, check_storage
from ..nn import Embedding
from ..nn.table import EmbeddingTable, as_float_table
from .precision import ReducedPrecisionEmbedding
from .quantized import QuantizedEmbedding

__all__ = ["as_storage", "STORAGE_BUILDERS"]

# storage type -> float32 (V, D) -> the table that stores it. One entry per STORAGE_TYPES name.
STORAGE_BUILDERS: dict[str, Callable[[np.ndarray], EmbeddingTable]] = {
    "float32": lambda w: Embedding.from_pretrained(w),
    "float16": lambda w: ReducedPrecisionEmbedding(w, "float16"),
    "bfloat16": lambda w: ReducedPrecisionEmbedding(w, "bfloat16"),
    "float8_e4m3fn": lambda w: ReducedPrecisionEmbedding(w, "float8_e4m3fn"),
    "int8": lambda w: QuantizedEmbedding.from_float(w, bits=8),
    "int4": lambda w: QuantizedEmbedding.from_float(w, bits=4),
}
assert set(STORAGE_BUILDERS) == set(STORAGE_TYPES)


def as_storage(table, storage: str) -> EmbeddingTable:
    """``table`` ((V, D) floats, a Tensor or any EmbeddingTable) stored as ``storage``.

    Values are converted to float32 first; NaN or inf are refused, naming the first.
    """
    check_storage(storage)
    return STORAGE_BUILDERS[storage](as_float_table(table))
