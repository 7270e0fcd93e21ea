"""Thin layers: each owns its parameters and configuration and calls :mod:`.functional`."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..checks import check_float_dtype, check_positive_int, check_probability
from ..tensor import Tensor
from . import functional as F
from .module import Module, Parameter

__all__ = ["Linear", "LayerNorm", "Dropout"]

class Linear(Module):
    """Affine map ``y = x @ weight.T + bias``.

    Weight and bias are drawn from U(-1/sqrt(in_features), 1/sqrt(in_features)), as in PyTorch.

    Args:
        in_features: size of each input row (> 0).
        out_features: size of each output row (> 0).
        bias: learn an additive bias.
        dtype: float32 or float64.
        seed: seed of the ``np.random.default_rng`` used for initialization.

    Shape:
        input (*, in_features) -> output (*, out_features).
        weight (out_features, in_features); bias (out_features,).

    Examples:
        >>> layer = Linear(4, 3, seed=0)
        >>> x = Tensor(np.ones((2, 4), dtype=np.float32))
        >>> layer(x).shape
        (2, 3)
        >>> np.allclose(layer(x).numpy(), x.numpy() @ layer.weight.numpy().T + layer.bias.numpy())
        True
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype=np.float32, seed=None):
        super().__init__()
        self.in_features = check_positive_int(in_features, "in_features")
        self.out_features = check_positive_int(out_features, "out_features")
        dtype = check_float_dtype(dtype)
        rng = np.random.default_rng(seed)
        bound = 1.0 / math.sqrt(self.in_features)
        self.weight = Parameter(rng.uniform(-bound, bound, (self.out_features, self.in_features)), dtype=dtype)
        self.bias = Parameter(rng.uniform(-bound, bound, self.out_features), dtype=dtype) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class LayerNorm(Module):
    """Layer normalization over the trailing ``normalized_shape`` dimensions.

    Args:
        normalized_shape: int or tuple of positive ints.
        eps: added to the (biased) variance; >= 0.
        elementwise_affine: learn ``weight`` (init 1) and ``bias`` (init 0) of shape ``normalized_shape``.
        dtype: float32 or float64.

    Shape:
        input (*, *normalized_shape) -> output of the same shape.

    Examples:
        >>> norm = LayerNorm(4)
        >>> norm(Tensor([[1.0, 2.0, 3.0, 4.0]]))
        tensor([[-1.3416, -0.4472,  0.4472,  1.3416]], requires_grad=True)
    """

    def __init__(self, normalized_shape: int | Sequence[int], eps: float = 1e-5,
                 elementwise_affine: bool = True, dtype=np.float32):
        super().__init__()
        # np.isscalar is the test (ints pass it too); the isinstance lets mypy see the else branch has a sequence.
        if isinstance(normalized_shape, int) or np.isscalar(normalized_shape):
            shape: tuple[object, ...] = (normalized_shape,)  # entries checked below
        else:
            shape = tuple(normalized_shape)
        if not shape:
            raise ValueError("normalized_shape must name at least one dimension, got ()")
        self.normalized_shape = tuple(check_positive_int(n, "normalized_shape entry") for n in shape)
        if not eps >= 0:  # also rejects nan
            raise ValueError(f"eps must be >= 0, got {eps!r}")
        self.eps = eps
        self.elementwise_affine = bool(elementwise_affine)
        dtype = check_float_dtype(dtype)
        if self.elementwise_affine:
            self.weight: Parameter | None = Parameter(np.ones(self.normalized_shape), dtype=dtype)
            self.bias: Parameter | None = Parameter(np.zeros(self.normalized_shape), dtype=dtype)
        else:
            self.weight = None
            self.bias = None

    def forward(self, x: Tensor) -> Tensor:
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class Dropout(Module):
    """Inverted dropout while training; the identity in eval mode.

    Args:
        p: drop probability in [0, 1].
        seed: seed of the layer's own ``np.random.default_rng``; each call draws a new mask
            from it, so a given seed reproduces the whole sequence of masks.

    Shape:
        any -> same shape.

    Examples:
        >>> drop = Dropout(0.5, seed=0)
        >>> x = Tensor(np.ones(6, dtype=np.float32))
        >>> drop(x)
        tensor([2., 0., 0., 0., 2., 2.])
        >>> drop.eval()(x) is x
        True
    """

    def __init__(self, p: float = 0.5, seed=None):
        super().__init__()
        self.p = check_probability(p, "dropout probability")
        self.rng = np.random.default_rng(seed)

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training, self.rng)

    def extra_repr(self) -> str:
        return f"p={self.p}"
