"""Read and write safetensors files with NumPy alone.

The format (huggingface/safetensors, "Format" in its README)::

    8 bytes   N, a little-endian u64: the length of the header
    N bytes   the header, UTF-8 JSON starting with "{", maybe padded with spaces:
              {name: {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]},
               "__metadata__": {str: str}}          (the metadata is optional)
    the rest  the byte buffer: each tensor's elements, little-endian, C order, at
              [begin, end) relative to the buffer's start. The tensors cover the
              buffer exactly: no gap, no overlap, nothing after the last one.

Reading memory-maps the file when given a path (only the tensors you touch are
read from disk), and otherwise works on the bytes of a ``bytes`` object or of a
file object read to its end (a ``zipfile.ZipFile.open`` member, say). Nothing is
ever unpickled. Every header is checked before a byte of data is used; a file
that breaks the format raises ``ValueError`` saying what is wrong.

Data types. Stored types NumPy has load as views of the file (``F64 F32 F16
C64 I64 I32 I16 I8 U64 U32 U16 U8 BOOL``). Types NumPy lacks are decoded to
float32, which holds each of their values exactly:

* ``BF16``: the 16 bits become the high half of a float32 (bfloat16 is a
  float32 with the low 16 mantissa bits dropped);
* ``F8_E4M3``, ``F8_E5M2``, ``F8_E4M3FNUZ``, ``F8_E5M2FNUZ``, ``F8_E8M0``: a
  256-entry table per format, one float32 for each byte.

The sub-byte types (``F4``, ``F6_E2M3``, ``F6_E3M2``) are refused when loaded;
``read_header`` still describes them. Writing ``BF16`` takes float32 input and
``store_as={name: "BF16"}``, rounding to nearest even as torch does.

Arrays returned by :func:`load` are read-only views of the file or of the bytes
given (decoded ones are read-only too, so every result behaves alike); pass
``copy=True`` for writable arrays that own their memory.

Examples:
    >>> import numpy as np
    >>> blob = save_bytes({"w": np.arange(6, dtype=np.float32).reshape(2, 3)},
    ...                   metadata={"format": "np"})
    >>> load(blob)["w"]
    array([[0., 1., 2.],
           [3., 4., 5.]], dtype=float32)
    >>> header, metadata = read_header(blob)
    >>> header["w"], metadata
    (TensorInfo(dtype='F32', shape=(2, 3), data_offsets=(0, 24)), {'format': 'np'})
    >>> load_tensor(blob, "w", expected_shape=(None, 3), expected_dtype=np.float32).shape
    (2, 3)
"""

from __future__ import annotations

import difflib
import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO, Union

import numpy as np

from ..checks import is_int
from .dtypes import (
    _KNOWN_DTYPES,
    _NAME_OF_NUMPY_DTYPE,
    _SUB_BYTE_BITS,
    DECODED_DTYPES,
    NUMPY_DTYPES,
    _bits_per_element,
    _float32_to_bf16_bits,
    _loaded_dtype,
)
from .files import atomic_open

__all__ = [
    "DECODED_DTYPES",
    "NUMPY_DTYPES",
    "TensorInfo",
    "load",
    "load_tensor",
    "read_header",
    "save",
    "save_bytes",
]

Source = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, BinaryIO]

# The reference implementation refuses larger headers; so do we (a corrupt length
# field must not make us allocate gigabytes).
MAX_HEADER_BYTES = 100_000_000
METADATA_KEY = "__metadata__"


# ---------------------------------------------------------------------------
# The header
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class TensorInfo:
    """One header entry: the stored type name, the shape, and [begin, end) in the buffer."""

    dtype: str
    shape: tuple[int, ...]
    data_offsets: tuple[int, int]

    @property
    def nbytes(self) -> int:
        return self.data_offsets[1] - self.data_offsets[0]


def _is_str_to_str(value: Any) -> bool:
    return isinstance(value, Mapping) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items())


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"duplicate key {key!r} in the header")
        seen[key] = value
    return seen


