"""Adam, AdamW and SparseAdam, with torch.optim 2.13's formulas.

Adam and AdamW are dense: every element's moments and weight move every step.
SparseAdam is lazy: a row-sparse gradient moves only its rows' moments and
weights, which is what makes Adam affordable on a large embedding table.

Numerics: PyTorch's CPU kernels fuse multiply-adds (``add(alpha=)``, ``addcmul``,
``lerp``) where the CPU has FMA; NumPy rounds the product and the sum separately.
Trajectories agree to a few ulps, except where Adam itself amplifies rounding:
with β2 = 0 the step is m / |g|, and a gradient that cancels to about 0 (for
example against its L2 term) turns one ulp into a large relative difference.
"""

from __future__ import annotations

import math

import numpy as np

from ..checks import check_betas, check_hyperparameter
from ..kernels.threads import chunks, run_chunks
from ..sparse import RowSparseGrad
from .optimizer import Optimizer

__all__ = ["Adam", "AdamW", "SparseAdam", "adam_step", "sparse_adam_step"]


def _lerp_(start: np.ndarray, end: np.ndarray, weight: float, scratch: np.ndarray) -> None:
    """``start += weight * (end - start)`` in place, in PyTorch's two-branch form (``scratch``: a buffer
    of start's shape).

    torch.lerp uses the other end for weights >= 0.5, which is more accurate there;
    doing the same keeps float32 trajectories within rounding of PyTorch's.
    """
    w = start.dtype.type(weight)
    np.subtract(end, start, out=scratch)
    if abs(w) < 0.5:
        scratch *= w
        start += scratch
    else:
        scratch *= start.dtype.type(1) - w
        np.subtract(end, scratch, out=start)


# Elements updated at a time: every array's block stays in cache between the formula's passes.
_BLOCK_ELEMENTS = 1 << 14


def adam_step(param: np.ndarray, grad: np.ndarray, exp_avg: np.ndarray, exp_avg_sq: np.ndarray,
              max_exp_avg_sq: np.ndarray | None, step: int, *, lr: float, beta1: float, beta2: float,
              eps: float, weight_decay: float, decoupled_weight_decay: bool, maximize: bool) -> None:
    """One Adam / AdamW step on ``param`` and its moments, in place.

    ``step`` is the count including this step (1 on the first). As in PyTorch::

        m = lerp(m, g, 1 - β1);  v = β2 v + (1 - β2) g²;  (amsgrad: v̂ = max(v̂, v))
        θ -= lr / (1 - β1^t) · m / (sqrt(v) / sqrt(1 - β2^t) + eps)

    The formula runs on blocks of a few thousand elements, each finished while it is in cache, one
    contiguous share of the blocks per thread (NumPy releases the GIL): a large table is read and
    written once a step instead of once per operation. Every operation is the one the formula
    names, in its order, so the result is the same to the bit as the whole-array form.
    """
    arrays = [param, grad, exp_avg, exp_avg_sq] + ([] if max_exp_avg_sq is None else [max_exp_avg_sq])
    if not all(a.flags.c_contiguous for a in arrays):  # the flat blocks below must be views
        _adam_block(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr=lr, beta1=beta1, beta2=beta2,
                    eps=eps, weight_decay=weight_decay, decoupled_weight_decay=decoupled_weight_decay,
                    maximize=maximize)
        return
    flat = [a.reshape(-1) for a in arrays]
    p, g, m, v = flat[:4]
    vmax = flat[4] if max_exp_avg_sq is not None else None

    def work(a: int, b: int) -> None:
        for i in range(a, b, _BLOCK_ELEMENTS):
            j = min(i + _BLOCK_ELEMENTS, b)
            _adam_block(p[i:j], g[i:j], m[i:j], v[i:j], None if vmax is None else vmax[i:j], step, lr=lr,
                        beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay,
                        decoupled_weight_decay=decoupled_weight_decay, maximize=maximize)

    run_chunks(work, chunks(p.size, p.itemsize))


