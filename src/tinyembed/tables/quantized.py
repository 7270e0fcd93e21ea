"""Row-wise quantized tables in FBGEMM's fused layout: 8-bit and 4-bit codes per row.

The layout and the rounding are FBGEMM's, stated once in :mod:`tinyembed.kernels.rows`.
Only rows looked up are ever decoded, and no dense table is built: with numba, a lookup
decodes each fused row straight into the float32 output, ``bag`` adds each row's codes
times its scale into the bag's sum and its bias into a sum of its own, as FBGEMM orders
them (:func:`tinyembed.kernels.bag_pool_decoded`), and ``attend`` decodes each row inside its dot products
(:mod:`tinyembed.kernels.rows`, :mod:`tinyembed.kernels.bags`); without numba, the byte rows
are gathered and then decoded, a cache-sized chunk at a time, to the same bits.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import kernels
from ..checks import check_positive_int
from ..kernels.rows import attend_decoded, check_bits, gather_decoded, lookup_decoded, quantize_rows, row_bytes
from ..nn import Module
from ..nn.table import EmbeddingTable, as_float_table, register_table, take_array

__all__ = ["QuantizedEmbedding"]

# -- the table ----------------------------------------------------------------------
@register_table
class QuantizedEmbedding(EmbeddingTable, Module):
    """A frozen table of row-wise 8-bit or 4-bit codes in FBGEMM's fused layout.

    Build one with :meth:`from_float`; the constructor takes fused rows that are
    already quantized (from ``torch.ops.quantized.embedding_bag_byte_prepack``, say).

    Args:
        fused: (num_embeddings, row_bytes(embedding_dim, bits)) uint8 fused rows.
        embedding_dim: D, the width of a decoded row.
        bits: 8 or 4.

    Shape:
        lookup: ids (*) -> (*, embedding_dim) float32.

    Examples:
        >>> table = QuantizedEmbedding.from_float(np.arange(12, dtype=np.float32).reshape(3, 4), bits=8)
        >>> table.fused.shape, table.nbytes
        ((3, 12), 36)
        >>> table.lookup([2, 0])
        array([[ 8.,  9., 10., 11.],
               [ 0.,  1.,  2.,  3.]], dtype=float32)
    """

    fused: np.ndarray  # a buffer (register_buffer), so declared for the type checker

    def __init__(self, fused, embedding_dim: int, bits: int = 8):
        Module.__init__(self)
        self.bits = check_bits(bits)
        self.embedding_dim = check_positive_int(embedding_dim, "embedding_dim")
        fused = np.asarray(fused)
        width = row_bytes(self.embedding_dim, self.bits)
        if fused.dtype != np.uint8 or fused.ndim != 2 or fused.shape[0] == 0 or fused.shape[1] != width:
            raise ValueError(f"fused must be a (num_embeddings >= 1, {width}) uint8 array for "
                             f"embedding_dim={self.embedding_dim}, bits={self.bits}; "
                             f"got {fused.dtype}{list(fused.shape)}")
        self.register_buffer("fused", np.ascontiguousarray(fused))  # a buffer: in state_dict, not trained
        self.num_embeddings = self.fused.shape[0]

    @classmethod
    def from_float(cls, table, bits: int = 8) -> QuantizedEmbedding:
        """Quantize a (V, D) float table (or any EmbeddingTable, via ``to_dense``) row by row.

        Input is converted to float32 first, as FBGEMM reads it; NaN or inf are refused.
        """
        bits = check_bits(bits)
        weight = as_float_table(table)
        return cls(quantize_rows(weight, bits), weight.shape[1], bits)

    @property
    def storage(self) -> str:
        """The storage type (:data:`tinyembed.kernels.rows.STORAGE_TYPES`): 'int8' or 'int4'."""
        return f"int{self.bits}"

    # -- the table protocol -----------------------------------------------------------
    def _rows(self, ids: np.ndarray) -> np.ndarray:
        return gather_decoded(self.fused, self.storage, self.embedding_dim, ids)

    def _rows_into(self, ids: np.ndarray, out: np.ndarray) -> None:
        gather_decoded(self.fused, self.storage, self.embedding_dim, ids, out=out)

    def lookup(self, ids, out: np.ndarray | None = None) -> np.ndarray:
        """As :meth:`EmbeddingTable.lookup`; the ids are checked inside the decoding loop (:func:`lookup_decoded`)."""
        return lookup_decoded(self.fused, self.storage, self.embedding_dim, ids, out)

    def _pool(self, ids, bounds, mode, weights):
        return kernels.bag_pool_decoded(self.fused, self.storage, self.embedding_dim, ids, bounds, mode, weights)

    def _scores(self, h: np.ndarray) -> np.ndarray:
        return attend_decoded(self.fused, self.storage, self.embedding_dim, h)

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {"fused": self.fused}

    def config(self) -> dict[str, Any]:
        return {**super().config(), "bits": self.bits}

    @classmethod
    def _from_state(cls, arrays, config) -> QuantizedEmbedding:
        bits, dim = check_bits(config.get("bits")), check_positive_int(config.get("embedding_dim"), "embedding_dim")
        num = check_positive_int(config.get("num_embeddings"), "num_embeddings")
        return cls(take_array(arrays, "fused", (num, row_bytes(dim, bits)), np.uint8), dim, bits)

    def num_parameters(self, trainable_only: bool = False) -> int:
        """Numbers stored: one code per entry plus a scale and a bias per row, V * (D + 2); none train."""
        return 0 if trainable_only else self.num_embeddings * (self.embedding_dim + 2)

    def __repr__(self) -> str:
        return f"QuantizedEmbedding({self.num_embeddings}, {self.embedding_dim}, bits={self.bits})"
