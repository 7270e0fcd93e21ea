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

Reading a stored table (every storage type, :data:`STORED_DTYPES` says what array holds it):

* :func:`decode_rows`: stored rows -> float32, in NumPy; the definition of every decoding.
* :func:`gather_decoded`: the lookup. The compiled loop fetches each row and decodes it
  straight into the float32 output, in one pass and on every thread, with no float32
  temporary: a table of narrower rows reads fewer bytes and is faster to look up than a
  float32 one. It gives the bits :func:`decode_rows` gives.
* :func:`attend_decoded`: scores of vectors against every row (``h @ table.T``), decoding
  each row inside the loop, so the float32 table is never built.

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

import platform
import threading
from collections.abc import Callable
from functools import cache

import numpy as np

from ..io.dtypes import DECODED_DTYPES
from . import jit, lanes, threads
from .ids import check_ids, check_out, name_bad_id
from .jit import prange
from .lanes import LANES, _scale_and_bias, _store_lanes, _stored_lanes

__all__ = ["BITS", "STORAGE_TYPES", "STORED_DTYPES", "check_bits", "check_storage", "row_bytes", "storage_row_bytes",
           "quantize_rows", "split_rows", "dequantize_rows", "decode_rows", "gather_decoded", "lookup_decoded",
           "attend_decoded", "scores_by_chunks"]

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


