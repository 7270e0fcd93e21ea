"""One shard: a block of a table's rows and columns, its optimizer state, and its update.

The update is fused into the shard, as in TorchRec: the shard receives its rows of the
coalesced gradient and applies :mod:`tinyembed.optim`'s functional step to them, so a
row is updated by the very arithmetic one in-process table would use on it. Each
optimizer is a name, an initial state and a step function, registered in
:data:`OPTIMIZERS`; its hyper-parameters and their defaults are the optim class's own
(:func:`optimizer_options`).

The one exception is row-wise Adagrad on a column slice: its per-row statistic, the
mean of the squared gradient over all D columns, spans the slices. The caller computes it
over the whole row (or sums :meth:`TableShard.square_sums` of every slice) and hands it
to the step, so a column-sharded table still follows FBGEMM's rule exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..checks import check_float_dtype
from ..nn import Parameter
from ..optim import SGD, Optimizer, RowWiseAdagrad, SparseAdam, rowwise_adagrad_step, sgd_sparse_step, sparse_adam_step
from ..sparse import RowSparseGrad

__all__ = ["OPTIMIZERS", "OptimizerSpec", "TableShard", "optimizer_options", "rowwise_adagrad_slice_step"]


def rowwise_adagrad_slice_step(param: np.ndarray, rows: np.ndarray, grad_rows: np.ndarray, accumulator: np.ndarray,
                               mean_sq: np.ndarray, *, lr: float, eps: float, weight_decay: float) -> None:
    """:func:`tinyembed.optim.rowwise_adagrad_step` on a column slice of the rows, in place.

    Args:
        param: (V_s, D_s) the slice; rows: (k,) unique local rows; grad_rows: (k, D_s).
        accumulator: (V_s,) float32, this slice's copy of the per-row sums (every slice
            of a row holds the same value).
        mean_sq: (k,) the mean of ``(g + weight_decay * w)**2`` over the row's *whole* width.

    The rest is the optimizer's rule: ``acc[r] += mean_sq``, ``w_r -= lr * g_r / (sqrt(acc[r]) + eps)``,
    a row whose accumulator is 0 not moving.
    """
    if grad_rows.size == 0:
        return
    w = param[rows]  # (k, D_s)
    g = grad_rows + weight_decay * w if weight_decay != 0 else grad_rows
    accumulator[rows] += mean_sq  # rows are unique, so fancy += is exact
    denom = np.sqrt(accumulator[rows].astype(param.dtype, copy=False)) + eps  # (k,)
    multiplier = np.divide(lr, denom, out=np.zeros_like(denom), where=denom > 0)
    param[rows] = w - multiplier[:, None] * g


# -- the optimizers: initial state and the step of one shard -----------------------------------
def _no_state(shape: tuple[int, int], dtype: np.dtype, options: dict) -> dict[str, Any]:
    return {}


def _adam_state(shape: tuple[int, int], dtype: np.dtype, options: dict) -> dict[str, Any]:
    return {"step": 0, "exp_avg": np.zeros(shape, dtype), "exp_avg_sq": np.zeros(shape, dtype)}


def _adagrad_state(shape: tuple[int, int], dtype: np.dtype, options: dict) -> dict[str, Any]:
    return {"sum": np.full(shape[0], options["initial_accumulator_value"], dtype=np.float32)}


def _sgd_step(weight, state, rows, grad, options, mean_sq) -> None:
    sgd_sparse_step(weight, RowSparseGrad(rows, grad, weight.shape), lr=options["lr"], maximize=options["maximize"])


def _sparse_adam_step(weight, state, rows, grad, options, mean_sq) -> None:
    state["step"] += 1  # every shard counts every step, rows or not, as SparseAdam counts the table's
    beta1, beta2 = options["betas"]
    sparse_adam_step(weight, RowSparseGrad(rows, grad, weight.shape), state["exp_avg"], state["exp_avg_sq"],
                     state["step"], lr=options["lr"], beta1=beta1, beta2=beta2, eps=options["eps"],
                     maximize=options["maximize"])


def _rowwise_adagrad_step(weight, state, rows, grad, options, mean_sq) -> None:
    if mean_sq is None:  # the shard holds whole rows: the optimizer's own step
        rowwise_adagrad_step(weight, rows, grad, state["sum"], lr=options["lr"], eps=options["eps"],
                             weight_decay=options["weight_decay"])
    else:
        rowwise_adagrad_slice_step(weight, rows, grad, state["sum"], mean_sq, lr=options["lr"], eps=options["eps"],
                                   weight_decay=options["weight_decay"])


_StateFn = Callable[[tuple[int, int], np.dtype, dict], dict[str, Any]]
_StepFn = Callable[..., None]


@dataclass(frozen=True)
class OptimizerSpec:
    """An optimizer a shard runs: the class whose hyper-parameters and defaults it takes, its
    initial state, its step, and whether its state has one value per row (not per element)."""

    cls: type[Optimizer]
    initial_state: _StateFn
    step: _StepFn
    row_statistic: bool = False  # the step needs a statistic of the whole row (column slices exchange it)


# Name -> spec. Adding an optimizer is one function pair and one entry.
OPTIMIZERS: dict[str, OptimizerSpec] = {
    "sgd": OptimizerSpec(SGD, _no_state, _sgd_step),
    "sparse_adam": OptimizerSpec(SparseAdam, _adam_state, _sparse_adam_step),
    "rowwise_adagrad": OptimizerSpec(RowWiseAdagrad, _adagrad_state, _rowwise_adagrad_step, row_statistic=True),
}


def optimizer_options(name: str, embedding_dim: int, dtype, options: dict) -> dict[str, Any]:
    """The full hyper-parameters of optimizer ``name``: those given, and tinyembed.optim's defaults.

    The optim class checks them itself, on a one-row stand-in given an empty row-sparse
    gradient: a bad value, an unknown keyword, or a setting that cannot take row-sparse
    gradients (SGD with momentum or weight decay) is refused here, before any shard exists.

    Returns:
        JSON-friendly options (``betas`` a list).
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(repr(n) for n in OPTIMIZERS)}, got {name!r}")
    dtype = check_float_dtype(dtype)
    stand_in = Parameter(np.zeros((1, embedding_dim), dtype=dtype))
    try:
        optimizer = OPTIMIZERS[name].cls([stand_in], **options)
    except TypeError as e:  # an unknown keyword: say which optimizer refused it
        raise TypeError(f"optimizer {name!r}: {e}") from None
    stand_in.grad = RowSparseGrad.empty((1, embedding_dim), dtype)
    try:
        optimizer.step()
    except RuntimeError as e:  # refused a row-sparse gradient: the sharded table only has those
        raise ValueError(f"optimizer {name!r} cannot update a sharded table, whose gradients are row-sparse: "
                         f"{e}") from None
    return {k: list(v) if isinstance(v, tuple) else v for k, v in optimizer.defaults.items()}