def _adam_block(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, *, lr, beta1, beta2, eps,
                weight_decay, decoupled_weight_decay, maximize) -> None:
    """:func:`adam_step`'s formula on arrays of one shape, with two scratch buffers and no other temporaries."""
    scratch, update = np.empty_like(param), np.empty_like(param)
    g = np.negative(grad) if maximize else grad
    if weight_decay != 0:
        if decoupled_weight_decay:
            param *= 1 - lr * weight_decay  # AdamW: decay the weight, not the gradient
        else:  # Adam: L2 penalty in the gradient (update is free until the last step)
            g = np.add(g, np.multiply(param, weight_decay, out=update), out=update)
    _lerp_(exp_avg, g, 1 - beta1, scratch)
    exp_avg_sq *= beta2
    np.multiply(g, 1 - beta2, out=scratch)
    scratch *= g
    exp_avg_sq += scratch
    bias_correction1 = 1 - beta1**step
    bias_correction2_sqrt = (1 - beta2**step) ** 0.5
    if max_exp_avg_sq is not None:
        np.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        second = max_exp_avg_sq
    else:
        second = exp_avg_sq
    denom = np.sqrt(second, out=scratch)
    denom /= bias_correction2_sqrt
    denom += eps  # eps outside the bias correction
    np.multiply(exp_avg, -lr / bias_correction1, out=update)
    update /= denom
    param += update


def sparse_adam_step(param: np.ndarray, grad: RowSparseGrad, exp_avg: np.ndarray, exp_avg_sq: np.ndarray,
                     step: int, *, lr: float, beta1: float, beta2: float, eps: float, maximize: bool) -> None:
    """One lazy Adam step: only the gradient's rows of the moments and weights move.

    PyTorch's ``torch/optim/_functional.py::sparse_adam``, on the coalesced rows::

        m_r += (1 - β1)(g_r - m_r);  v_r += (1 - β2)(g_r² - v_r)
        θ_r -= lr · sqrt(1 - β2^t) / (1 - β1^t) · m_r / (sqrt(v_r) + eps)

    Note eps is added to sqrt(v) *before* the bias correction is folded into the
    step size (unlike Adam, where it is added after). An empty gradient changes
    nothing (but the caller has already counted the step, as PyTorch does).
    """
    if grad.nnz_rows == 0:
        return
    rows = grad.indices
    g = -grad.values if maximize else grad.values  # (k, D)
    old_exp_avg = exp_avg[rows]
    exp_avg_update = (g - old_exp_avg) * (1 - beta1)
    exp_avg[rows] = old_exp_avg + exp_avg_update
    old_exp_avg_sq = exp_avg_sq[rows]
    exp_avg_sq_update = (g**2 - old_exp_avg_sq) * (1 - beta2)
    exp_avg_sq[rows] = old_exp_avg_sq + exp_avg_sq_update
    numer = exp_avg_update + old_exp_avg
    denom = np.sqrt(exp_avg_sq_update + old_exp_avg_sq) + eps
    step_size = lr * math.sqrt(1 - beta2**step) / (1 - beta1**step)
    param[rows] += -step_size * (numer / denom)  # rows are unique, so fancy += is exact


class Adam(Optimizer):
    """Adam, exactly torch.optim.Adam (single-tensor CPU path).

    Args:
        params: iterable of Parameters or of param-group dicts.
        lr: learning rate (default 1e-3).
        betas: decay rates (β1, β2) of the first and second moments (default (0.9, 0.999)).
        eps: added to the bias-corrected sqrt of the second moment (default 1e-8).
        weight_decay: L2 penalty added to the gradient (default 0).
        amsgrad: normalize by the running maximum of the second moment.
        maximize: ascend the objective instead.
        decoupled_weight_decay: decay the weights directly (AdamW) instead of the gradient.

    Dense gradients only: a RowSparseGrad is refused (use SparseAdam or
    RowWiseAdagrad, or ``sparse=False`` in the embedding).

    State:
        ``step`` (int), ``exp_avg``, ``exp_avg_sq`` and, with amsgrad, ``max_exp_avg_sq``
        (each the shape of the parameter).

    Examples:
        >>> from tinyembed.nn import Parameter
        >>> w = Parameter([1.0, -2.0])
        >>> opt = Adam([w], lr=0.1)
        >>> (w * w).sum().backward(); opt.step()  # first step: lr against the gradient's sign
        >>> np.round(w.numpy(), 4)
        array([ 0.9, -1.9], dtype=float32)
    """

    _OPTION_KINDS = {"lr": "float", "betas": "betas", "eps": "float", "weight_decay": "float",
                     "amsgrad": "bool", "maximize": "bool", "decoupled_weight_decay": "bool"}

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, amsgrad: bool = False, *,
                 maximize: bool = False, decoupled_weight_decay: bool = False):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        maximize=maximize, decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def _check_options(self, group: dict) -> None:
        check_hyperparameter(self._name, "lr", group["lr"], what="learning rate")
        check_hyperparameter(self._name, "eps", group["eps"])
        check_betas(self._name, group["betas"])
        check_hyperparameter(self._name, "weight_decay", group["weight_decay"])

    def _check_grad(self, param, grad, group, where) -> None:
        self.refuse_row_sparse(grad, where)

    def _state_spec(self, param, group) -> dict:
        spec = {"step": int, "exp_avg": (param.shape, param.dtype), "exp_avg_sq": (param.shape, param.dtype)}
        if group["amsgrad"]:
            spec["max_exp_avg_sq"] = (param.shape, param.dtype)
        return spec

    def _update(self, param, grad, state, group) -> None:
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(param.data)
            state["exp_avg_sq"] = np.zeros_like(param.data)
        if group["amsgrad"] and "max_exp_avg_sq" not in state:
            state["max_exp_avg_sq"] = np.zeros_like(param.data)
        state["step"] += 1
        beta1, beta2 = group["betas"]
        adam_step(param.data, grad, state["exp_avg"], state["exp_avg_sq"],
                  state["max_exp_avg_sq"] if group["amsgrad"] else None, state["step"],
                  lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"],
                  weight_decay=group["weight_decay"],
                  decoupled_weight_decay=group["decoupled_weight_decay"], maximize=group["maximize"])


