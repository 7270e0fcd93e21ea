"""How a table row is stored: the storage types, their bytes per row, and FBGEMM's fused quantized rows.

The storage types and their names are tinyembed's one vocabulary, in the API, the
command line, JSON and the report::

    float32, float16, bfloat16, float8_e4m3fn   D values of 4, 2, 2, 1 bytes
    int8, int4                                  FBGEMM's fused rows, below

Each quantized row of a (V, D) float table is stored as its codes followed by the row's own
scale and bias, all in one uint8 row, exactly the bytes that FBGEMM (and PyTorch's
``torch.ops.quantized.embedding_bag_byte_prepack`` / ``embedding_bag_4bit_prepack``)
produce, so rows prepacked by torch load here and ours feed torch's quantized bags
(torch's 4-bit ops need an even D)::

    8-bit   D codes (uint8)                     float32 scale   float32 bias   D + 8 bytes
    4-bit   ceil(D/2) bytes, two codes a byte   float16 scale   float16 bias   ceil(D/2) + 4 bytes
            (column 2k in the low nibble, 2k+1 in the high one; odd D leaves a zero nibble)

A row is decoded as ``code * scale + bias``. :class:`tinyembed.tables.QuantizedEmbedding`
stores its table in this layout, the memory planner and the profiler count bytes with
:func:`storage_row_bytes`, and the compiled loops (:mod:`.jit`) read these same rows.

How FBGEMM rounds (``FloatOrHalfToFused8BitRowwiseQuantizedSBFloat`` and
``FloatOrHalfToFusedNBitRowwiseQuantizedSBHalf``), all in float32, codes rounded to
nearest even:

* 8-bit: ``bias = min``, ``scale = (max - min) / 255``, but codes use
  ``inverse = 255 / (max - min + 1e-8)``: ``code = rint((x - min) * inverse)``.
* 4-bit: the minimum is rounded to float16 first (it is stored as one) and the
  scale derived from the rounded minimum: ``scale = fp16((max - fp16(min)) / 15)``
  (1 for a constant row), ``code = clip(rint((x - fp16(min)) / scale), 0, 15)``.
  A minimum rounded up past the row's maximum gives a negative scale, as in FBGEMM.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["BITS", "STORAGE_TYPES", "check_bits", "check_storage", "row_bytes", "storage_row_bytes",
           "quantize_rows", "dequantize_rows"]

BITS = (4, 8)
# Rows quantized at a time: bounds the float temporaries for large tables.
_CHUNK_ELEMENTS = 1 << 20


def check_bits(bits) -> int:
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or int(bits) not in BITS:
        raise ValueError(f"bits must be 4 or 8, got {bits!r}")
    return int(bits)


def row_bytes(dim: int, bits: int) -> int:
    """Bytes of one fused row: 8-bit D + 8 (float32 scale, bias); 4-bit ceil(D/2) + 4 (float16)."""
    return dim + 8 if bits == 8 else (dim + 1) // 2 + 4


# storage type -> bytes of one stored row of width D. Adding a type is adding an entry.
STORAGE_TYPES: dict[str, Callable[[int], int]] = {
    "float32": lambda dim: 4 * dim,
    "float16": lambda dim: 2 * dim,
    "bfloat16": lambda dim: 2 * dim,
    "float8_e4m3fn": lambda dim: dim,
    "int8": lambda dim: row_bytes(dim, 8),
    "int4": lambda dim: row_bytes(dim, 4),
}


def check_storage(storage: str) -> str:
    if storage not in STORAGE_TYPES:
        raise ValueError(f"unknown storage type {storage!r}; known: {', '.join(STORAGE_TYPES)}")
    return storage


def storage_row_bytes(storage: str, dim: int) -> int:
    """Bytes of one row of width ``dim`` stored as ``storage`` (one of :data:`STORAGE_TYPES`)."""
    return STORAGE_TYPES[check_storage(storage)](dim)


def _quantize_8bit(x: np.ndarray, out: np.ndarray) -> None:
    """(n, D) float32 -> out (n, D + 8) uint8, as FBGEMM's FloatToFused8BitRowwiseQuantizedSBFloat."""
    dim = x.shape[1]
    low = x.min(axis=1, keepdims=True)                                     # (n, 1)
    span = x.max(axis=1, keepdims=True) - low                              # may overflow to inf
    scale = span / np.float32(255)
    inverse = np.float32(255) / (span + np.float32(1e-8))                  # the stored scale is not used
    codes = np.rint((x - low) * inverse)                                   # (n, D), ties to even
    codes[np.isnan(codes)] = 0                                             # inf * 0 (overflowed span): FBGEMM gives 0
    out[:, :dim] = np.clip(codes, 0, 255)
    out[:, dim:dim + 4] = scale.astype("<f4").view(np.uint8)
    out[:, dim + 4:] = low.astype("<f4").view(np.uint8)


