"""Weight initializers.

An initializer is a callable ``(shape, rng, dtype) -> ndarray``. The functions
here build them with their hyper-parameters, so a layer takes either a name
(``'normal'``) or a configured initializer (``init.normal(std=0.02)``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

Initializer = Callable[[tuple, np.random.Generator, np.dtype], np.ndarray]

__all__ = ["normal", "uniform", "xavier_uniform", "get", "Initializer"]


def normal(mean: float = 0.0, std: float = 1.0) -> Initializer:
    """N(mean, std^2): PyTorch's embedding default (std=1); GPT-2 uses std=0.02."""
    if std <= 0:
        raise ValueError(f"std must be > 0, got {std}")
    return lambda shape, rng, dtype: rng.normal(mean, std, size=shape).astype(dtype)


def uniform(a: float = 0.0, b: float = 1.0) -> Initializer:
    """U(a, b), with torch.nn.init.uniform_'s defaults."""
    if not b > a:
        raise ValueError(f"uniform needs a < b, got a={a}, b={b}")
    return lambda shape, rng, dtype: rng.uniform(a, b, size=shape).astype(dtype)


def xavier_uniform(gain: float = 1.0) -> Initializer:
    """U(-r, r) with r = gain * sqrt(6 / (fan_in + fan_out)), fans from a 2-D (fan_out, fan_in) shape."""

    def init(shape, rng, dtype):
        fan_out, fan_in = shape[0], int(np.prod(shape[1:]))
        bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-bound, bound, size=shape).astype(dtype)

    return init


# Factories called with no arguments: each hyper-parameter has a default.
_NAMED: dict[str, Callable[[], Initializer]] = {"normal": normal, "uniform": uniform, "xavier_uniform": xavier_uniform}


def get(init: str | Initializer) -> Initializer:
    """Resolve a name (with default hyper-parameters) or pass a configured initializer through."""
    if callable(init):
        return init
    if init not in _NAMED:
        raise ValueError(f"unknown initializer {init!r}; choose from {sorted(_NAMED)} or pass a callable")
    return _NAMED[init]()
