"""max_norm and scale_grad_by_freq: PyTorch's in-place row renormalization and gradient scaling."""

from __future__ import annotations

import numpy as np

__all__ = ["row_norms", "renorm_rows_", "frequency_scale"]


def row_norms(rows: np.ndarray, norm_type: float) -> np.ndarray:
    """p-norm of each row of a (k, D) array, computed in float64."""
    rows = rows.astype(np.float64, copy=False)
    if norm_type == np.inf:
        return np.abs(rows).max(axis=1, initial=0.0)
    if norm_type == 2.0:
        return np.sqrt(np.einsum("ij,ij->i", rows, rows))
    return (np.abs(rows) ** norm_type).sum(axis=1) ** (1.0 / norm_type)


def renorm_rows_(weight: np.ndarray, ids: np.ndarray, max_norm: float, norm_type: float = 2.0) -> None:
    """In place: every row looked up whose norm exceeds ``max_norm`` is scaled down to it.

    The scale is ``max_norm / (norm + 1e-7)``, PyTorch's ``embedding_renorm_``.
    """
    unique = np.unique(ids)
    if unique.size == 0:
        return
    norms = row_norms(weight[unique], norm_type)
    over = norms > max_norm
    if over.any():
        rows = unique[over]
        scale = (max_norm / (norms[over] + 1e-7))[:, None]
        weight[rows] = (weight[rows] * scale).astype(weight.dtype)


def frequency_scale(ids: np.ndarray, of: np.ndarray | None = None) -> np.ndarray:
    """scale_grad_by_freq: 1 / (how often each id occurs in ``ids``), for each id of ``of``.

    ``of`` defaults to ``ids`` itself (one scale per position); its ids must occur in ``ids``.
    """
    unique, counts = np.unique(ids, return_counts=True)
    of = ids if of is None else of
    return 1.0 / counts[np.searchsorted(unique, of.reshape(-1))]