def _quantize_4bit(x: np.ndarray, out: np.ndarray) -> None:
    """(n, D) float32 -> out (n, ceil(D/2) + 4) uint8, as FBGEMM's
    FloatOrHalfToFusedNBitRowwiseQuantizedSBHalf with bit_rate 4."""
    n, dim = x.shape
    packed = (dim + 1) // 2
    bias = x.min(axis=1, keepdims=True).astype("<f2")                      # stored: round the minimum first
    low = bias.astype(np.float32)
    span = x.max(axis=1, keepdims=True) - low
    scale = np.where(span == 0, np.float32(1), span / np.float32(15)).astype("<f2").astype(np.float32)
    scale[scale == 0] = 1                                                  # a span too small for float16
    inverse = np.float32(1) / scale
    infinite = np.isinf(inverse)
    scale[infinite], inverse[infinite] = 1, 1
    codes = np.rint((x - low) * inverse)                                   # (n, D)
    codes[np.isnan(codes)] = 0                                             # -inf bias (min below -65504): 0
    codes = np.clip(codes, 0, 15).astype(np.uint8)
    if dim % 2:
        codes = np.concatenate([codes, np.zeros((n, 1), np.uint8)], axis=1)
    out[:, :packed] = codes[:, 0::2] | (codes[:, 1::2] << 4)               # even column in the low nibble
    out[:, packed:packed + 2] = scale.astype("<f2").view(np.uint8)
    out[:, packed + 2:] = bias.view(np.uint8)


def quantize_rows(weight: np.ndarray, bits: int) -> np.ndarray:
    """Fused rows of a (V, D) float32 table: (V, row_bytes(D, bits)) uint8."""
    bits = check_bits(bits)
    num, dim = weight.shape
    out = np.empty((num, row_bytes(dim, bits)), np.uint8)
    step = max(1, _CHUNK_ELEMENTS // dim)
    quantize = _quantize_8bit if bits == 8 else _quantize_4bit
    with np.errstate(over="ignore", invalid="ignore"):  # rows whose span overflows float32 or float16
        for a in range(0, num, step):
            quantize(weight[a:a + step], out[a:a + step])
    return out


def dequantize_rows(fused: np.ndarray, dim: int, bits: int) -> np.ndarray:
    """(n, row_bytes) uint8 fused rows -> (n, dim) float32: ``code * scale + bias``."""
    if bits == 8:
        codes = fused[:, :dim]
        scale_bias = np.ascontiguousarray(fused[:, dim:dim + 8]).view("<f4")          # (n, 2)
    else:
        packed = (dim + 1) // 2
        nibbles = np.empty((fused.shape[0], 2 * packed), np.uint8)
        nibbles[:, 0::2] = fused[:, :packed] & 0x0F
        nibbles[:, 1::2] = fused[:, :packed] >> 4
        codes = nibbles[:, :dim]
        scale_bias = np.ascontiguousarray(fused[:, packed:packed + 4]).view("<f2").astype(np.float32)
    with np.errstate(invalid="ignore"):  # inf scale, -inf bias (4-bit rows beyond float16): NaN, as FBGEMM
        rows = codes.astype(np.float32) * scale_bias[:, :1]
        rows += scale_bias[:, 1:]
    return rows