def _parse_header(raw: bytes, where: str) -> tuple[dict[str, TensorInfo], dict[str, str], int]:
    """Check a header's JSON; return tensors in buffer order, metadata, and the buffer
    length the tensors need."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{where}: header is not valid UTF-8 ({e})") from None
    if not text.startswith("{"):
        raise ValueError(f"{where}: header must be a JSON object starting with '{{', "
                         f"got {text[:20]!r}")
    try:
        header = json.loads(text, object_pairs_hook=_reject_duplicates)
    except ValueError as e:  # json.JSONDecodeError is a ValueError, as is a duplicate key
        raise ValueError(f"{where}: header is not valid JSON: {e}") from None

    metadata = header.pop(METADATA_KEY, {})
    if not _is_str_to_str(metadata):
        raise ValueError(f"{where}: {METADATA_KEY} must map strings to strings, got {metadata!r}")

    infos = {name: _parse_entry(name, entry, where) for name, entry in header.items()}

    # The tensors must tile the buffer: sorted by offset, each starts where the last ended.
    ordered = sorted(infos.items(), key=lambda item: item[1].data_offsets)
    end, previous = 0, None
    for name, info in ordered:
        begin = info.data_offsets[0]
        if begin < end:
            raise ValueError(f"{where}: tensor {name!r} at bytes {list(info.data_offsets)} overlaps "
                             f"tensor {previous!r}, which ends at byte {end}")
        if begin > end:
            raise ValueError(f"{where}: gap of {begin - end} bytes in the buffer before tensor "
                             f"{name!r} (bytes {end}..{begin} belong to no tensor)")
        end, previous = info.data_offsets[1], name
    return dict(ordered), metadata, end


def _parse_entry(name: str, entry: Any, where: str) -> TensorInfo:
    def bad(what: str) -> ValueError:
        return ValueError(f"{where}: tensor {name!r}: {what}")

    if not isinstance(entry, dict):
        raise bad(f"header entry must be an object, got {entry!r}")
    missing = [key for key in ("dtype", "shape", "data_offsets") if key not in entry]
    if missing:
        raise bad(f"header entry lacks {', '.join(missing)}: {entry!r}")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if dtype not in _KNOWN_DTYPES:
        raise bad(f"unknown dtype {dtype!r}; known: {', '.join(_KNOWN_DTYPES)}")
    if not isinstance(shape, list) or not all(is_int(d) and d >= 0 for d in shape):
        raise bad(f"shape must be a list of non-negative integers, got {shape!r}")
    if (not isinstance(offsets, list) or len(offsets) != 2
            or not all(is_int(o) and o >= 0 for o in offsets)):
        raise bad(f"data_offsets must be [begin, end] with non-negative integers, got {offsets!r}")
    begin, end = offsets
    if end < begin:
        raise bad(f"data_offsets {offsets} end before they begin")
    bits = math.prod(shape) * _bits_per_element(dtype)
    if bits % 8 or (end - begin) != bits // 8:
        raise bad(f"data_offsets {offsets} span {end - begin} bytes, but shape {shape} of "
                  f"{dtype} needs {bits / 8:g}")
    return TensorInfo(dtype, tuple(shape), (begin, end))


def _check_buffer_length(needed: int, actual: int, where: str) -> None:
    if actual < needed:
        raise ValueError(f"{where}: truncated: the header needs a {needed}-byte buffer, "
                         f"the file has {actual} bytes after the header")
    if actual > needed:
        raise ValueError(f"{where}: {actual - needed} bytes after the last tensor "
                         f"(buffer is {actual} bytes, the tensors cover {needed})")


def _header_length(prefix: bytes, available: int | None, where: str) -> int:
    """Decode the 8-byte length; ``available`` is how many bytes follow it, if known."""
    if len(prefix) < 8:
        raise ValueError(f"{where}: {len(prefix)} bytes is too short for a safetensors file "
                         f"(it starts with an 8-byte header length)")
    n = int.from_bytes(prefix[:8], "little")
    if n > MAX_HEADER_BYTES:
        raise ValueError(f"{where}: header length {n} exceeds the {MAX_HEADER_BYTES}-byte limit "
                         f"(corrupt file, or not a safetensors file)")
    if available is not None and n > available:
        raise ValueError(f"{where}: header length {n} is larger than the file "
                         f"({available} bytes follow the length field)")
    return n


# ---------------------------------------------------------------------------
# Sources: a path (memory-mapped), bytes, or a file object
# ---------------------------------------------------------------------------

@dataclass
class _Opened:
    infos: dict[str, TensorInfo]
    metadata: dict[str, str]
    buffer: np.ndarray | None  # uint8, the bytes after the header; None if not read

    @property
    def data(self) -> np.ndarray:
        """The buffer of a source opened with ``read_buffer=True``."""
        if self.buffer is None:
            raise RuntimeError("the buffer was not read (open with read_buffer=True)")  # this module's bug
        return self.buffer


def _describe(source: Any) -> str:
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"<{len(source)} bytes>"
    return str(getattr(source, "name", "<file object>"))


def _open(source: Source, read_buffer: bool) -> _Opened:
    where = _describe(source)
    if isinstance(source, (str, os.PathLike)):
        return _open_path(os.fspath(source), read_buffer, where)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _open_bytes(np.frombuffer(source, dtype=np.uint8), where)
    if hasattr(source, "read"):
        return _open_stream(source, read_buffer, where)
    raise TypeError(f"expected a path, bytes or a binary file object, got {type(source).__name__}")


def _open_path(path: str, read_buffer: bool, where: str) -> _Opened:
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        n = _header_length(f.read(8), size - 8, where)
        infos, metadata, needed = _parse_header(f.read(n), where)
    _check_buffer_length(needed, size - 8 - n, where)
    buffer = None
    if read_buffer:
        # np.memmap cannot map zero bytes; an empty buffer needs no file anyway.
        buffer = (np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n, shape=(needed,))
                  if needed else np.zeros(0, np.uint8))
        buffer = np.asarray(buffer)  # plain ndarray views (the map stays alive as their base)
    return _Opened(infos, metadata, buffer)


def _open_bytes(data: np.ndarray, where: str) -> _Opened:
    n = _header_length(data[:8].tobytes(), data.size - 8, where)
    infos, metadata, needed = _parse_header(data[8:8 + n].tobytes(), where)
    buffer = data[8 + n:]
    _check_buffer_length(needed, buffer.size, where)
    return _Opened(infos, metadata, buffer)


def _read_exactly(stream: BinaryIO, count: int, where: str) -> bytes:
    chunks, remaining = [], count
    while remaining:
        chunk = stream.read(remaining)
        if not isinstance(chunk, bytes):
            raise TypeError(f"{where}: file object must be opened in binary mode")
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _open_stream(stream: BinaryIO, read_buffer: bool, where: str) -> _Opened:
    prefix = _read_exactly(stream, 8, where)
    n = _header_length(prefix, None, where)
    raw = _read_exactly(stream, n, where)
    if len(raw) < n:
        raise ValueError(f"{where}: header length {n} is larger than the file "
                         f"({len(raw)} bytes follow the length field)")
    infos, metadata, needed = _parse_header(raw, where)
    buffer = None
    if read_buffer:  # a stream's length is known only once read to its end
        buffer = np.frombuffer(stream.read(), dtype=np.uint8)
        _check_buffer_length(needed, buffer.size, where)
    return _Opened(infos, metadata, buffer)


# ---------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------

def _tensor(buffer: np.ndarray, name: str, info: TensorInfo, copy: bool) -> np.ndarray:
    if info.dtype in _SUB_BYTE_BITS:
        raise ValueError(f"tensor {name!r} has sub-byte dtype {info.dtype} "
                         f"({_SUB_BYTE_BITS[info.dtype]} bits per element), which tinyembed "
                         f"does not decode")
    raw = buffer[info.data_offsets[0]:info.data_offsets[1]]
    if info.dtype in NUMPY_DTYPES:
        if info.dtype == "BOOL" and raw.size and raw.max() > 1:
            raise ValueError(f"tensor {name!r} is BOOL but holds bytes other than 0 and 1")
        array = raw.view(NUMPY_DTYPES[info.dtype]).reshape(info.shape)
    else:
        array = DECODED_DTYPES[info.dtype](raw).reshape(info.shape)
    if copy:
        return np.array(array, order="C", copy=True)
    array.flags.writeable = False
    return array


def _missing(names: Iterable[str], infos: Mapping[str, TensorInfo], where: str) -> KeyError:
    names = list(names)
    available = list(infos)
    close = list(dict.fromkeys(  # closest first, without repeats
        m for name in names for m in difflib.get_close_matches(name, available, n=3)))
    shown = ", ".join(available[:20]) + (f", ... ({len(available) - 20} more)" if len(available) > 20 else "")
    message = f"{where}: no tensor named {', '.join(map(repr, names))}"
    if close:
        message += f"; close matches: {', '.join(close)}"
    message += f"; the file has {len(available)} tensors: {shown or '(none)'}"
    return KeyError(message)


def read_header(source: Source) -> tuple[dict[str, TensorInfo], dict[str, str]]:
    """The header of a safetensors file, checked, without reading any tensor.

    Args:
        source: a path, the file's bytes, or a binary file object.

    Returns:
        ``(tensors, metadata)``: tensor name -> :class:`TensorInfo` in buffer order,
        and the ``__metadata__`` strings (empty if the file has none). For a path or
        bytes the buffer's length is checked too; for a file object only the header
        (its length is not known without reading it to the end).
    """
    opened = _open(source, read_buffer=False)
    return opened.infos, opened.metadata


def load(source: Source, names: Iterable[str] | None = None, *,
         copy: bool = False) -> dict[str, np.ndarray]:
    """Tensors of a safetensors file as NumPy arrays.

    Args:
        source: a path (memory-mapped), the file's bytes, or a binary file object
            (read to its end, e.g. a member of a zip file).
        names: the tensors to load; all of them if None.
        copy: return writable arrays that own their memory, instead of read-only
            views of the file or bytes.

    Returns:
        name -> array, in the order of ``names`` (else the file's buffer order).
        BF16 and 8-bit float tensors come back as float32 (see the module doc).

    Raises:
        KeyError: a name is not in the file (the message lists those that are).
        ValueError: the file breaks the format, or a tensor's type cannot be loaded.
    """
    if isinstance(names, str):
        raise TypeError(f"names must be a list of tensor names, got the string {names!r}")
    opened = _open(source, read_buffer=True)
    wanted = list(opened.infos) if names is None else list(names)
    absent = [name for name in wanted if name not in opened.infos]
    if absent:
        raise _missing(absent, opened.infos, _describe(source))
    return {name: _tensor(opened.data, name, opened.infos[name], copy) for name in wanted}


def load_tensor(source: Source, name: str, expected_shape: Iterable[int | None] | None = None,
                expected_dtype: Any = None, *, copy: bool = False) -> np.ndarray:
    """One tensor of a safetensors file, checked against the shape and type you expect.

    Args:
        source: as for :func:`load`.
        name: the tensor's name.
        expected_shape: the shape it must have; ``None`` entries match any length,
            e.g. ``(None, 384)``.
        expected_dtype: a stored type name (``"BF16"``) checked against the file, or
            anything ``np.dtype`` takes, checked against the loaded array's dtype
            (a BF16 tensor loads as float32).
        copy: as for :func:`load`.

    Raises:
        KeyError: no tensor of that name (the message lists those that exist).
        ValueError: the shape or dtype differs (the message gives both), or the file
            breaks the format.
    """
    opened = _open(source, read_buffer=True)
    where = _describe(source)
    if name not in opened.infos:
        raise _missing([name], opened.infos, where)
    info = opened.infos[name]
    loaded = _loaded_dtype(info.dtype)
    if expected_dtype is not None:
        if isinstance(expected_dtype, str) and expected_dtype in _KNOWN_DTYPES:
            ok, wanted = expected_dtype == info.dtype, expected_dtype
        else:
            wanted = np.dtype(expected_dtype)
            ok = loaded is not None and wanted == loaded
        if not ok:
            loads_as = f" (loads as {loaded})" if loaded is not None else ""
            raise ValueError(f"{where}: tensor {name!r} has dtype {info.dtype}{loads_as}, "
                             f"expected {wanted}")
    if expected_shape is not None:
        expected = tuple(expected_shape)
        if len(expected) != len(info.shape) or any(
                e is not None and e != actual for e, actual in zip(expected, info.shape, strict=True)):
            raise ValueError(f"{where}: tensor {name!r} has shape {info.shape}, "
                             f"expected {expected}")
    return _tensor(opened.data, name, info, copy)


# ---------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------

# The types we write, in the order of the reference implementation's Dtype enum
# (ascending alignment; ties as it breaks them).
_WRITE_ORDER = ["BOOL", "U8", "I8", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "C64",
                "F64", "I64", "U64"]


@dataclass
class _Planned:
    name: str
    array: np.ndarray
    dtype: str  # the stored type name


def _plan(tensors: Mapping[str, Any], metadata: Mapping[str, str] | None,
          store_as: Mapping[str, str] | None) -> tuple[bytes, list[_Planned]]:
    """Check everything and lay out the header, before any byte is written."""
    if not isinstance(tensors, Mapping):
        raise TypeError(f"tensors must be a mapping of name -> array, got {type(tensors).__name__}")
    store_as = dict(store_as or {})
    unknown = sorted(set(store_as) - set(tensors))
    if unknown:
        raise KeyError(f"store_as names tensors that are not being saved: {unknown}")
    planned = []
    for name, value in tensors.items():
        if not isinstance(name, str):
            raise TypeError(f"tensor names must be str, got {name!r}")
        if name == METADATA_KEY:
            raise ValueError(f"{METADATA_KEY!r} is reserved for the metadata, not a tensor name")
        array = np.asarray(value)
        if name in store_as:
            if store_as[name] != "BF16":
                raise ValueError(f"store_as[{name!r}] = {store_as[name]!r}: only 'BF16' is "
                                 f"supported (for types NumPy has, cast with astype)")
            if array.dtype not in (np.float32, np.float16):
                raise TypeError(f"tensor {name!r}: BF16 is written from float32 (or float16), "
                                f"got {array.dtype}; cast it first")
            planned.append(_Planned(name, array, "BF16"))
            continue
        dtype_name = _NAME_OF_NUMPY_DTYPE.get(array.dtype.newbyteorder("="))
        if dtype_name is None:
            raise TypeError(f"tensor {name!r}: dtype {array.dtype} has no safetensors type; "
                            f"supported: {', '.join(str(d) for d in _NAME_OF_NUMPY_DTYPE)} "
                            f"(and BF16 through store_as)")
        planned.append(_Planned(name, array, dtype_name))
    if metadata is not None and not _is_str_to_str(metadata):
        raise TypeError(f"metadata must map str to str, got {metadata!r}")

    # The reference writer's order, so that both write the same bytes: widest types
    # first, then by name. With the header padded to 8 bytes every tensor then starts
    # at a multiple of its item size.
    planned.sort(key=lambda p: (-_WRITE_ORDER.index(p.dtype), p.name))
    header: dict[str, Any] = {}
    if metadata is not None:
        header[METADATA_KEY] = dict(metadata)
    offset = 0
    for p in planned:
        nbytes = p.array.size * _bits_per_element(p.dtype) // 8
        header[p.name] = {"dtype": p.dtype, "shape": list(p.array.shape),
                          "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    raw = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    return len(raw).to_bytes(8, "little") + raw, planned


def _tensor_bytes(planned: _Planned) -> np.ndarray:
    """The stored bytes of one tensor: little-endian, C order, as flat uint8."""
    if planned.dtype == "BF16":
        stored = _float32_to_bf16_bits(planned.array)
    else:
        stored = np.ascontiguousarray(planned.array,
                                      dtype=planned.array.dtype.newbyteorder("<"))
    return stored.reshape(-1).view(np.uint8)


def save_bytes(tensors: Mapping[str, Any], metadata: Mapping[str, str] | None = None, *,
               store_as: Mapping[str, str] | None = None) -> bytes:
    """The safetensors bytes of ``tensors`` (see :func:`save` for the arguments)."""
    header, planned = _plan(tensors, metadata, store_as)
    return b"".join([header, *(_tensor_bytes(p).tobytes() for p in planned)])


def save(tensors: Mapping[str, Any], path: str | os.PathLike[str],
         metadata: Mapping[str, str] | None = None, *,
         store_as: Mapping[str, str] | None = None) -> None:
    """Write ``tensors`` to ``path`` as a safetensors file, atomically.

    The file is written under a temporary name in the same directory, flushed to
    disk, then renamed over ``path``: readers see the old file or the whole new one,
    and a failure part way leaves the old file untouched and no temporary file.

    Args:
        tensors: name -> array (anything ``np.asarray`` takes) of a type in
            ``NUMPY_DTYPES``; any byte order and memory layout.
        path: where to write.
        metadata: strings to store under ``__metadata__``.
        store_as: name -> stored type for arrays NumPy cannot hold in that type;
            only ``"BF16"`` (from float32 or float16, rounded to nearest even).
    """
    header, planned = _plan(tensors, metadata, store_as)
    with atomic_open(path) as f:
        f.write(header)
        for p in planned:
            f.write(_tensor_bytes(p).data)  # the array's memoryview: NumPy's stubs give ndarray no buffer before 3.12
