"""The protocol every embedding table offers, dense or compressed.

A table maps ids in [0, num_embeddings) to float32 rows of width embedding_dim.
What differs is what it stores: a dense table stores every row; a quantized one
stores int8 codes and per-row scales; a hashed one stores fewer rows than ids.
Everything else is written once, here, in terms of two methods a table defines:

* ``_rows(ids)``: float32 rows of already-validated int64 ids, any shape;
* ``state_arrays()`` / ``config()`` / ``_from_state(arrays, config)``: what it
  stores (arrays) and how it was built (JSON-able numbers and strings).

From those come ``lookup`` (into a preallocated output too), ``nbytes``,
``compression_ratio``, ``to_dense``, ``bag`` (sum or mean pooling that gathers only the
rows in the bags), ``attend`` (scores against every row, the tied output projection),
and ``save`` / ``load`` in safetensors with the config in the file's metadata. A table
may override the hooks behind them where it knows a faster way: ``_rows_into`` (rows
decoded straight into the output), ``_pool`` (bags), ``_scores`` (attend).
"""

from __future__ import annotations

import json
import os
from typing import Any, TypeVar

import numpy as np

from .. import kernels
from ..checks import FLOAT_DTYPES, check_finite
from ..io import safetensors

__all__ = ["EmbeddingTable", "TABLE_TYPES", "as_float_table", "attend_input", "load_table", "pretrained_weight",
           "register_table", "take_array"]

# class name -> class; `load_table` reads the name from a file's metadata.
TABLE_TYPES: dict[str, type[EmbeddingTable]] = {}

_METADATA_TYPE = "tinyembed.table"
_METADATA_CONFIG = "tinyembed.config"


_Table = TypeVar("_Table", bound="EmbeddingTable")


def register_table(cls: type[_Table]) -> type[_Table]:
    """Class decorator: make a table type loadable by :func:`load_table`."""
    TABLE_TYPES[cls.__name__] = cls
    return cls


def take_array(arrays: dict[str, np.ndarray], name: str, shape: tuple, dtype) -> np.ndarray:
    """``arrays[name]``, checked: for ``_from_state`` to refuse a file that does not fit its config."""
    if name not in arrays:
        raise ValueError(f"the table needs a tensor {name!r}; the file has {sorted(arrays)}")
    array = arrays[name]
    if array.shape != tuple(shape) or array.dtype != np.dtype(dtype):
        raise ValueError(f"tensor {name!r} is {array.dtype}{list(array.shape)}, "
                         f"expected {np.dtype(dtype)}{list(shape)}")
    return array


def as_float_table(table, dtype=np.float32, what: str = "table") -> np.ndarray:
    """A (V, D) array of ``dtype`` (float32 by default) from a float array, a Tensor, or any
    EmbeddingTable (its ``to_dense()``); refuses other shapes, non-float input, empty tables
    and non-finite values. What every ``from_float`` / ``from_counts`` starts with."""
    if isinstance(table, EmbeddingTable):
        data = table.to_dense()
    else:
        data = np.asarray(table.data if hasattr(table, "data") and not isinstance(table, np.ndarray) else table)
    if data.ndim != 2 or 0 in data.shape:
        raise ValueError(f"{what} must be a non-empty 2-D (num_embeddings, embedding_dim) array, "
                         f"got shape {data.shape}")
    if data.dtype.kind != "f":
        raise TypeError(f"{what} must be floating point, got {data.dtype}")
    with np.errstate(over="ignore"):  # float64 beyond float32 becomes inf, refused next
        data = np.ascontiguousarray(data, dtype=dtype)
    try:
        return check_finite(data, what)
    except ValueError as e:
        raise ValueError(f"{e} (after conversion to {np.dtype(dtype)})") from None


def attend_input(h, embedding_dim: int):
    """``h`` checked for ``attend``: its last axis must be ``embedding_dim``. Returns (h as a Tensor if it
    is one, else a float32 array; the leading shape ``h.shape[:-1]``)."""
    from ..tensor import Tensor

    if not isinstance(h, Tensor):
        h = np.asarray(h)
        if h.dtype.kind not in "fiu":
            raise TypeError(f"attend needs floating point input, got dtype {h.dtype}")
        h = h.astype(np.float32, copy=False)
    if h.ndim == 0 or h.shape[-1] != embedding_dim:
        raise ValueError(f"attend needs (..., {embedding_dim}) input, got shape {h.shape}")
    return h, tuple(h.shape[:-1])


