"""The lookup functions: embedding and embedding_bag, each forward beside its backward.

They validate their inputs, run the kernels in :mod:`tinyembed.kernels`, and give
autograd the backward written right beside the forward. Modules (nn/embedding.py)
and trainable tables (:mod:`tinyembed.tables`) call them.

Where PyTorch refuses or is wrong, we say so next to the code:
* ``sparse=True`` with ``scale_grad_by_freq=True`` works here (PyTorch raises).
* EmbeddingBag's dense CPU backward with ``scale_grad_by_freq`` and repeated
  ids is wrong in PyTorch 2.13; here each row's gradient is divided by the
  number of times its id occurs in the input, which is the definition.
* EmbeddingBag ``mode='max'`` with ``scale_grad_by_freq`` works (PyTorch raises).
* With ``include_last_offset=True``, ids after the last offset belong to no bag:
  they are ignored everywhere, max_norm included (PyTorch 2.13 is inconsistent there).
"""

from __future__ import annotations

import numpy as np

from .. import kernels
from ..sparse import RowSparseGrad
from ..tensor import Tensor

__all__ = ["embedding", "embedding_bag"]

_BAG_MODES = ("sum", "mean", "max")


# -- shared validation ---------------------------------------------------------------------
def _resolve_padding_idx(padding_idx, num_embeddings: int) -> int | None:
    """Negative padding_idx counts from the end, as in PyTorch."""
    if padding_idx is None:
        return None
    if isinstance(padding_idx, bool) or not isinstance(padding_idx, (int, np.integer)):
        raise TypeError(f"padding_idx must be an int, got {padding_idx!r}")
    if not -num_embeddings <= padding_idx < num_embeddings:
        raise ValueError(
            f"padding_idx {padding_idx} is out of range for {num_embeddings} embeddings "
            f"(valid: {-num_embeddings}..{num_embeddings - 1})"
        )
    return int(padding_idx) % num_embeddings


def _check_norm(max_norm, norm_type) -> None:
    if max_norm is not None and not max_norm > 0:
        raise ValueError(f"max_norm must be > 0, got {max_norm}")
    if not norm_type > 0:
        raise ValueError(f"norm_type must be > 0, got {norm_type}")


def _check_bag_mode(mode: str, sparse: bool) -> None:
    if mode not in _BAG_MODES:
        raise ValueError(f"mode must be one of {_BAG_MODES}, got {mode!r}")
    if sparse and mode == "max":
        raise ValueError("max mode does not support sparse gradients")


def _check_weight(weight) -> Tensor:
    if not isinstance(weight, Tensor):
        raise TypeError(f"weight must be a Tensor or Parameter, got {type(weight).__name__}")
    if weight.ndim != 2:
        raise ValueError(f"weight must be 2-D (num_embeddings, embedding_dim), got shape {weight.shape}")
    return weight


def _row_grad(rows: np.ndarray, grads: np.ndarray, shape: tuple, sparse: bool):
    """The weight's gradient from per-row contributions: row-sparse or dense."""
    if sparse:
        return RowSparseGrad.from_rows(rows, grads, shape)
    return kernels.scatter_add_rows(rows, grads, shape[0])


# -- embedding --------------------------------------------------------------------------------
def embedding(input, weight: Tensor, padding_idx: int | None = None, max_norm: float | None = None,
              norm_type: float = 2.0, scale_grad_by_freq: bool = False, sparse: bool = False,
              out: np.ndarray | None = None) -> Tensor:
    """Look up rows of ``weight``.

    Args:
        input: integer ids (Tensor, ndarray or nested list), any shape.
        weight: (V, D) table.
        padding_idx: rows with this id get no gradient.
        max_norm: rows looked up with a larger ``norm_type``-norm are renormalized
            in place to ``max_norm`` before the lookup.
        scale_grad_by_freq: divide each row's gradient by its id's count in ``input``.
        sparse: the weight's gradient is a :class:`RowSparseGrad`.
        out: optional preallocated (*input.shape, D) array.

    Shape:
        input (*), weight (V, D) -> output (*, D), weight's dtype.
    """
    weight = _check_weight(weight)
    num_embeddings, dim = weight.shape
    ids = kernels.check_ids(input, num_embeddings)
    padding_idx = _resolve_padding_idx(padding_idx, num_embeddings)
    _check_norm(max_norm, norm_type)
    if out is not None:
        kernels.check_out(out, ids.shape + (dim,), weight.dtype)
    if max_norm is not None:  # everything is validated: a failed call has changed nothing
        kernels.renorm_rows_(weight.data, ids, max_norm, norm_type)
    data = kernels.gather_rows(weight.data, ids, out=out)
    weight_grad = _lookup_backward(ids, weight.shape, padding_idx, scale_grad_by_freq, sparse)
    return Tensor._from_op(data, (weight,), lambda g: (weight_grad(g),), "embedding")


def _lookup_backward(ids: np.ndarray, shape: tuple, padding_idx, scale_grad_by_freq: bool, sparse: bool):
    """g (*ids.shape, D) -> the weight's gradient: each position's row of g added into its id's row."""
    def weight_grad(g):
        rows, grads = ids.reshape(-1), g.reshape(-1, shape[1])
        if scale_grad_by_freq and rows.size:
            grads = grads * kernels.frequency_scale(rows)[:, None].astype(grads.dtype)
        if padding_idx is not None:
            keep = rows != padding_idx
            rows, grads = rows[keep], grads[keep]
        return _row_grad(rows, grads, shape, sparse)
    return weight_grad