class AdamW(Adam):
    """Adam with decoupled weight decay, exactly torch.optim.AdamW: ``θ *= 1 - lr·λ`` before the Adam step.

    Args: as :class:`Adam`, with ``weight_decay`` defaulting to 1e-2 and always decoupled.
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False, *,
                 maximize: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         decoupled_weight_decay=True)

    def _check_options(self, group: dict) -> None:
        super()._check_options(group)
        if not group["decoupled_weight_decay"]:
            raise ValueError("AdamW: decoupled_weight_decay=False is Adam; use Adam for an L2 penalty")


class SparseAdam(Optimizer):
    """Lazy Adam for row-sparse gradients, exactly torch.optim.SparseAdam.

    Only the rows present in a gradient have their moments and weights updated;
    every other row is left exactly as it was. The moments are dense (the shape
    of the parameter). The bias correction uses one step counter per parameter,
    counted every step the parameter has a gradient, even for rows that did not
    appear in it (PyTorch's choice: it is not a per-row count).

    Args:
        params: iterable of Parameters or of param-group dicts.
        lr: learning rate (default 1e-3); must be > 0, as in PyTorch.
        betas: (β1, β2) (default (0.9, 0.999)).
        eps: added to sqrt(v) (default 1e-8); must be > 0, as in PyTorch.
        maximize: ascend the objective instead.

    Dense gradients are refused: use :class:`Adam` for those.

    State:
        ``step`` (int), ``exp_avg``, ``exp_avg_sq`` (each the shape of the parameter).

    Examples:
        >>> from tinyembed.nn import Embedding
        >>> emb = Embedding(4, 2, sparse=True, seed=0)
        >>> w0, opt = np.array(emb.weight), SparseAdam(emb.parameters(), lr=0.1)
        >>> emb([1, 3]).sum().backward(); opt.step()  # only rows 1 and 3 move
        >>> np.round(w0 - np.array(emb.weight), 4)
        array([[0. , 0. ],
               [0.1, 0.1],
               [0. , 0. ],
               [0.1, 0.1]], dtype=float32)
    """

    _OPTION_KINDS = {"lr": "float", "betas": "betas", "eps": "float", "maximize": "bool"}

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, maximize: bool = False):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, maximize=maximize))

    def _check_options(self, group: dict) -> None:
        check_hyperparameter("SparseAdam", "lr", group["lr"], strict=True, what="learning rate")
        check_hyperparameter("SparseAdam", "eps", group["eps"], strict=True)
        check_betas("SparseAdam", group["betas"])

    def _check_grad(self, param, grad, group, where) -> None:
        if not isinstance(grad, RowSparseGrad):
            raise RuntimeError(
                f"SparseAdam does not support dense gradients, but {where} has a dense gradient "
                f"of shape {grad.shape}: use Adam for dense parameters, or build the embedding "
                "with sparse=True"
            )

    def _state_spec(self, param, group) -> dict:
        return {"step": int, "exp_avg": (param.shape, param.dtype), "exp_avg_sq": (param.shape, param.dtype)}

    def _update(self, param, grad, state, group) -> None:
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(param.data)
            state["exp_avg_sq"] = np.zeros_like(param.data)
        state["step"] += 1
        beta1, beta2 = group["betas"]
        sparse_adam_step(param.data, grad, state["exp_avg"], state["exp_avg_sq"], state["step"],
                         lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"],
                         maximize=group["maximize"])
