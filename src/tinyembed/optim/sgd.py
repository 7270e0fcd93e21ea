"""SGD: stochastic gradient descent with momentum, as torch.optim.SGD 2.13.

The functional forms (:func:`sgd_step`, :func:`sgd_sparse_step`) are the
math; :class:`SGD` owns the hyper-parameters and the momentum buffers.
"""

from __future__ import annotations

import numpy as np

from ..checks import check_hyperparameter
from ..sparse import RowSparseGrad
from .optimizer import Optimizer

__all__ = ["SGD", "sgd_step", "sgd_sparse_step"]


def sgd_step(param: np.ndarray, grad: np.ndarray, momentum_buffer: np.ndarray | None, *,
             lr: float, momentum: float, dampening: float, weight_decay: float,
             nesterov: bool, maximize: bool) -> np.ndarray | None:
    """One SGD step on ``param`` in place; returns the momentum buffer (None without momentum).

    The buffer starts as a copy of the first (decayed) gradient, as in PyTorch;
    dampening applies from the second step on.
    """
    g = -grad if maximize else grad
    if weight_decay != 0:
        g = g + weight_decay * param  # L2: a new array, the caller's grad is untouched
    if momentum != 0:
        if momentum_buffer is None:
            momentum_buffer = np.array(g, copy=True)
        else:
            momentum_buffer *= momentum
            momentum_buffer += (1 - dampening) * g
        g = g + momentum * momentum_buffer if nesterov else momentum_buffer
    param += (-lr) * g
    return momentum_buffer


def sgd_sparse_step(param: np.ndarray, grad: RowSparseGrad, *, lr: float, maximize: bool) -> None:
    """Plain SGD on the rows of a row-sparse gradient only: ``param[rows] -= lr * values``."""
    values = -grad.values if maximize else grad.values
    param[grad.indices] += (-lr) * values  # indices are unique, so fancy += is exact


class SGD(Optimizer):
    """Stochastic gradient descent (optionally with momentum), exactly torch.optim.SGD.

    .. math::
        g = \\nabla + \\lambda\\theta,\\quad b_1 = g,\\ b_t = \\mu b_{t-1} + (1-\\tau) g,\\quad
        \\theta \\leftarrow \\theta - \\gamma\\,(g + \\mu b_t \\text{ if nesterov else } b_t)

    Args:
        params: iterable of Parameters or of param-group dicts.
        lr: learning rate γ (default 1e-3, as PyTorch 2.13).
        momentum: momentum factor μ (default 0).
        dampening: dampening τ of the momentum (default 0).
        weight_decay: L2 penalty λ added to the gradient (default 0).
        nesterov: Nesterov momentum; needs momentum > 0 and dampening == 0.
        maximize: ascend the objective instead.

    Row-sparse gradients (``Embedding(sparse=True)``) are accepted with
    ``momentum == 0`` and ``weight_decay == 0``: only their rows move. With
    momentum or weight decay every row moves every step, so use a dense gradient
    (or SparseAdam / RowWiseAdagrad).

    State:
        ``momentum_buffer`` (shape of the parameter), when momentum != 0.

    Examples:
        >>> from tinyembed.nn import Parameter
        >>> w = Parameter([1.0, 2.0])
        >>> opt = SGD([w], lr=0.1)
        >>> (w * w).sum().backward(); opt.step()  # grad 2w: w -= 0.1 * 2w
        >>> w.numpy()
        array([0.8, 1.6], dtype=float32)
    """

    _OPTION_KINDS = {"lr": "float", "momentum": "float", "dampening": "float",
                     "weight_decay": "float", "nesterov": "bool", "maximize": "bool"}

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False, *, maximize: bool = False):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults)

    def _check_options(self, group: dict) -> None:
        check_hyperparameter("SGD", "lr", group["lr"], what="learning rate")
        check_hyperparameter("SGD", "momentum", group["momentum"])
        check_hyperparameter("SGD", "weight_decay", group["weight_decay"])
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(
                "SGD: Nesterov momentum requires momentum > 0 and dampening == 0, got "
                f"momentum={group['momentum']!r}, dampening={group['dampening']!r}"
            )

    def _check_grad(self, param, grad, group, where) -> None:
        if group["momentum"] != 0 or group["weight_decay"] != 0:
            self.refuse_row_sparse(
                grad, where,
                f"with momentum={group['momentum']!r}, weight_decay={group['weight_decay']!r} "
                "(they move rows the gradient does not touch)",
            )

    def _state_spec(self, param, group) -> dict:
        return {"momentum_buffer": (param.shape, param.dtype)} if group["momentum"] != 0 else {}

    def _update(self, param, grad, state, group) -> None:
        if isinstance(grad, RowSparseGrad):
            sgd_sparse_step(param.data, grad, lr=group["lr"], maximize=group["maximize"])
            return
        buf = sgd_step(param.data, grad, state.get("momentum_buffer"), lr=group["lr"],
                       momentum=group["momentum"], dampening=group["dampening"],
                       weight_decay=group["weight_decay"], nesterov=group["nesterov"],
                       maximize=group["maximize"])
        if buf is not None:
            state["momentum_buffer"] = buf
