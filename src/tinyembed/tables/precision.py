"""Tables stored in a narrower float type: float16, bfloat16 or float8_e4m3fn.

Each entry is rounded once, to nearest even, when the table is built; rows looked
up are widened back to float32 (exactly: every value of these types is a float32).

The stored array and how it goes into a safetensors file:

    dtype           bytes/entry   stored array (the file's tensor "weight")
    float16         2             float16 (F16)
    bfloat16        2             the raw bits as uint16 (U16); "dtype" in the config says what they are
    float8_e4m3fn   1             the raw bits as uint8 (U8); likewise

Why raw bits for bfloat16 rather than safetensors' BF16: our reader decodes BF16 to
float32 (NumPy has no bfloat16), so a BF16 tensor would come back as 4-byte floats and
the table would no longer store what it saved. uint16 bits round-trip bit for bit.

Rounding float32 into bfloat16 and float8 uses the ``ml_dtypes`` package, imported
only when such a table is built (``pip install 'tinyembed[precision]'``). Widening
back needs nothing but NumPy (the decoders of :mod:`tinyembed.io.dtypes`), so a
saved table loads and looks up without ml_dtypes.

Lookups, bags and ``attend`` decode inside the compiled loops of
:mod:`tinyembed.kernels.rows` when numba is there (each row widened as it is read, never a
float32 copy of the table): a narrower table is then faster to look up than a float32 one.
Without numba they gather the stored rows, then decode them with the same bits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import kernels
from ..checks import check_positive_int
from ..kernels.rows import attend_decoded, decode_rows, gather_decoded, lookup_decoded
from ..nn import Module
from ..nn.table import EmbeddingTable, as_float_table, register_table, take_array

__all__ = ["ReducedPrecisionEmbedding", "FORMATS"]


def _ml_dtypes():
    try:
        import ml_dtypes
    except ImportError as e:
        raise ImportError("bfloat16 and float8_e4m3fn tables need the ml_dtypes package: "
                          "pip install 'tinyembed[precision]'") from e
    return ml_dtypes


@dataclass(frozen=True)
class _Format:
    """A stored type: its storage dtype, float32 -> storage (round to nearest even), storage -> float32."""

    storage: np.dtype
    encode: Callable[[np.ndarray], np.ndarray]
    decode: Callable[[np.ndarray], np.ndarray]
    largest: float  # the largest finite value, for the error message on overflow


# name -> format. Adding a type is adding one entry.
FORMATS: dict[str, _Format] = {
    "float16": _Format(np.dtype("<f2"), lambda x: x.astype("<f2"),
                       lambda raw: decode_rows(raw, "float16", raw.shape[-1]), 65504.0),
    "bfloat16": _Format(np.dtype("<u2"), lambda x: x.astype(_ml_dtypes().bfloat16).view("<u2"),
                        lambda raw: decode_rows(raw, "bfloat16", raw.shape[-1]), 3.3895313892515355e38),
    "float8_e4m3fn": _Format(np.dtype("u1"), lambda x: x.astype(_ml_dtypes().float8_e4m3fn).view("u1"),
                             lambda raw: decode_rows(raw, "float8_e4m3fn", raw.shape[-1]), 448.0),
}


def _check_dtype(dtype) -> str:
    name = getattr(dtype, "__name__", None) or str(dtype)  # np.float16 and 'float16' alike
    if name not in FORMATS:
        raise ValueError(f"dtype must be one of {sorted(FORMATS)}, got {dtype!r}")
    return name


@register_table
class ReducedPrecisionEmbedding(EmbeddingTable, Module):
    """A frozen table stored in float16, bfloat16 or float8_e4m3fn; rows come back as float32.

    Args:
        table: (V, D) float array (converted to float32 first), or any EmbeddingTable.
        dtype: 'float16' (default), 'bfloat16' or 'float8_e4m3fn'. Values beyond the
            type's range are refused (float16 and bfloat16 would give inf, float8 NaN).

    Shape:
        lookup: ids (*) -> (*, embedding_dim) float32.

    Examples:
        >>> table = ReducedPrecisionEmbedding(np.array([[1.0, 1e-4], [3.14159, -2.0]]), dtype="float16")
        >>> table.nbytes, table.lookup([1])
        (8, array([[ 3.140625, -2.      ]], dtype=float32))
    """

    weight: np.ndarray  # a buffer (register_buffer), so declared for the type checker

    def __init__(self, table, dtype: str = "float16"):
        Module.__init__(self)
        self.dtype = _check_dtype(dtype)
        weight = as_float_table(table)
        with np.errstate(over="ignore"):  # overflow is reported below, with its position
            stored = FORMATS[self.dtype].encode(weight)
        _check_in_range(weight, FORMATS[self.dtype].decode(stored), self.dtype)
        self._set_state(stored, self.dtype)

    @classmethod
    def from_float(cls, table, dtype: str = "float16") -> ReducedPrecisionEmbedding:
        """The same as the constructor, named as :meth:`QuantizedEmbedding.from_float`."""
        return cls(table, dtype)

    @property
    def storage(self) -> str:
        """The storage type (:data:`tinyembed.kernels.rows.STORAGE_TYPES`): the dtype's name."""
        return self.dtype

    def _set_state(self, stored: np.ndarray, dtype: str) -> None:
        self.dtype = dtype
        self.register_buffer("weight", np.ascontiguousarray(stored))  # (V, D) of FORMATS[dtype].storage
        self.num_embeddings, self.embedding_dim = self.weight.shape

    # -- the table protocol -----------------------------------------------------------
    def _rows(self, ids: np.ndarray) -> np.ndarray:
        return gather_decoded(self.weight, self.dtype, self.embedding_dim, ids)

    def _rows_into(self, ids: np.ndarray, out: np.ndarray) -> None:
        gather_decoded(self.weight, self.dtype, self.embedding_dim, ids, out=out)

    def lookup(self, ids, out: np.ndarray | None = None) -> np.ndarray:
        """As :meth:`EmbeddingTable.lookup`; the ids are checked inside the decoding loop (:func:`lookup_decoded`)."""
        return lookup_decoded(self.weight, self.dtype, self.embedding_dim, ids, out)

    def _pool(self, ids, bounds, mode, weights):
        return kernels.bag_pool_decoded(self.weight, self.dtype, self.embedding_dim, ids, bounds, mode, weights)

    def _scores(self, h: np.ndarray) -> np.ndarray:
        return attend_decoded(self.weight, self.dtype, self.embedding_dim, h)

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {"weight": self.weight}

    def config(self) -> dict[str, Any]:
        return {**super().config(), "dtype": self.dtype}

    @classmethod
    def _from_state(cls, arrays, config) -> ReducedPrecisionEmbedding:
        dtype = _check_dtype(config.get("dtype"))
        shape = (check_positive_int(config.get("num_embeddings"), "num_embeddings"),
                 check_positive_int(config.get("embedding_dim"), "embedding_dim"))
        table = cls.__new__(cls)  # the stored bits as they are: no rounding again, no ml_dtypes
        Module.__init__(table)
        table._set_state(take_array(arrays, "weight", shape, FORMATS[dtype].storage), dtype)
        return table

    def __repr__(self) -> str:
        return f"ReducedPrecisionEmbedding({self.num_embeddings}, {self.embedding_dim}, dtype={self.dtype!r})"


def _check_in_range(weight: np.ndarray, decoded: np.ndarray, dtype: str) -> None:
    bad = ~np.isfinite(decoded)
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"value {weight[row, col]} at row {row}, column {col} is outside the range of "
                         f"{dtype} (largest finite value {FORMATS[dtype].largest:g})")
