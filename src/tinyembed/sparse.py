"""Row-sparse gradients: the gradient of an embedding table touches few rows.

A lookup of ``n`` ids into a ``(V, D)`` table has a gradient that is zero
everywhere except on the rows that were looked up. Storing it densely costs
``V * D`` numbers per step; storing it row-sparse costs ``unique(ids) * D``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["RowSparseGrad", "accumulate_grad", "zeros_like_grad"]


class RowSparseGrad:
    """A gradient that is non-zero only on some rows of a 2-D table.

    Always coalesced: ``indices`` is sorted and unique, so every row appears once.

    Attributes:
        indices (np.ndarray): int64, shape (k,), sorted, unique row ids.
        values (np.ndarray): shape (k, D), the gradient rows, same dtype as the table.
        shape (tuple): (V, D), the shape of the dense gradient.
    """

    __slots__ = ("indices", "values", "shape")

    def __init__(self, indices: np.ndarray, values: np.ndarray, shape: tuple):
        indices = np.asarray(indices, dtype=np.int64)
        values = np.asarray(values)
        if indices.ndim != 1 or values.ndim != 2 or len(indices) != len(values):
            raise ValueError(
                f"indices (k,) and values (k, D) must match, got {indices.shape} and {values.shape}"
            )
        if values.shape[1] != shape[1]:
            raise ValueError(f"values have {values.shape[1]} columns, table has {shape[1]}")
        if len(indices) and (indices[0] < 0 or indices[-1] >= shape[0] or np.any(np.diff(indices) <= 0)):
            raise ValueError("indices must be sorted, unique and inside the table")
        self.indices = indices
        self.values = values
        self.shape = tuple(shape)

    @classmethod
    def from_rows(cls, rows: np.ndarray, values: np.ndarray, shape: tuple) -> RowSparseGrad:
        """Coalesce possibly repeated, unsorted ``rows`` by summing their ``values``."""
        from .kernels import segment_sum_rows  # kernels never import this module

        unique, summed = segment_sum_rows(np.asarray(rows, dtype=np.int64), values)
        return cls(unique, summed, shape)

    @property
    def dtype(self) -> np.dtype:
        return self.values.dtype

    @property
    def nnz_rows(self) -> int:
        return len(self.indices)

    @property
    def nbytes(self) -> int:
        return self.indices.nbytes + self.values.nbytes

    def to_dense(self) -> np.ndarray:
        dense = np.zeros(self.shape, dtype=self.values.dtype)
        dense[self.indices] = self.values
        return dense

    def __add__(self, other):
        if isinstance(other, RowSparseGrad):
            if other.shape != self.shape:
                raise ValueError(f"cannot add row-sparse grads of shapes {self.shape} and {other.shape}")
            return RowSparseGrad.from_rows(
                np.concatenate([self.indices, other.indices]),
                np.concatenate([self.values, other.values]),
                self.shape,
            )
        dense = np.array(other, dtype=np.result_type(self.values, other), copy=True)
        dense[self.indices] += self.values  # indices are unique, so fancy += is exact
        return dense

    __radd__ = __add__

    def __mul__(self, scalar: float) -> RowSparseGrad:
        return RowSparseGrad(self.indices, self.values * scalar, self.shape)

    __rmul__ = __mul__

    def astype(self, dtype) -> RowSparseGrad:
        return RowSparseGrad(self.indices, self.values.astype(dtype), self.shape)

    @classmethod
    def empty(cls, shape: tuple, dtype) -> RowSparseGrad:
        """No rows: the zero gradient, still row-sparse."""
        return cls(np.zeros(0, np.int64), np.zeros((0, shape[1]), dtype), shape)

    def __neg__(self) -> RowSparseGrad:
        return self * -1

    def __repr__(self) -> str:
        return f"RowSparseGrad(rows={self.nnz_rows}, shape={self.shape}, dtype={self.dtype})"


def accumulate_grad(current, new):
    """``current + new`` for dense arrays and row-sparse grads, in any mix.

    Dense plus sparse gives dense (as in PyTorch); sparse plus sparse stays
    sparse and coalesced. ``current`` may be None; then ``new`` itself is
    returned (not copied), so callers that keep it must own it.
    """
    if current is None:
        return new
    if isinstance(current, np.ndarray) and isinstance(new, np.ndarray):
        return current + new
    return current + new if isinstance(current, RowSparseGrad) else new + current


def zeros_like_grad(grad):
    """A zero gradient in the same layout: an empty RowSparseGrad for a row-sparse one
    (as a sparse ``.grad.zero_()`` in PyTorch, so sparse-only optimizers still accept it)."""
    if isinstance(grad, RowSparseGrad):
        return RowSparseGrad.empty(grad.shape, grad.dtype)
    return np.zeros_like(grad)
