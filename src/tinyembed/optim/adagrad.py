"""RowWiseAdagrad: Adagrad with one accumulator per embedding row (FBGEMM's rule).

Plain Adagrad keeps one accumulator per weight, as much memory as the table
itself. Row-wise Adagrad keeps one float32 per row, the mean of the squared
gradient over the row, so a (V, D) table costs V extra numbers instead of V·D.
This is the optimizer production recommendation models run on their embedding
tables (FBGEMM / TorchRec's default).
"""

from __future__ import annotations

import numpy as np

from ..checks import check_hyperparameter
from ..sparse import RowSparseGrad
from .optimizer import Optimizer

__all__ = ["RowWiseAdagrad", "rowwise_adagrad_step"]


def rowwise_adagrad_step(param: np.ndarray, rows: np.ndarray | None, grad_rows: np.ndarray,
                         accumulator: np.ndarray, *, lr: float, eps: float, weight_decay: float) -> None:
    """One row-wise Adagrad step on the given rows of ``param``, in place.

    Args:
        param: (V, D) table.
        rows: (k,) unique row ids, or None for all V rows (a dense gradient).
        grad_rows: (k, D) gradient of those rows (or (V, D)).
        accumulator: (V,) float32 sum of mean squared row gradients.

    For each row r with gradient g_r (weight decay first, as an L2 penalty)::

        g_r += weight_decay · w_r
        acc[r] += mean(g_r²)
        w_r -= lr · g_r / (sqrt(acc[r]) + eps)

    This is FBGEMM's EXACT_ROWWISE_ADAGRAD with WeightDecayMode.L2
    (fbgemm_gpu/codegen/genscript/optimizers.py, ``rowwise_adagrad()``: ``g_avg_square =
    sum(g²) / D``, ``momentum1[idx] += g_avg_square``, ``multiplier = learning_rate /
    (sqrtf(momentum1[idx]) + eps)``, ``w = (1 - multiplier·weight_decay)·w - multiplier·g``,
    which is the update above). "Exact" means the gradients of repeated ids are
    summed before the row is updated once (our RowSparseGrad is coalesced), as
    opposed to FBGEMM's approximate ROWWISE_ADAGRAD that updates once per occurrence.

    The arithmetic runs in the parameter's dtype (float32 for float32 tables, as
    FBGEMM's float32 accumulate type); the accumulator is stored in float32 and the
    step reads the stored value, so a reloaded state continues identically.
    A row whose accumulator is 0 (all its gradients so far exactly 0, with eps = 0)
    does not move, rather than becoming 0/0 = NaN.
    """
    if grad_rows.size == 0:  # no rows, or zero-width rows: nothing to update
        return
    w = param if rows is None else param[rows]  # (k, D)
    g = grad_rows
    if weight_decay != 0:
        g = g + weight_decay * w
    mean_sq = np.mean(g * g, axis=1)  # (k,)
    if rows is None:
        accumulator += mean_sq
        acc = accumulator
    else:
        accumulator[rows] += mean_sq  # rows are unique, so fancy += is exact
        acc = accumulator[rows]
    denom = np.sqrt(acc.astype(param.dtype, copy=False)) + eps  # (k,)
    multiplier = np.divide(lr, denom, out=np.zeros_like(denom), where=denom > 0)
    if rows is None:
        param -= multiplier[:, None] * g
    else:
        param[rows] = w - multiplier[:, None] * g


class RowWiseAdagrad(Optimizer):
    """Row-wise Adagrad for 2-D embedding tables (FBGEMM's EXACT_ROWWISE_ADAGRAD).

    One float32 accumulator per row: ``acc[r] += mean(g_r²)``, then
    ``w_r -= lr · g_r / (sqrt(acc[r]) + eps)``. See :func:`rowwise_adagrad_step`.

    Args:
        params: iterable of 2-D Parameters (or of param-group dicts).
        lr: learning rate (default 1e-2, as torch.optim.Adagrad).
        eps: added to sqrt(acc) (default 1e-10, as torch.optim.Adagrad; FBGEMM's default is 1e-8).
        weight_decay: L2 penalty added to the gradient before the update (default 0).
        initial_accumulator_value: starting value of every row's accumulator (default 0).

    Gradients: a dense (V, D) gradient updates every row (a row whose gradient is
    exactly zero does not move, unless weight decay makes its gradient non-zero);
    a RowSparseGrad updates only its rows, which is FBGEMM's behaviour.

    State:
        ``sum``: (V,) float32, the accumulator (the name torch.optim.Adagrad uses).

    Examples:
        >>> from tinyembed.nn import Embedding
        >>> emb = Embedding(4, 3, sparse=True, seed=0)
        >>> opt = RowWiseAdagrad(emb.parameters(), lr=0.05)
        >>> emb([0, 0, 2]).sum().backward(); opt.step()
        >>> opt.state[emb.weight]["sum"]  # one float32 per row: mean(g**2)
        array([4., 0., 1., 0.], dtype=float32)
    """

    _OPTION_KINDS = {"lr": "float", "eps": "float", "weight_decay": "float",
                     "initial_accumulator_value": "float"}

    def __init__(self, params, lr: float = 1e-2, eps: float = 1e-10, weight_decay: float = 0,
                 initial_accumulator_value: float = 0):
        super().__init__(params, dict(lr=lr, eps=eps, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value))

    def _check_options(self, group: dict) -> None:
        check_hyperparameter("RowWiseAdagrad", "lr", group["lr"], what="learning rate")
        check_hyperparameter("RowWiseAdagrad", "eps", group["eps"])
        check_hyperparameter("RowWiseAdagrad", "weight_decay", group["weight_decay"])
        check_hyperparameter("RowWiseAdagrad", "initial_accumulator_value", group["initial_accumulator_value"])

    def _check_param(self, param, index: int) -> None:
        if param.ndim != 2:
            raise ValueError(
                f"RowWiseAdagrad keeps one accumulator per row and needs 2-D parameters "
                f"(num_rows, dim), got a parameter of shape {param.shape} at index {index}"
            )

    def _state_spec(self, param, group) -> dict:
        return {"sum": ((param.shape[0],), np.float32)}

    def _update(self, param, grad, state, group) -> None:
        if not state:
            state["sum"] = np.full(param.shape[0], group["initial_accumulator_value"], dtype=np.float32)
        if isinstance(grad, RowSparseGrad):
            rows, values = grad.indices, grad.values
        else:
            rows, values = None, grad
        rowwise_adagrad_step(param.data, rows, values, state["sum"], lr=group["lr"], eps=group["eps"],
                             weight_decay=group["weight_decay"])
