"""Optimizers: update rules that move parameters in place from their gradients.

    Optimizer       base: param groups, per-parameter state, step, zero_grad, state dicts
    SGD             (momentum, Nesterov, weight decay); row-sparse grads without momentum
    Adam, AdamW     dense Adam, L2 or decoupled weight decay
    SparseAdam      lazy Adam for row-sparse embedding gradients
    RowWiseAdagrad  one accumulator per embedding row (FBGEMM's EXACT_ROWWISE_ADAGRAD)

Names, argument orders, defaults and formulas are PyTorch 2.13's
(RowWiseAdagrad: FBGEMM's). Each module also exposes its functional form
(``sgd_step``, ``adam_step``, ``sparse_adam_step``, ``rowwise_adagrad_step``).
"""

from .adagrad import RowWiseAdagrad, rowwise_adagrad_step
from .adam import Adam, AdamW, SparseAdam, adam_step, sparse_adam_step
from .optimizer import Optimizer
from .sgd import SGD, sgd_sparse_step, sgd_step

__all__ = [
    "Optimizer", "SGD", "Adam", "AdamW", "SparseAdam", "RowWiseAdagrad",
    "sgd_step", "sgd_sparse_step", "adam_step", "sparse_adam_step", "rowwise_adagrad_step",
]