# storage type -> dtype of the (V, width) array that holds the table: float16 as itself, bfloat16
# and float8_e4m3fn as their raw bits (NumPy has no such types), int8/int4 as fused uint8 rows.
STORED_DTYPES: dict[str, np.dtype] = {
    "float32": np.dtype("<f4"),
    "float16": np.dtype("<f2"),
    "bfloat16": np.dtype("<u2"),
    "float8_e4m3fn": np.dtype("u1"),
    "int8": np.dtype("u1"),
    "int4": np.dtype("u1"),
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


def split_rows(fused: np.ndarray, dim: int, bits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(n, row_bytes) uint8 fused rows -> their (n, dim) uint8 codes and (n,) float32 scales and biases."""
    if bits == 8:
        codes = fused[:, :dim]
        scale_bias = np.ascontiguousarray(fused[:, dim:dim + 8]).view("<f4")          # (n, 2)
    else:
        packed = (dim + 1) // 2
        nibbles = np.empty((fused.shape[0], 2 * packed), np.uint8)
        nibbles[:, 0::2] = fused[:, :packed] & 0x0F
        nibbles[:, 1::2] = fused[:, :packed] >> 4
        codes = nibbles[:, :dim]
        scale_bias = _decode_float16(np.ascontiguousarray(fused[:, packed:packed + 4]).view("<u2"))
    return codes, scale_bias[:, 0], scale_bias[:, 1]


def dequantize_rows(fused: np.ndarray, dim: int, bits: int) -> np.ndarray:
    """(n, row_bytes) uint8 fused rows -> (n, dim) float32: ``code * scale + bias``."""
    codes, scale, bias = split_rows(fused, dim, bits)
    # inf scale, -inf bias (4-bit rows beyond float16): NaN, as FBGEMM; a scale near float32's largest
    # times 255 overflows to inf, as in FBGEMM and the compiled loops.
    with np.errstate(invalid="ignore", over="ignore"):
        rows = codes.astype(np.float32) * scale[:, None]
        rows += bias[:, None]
    return rows


# -- decoding: NumPy -------------------------------------------------------------------------------
def _decode_float16(raw: np.ndarray) -> np.ndarray:
    """float16 -> float32 as the CPU's conversion does it (F16C's vcvtph2ps, ARM's fcvt): exactly, a
    signalling NaN made quiet (NumPy's own conversion keeps it signalling; no finite value differs)."""
    return _float16_values()[raw.view("<u2")]


# storage type -> stored values (any shape) -> float32, exactly (every value of these types is a float32).
_FLOAT_DECODERS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "float16": _decode_float16,
    "bfloat16": DECODED_DTYPES["BF16"],
    "float8_e4m3fn": DECODED_DTYPES["F8_E4M3"],
}


def decode_rows(stored: np.ndarray, storage: str, dim: int) -> np.ndarray:
    """(n, width) stored rows of ``storage`` (of :data:`STORED_DTYPES`) -> (n, dim) float32, in NumPy.

    What every other path must give, bit for bit: float rows widened exactly, fused rows as
    ``code * scale + bias`` (:func:`dequantize_rows`).
    """
    if storage == "float32":
        return stored.astype(np.float32, copy=False)
    if storage in _FLOAT_DECODERS:
        return _FLOAT_DECODERS[storage](stored)
    return dequantize_rows(stored, dim, 8 if storage == "int8" else 4)


@cache
def _float16_values() -> np.ndarray:
    """float32 value of every float16 bit pattern (65536), NaNs quiet, as the CPU converts them."""
    values = np.arange(1 << 16, dtype=np.uint16).view("<f2").astype(np.float32)
    values.view(np.uint32)[np.isnan(values)] |= np.uint32(0x00400000)
    values.flags.writeable = False
    return values


# -- the lookup ------------------------------------------------------------------------------------
def gather_decoded(stored: np.ndarray, storage: str, dim: int, ids: np.ndarray,
                   out: np.ndarray | None = None) -> np.ndarray:
    """float32 rows of a table stored as ``storage`` at validated ``ids``: its lookup.

    Args:
        stored: (V, width) C-contiguous array of ``STORED_DTYPES[storage]``: the table's values,
            or its fused rows (int8, int4).
        storage: one of :data:`STORAGE_TYPES`; dim: the decoded width D.
        ids: int64 ids of any shape, validated (:func:`.ids.check_ids`): nothing checks bounds again.
        out: optional (*ids.shape, dim) float32 C-contiguous array to write into.

    Returns:
        (*ids.shape, dim) float32, bit for bit what :func:`decode_rows` gives, on both paths: the
        compiled one decodes each row as it copies it, the NumPy one gathers, then decodes.
    """
    shape = ids.shape + (dim,)
    if out is None:  # not lanes.empty_aligned: each row is stored once, as fast on a cache line as off one
        out = np.empty(shape, np.float32)
    else:
        check_out(out, shape, np.dtype(np.float32))
    flat = ids.reshape(-1)
    out2d = out.reshape(flat.size, dim)
    if storage == "float32":  # nothing to decode (dense tables look up through gather, which sits above rows)
        np.take(stored, flat, axis=0, out=out2d, mode="clip")
        return out
    if flat.size and dim and _decodes_compiled(stored, storage):
        _run(*_gather_kernels_and_args(stored, storage, flat, out2d))
        return out
    if flat.size:
        step = max(1, threads.CHUNK_BYTES // (dim * 4))  # decode a cache-sized chunk at a time
        for a in range(0, flat.size, step):
            rows = np.take(stored, flat[a:a + step], axis=0, mode="clip")
            out2d[a:a + len(rows)] = decode_rows(rows, storage, dim)
    return out


def lookup_decoded(stored: np.ndarray, storage: str, dim: int, ids, out: np.ndarray | None = None,
                   name: str = "input") -> np.ndarray:
    """:func:`gather_decoded` at ids not validated yet: :func:`.ids.check_ids` and the lookup in one.

    The compiled loop checks each id as it decodes the row, so a call costs one pass and no separate
    check; a bad id then raises :func:`.ids.check_ids`' error (naming the id and its position), with
    ``out`` possibly partly written. Arguments and result as :func:`gather_decoded`, ``ids`` as
    :func:`.ids.check_ids` takes them.
    """
    if not (isinstance(ids, np.ndarray) and ids.dtype == np.int64 and ids.size and dim and storage != "float32"
            and _decodes_compiled(stored, storage)):
        return gather_decoded(stored, storage, dim, check_ids(ids, stored.shape[0], name), out)
    shape = ids.shape + (dim,)
    if out is None:  # as gather_decoded
        out = np.empty(shape, np.float32)
    else:
        check_out(out, shape, np.dtype(np.float32))
    flat = np.ascontiguousarray(ids).reshape(-1)
    if _run(*_gather_kernels_and_args(stored, storage, flat, out.reshape(flat.size, dim))):
        name_bad_id(ids, stored.shape[0], name)
    return out


def _gather_kernels_and_args(stored, storage, flat, out2d) -> tuple:
    """(the lookup's (parallel, serial) kernels, its bytes of work, their arguments)."""
    table = stored.view(np.uint16) if storage == "float16" else stored  # the kernel reads the bits
    return _GATHERS[storage], out2d.nbytes, table, flat, prefetch_distance(stored), out2d


def _compiled_ok(stored: np.ndarray, namespace: dict | None = None) -> bool:
    """The compiled kernels are on and can read this table as it is; the kernels of ``namespace`` (a
    module's globals, this one's by default) then have their helpers (:func:`_install_helpers`)."""
    if not (stored.ndim == 2 and stored.flags.c_contiguous and jit.available()):
        return False
    _install_helpers(globals() if namespace is None else namespace)
    return True


def _decodes_compiled(stored: np.ndarray, storage: str, namespace: dict | None = None) -> bool:
    """:func:`_compiled_ok`, and the lanes' decoding (:mod:`.lanes`) runs on this CPU: it converts float16
    (float16 values, float8 through float16, int4's scale and bias) with the CPU's instruction, which a
    portable build cannot assume."""
    return (storage not in _HALF_DECODED or half_in_hardware()) and _compiled_ok(stored, namespace)


_HALF_DECODED = ("float16", "float8_e4m3fn", "int4")


def _run(kernels: tuple[jit.Kernel, jit.Kernel], work_bytes: int, *args):
    """Run the parallel kernel of a (parallel, serial) pair, or the serial one for small work
    (:data:`.threads.LAUNCH_MIN_BYTES`), and return what it returns.

    The serial kernel is called straight: it launches no threads, so it needs neither the launch
    lock nor the thread count that a parallel launch sets first (together 3-13 us a call, measured)."""
    parallel, serial = kernels
    if work_bytes >= threads.LAUNCH_MIN_BYTES and threads.get_num_threads() > 1:
        return parallel(*args)
    return serial.compiled()(*args)


# -- attend: scores against every row --------------------------------------------------------------
# Up to this many vectors, the compiled loop (each row decoded once, then met by every vector) is
# faster than decoding chunks of rows for BLAS; beyond, BLAS's blocked product wins. Measured on
# (50257, 768) int8 with 64 vectors: loop 0.66x of the float32 BLAS product, chunks 0.40x.
ATTEND_LOOP_MAX = 64
# Rows a thread takes at a time in the attend loops.
_ATTEND_BLOCK = 64
# Rows decoded at a time for BLAS: 16 MiB of float32. Each BLAS call has a fixed cost (its threads
# wake up): 64 vectors against (50257, 768) took 1.7 s in 4 MiB chunks, 0.6 s in 16 MiB, 0.7 s in 64.
_ATTEND_CHUNK_BYTES = 1 << 24


def attend_decoded(stored: np.ndarray, storage: str, dim: int, h: np.ndarray, out: np.ndarray | None = None
                   ) -> np.ndarray:
    """Scores of each of ``h``'s vectors against every row of a stored table: ``h @ table.T``.

    The float32 table is never built: up to :data:`ATTEND_LOOP_MAX` vectors meet each row as the
    compiled loop decodes it, reading only the stored bytes (a quarter of float32's for int8); more
    vectors get BLAS on a chunk of decoded rows at a time. Sums are taken in another
    order than NumPy's, so scores equal ``h @ decode_rows(stored).T`` up to float32 rounding.

    Args:
        stored, storage, dim: as :func:`gather_decoded`.
        h: (n, dim) float32.
        out: optional (n, V) float32 C-contiguous array to write into.

    Returns:
        (n, V) float32.
    """
    num = stored.shape[0]
    h = np.ascontiguousarray(h, dtype=np.float32)
    if out is None:
        out = np.empty((h.shape[0], num), np.float32)
    else:
        check_out(out, (h.shape[0], num), np.dtype(np.float32))
    if out.size == 0:
        return out
    if dim == 0:
        out[...] = 0
        return out
    if h.shape[0] <= ATTEND_LOOP_MAX and storage in _ATTENDS and _compiled_ok(stored):
        kernel = _ATTENDS[storage]
        kernel(stored.view(np.uint16) if storage == "float16" else stored, h, out)
        return out
    return scores_by_chunks(lambda a, b, buf: gather_decoded(stored, storage, dim, np.arange(a, b), out=buf),
                            num, h, out)


def scores_by_chunks(fetch: Callable[[int, int, np.ndarray], object], num: int, h: np.ndarray,
                     out: np.ndarray | None = None) -> np.ndarray:
    """``h @ table.T`` for a table of ``num`` rows that ``fetch(a, b, buf)`` writes as float32 into
    ``buf`` ((b - a, D)), a chunk of 16 MiB at a time: BLAS multiplies each chunk, and the whole
    float32 table never exists (unless it is smaller than a chunk).

    Args:
        h: (n, D) float32; out: optional (n, num) float32 C-contiguous array.

    Returns:
        (n, num) float32.
    """
    n, dim = h.shape
    if out is None:
        out = np.empty((n, num), np.float32)
    else:
        check_out(out, (n, num), np.dtype(np.float32))
    step = max(1, min(num, _ATTEND_CHUNK_BYTES // (4 * max(dim, 1))))
    buf = np.empty((step, dim), np.float32)
    scores = np.empty((step, n), np.float32)
    for a in range(0, num, step):
        b = min(num, a + step)
        rows = buf[:b - a]
        fetch(a, b, rows)
        # rows @ h.T into a contiguous array: BLAS then writes it directly (a strided `out` made
        # NumPy's matmul take its slow loop, 2x slower here), and the copy is n * (b - a) values.
        np.matmul(rows, h.T, out=scores[:b - a])
        out[:, a:b] = scores[:b - a].T
    return out


# -- compiled (tinyembed.kernels.jit) ----------------------------------------------------------------
# Helpers the kernels call (here and in .bags). Here they are plain Python, exactly what they compute;
# before a module's first kernel compiles, _install_helpers puts in its globals what numba compiles
# in their place: an LLVM bitcast, the CPU's float16 conversion, a numba function.
def _bits_to_float(bits):
    """The float32 whose bits are the uint32 ``bits`` (compiled: a bitcast, no instruction)."""
    return np.uint32(bits).view(np.float32)


def _half_to_float(bits):
    """The float32 value of the float16 whose bits are the uint16 ``bits``, exactly (compiled: the
    CPU's conversion, F16C's vcvtph2ps, which also quiets a signalling NaN; a table lookup on CPUs
    without one)."""
    return np.float32(np.uint16(bits).view(np.float16))


def _float8_value(code):
    """float32 of a float8_e4m3fn byte, exactly, as io.dtypes decodes it: its bits moved into a float16
    (4 exponent bits of bias 7 into 5 of bias 15: the value over 2^8, subnormals included), converted,
    times 2^8. The NaN codes 0x7F and 0xFF decode to the positive quiet NaN, as io.dtypes' table has them."""
    code = int(code)
    magnitude = code & 0x7F
    bits = np.uint16((magnitude << 7) | ((code & 0x80) << 8))
    return _half_to_float(np.uint16(0x7E00) if magnitude == 0x7F else bits) * np.float32(256.0)


def _low_nibble(byte):
    """The low 4 bits of a byte, as float32 (a 4-bit row's even column)."""
    return np.float32(int(byte) & 15)


def _high_nibble(byte):
    """The high 4 bits of a byte, as float32 (a 4-bit row's odd column)."""
    return np.float32(int(byte) >> 4)


def _prefetch(table, row, offset):
    """Ask the CPU to start loading byte ``offset`` of row ``row`` of a 2-D table into cache (compiled:
    LLVM's prefetch; here, nothing). Bags and lookups fetch rows at random: prefetching the rows a
    few ids ahead overlaps their cache misses (measured 3-5x faster on tables beyond the cache)."""


def _prefetch_row(table, row):
    """:func:`_prefetch` the first :data:`_PREFETCH_BYTES` of a row (the CPU streams the rest itself).

    A row of at most 128 bytes (most quantized and narrow rows) is asked for by its first byte alone, with
    no loop; the CPU fetches the line beside it. Bags of 16 from 100000 x 64 and 1000000 x 64 int8 (72-byte
    rows), both loops compiled in one process and timed in turns: with a loop over the row's lines, its
    count known only at run time, 1.17-1.34x as long on one thread, 1.10-1.19x on two; asking for its last
    byte too, 1.01-1.17x on one thread and 1.02-1.25x on two."""
    _prefetch(table, row, 0)
    if table.strides[0] > 128:
        for offset in range(64, min(table.strides[0], _PREFETCH_BYTES), 64):
            _prefetch(table, row, offset)


def _dot_rows(h, row, out, v):
    """``out[b, v] = h[b] . row`` for every vector ``b`` of ``h`` (``row``: one decoded float32 row)."""
    for b in range(h.shape[0]):
        hb = h[b]
        acc = np.float32(0.0)
        for d in range(row.shape[0]):
            acc += hb[d] * row[d]
        out[b, v] = acc


def _load_float32(table, row, at):
    """The little-endian float32 in bytes ``at:at + 4`` of row ``row`` of a 2-D uint8 table, at any
    offset (the scale and bias of an 8-bit row). Compiled: one unaligned load in place, where four
    byte loads from a view of the row were shifted together before."""
    return np.frombuffer(table[row, at:at + 4].tobytes(), "<f4")[0]


def _load_float16(table, row, at):
    """The little-endian float16 in bytes ``at:at + 2`` of row ``row`` of a 2-D uint8 table, as float32
    (a 4-bit row's scale and bias), converted as :func:`_half_to_float` converts."""
    return _half_to_float(_load_bits16(table, row, at))


def _load_bits16(table, row, at):
    """The little-endian uint16 in bytes ``at:at + 2`` of row ``row`` of a 2-D uint8 table (compiled: one load)."""
    return np.frombuffer(table[row, at:at + 2].tobytes(), "<u2")[0]


_helpers_lock = threading.Lock()
_helpers: dict[str, object] = {}        # name -> what numba compiles in its place, once built
_helped: set[str] = set()               # modules (by __name__) whose kernels have them


@cache
def half_in_hardware() -> bool:
    """The CPU converts float16 to float32 in hardware and numba compiles for this CPU."""
    import numba  # noqa: PLC0415 - only once the compiled kernels are in use

    # numba.config sets its NUMBA_* settings from the environment at run time, where mypy cannot see them.
    if getattr(numba.config, "CPU_NAME", None) is not None:  # a portable build (NUMBA_CPU_NAME): no F16C assumed
        return False
    machine = platform.machine().lower()
    if machine in ("aarch64", "arm64"):
        return True
    if machine not in ("x86_64", "amd64"):
        return False
    try:
        from llvmlite import binding  # noqa: PLC0415

        return bool(binding.get_host_cpu_features().get("f16c", False))
    except (RuntimeError, ImportError):
        return False


# The helpers above, by name; a module whose kernels call them imports them under these names.
HELPER_NAMES = ("_bits_to_float", "_half_to_float", "_float8_value", "_low_nibble", "_high_nibble",
                "_prefetch", "_prefetch_row", "_dot_rows", "_load_float32", "_load_float16", "_load_bits16",
                *lanes.HELPER_NAMES)
# How far ahead, in bytes of rows, the kernels prefetch; and at most how much of each row.
_PREFETCH_AHEAD = 4096
_PREFETCH_BYTES = 1024


def prefetch_distance(table: np.ndarray) -> int:
    """Rows ahead the kernels prefetch in ``table``: about 4 KiB ahead, between 4 and 16 rows (measured
    on bags of int8 rows of 72 to 776 bytes: 4 rows ahead best for 776, 8-16 for 136); none
    (:data:`NOT_AHEAD`) in a table of at most 1 MiB, which lives in the caches (bags of 16 from
    1000 x 16 float32: 65 us with prefetching, 52 without; the float32 gather 1.5x slower with it)."""
    if table.nbytes <= _CACHED_TABLE_BYTES:
        return NOT_AHEAD
    row_bytes = table.strides[0]
    ahead = _PREFETCH_AHEAD // row_bytes if row_bytes > 0 else 16
    return 16 if ahead > 16 else 4 if ahead < 4 else ahead


_CACHED_TABLE_BYTES = 1 << 20
NOT_AHEAD = 1 << 62  # a distance past every batch: the kernels' `t + ahead < n` never holds, nothing is prefetched


def _install_helpers(namespace: dict) -> None:
    """Before a module's kernels first compile, put in its globals what numba compiles in place of each
    helper: LLVM instructions for the two conversions, numba functions for the rest (once per module)."""
    name = namespace["__name__"]
    if name in _helped:
        return
    with _helpers_lock:
        if name in _helped:
            return
        if not _helpers:
            _build_helpers()
        for helper in HELPER_NAMES:
            namespace[helper] = _helpers[helper]
        _helped.add(name)


def _build_helpers() -> None:
    import numba  # noqa: PLC0415 - only once the compiled kernels are in use
    from llvmlite import binding, ir  # noqa: PLC0415
    from numba.core import cgutils  # noqa: PLC0415
    from numba.extending import intrinsic  # noqa: PLC0415

    # Written in LLVM's own types: numba would widen every small integer to 64 bits, and vectors of
    # 64-bit lanes decode a quarter as many values an instruction as 16-bit ones (measured 1.6x slower).
    f32, f16, i8, i16, i32 = ir.FloatType(), ir.HalfType(), ir.IntType(8), ir.IntType(16), ir.IntType(32)
    # LLVM names an intrinsic by its pointer argument's type: typed pointers until LLVM 15 (numba 0.60).
    prefetch_name = "llvm.prefetch.p0" if binding.llvm_version_info >= (15,) else "llvm.prefetch.p0i8"

    @intrinsic
    def bits_to_float(typingctx, bits):
        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], f32)
        return numba.types.float32(numba.types.uint32), codegen

    @intrinsic
    def half_to_float(typingctx, bits):
        def codegen(context, builder, signature, args):
            return builder.fpext(builder.bitcast(args[0], f16), f32)
        return numba.types.float32(numba.types.uint16), codegen

    def float8_bits(builder, codes):
        """float8_e4m3fn codes (i8, or a vector of them) -> the bits (i16) of the float16 of value code / 2^8."""
        lanes = getattr(codes.type, "count", None)
        kind = i16 if lanes is None else ir.VectorType(i16, lanes)

        def constant(value):
            return ir.Constant(kind, value if lanes is None else [value] * lanes)
        code = builder.zext(codes, kind)
        magnitude = builder.and_(code, constant(0x7F))
        sign = builder.shl(builder.and_(code, constant(0x80)), constant(8))
        bits = builder.or_(builder.shl(magnitude, constant(7)), sign)
        return builder.select(builder.icmp_unsigned("==", magnitude, constant(0x7F)), constant(0x7E00), bits)

    @intrinsic
    def float8_value(typingctx, code):
        def codegen(context, builder, signature, args):
            bits = float8_bits(builder, args[0])
            return builder.fmul(builder.fpext(builder.bitcast(bits, f16), f32), ir.Constant(f32, 256.0))
        return numba.types.float32(numba.types.uint8), codegen

    def byte_address(context, builder, signature, args):
        """The address of byte `offset` of row `row` of the 2-D `table`, from an intrinsic's (table, row, offset)."""
        return lanes.byte_address(context, builder, signature.args[0], args[0], args[1], args[2])

    @intrinsic
    def prefetch(typingctx, table, row, offset):
        def codegen(context, builder, signature, args):
            address = byte_address(context, builder, signature, args)
            # read, keep in every cache level, data (not instructions)
            kind = ir.FunctionType(ir.VoidType(), [address.type, i32, i32, i32])
            fn = cgutils.get_or_insert_function(builder.module, kind, prefetch_name)
            builder.call(fn, [address, ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
            return context.get_dummy_value()
        return numba.types.none(table, numba.types.intp, numba.types.intp), codegen

    def load(kind):
        # Row `row`'s bytes at `offset` as one value of `kind`, loaded in place (the x86 and ARM machines
        # numba targets are little-endian, as the stored rows are).
        @intrinsic
        def value(typingctx, table, row, offset):
            def codegen(context, builder, signature, args):
                address = byte_address(context, builder, signature, args)
                loaded = builder.load(builder.bitcast(address, kind.as_pointer()), align=1)
                return builder.fpext(loaded, f32) if kind == f16 else loaded
            result = numba.types.uint16 if kind == i16 else numba.types.float32
            return result(table, numba.types.intp, numba.types.intp), codegen
        return value

    def nibble(high: bool):
        @intrinsic
        def value(typingctx, byte):
            def codegen(context, builder, signature, args):
                code = builder.lshr(args[0], ir.Constant(i8, 4)) if high else builder.and_(args[0], ir.Constant(i8, 15))
                return builder.uitofp(code, f32)
            return numba.types.float32(numba.types.uint8), codegen
        return value

    module = globals()
    hardware = half_in_hardware()
    values = _float16_values()
    compiled = {
        "_bits_to_float": bits_to_float,
        "_half_to_float": half_to_float if hardware else numba.njit(lambda bits: values[bits]),
        "_low_nibble": nibble(False), "_high_nibble": nibble(True), "_prefetch": prefetch,
        "_load_float32": load(f32), "_load_bits16": load(i16),
    }
    module.update(compiled)  # the functions below call these: this module's names must be compiled first
    compiled["_float8_value"] = float8_value if hardware else numba.njit(inline="always")(_float8_value)
    # in place, as the CPU converts (as _half_to_float); else through the table of values
    compiled["_load_float16"] = load(f16) if hardware else numba.njit(inline="always")(_load_float16)
    # inlined by numba (LLVM left the calls; inlined, _dot_rows also takes its caller's fast-math flags)
    for name in ("_prefetch_row", "_dot_rows"):
        compiled[name] = numba.njit(inline="always")(module[name])
    compiled.update(lanes.build(float8_bits))
    module.update(compiled)
    _helpers.update(compiled)
    _helped.add(__name__)


def _with_serial(kernel: jit.Kernel) -> tuple[jit.Kernel, jit.Kernel]:
    """(the parallel kernel, the same loop compiled without threads)."""
    return kernel, jit.Kernel(kernel.fn, parallel=False, fastmath=kernel.fastmath)


# The lookup decodes each row sixteen columns at a time (.lanes): one plain vector load, its decoding
# and one plain store per 16 columns, a masked pair for the last few. 50257 x 16, 32 x 512 ids, two
# threads: 21-33 us against 37-46 us for the loops it replaced (column by column, vectorized by LLVM,
# which must test before each row that the output does not overlap the table); 1-20% faster at 64
# and 768 columns. The rows decode as decode_rows does them: the same bits.
@jit.inline
def _gather_stored(table, kind, ids, ahead, out):
    # `kind`: the storage type's number in lanes.KINDS, a constant in each kernel below. The ids' bounds
    # are checked here, as the float32 gather checks them (lookup_decoded): a bad id's row is skipped
    # (never read past the table) and counted, and the caller names it.
    n, dim, rows, bad = ids.shape[0], out.shape[1], table.shape[0], 0
    full = dim - dim % LANES
    for t in prange(n):
        if t + ahead < n:
            k = ids[t + ahead]
            if k >= 0 and k < rows:
                _prefetch_row(table, k)
        i = ids[t]
        if i < 0 or i >= rows:
            bad += 1
        else:
            scale, bias = _scale_and_bias(table, kind, i, dim)
            for c in range(0, full, LANES):
                _store_lanes(out, t, c, LANES, _stored_lanes(table, kind, i, c, LANES, scale, bias))
            if full < dim:
                _store_lanes(out, t, full, dim - full, _stored_lanes(table, kind, i, full, dim - full, scale, bias))
    return bad


@jit.kernel(parallel=True)
def _gather_float16(bits, ids, ahead, out):
    return _gather_stored(bits, 0, ids, ahead, out)


@jit.kernel(parallel=True)
def _gather_bfloat16(bits, ids, ahead, out):
    return _gather_stored(bits, 1, ids, ahead, out)


@jit.kernel(parallel=True)
def _gather_float8(codes, ids, ahead, out):
    return _gather_stored(codes, 2, ids, ahead, out)


@jit.kernel(parallel=True)
def _gather_int8(fused, ids, ahead, out):
    return _gather_stored(fused, 3, ids, ahead, out)


@jit.kernel(parallel=True)
def _gather_int4(fused, ids, ahead, out):
    return _gather_stored(fused, 4, ids, ahead, out)


# storage type -> (parallel, serial) lookup kernels; float32 tables need none.
_GATHERS = {"float16": _with_serial(_gather_float16), "bfloat16": _with_serial(_gather_bfloat16),
            "float8_e4m3fn": _with_serial(_gather_float8), "int8": _with_serial(_gather_int8),
            "int4": _with_serial(_gather_int4)}

# Dot products in vector registers: the sums are reassociated (and multiply-adds fused).
_DOT_MATH = ("reassoc", "contract")


# Each kernel takes the table a block of rows at a time (one block a thread at a time) and decodes
# each row once: for one vector straight into its dot product, for more into a row of scratch that
# every vector then meets (decoding per vector made 16 vectors cost 16 decodes of the table).
@jit.kernel(parallel=True, fastmath=_DOT_MATH)
def _attend_float16(weight, h, out):
    num, n, dim = weight.shape[0], h.shape[0], h.shape[1]
    for block in prange((num + _ATTEND_BLOCK - 1) // _ATTEND_BLOCK):
        decoded = np.empty(dim, np.float32)
        for v in range(block * _ATTEND_BLOCK, min(num, (block + 1) * _ATTEND_BLOCK)):
            row = weight[v]
            if n == 1:
                acc, h0 = np.float32(0.0), h[0]
                for d in range(dim):
                    acc += h0[d] * _half_to_float(row[d])
                out[0, v] = acc
            else:
                for d in range(dim):
                    decoded[d] = _half_to_float(row[d])
                _dot_rows(h, decoded, out, v)


@jit.kernel(parallel=True, fastmath=_DOT_MATH)
def _attend_bfloat16(weight, h, out):
    num, n, dim = weight.shape[0], h.shape[0], h.shape[1]
    for block in prange((num + _ATTEND_BLOCK - 1) // _ATTEND_BLOCK):
        decoded = np.empty(dim, np.float32)
        for v in range(block * _ATTEND_BLOCK, min(num, (block + 1) * _ATTEND_BLOCK)):
            row = weight[v]
            if n == 1:
                acc, h0 = np.float32(0.0), h[0]
                for d in range(dim):
                    acc += h0[d] * _bits_to_float(np.uint32(row[d]) << 16)
                out[0, v] = acc
            else:
                for d in range(dim):
                    decoded[d] = _bits_to_float(np.uint32(row[d]) << 16)
                _dot_rows(h, decoded, out, v)


@jit.kernel(parallel=True, fastmath=_DOT_MATH)
def _attend_float8(weight, h, out):
    num, n, dim = weight.shape[0], h.shape[0], h.shape[1]
    for block in prange((num + _ATTEND_BLOCK - 1) // _ATTEND_BLOCK):
        decoded = np.empty(dim, np.float32)
        for v in range(block * _ATTEND_BLOCK, min(num, (block + 1) * _ATTEND_BLOCK)):
            row = weight[v]
            if n == 1:
                acc, h0 = np.float32(0.0), h[0]
                for d in range(dim):
                    acc += h0[d] * _float8_value(row[d])
                out[0, v] = acc
            else:
                for d in range(dim):
                    decoded[d] = _float8_value(row[d])
                _dot_rows(h, decoded, out, v)


@jit.kernel(parallel=True, fastmath=_DOT_MATH)
def _attend_int8(fused, h, out):
    num, n, dim = fused.shape[0], h.shape[0], h.shape[1]
    for block in prange((num + _ATTEND_BLOCK - 1) // _ATTEND_BLOCK):
        decoded = np.empty(dim, np.float32)
        for v in range(block * _ATTEND_BLOCK, min(num, (block + 1) * _ATTEND_BLOCK)):
            row = fused[v]
            scale, bias = _load_float32(fused, v, dim), _load_float32(fused, v, dim + 4)
            if n == 1:
                acc, h0 = np.float32(0.0), h[0]
                for d in range(dim):
                    acc += h0[d] * (np.float32(row[d]) * scale + bias)
                out[0, v] = acc
            else:
                for d in range(dim):
                    decoded[d] = np.float32(row[d]) * scale + bias
                _dot_rows(h, decoded, out, v)


@jit.kernel(parallel=True, fastmath=_DOT_MATH)
def _attend_int4(fused, h, out):
    num, n, dim = fused.shape[0], h.shape[0], h.shape[1]
    half, packed = dim // 2, (dim + 1) // 2
    # One vector meets a row as scale * (h . codes) + bias * sum(h), the codes of a byte's two columns
    # through h's even and odd entries, each contiguous: decoding into a row interleaves the columns
    # and does not vectorize (4 GB/s at 128256 x 768 on one thread; this loop 10.8, int8's 16).
    even, odd = np.ascontiguousarray(h[0, 0:2 * half:2]), np.ascontiguousarray(h[0, 1:2 * half:2])
    total = np.float32(h[0].sum())
    for block in prange((num + _ATTEND_BLOCK - 1) // _ATTEND_BLOCK):
        decoded = np.empty(dim, np.float32)
        for v in range(block * _ATTEND_BLOCK, min(num, (block + 1) * _ATTEND_BLOCK)):
            row = fused[v]
            scale, bias = _load_float16(fused, v, packed), _load_float16(fused, v, packed + 2)
            if n == 1:
                acc = np.float32(0.0)
                for k in range(half):
                    byte = row[k]
                    acc += even[k] * _low_nibble(byte) + odd[k] * _high_nibble(byte)
                if dim % 2:
                    acc += h[0, dim - 1] * _low_nibble(row[half])
                out[0, v] = acc * scale + total * bias
            else:
                for k in range(half):
                    byte = row[k]
                    decoded[2 * k] = _low_nibble(byte) * scale + bias
                    decoded[2 * k + 1] = _high_nibble(byte) * scale + bias
                if dim % 2:
                    decoded[dim - 1] = _low_nibble(row[half]) * scale + bias
                _dot_rows(h, decoded, out, v)


_ATTENDS = {"float16": _attend_float16, "bfloat16": _attend_bfloat16, "float8_e4m3fn": _attend_float8,
            "int8": _attend_int8, "int4": _attend_int4}
