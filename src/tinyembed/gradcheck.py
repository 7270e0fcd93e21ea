"""Finite-difference gradient checking: the test every differentiable op must pass."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .sparse import RowSparseGrad
from .tensor import Tensor

__all__ = ["numerical_grad", "gradcheck"]


def numerical_grad(fn: Callable[[], Tensor], x: np.ndarray, weights: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central-difference gradient of ``sum(fn() * weights)`` w.r.t. the array ``x``.

    ``x`` is perturbed in place (and restored), so ``fn`` must read it afresh.
    """
    grad = np.zeros(x.shape, dtype=np.float64)
    # Index x itself: x.reshape(-1) copies a non-contiguous x, and the perturbation would be lost.
    for i in np.ndindex(x.shape):
        orig = x[i]
        x[i] = orig + eps
        plus = float(np.sum(fn().data * weights))
        x[i] = orig - eps
        minus = float(np.sum(fn().data * weights))
        x[i] = orig
        grad[i] = (plus - minus) / (2 * eps)
    return grad


def gradcheck(fn: Callable[..., Tensor], inputs: Sequence[Tensor], eps: float = 1e-6,
              atol: float = 1e-6, rtol: float = 1e-5, seed: int = 0) -> bool:
    """Compare autograd with central differences for every input that requires grad.

    The output is contracted with fixed random weights, so every output element
    takes part. All inputs must be float64: float32 differences are too coarse.

    Returns True, or raises AssertionError naming the input and the worst element.
    """
    for t in inputs:
        if t.requires_grad and t.dtype != np.float64:
            raise TypeError(f"gradcheck needs float64 inputs, got {t.dtype}")
    out = fn(*inputs)
    weights = np.random.default_rng(seed).standard_normal(out.shape)
    for t in inputs:
        t.grad = None
    (out * Tensor(weights, dtype=np.float64)).sum().backward()
    for k, t in enumerate(inputs):
        if not t.requires_grad:
            continue
        analytic = t.grad.to_dense() if isinstance(t.grad, RowSparseGrad) else t.grad
        if analytic is None:
            analytic = np.zeros_like(t.data)
        if analytic.shape != t.shape:  # allclose would broadcast a wrongly shaped gradient
            raise AssertionError(f"gradient of input {k} has shape {analytic.shape}, expected {t.shape}")
        numeric = numerical_grad(lambda: fn(*inputs), t.data, weights, eps)
        if not np.allclose(analytic, numeric, atol=atol, rtol=rtol):
            i = np.unravel_index(np.argmax(np.abs(analytic - numeric)), numeric.shape)
            raise AssertionError(
                f"gradient of input {k} differs at {i}: autograd {analytic[i]!r}, "
                f"finite differences {numeric[i]!r}"
            )
    return True