class TableShard:
    """A (rows, cols) block of one table with its optimizer's state.

    Args:
        num_rows, num_cols: the block's shape.
        dtype: float32 or float64.
        optimizer: a name of :data:`OPTIMIZERS`; options: its full hyper-parameters
            (:func:`optimizer_options`).

    Attributes:
        weight: (num_rows, num_cols) array; state: the optimizer's arrays and counters.
    """

    def __init__(self, num_rows: int, num_cols: int, dtype, optimizer: str, options: dict):
        self.spec = OPTIMIZERS[optimizer]
        self.optimizer = optimizer
        self.options = dict(options)
        self.weight = np.zeros((num_rows, num_cols), dtype=np.dtype(dtype))
        self.state = self.spec.initial_state(self.weight.shape, self.weight.dtype, self.options)

    def arrays(self) -> dict[str, np.ndarray]:
        """The weight and the state's arrays, by name (what a checkpoint stores)."""
        return {"weight": self.weight, **{k: v for k, v in self.state.items() if isinstance(v, np.ndarray)}}

    def counters(self) -> dict[str, int]:
        """The state's counters (SparseAdam's ``step``)."""
        return {k: int(v) for k, v in self.state.items() if not isinstance(v, np.ndarray)}

    def write(self, local_rows: np.ndarray, arrays: dict[str, np.ndarray], counters: dict[str, int]) -> None:
        """Set rows of the weight and state arrays (initial values, or a checkpoint's)."""
        own = self.arrays()
        unknown = sorted(set(arrays) - set(own))
        if unknown:
            raise ValueError(f"a {self.optimizer} shard holds {sorted(own)}, not {unknown}")
        for name, values in arrays.items():
            own[name][local_rows] = values  # a copy: values may be read-only views of the object store
        for name, value in counters.items():
            self.state[name] = int(value)

    def lookup(self, local_rows: np.ndarray) -> np.ndarray:
        """(k, num_cols): the rows at ``local_rows``."""
        return self.weight[local_rows]

    def square_sums(self, local_rows: np.ndarray, grad: np.ndarray) -> np.ndarray:
        """(k,) float64: this slice's share of ``sum((g + weight_decay * w)**2)`` over the row."""
        g = grad + self.options["weight_decay"] * self.weight[local_rows] if self.options["weight_decay"] else grad
        return np.sum(np.square(g, dtype=np.float64), axis=1)

    def step(self, local_rows: np.ndarray, grad: np.ndarray, options: dict, mean_sq: np.ndarray | None) -> None:
        """Apply the optimizer to ``local_rows`` ((k,) unique) with their gradient ``grad`` (k, num_cols).

        ``options`` are the table's current hyper-parameters (the learning rate may change
        between steps); ``mean_sq`` is the whole-row statistic of a column slice's row-wise
        Adagrad (None otherwise).
        """
        self.options = dict(options)
        self.spec.step(self.weight, self.state, local_rows, grad, self.options, mean_sq)