def pretrained_weight(embeddings) -> np.ndarray:
    """A (V, D) float array of trained rows, checked: 2-D, floating point, every value finite
    (the error names the first bad value).

    A float32 or float64 ndarray (or Tensor) is returned as it is, shared; anything else
    (nested lists, float16) becomes float32, as ``torch.tensor`` would make it.
    """
    is_tensor = hasattr(embeddings, "data") and not isinstance(embeddings, np.ndarray)
    raw = embeddings.data if is_tensor else embeddings
    data = np.asarray(raw)
    if data.ndim != 2:
        raise ValueError(f"pretrained embeddings must be 2-D (num_embeddings, embedding_dim), got shape {data.shape}")
    if data.dtype.kind != "f":
        raise TypeError(f"pretrained embeddings must be floating point, got {data.dtype}")
    if not (isinstance(raw, np.ndarray) and data.dtype in FLOAT_DTYPES):
        data = data.astype(np.float32)
    return check_finite(data, "pretrained embeddings")


class EmbeddingTable:
    """Mixin giving a table the common protocol. Subclasses set ``num_embeddings`` and
    ``embedding_dim`` and define ``_rows``, ``state_arrays``, ``config`` and ``_from_state``."""

    num_embeddings: int
    embedding_dim: int

    # -- what a table defines ------------------------------------------------------------
    def _rows(self, ids: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def state_arrays(self) -> dict[str, np.ndarray]:
        """Every array the table stores, by name (what ``save`` writes)."""
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        """How the table was built: JSON-able values that ``_from_state`` needs with the arrays."""
        return {"num_embeddings": self.num_embeddings, "embedding_dim": self.embedding_dim}

    @classmethod
    def _from_state(cls, arrays: dict[str, np.ndarray], config: dict[str, Any]) -> EmbeddingTable:
        raise NotImplementedError

    def _rows_into(self, ids: np.ndarray, out: np.ndarray) -> None:
        """Write the rows of validated ids into ``out``, a C-contiguous (*ids.shape, D) float32 array.
        This default copies ``_rows``; tables that can write the rows in place override it."""
        np.copyto(out, self._rows(ids))

    def _scores(self, h: np.ndarray) -> np.ndarray:
        """(n, V) float32 scores of a (n, D) float32 array against every row. This default takes a chunk
        of rows at a time (16 MiB of float32, :func:`tinyembed.kernels.scores_by_chunks`) and multiplies
        it with BLAS."""
        return kernels.scores_by_chunks(lambda a, b, buf: np.copyto(buf, self._rows(np.arange(a, b))),
                                        self.num_embeddings, h)

    # -- what every table gets -----------------------------------------------------------
    def lookup(self, ids, out: np.ndarray | None = None) -> np.ndarray:
        """float32 rows of ``ids`` (any shape): (*ids.shape, embedding_dim).

        ``out``: a preallocated C-contiguous (*ids.shape, embedding_dim) float32 array to write the
        rows into (and return), as Embedding's forward takes one; nothing else is allocated for them.
        """
        ids = kernels.check_ids(ids, self.num_embeddings)
        if out is None:
            return self._rows(ids)
        kernels.check_out(out, ids.shape + (self.embedding_dim,), np.dtype(np.float32))
        self._rows_into(ids, out)
        return out

    def attend(self, h):
        """Scores of ``h`` against every row, ``h @ to_dense().T``: the output projection of a model
        whose input and output embeddings are tied (Flax's ``Embed.attend``).

        Frozen tables return a float32 array, computed without building the dense table (a chunk
        of rows at a time, or decoding each row inside a compiled loop). Trainable tables override
        this with a differentiable Tensor computed through their structure (their docstrings say how).

        Shape:
            h (*, embedding_dim) -> (*, num_embeddings).
        """
        h, lead = attend_input(h, self.embedding_dim)
        h = h.data.astype(np.float32, copy=False) if not isinstance(h, np.ndarray) else h
        scores = self._scores(np.ascontiguousarray(h.reshape(-1, self.embedding_dim)))
        return scores.reshape(lead + (self.num_embeddings,))

    @property
    def nbytes(self) -> int:
        """Exact bytes of everything the table stores."""
        return int(sum(a.nbytes for a in self.state_arrays().values()))

    def num_parameters(self, trainable_only: bool = False) -> int:
        """Numbers the table stores (codes, scales, rows), index maps excluded; a frozen
        table has none that train. Trainable tables (Modules first in their bases) count
        their Parameters instead."""
        if trainable_only:
            return 0
        return int(sum(a.size for a in self.state_arrays().values() if a.dtype.kind != "i"))

    @property
    def dense_nbytes(self) -> int:
        """Bytes of a dense float32 table of the same vocabulary and width."""
        return self.num_embeddings * self.embedding_dim * 4

    @property
    def compression_ratio(self) -> float:
        """Dense float32 bytes / stored bytes (above 1: smaller than dense)."""
        return self.dense_nbytes / self.nbytes

    def to_dense(self) -> np.ndarray:
        """The (num_embeddings, embedding_dim) float32 table this one represents."""
        return self._rows(np.arange(self.num_embeddings, dtype=np.int64))

    def bag(self, ids, offsets=None, mode: str = "sum", per_sample_weights=None,
            include_last_offset: bool = False) -> np.ndarray:
        """Pooled rows of each bag, (B, embedding_dim) float32; gathers only the ids in the bags.

        ``ids`` is 2-D (B fixed-size bags) or 1-D with ``offsets``, as EmbeddingBag.
        """
        if mode not in ("sum", "mean"):
            raise ValueError(f"mode must be 'sum' or 'mean', got {mode!r}")
        ids = kernels.id_array(ids)  # checked against the table by _pool, as it pools
        try:
            flat, bounds = kernels.bag_bounds(ids, offsets, include_last_offset)
            weights = None
            if per_sample_weights is not None:
                if mode != "sum":
                    raise ValueError(f"per_sample_weights is only supported with mode='sum', got {mode!r}")
                weights = np.asarray(per_sample_weights, dtype=np.float32).reshape(-1)
                if weights.shape != flat.shape:
                    raise ValueError(f"per_sample_weights has {weights.size} entries, input has {flat.size}")
            return self._pool(np.ascontiguousarray(flat, dtype=np.int64), bounds, mode, weights)
        except (IndexError, ValueError):
            kernels.check_ids(ids, self.num_embeddings)  # a bad id is named first, at its place in the input
            raise

    def _pool(self, ids: np.ndarray, bounds: np.ndarray, mode: str, weights: np.ndarray | None) -> np.ndarray:
        """Pooled bags from (n,) int64 ids and (B + 1,) bounds; tables with a fused kernel override it.
        The ids are not checked yet, those after the last bag included: a bad one raises
        :func:`kernels.check_ids`' IndexError."""
        ids = kernels.check_ids(ids, self.num_embeddings)
        return kernels.pool_rows(lambda at, buf: np.copyto(buf, self._rows(at)), ids, bounds,
                                 self.embedding_dim, np.float32, mode, weights)

    def save(self, path: str | os.PathLike) -> None:
        """Write the table to ``path`` in safetensors, atomically (temporary file, then rename)."""
        metadata = {_METADATA_TYPE: type(self).__name__, _METADATA_CONFIG: json.dumps(self.config())}
        safetensors.save(self.state_arrays(), path, metadata=metadata)

    @classmethod
    def load(cls, path: str | os.PathLike):
        """Read a table that :meth:`save` wrote; the file must hold this class's table."""
        table = load_table(path)
        if not isinstance(table, cls):
            raise ValueError(f"{os.fspath(path)!r} holds a {type(table).__name__}, not a {cls.__name__}")
        return table

    def __call__(self, ids):
        """Rows as a Tensor; trainable tables override this with a differentiable forward."""
        from ..tensor import Tensor

        return Tensor(self.lookup(ids))


def load_table(path: str | os.PathLike) -> EmbeddingTable:
    """Any table written by ``save``: the class and config come from the file's metadata,
    and every array is checked against what that class stores."""
    header, metadata = safetensors.read_header(path)
    kind = metadata.get(_METADATA_TYPE)
    if kind not in TABLE_TYPES:
        raise ValueError(f"{os.fspath(path)!r} is not a tinyembed table (metadata {_METADATA_TYPE}={kind!r}; "
                         f"known: {sorted(TABLE_TYPES)})")
    try:
        config = json.loads(metadata[_METADATA_CONFIG])
    except (KeyError, json.JSONDecodeError) as e:
        raise ValueError(f"{os.fspath(path)!r} has no valid {_METADATA_CONFIG} metadata: {e}") from None
    arrays = safetensors.load(path, copy=True)
    cls = TABLE_TYPES[kind]
    try:
        table = cls._from_state(arrays, config)
    except (KeyError, TypeError) as e:  # a config that does not describe this table type
        raise ValueError(f"{os.fspath(path)!r}: its {_METADATA_CONFIG} does not fit a {kind}: "
                         f"{type(e).__name__}: {e}") from None
    # The rebuilt table must store exactly what the file holds: names, shapes and dtypes.
    expected = table.state_arrays()
    if set(expected) != set(arrays):
        raise ValueError(f"{os.fspath(path)!r}: {kind} stores {sorted(expected)}, the file has {sorted(arrays)}")
    for name, array in expected.items():
        got = arrays[name]
        if got.shape != array.shape or got.dtype != array.dtype:
            raise ValueError(f"{os.fspath(path)!r}: tensor {name!r} is {got.dtype}{list(got.shape)}, "
                             f"{kind} with this config needs {array.dtype}{list(array.shape)}")
    return table
