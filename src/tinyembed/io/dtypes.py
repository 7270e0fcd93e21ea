"""The element types a safetensors file can store, and their NumPy codecs.

Each stored type name (``"F32"``, ``"BF16"``, ``"F8_E4M3"``, ...) either is a NumPy
dtype (``NUMPY_DTYPES``: loads as a view), is decoded to float32, which holds every
value exactly (``DECODED_DTYPES``: bfloat16 and the 8-bit floats), or is a sub-byte
type whose size is known but which does not load. Writing needs only the reverse
of ``NUMPY_DTYPES`` and float32 -> bfloat16 rounding. File layout and checking
live in :mod:`tinyembed.io.safetensors`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["DECODED_DTYPES", "NUMPY_DTYPES"]

# Stored types NumPy has: a tensor loads as a view of the buffer with this dtype.
NUMPY_DTYPES: dict[str, np.dtype] = {
    name: np.dtype(code)
    for name, code in [
        ("F64", "<f8"), ("F32", "<f4"), ("F16", "<f2"), ("C64", "<c8"),
        ("I64", "<i8"), ("I32", "<i4"), ("I16", "<i2"), ("I8", "i1"),
        ("U64", "<u8"), ("U32", "<u4"), ("U16", "<u2"), ("U8", "u1"),
        ("BOOL", "?"),
    ]
}
# The other way round, for writing; keyed by dtype with the byte order dropped.
_NAME_OF_NUMPY_DTYPE = {dtype.newbyteorder("="): name for name, dtype in NUMPY_DTYPES.items()}


def _bf16_to_float32(raw: np.ndarray) -> np.ndarray:
    """uint8 bytes of bfloat16 values -> float32, exactly: the bits become the high half."""
    return (raw.view("<u2").astype(np.uint32) << 16).view(np.float32)


def _minifloat_table(exponent_bits: int, mantissa_bits: int, bias: int, special: str) -> np.ndarray:
    """float32 value of each of the 256 bytes of an 8-bit float format.

    ``special`` is how the format spends its top codes:
    "ieee"  all-ones exponent is inf (mantissa 0) or NaN, as in IEEE 754 (E5M2);
    "fn"    no infinities; only all-ones exponent and mantissa is NaN (E4M3FN);
    "fnuz"  no infinities, no negative zero; the byte 0x80 is the only NaN.
    """
    code = np.arange(256)
    sign = np.where(code >> 7, -1.0, 1.0)
    exponent = (code >> mantissa_bits) & ((1 << exponent_bits) - 1)
    mantissa = (code & ((1 << mantissa_bits) - 1)) / (1 << mantissa_bits)
    magnitude = np.where(exponent == 0,
                         mantissa * 2.0 ** (1 - bias),                 # subnormal
                         (1.0 + mantissa) * 2.0 ** (exponent - bias))  # normal
    value = sign * magnitude
    top = (1 << exponent_bits) - 1
    if special == "ieee":
        infinite = (exponent == top) & (mantissa == 0)
        value[infinite] = sign[infinite] * np.inf
        value[(exponent == top) & (mantissa != 0)] = np.nan
    elif special == "fn":
        value[(code & 0x7F) == 0x7F] = np.nan
    elif special == "fnuz":
        value[code == 0x80] = np.nan
    else:
        raise ValueError(f"unknown special-value scheme {special!r}")
    return value.astype(np.float32)  # every value is exactly a float32


def _e8m0_table() -> np.ndarray:
    """E8M0 (the OCP MX scale type): no sign, no mantissa; 2**(byte - 127), 0xFF is NaN."""
    value = np.ldexp(1.0, np.arange(256) - 127)
    value[255] = np.nan
    return value.astype(np.float32)  # 2**-127 is a float32 subnormal: still exact


def _table_decoder(table: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    return lambda raw: table[raw]


# Stored types NumPy lacks: name -> decoder from the tensor's uint8 bytes to float32.
# Adding a format is adding one entry.
DECODED_DTYPES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "BF16": _bf16_to_float32,
    "F8_E5M2": _table_decoder(_minifloat_table(5, 2, 15, "ieee")),
    "F8_E4M3": _table_decoder(_minifloat_table(4, 3, 7, "fn")),
    "F8_E5M2FNUZ": _table_decoder(_minifloat_table(5, 2, 16, "fnuz")),
    "F8_E4M3FNUZ": _table_decoder(_minifloat_table(4, 3, 8, "fnuz")),
    "F8_E8M0": _table_decoder(_e8m0_table()),
}
_DECODED_BITS = {"BF16": 16}  # the others are 8-bit

# Sub-byte types: their sizes are known (so headers naming them are checked and
# described) but loading them is refused.
_SUB_BYTE_BITS = {"F4": 4, "F6_E2M3": 6, "F6_E3M2": 6}

# A list, not a set: header values tested against it may be unhashable JSON.
_KNOWN_DTYPES = sorted([*NUMPY_DTYPES, *DECODED_DTYPES, *_SUB_BYTE_BITS])


def _bits_per_element(dtype: str) -> int:
    if dtype in NUMPY_DTYPES:
        return NUMPY_DTYPES[dtype].itemsize * 8
    if dtype in DECODED_DTYPES:
        return _DECODED_BITS.get(dtype, 8)
    return _SUB_BYTE_BITS[dtype]


def _loaded_dtype(dtype: str) -> np.dtype | None:
    """The NumPy dtype a known stored type loads as; None for the sub-byte types,
    which do not load."""
    if dtype in _SUB_BYTE_BITS:
        return None
    return NUMPY_DTYPES.get(dtype, np.dtype(np.float32))


def _float32_to_bf16_bits(array: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bits (uint16), rounding to nearest, ties to even, as torch
    rounds. Every NaN becomes the quiet NaN 0x7FC0 (torch's own NaN bits vary by code
    path; any NaN is a NaN)."""
    bits = np.ascontiguousarray(array, dtype=np.float32).view(np.uint32)
    rounded = (bits + (((bits >> 16) & 1) + 0x7FFF)) >> 16  # wraps only for NaNs, replaced next
    return np.where(np.isnan(array), np.uint32(0x7FC0), rounded).astype("<u2")