def embedding_add(input, weight: Tensor, addend: Tensor, scale: float = 1.0, padding_idx: int | None = None,
                  max_norm: float | None = None, norm_type: float = 2.0, scale_grad_by_freq: bool = False,
                  sparse: bool = False) -> Tensor:
    """``embedding(input, weight, ...) * scale + addend`` in one pass: tokens plus positions.

    The sum is computed chunk by chunk while the gathered rows are in cache
    (:func:`kernels.gather_add_rows`), with no full-size temporary; the result is
    bit-identical to the three separate ops.

    Args:
        input: (*, S) integer ids, at least 1-D.
        weight: (V, D) table; the other table options as in :func:`embedding`.
        addend: (S, D) Tensor of ``weight``'s dtype, added at each sequence position
            (sinusoidal or learned positions); it gets the gradient summed over ``*``.
        scale: multiplies the token rows before the addition (sqrt(D) in Transformers).

    Shape:
        input (*, S), weight (V, D), addend (S, D) -> output (*, S, D).
    """
    weight = _check_weight(weight)
    addend = addend if isinstance(addend, Tensor) else Tensor(addend)
    ids = kernels.check_ids(input, weight.shape[0])
    if ids.ndim == 0:
        raise ValueError("embedding_add needs ids of shape (..., seq), got a 0-d id")
    if addend.shape != (ids.shape[-1], weight.shape[1]) or addend.dtype != weight.dtype:
        raise ValueError(f"addend must be {weight.dtype} of shape ({ids.shape[-1]}, {weight.shape[1]}) "
                         f"for ids of shape {ids.shape}, got {addend.dtype} {addend.shape}")
    padding_idx = _resolve_padding_idx(padding_idx, weight.shape[0])
    _check_norm(max_norm, norm_type)
    if max_norm is not None:
        kernels.renorm_rows_(weight.data, ids, max_norm, norm_type)
    data = kernels.gather_add_rows(weight.data, ids, addend.data, scale)
    weight_grad = _lookup_backward(ids, weight.shape, padding_idx, scale_grad_by_freq, sparse)

    def backward(g):
        token_grad = weight_grad(g * scale if scale != 1.0 else g)
        return token_grad, g.reshape(-1, *addend.shape).sum(axis=0)

    return Tensor._from_op(data, (weight, addend), backward, "embedding_add")


# -- embedding_bag ------------------------------------------------------------------------------
def embedding_bag(input, weight: Tensor, offsets=None, max_norm: float | None = None,
                  norm_type: float = 2.0, scale_grad_by_freq: bool = False, mode: str = "mean",
                  sparse: bool = False, per_sample_weights=None, include_last_offset: bool = False,
                  padding_idx: int | None = None) -> Tensor:
    """Pool (sum, mean or max) the rows of each bag of ids without materializing them per bag.

    Args:
        input: 1-D ids with ``offsets``, or 2-D (B, N): B bags of N ids.
        weight: (V, D) table.
        offsets: 1-D start of each bag in ``input``; must start at 0 and not decrease.
        mode: 'sum', 'mean' or 'max'. Empty bags give zeros.
        per_sample_weights: weights of each id, same shape as input ('sum' only).
        include_last_offset: ``offsets`` has B + 1 entries, the last one ending the last bag.
        padding_idx: ids equal to it are left out of their bag (not counted in 'mean').
        Other arguments as :func:`embedding`.

    Shape:
        output (B, D), weight's dtype.
    """
    weight = _check_weight(weight)
    num_embeddings, dim = weight.shape
    _check_bag_mode(mode, sparse)
    ids = kernels.check_ids(input, num_embeddings)
    flat, bounds = kernels.bag_bounds(ids, offsets, include_last_offset)
    padding_idx = _resolve_padding_idx(padding_idx, num_embeddings)
    _check_norm(max_norm, norm_type)
    psw_tensor, psw = None, None
    if per_sample_weights is not None:
        if mode != "sum":
            raise ValueError(f"per_sample_weights is only supported with mode='sum', got mode={mode!r}")
        psw_tensor = per_sample_weights if isinstance(per_sample_weights, Tensor) else Tensor(per_sample_weights)
        if psw_tensor.shape != ids.shape:
            raise ValueError(f"per_sample_weights has shape {psw_tensor.shape}, input has {ids.shape}")
        if psw_tensor.dtype != weight.dtype:
            raise TypeError(f"per_sample_weights has dtype {psw_tensor.dtype}, the table has {weight.dtype}")
        psw = psw_tensor.data.reshape(-1)
    if max_norm is not None:
        kernels.renorm_rows_(weight.data, flat[: bounds[-1]], max_norm, norm_type)
    data, argmax = kernels.bag_pool(weight.data, flat, bounds, mode, psw, padding_idx)

    def backward(g):
        rows, grads, grad_psw = kernels.bag_pool_backward(
            g, weight.data, flat, bounds, mode, psw, padding_idx, argmax, scale_grad_by_freq)
        weight_grad = _row_grad(rows, grads, weight.shape, sparse) if weight.requires_grad else None
        if psw_tensor is None:
            return (weight_grad,)
        return weight_grad, (None if grad_psw is None else grad_psw.reshape(psw_tensor.shape))

    parents = (weight,) if psw_tensor is None else (weight, psw_tensor)
    return Tensor._from_op(data, parents, backward, "embedding_bag")


# -- modules ---------------------------------------------------------------------------------------
