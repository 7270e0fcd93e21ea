"""Differentiable functions on Tensors, with PyTorch's names and argument orders.

Each function computes its forward in NumPy and, right beside it, a ``backward``
closure that maps the output's gradient to one gradient per input; the output is
built with :meth:`Tensor._from_op`. Modules (:mod:`tinyembed.nn.layers`,
:mod:`tinyembed.nn.embedding`) and trainable tables own the parameters and call these
functions; the lookups run the kernels of :mod:`tinyembed.kernels`.

Numerics:
    * softmax / log_softmax / cross_entropy subtract the row maximum before
      exponentiating, so no logit overflows ``exp``.
    * gelu is computed in float64 and cast back, so float32 results are
      correctly rounded; the exact form uses ``math.erfc`` element by element
      (NumPy has no erf), which is accurate to about one ulp.
    * Gradients always have the dtype of the input they belong to.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .. import kernels
from ..checks import FLOAT_DTYPES, check_padding_idx
from ..kernels.threads import CHUNK_BYTES, chunks, run_chunks
from ..sparse import RowSparseGrad
from ..tensor import Tensor, is_grad_enabled

__all__ = [
    "embedding",
    "embedding_bag",
    "embedding_add",
    "linear",
    "gelu",
    "softmax",
    "log_softmax",
    "cross_entropy",
    "layer_norm",
    "dropout",
    "relu",
    "tanh",
    "sigmoid",
]



# -- validation -------------------------------------------------------------------------
def _check_float_tensor(t, name: str) -> None:
    if not isinstance(t, Tensor):
        raise TypeError(f"{name} must be a Tensor, got {type(t).__name__}")
    if t.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be float32 or float64, got {t.dtype}")


def _check_same_dtype(x: Tensor, **others) -> None:
    for name, t in others.items():
        if t is not None and t.dtype != x.dtype:
            raise TypeError(f"{name} has dtype {t.dtype} but the input has dtype {x.dtype}")


def _normalize_dim(dim: int, ndim: int) -> int:
    if not -ndim <= dim < ndim:
        raise IndexError(f"dim {dim} is out of range for a tensor with {ndim} dimensions")
    return dim % ndim


def _log_softmax_array(x: np.ndarray, axis: int) -> np.ndarray:
    """``x - logsumexp(x)`` along ``axis``, shifted by the maximum so exp never overflows."""
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def _exp_shifted(z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(exp(z - row max), row max, row sums of the exponentials) of z (M, C): (M, C), (M, 1), (M, 1).

    A language model's logits are the largest array of its step (batch x vocabulary): each block of
    rows is reduced, shifted, exponentiated and summed while it is in cache (one pass over memory,
    not four), and each thread takes one contiguous share of the rows (NumPy releases the GIL).
    """
    rows, width = z.shape
    e = np.empty(z.shape, dtype=z.dtype)
    row_max = np.empty((rows, 1), dtype=z.dtype)
    sum_e = np.empty((rows, 1), dtype=z.dtype)
    block = max(1, CHUNK_BYTES // max(1, width * z.itemsize))

    def work(a: int, b: int) -> None:
        for i in range(a, b, block):
            j = min(i + block, b)
            np.max(z[i:j], axis=1, keepdims=True, out=row_max[i:j])
            np.subtract(z[i:j], row_max[i:j], out=e[i:j])
            np.exp(e[i:j], out=e[i:j])
            np.sum(e[i:j], axis=1, keepdims=True, out=sum_e[i:j])

    run_chunks(work, chunks(rows, width * z.itemsize))
    return e, row_max, sum_e


def _scale_rows(x: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``x * scale`` for x (M, C) and scale (M, 1), one contiguous share of the rows per thread."""
    out = np.empty(x.shape, dtype=x.dtype)

    def work(a: int, b: int) -> None:
        np.multiply(x[a:b], scale[a:b], out=out[a:b])

    run_chunks(work, chunks(x.shape[0], x.shape[1] * x.itemsize))
    return out


# -- linear -----------------------------------------------------------------------------
def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``y = x @ weight.T + bias``.

    Args:
        x: input features.
        weight: (out_features, in_features), as in PyTorch.
        bias: optional (out_features,).

    Shape:
        x (*, in_features) -> (*, out_features); all three share one float dtype.

    Examples:
        >>> linear(Tensor([[1.0, 2.0]]), Tensor([[1.0, 1.0], [0.0, 1.0]]), Tensor([0.5, 0.0]))
        tensor([[3.5, 2. ]])
    """
    _check_float_tensor(x, "x")
    _check_float_tensor(weight, "weight")
    if bias is not None:
        _check_float_tensor(bias, "bias")
    _check_same_dtype(x, weight=weight, bias=bias)
    if weight.ndim != 2:
        raise ValueError(f"weight must be 2-D (out_features, in_features), got shape {weight.shape}")
    out_features, in_features = weight.shape
    if x.ndim == 0 or x.shape[-1] != in_features:
        raise ValueError(f"x has shape {x.shape}, expected (*, {in_features}) for weight of shape {weight.shape}")
    if bias is not None and bias.shape != (out_features,):
        raise ValueError(f"bias has shape {bias.shape}, expected ({out_features},)")

    xd, w = x.data, weight.data
    y = xd @ w.T  # (*, out)
    if bias is not None:
        y = y + bias.data

    def backward(g):
        g2 = g.reshape(-1, out_features)  # (M, out)
        gx = g @ w  # (*, in)
        gw = g2.T @ xd.reshape(-1, in_features)  # (out, in)
        if bias is None:
            return gx, gw
        return gx, gw, g2.sum(axis=0)

    parents = (x, weight) if bias is None else (x, weight, bias)
    return Tensor._from_op(y, parents, backward, "linear")


# -- activations --------------------------------------------------------------------------
_erfc = np.frompyfunc(math.erfc, 1, 1)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_GELU_TANH_COEF = 0.044715


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """Gaussian error linear unit, ``x * Phi(x)``.

    Args:
        x: float32 or float64 tensor.
        approximate: ``'none'`` for the exact form ``x * 0.5 * erfc(-x / sqrt(2))``;
            ``'tanh'`` for ``0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))``.

    Shape:
        any -> same shape and dtype.

    Examples:
        >>> gelu(Tensor([-1.0, 0.0, 1.0]))
        tensor([-0.1587,  0.    ,  0.8413])
    """
    _check_float_tensor(x, "x")
    if approximate == "none":
        x64 = x.data.astype(np.float64)  # compute in float64; float32 results are then correctly rounded
        dtype = x.dtype
        # erfc(-x/sqrt 2) rather than 1 + erf(x/sqrt 2): no cancellation for negative x.
        cdf = 0.5 * np.asarray(_erfc(-x64 * _INV_SQRT_2), dtype=np.float64)  # Phi(x)
        y = x64 * cdf

        def backward(g):
            pdf = np.exp(-0.5 * x64 * x64) * _INV_SQRT_2PI  # phi(x)
            return ((g * (cdf + x64 * pdf)).astype(dtype, copy=False),)

        return Tensor._from_op(y.astype(dtype), (x,), backward, "gelu")

    elif approximate == "tanh":
        out, slope = _gelu_tanh(x.data, with_slope=is_grad_enabled() and x.requires_grad)
        return Tensor._from_op(out, (x,), lambda g: (g * slope,), "gelu")

    else:
        raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")


def _gelu_tanh(x: np.ndarray, with_slope: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """(tanh GELU of x, its derivative or None), both x's dtype and shape, computed in float64.

    ``y = 0.5 x (1 + t)`` and ``dy/dx = 0.5 (1 + t) + 0.5 x (1 - t^2) c (1 + 3 a x^2)``, with
    ``t = tanh(c (x + a x^3))``: block by block in place (a block's float64 temporaries stay in
    cache), one contiguous share of the blocks per thread. The derivative is formed here, while t is
    at hand, so the backward is one product.
    """
    flat = np.ascontiguousarray(x).reshape(-1)
    out = np.empty(flat.shape, dtype=x.dtype)
    slope = np.empty(flat.shape, dtype=x.dtype) if with_slope else None
    block = CHUNK_BYTES // 8

    def work(a: int, b: int) -> None:
        for i in range(a, b, block):
            j = min(i + block, b)
            v = flat[i:j].astype(np.float64)
            v2 = v * v  # x * x, not x ** 2 or ** 3: NumPy's pow is ten times slower than products
            t = v2 * (_SQRT_2_OVER_PI * _GELU_TANH_COEF)
            t += _SQRT_2_OVER_PI
            t *= v  # c (x + a x^3)
            np.tanh(t, out=t)
            half = t + 1.0
            half *= 0.5  # 0.5 (1 + t)
            np.multiply(half, v, out=out[i:j], casting="same_kind")
            if slope is not None:
                v2 *= 3.0 * _GELU_TANH_COEF
                v2 += 1.0
                v2 *= _SQRT_2_OVER_PI  # c (1 + 3 a x^2)
                np.multiply(t, t, out=t)
                np.subtract(1.0, t, out=t)
                t *= v2
                t *= v
                t *= 0.5
                t += half
                slope[i:j] = t

    run_chunks(work, chunks(flat.size, 8))
    return out.reshape(x.shape), (None if slope is None else slope.reshape(x.shape))


def relu(x: Tensor) -> Tensor:
    """``max(x, 0)``; same as ``x.relu()``."""
    return x.relu()


def tanh(x: Tensor) -> Tensor:
    """Hyperbolic tangent; same as ``x.tanh()``."""
    return x.tanh()


def sigmoid(x: Tensor) -> Tensor:
    """Logistic function, overflow-free for large ``|x|``; same as ``x.sigmoid()``."""
    return x.sigmoid()


# -- softmax family -----------------------------------------------------------------------
def softmax(x: Tensor, dim: int = -1) -> Tensor:
    """``exp(x) / sum(exp(x))`` along ``dim``, computed after subtracting the maximum.

    Args:
        x: float tensor with at least one dimension.
        dim: the dimension that sums to one.

    Shape:
        any -> same shape and dtype.

    Examples:
        >>> p = softmax(Tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]))
        >>> p
        tensor([[0.09  , 0.2447, 0.6652],
                [0.3333, 0.3333, 0.3333]])
        >>> p.sum(axis=-1)
        tensor([1., 1.])
    """
    _check_float_tensor(x, "x")
    axis = _normalize_dim(dim, x.ndim)
    e = np.exp(x.data - x.data.max(axis=axis, keepdims=True))
    y = e / e.sum(axis=axis, keepdims=True)

    def backward(g):
        # Jacobian-vector product of softmax: y * (g - <g, y>).
        return (y * (g - (g * y).sum(axis=axis, keepdims=True)),)

    return Tensor._from_op(y, (x,), backward, "softmax")


def log_softmax(x: Tensor, dim: int = -1) -> Tensor:
    """``x - logsumexp(x)`` along ``dim``; stable for any finite logits.

    Args:
        x: float tensor with at least one dimension.
        dim: the dimension normalized over.

    Shape:
        any -> same shape and dtype.

    Examples:
        >>> log_softmax(Tensor([[0.0, 0.0]]))
        tensor([[-0.6931, -0.6931]])
        >>> log_softmax(Tensor([[1000.0, 1000.0]]))  # no overflow
        tensor([[-0.6931, -0.6931]])
    """
    _check_float_tensor(x, "x")
    axis = _normalize_dim(dim, x.ndim)
    y = _log_softmax_array(x.data, axis)

    def backward(g):
        return (g - np.exp(y) * g.sum(axis=axis, keepdims=True),)

    return Tensor._from_op(y, (x,), backward, "log_softmax")


_REDUCTIONS = ("mean", "sum", "none")


def cross_entropy(logits: Tensor, target, ignore_index: int = -100, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
    """Cross entropy between softmax(logits) over dim 1 and integer class targets.

    With label smoothing ``e`` the target distribution is ``(1 - e) * onehot + e / C``,
    so each loss is ``-(1 - e) * logp[target] - (e / C) * sum_c logp[c]``.

    Args:
        logits: float unnormalized scores, classes along dim 1 (dim 0 if 1-D).
        target: integer class ids (Tensor or array-like); ``ignore_index`` entries
            contribute no loss and no gradient.
        ignore_index: target value to skip.
        reduction: ``'mean'`` (over non-ignored targets; nan if all are ignored,
            as in PyTorch), ``'sum'``, or ``'none'`` (per-target losses, 0 where ignored).
        label_smoothing: ``e`` in [0, 1].

    Shape:
        logits (N, C) or (N, C, d1, ...) or (C,); target (N,) or (N, d1, ...) or ();
        output () for 'mean'/'sum', the target's shape for 'none'.

    Raises:
        IndexError: a target (other than ignore_index) is outside [0, C).

    Examples:
        >>> cross_entropy(Tensor([[0.0, 0.0]]), [1])
        tensor(0.6931)
        >>> cross_entropy(Tensor([[0.0, 0.0], [0.0, 0.0]]), [1, -100], reduction="none")
        tensor([0.6931, 0.    ])
    """
    _check_float_tensor(logits, "logits")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
    t = np.asarray(target.data if isinstance(target, Tensor) else target)
    if t.dtype.kind not in "iu":
        raise TypeError(f"target must hold integer class ids, got dtype {t.dtype}")
    if logits.ndim == 0:
        raise ValueError("logits must have at least one dimension (the classes)")
    class_axis = 0 if logits.ndim == 1 else 1
    expected = logits.shape[:class_axis] + logits.shape[class_axis + 1:]
    if t.shape != expected:
        raise ValueError(f"target has shape {t.shape}, expected {expected} for logits of shape {logits.shape}")

    num_classes = logits.shape[class_axis]
    z = np.moveaxis(logits.data, class_axis, -1)  # (..., C)
    moved_shape = z.shape
    z = z.reshape(-1, num_classes)  # (M, C)
    t = t.reshape(-1).astype(np.int64)  # (M,)
    valid = t != ignore_index
    bad = valid & ((t < 0) | (t >= num_classes))
    if bad.any():
        raise IndexError(f"target {int(t[bad][0])} is out of bounds for {num_classes} classes")
    rows = np.arange(len(t))
    safe_t = np.where(valid, t, 0)
    count = int(valid.sum())

    # log p = (z - max) - log(sum(exp(z - max))): the full (M, C) log p is never formed, only its
    # values at the targets; exp(z - max) is kept, the backward's softmax numerator.
    e, row_max, sum_e = _exp_shifted(z)  # (M, C), (M, 1), (M, 1)
    log_sum = np.log(sum_e)[:, 0]  # (M,)
    eps = float(label_smoothing)
    loss = -(1.0 - eps) * ((z[rows, safe_t] - row_max[:, 0]) - log_sum)
    if eps:
        loss = loss - (eps / num_classes) * ((z - row_max) - log_sum[:, None]).sum(axis=-1)
    loss = np.where(valid, loss, 0.0).astype(logits.dtype, copy=False)  # (M,)

    if reduction == "none":
        out = loss.reshape(expected)
    elif reduction == "sum":
        out = np.asarray(loss.sum())
    else:
        out = np.asarray(loss.sum() / count if count else np.nan, dtype=logits.dtype)

    def backward(g):
        # d loss_i / d z_ic = w_i * (softmax_ic - eps / C - (1 - eps) [c = t_i]), w_i the weight of
        # row i's loss in the output (0 where ignored). All targets ignored: the mean is nan but
        # the gradient is zero, as in PyTorch.
        if reduction == "none":
            w = g.reshape(-1, 1) * valid[:, None]
        elif reduction == "sum":
            w = g * valid[:, None]
        else:
            w = (g / count if count else 0.0) * valid[:, None]
        w = np.asarray(w, dtype=e.dtype)  # (M, 1)
        grad = _scale_rows(e, w / sum_e)  # (M, C): the softmax times the weight
        if eps:
            grad -= (eps / num_classes) * w
        grad[rows, safe_t] -= (1.0 - eps) * w[:, 0]
        grad = np.moveaxis(grad.reshape(moved_shape), -1, class_axis)
        return (grad.astype(logits.dtype, copy=False),)

    return Tensor._from_op(out, (logits,), backward, "cross_entropy")


# -- normalization and regularization ------------------------------------------------------
def layer_norm(x: Tensor, normalized_shape: int | Sequence[int], weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Normalize over the trailing ``normalized_shape`` dimensions, then scale and shift.

    ``y = (x - mean) / sqrt(var + eps) * weight + bias`` with the biased variance, as in PyTorch.

    Args:
        x: float tensor whose last dimensions equal ``normalized_shape``.
        normalized_shape: int or tuple of the trailing dimensions.
        weight, bias: optional, of shape ``normalized_shape`` and x's dtype.
        eps: added to the variance.

    Shape:
        (*, *normalized_shape) -> same shape and dtype.

    Examples:
        >>> layer_norm(Tensor([[1.0, 3.0]]), 2)
        tensor([[-1.,  1.]])
    """
    _check_float_tensor(x, "x")
    # np.isscalar is the test (ints pass it too); the isinstance lets mypy see the else branch has a sequence.
    if isinstance(normalized_shape, int) or np.isscalar(normalized_shape):
        # np.isscalar's stub narrows to generic | complex | str | bytes; int() itself refuses the non-real ones.
        shape: tuple[int, ...] = (int(normalized_shape),)  # type: ignore[arg-type]
    else:
        shape = tuple(int(n) for n in normalized_shape)
    k = len(shape)
    if k == 0 or x.ndim < k or x.shape[x.ndim - k:] != shape:
        raise ValueError(f"normalized_shape {shape} does not match the trailing dimensions of x {x.shape}")
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None:
            _check_float_tensor(p, name)
            if p.shape != shape:
                raise ValueError(f"{name} has shape {p.shape}, expected {shape}")
    _check_same_dtype(x, weight=weight, bias=bias)

    axes = tuple(range(x.ndim - k, x.ndim))  # normalized
    lead = tuple(range(x.ndim - k))  # batch
    xc = x.data - x.data.mean(axis=axes, keepdims=True)
    rstd = 1.0 / np.sqrt((xc * xc).mean(axis=axes, keepdims=True) + eps)
    xhat = xc * rstd
    y = xhat
    if weight is not None:
        y = y * weight.data
    if bias is not None:
        y = y + bias.data

    def backward(g):
        gxhat = g * weight.data if weight is not None else g
        gx = rstd * (gxhat - gxhat.mean(axis=axes, keepdims=True)
                     - xhat * (gxhat * xhat).mean(axis=axes, keepdims=True))
        grads = [gx]
        if weight is not None:
            grads.append((g * xhat).sum(axis=lead))
        if bias is not None:
            grads.append(g.sum(axis=lead))
        return tuple(grads)

    parents = [t for t in (x, weight, bias) if t is not None]
    return Tensor._from_op(y.astype(x.dtype, copy=False), parents, backward, "layer_norm")


def dropout(x: Tensor, p: float = 0.5, training: bool = True, rng: np.random.Generator | None = None) -> Tensor:
    """Inverted dropout: zero each element with probability ``p``, scale the rest by ``1/(1-p)``.

    The expected value of every element is unchanged, so evaluation needs no rescaling.

    Args:
        x: float tensor.
        p: drop probability in [0, 1]; ``p=1`` gives zeros.
        training: if False, or ``p == 0``, return ``x`` itself.
        rng: ``np.random.Generator`` for the mask (a fresh one if None).

    Shape:
        any -> same shape and dtype.

    Examples:
        >>> x = Tensor(np.ones(6, dtype=np.float32))
        >>> dropout(x, 0.5, rng=np.random.default_rng(0))
        tensor([2., 0., 0., 0., 2., 2.])
        >>> dropout(x, 0.5, training=False) is x
        True
    """
    _check_float_tensor(x, "x")
    if not 0.0 <= p <= 1.0:  # also rejects nan
        raise ValueError(f"dropout probability must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    rng = np.random.default_rng() if rng is None else rng
    keep = rng.random(x.shape) >= p  # float64 draws: the same seed gives the same mask in any dtype
    scale = 0.0 if p == 1.0 else 1.0 / (1.0 - p)
    mask = (keep * scale).astype(x.dtype)  # 0 or 1/(1-p)

    return Tensor._from_op(x.data * mask, (x,), lambda g: (g * mask,), "dropout")


# -- lookups: embedding, embedding_bag, embedding_add ------------------------------------------
# Where PyTorch refuses or is wrong, we say so next to the code:
# * ``sparse=True`` with ``scale_grad_by_freq=True`` works here (PyTorch raises).
# * EmbeddingBag's dense CPU backward with ``scale_grad_by_freq`` and repeated ids is wrong in
#   PyTorch 2.13; here each row's gradient is divided by the number of times its id occurs in
#   the input, which is the definition.
# * EmbeddingBag ``mode='max'`` with ``scale_grad_by_freq`` works (PyTorch raises).
# * With ``include_last_offset=True``, ids after the last offset belong to no bag: they are
#   ignored everywhere, max_norm included (PyTorch 2.13 is inconsistent there).
_BAG_MODES = ("sum", "mean", "max")


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
    padding_idx = check_padding_idx(padding_idx, num_embeddings)
    _check_norm(max_norm, norm_type)
    if max_norm is not None:  # ids validated before the weight changes: a failed call has changed nothing
        ids = kernels.check_ids(input, num_embeddings)
        if out is not None:
            kernels.check_out(out, ids.shape + (dim,), weight.dtype)
        kernels.renorm_rows_(weight.data, ids, max_norm, norm_type)
        weight.increment_version("max_norm renormalization")
        data = kernels.gather_rows(weight.data, ids, out=out)
    else:  # the ids are checked inside the gather: one pass, no copy
        data, ids = kernels.lookup_rows(weight.data, input, out=out)
    if not (is_grad_enabled() and weight.requires_grad):
        return Tensor(data)  # inference: no graph, so the ids need not be kept
    ids = np.array(ids, dtype=np.int64)  # the backward keeps them; the caller may reuse its array
    weight_grad = _lookup_backward(ids, weight.shape, padding_idx, scale_grad_by_freq, sparse)
    # The backward needs the ids, never the weight's values (as torch's embedding_backward).
    return Tensor._from_op(data, (weight,), lambda g: (weight_grad(g),), "embedding", saved=())


def _lookup_backward(ids: np.ndarray, shape: tuple, padding_idx, scale_grad_by_freq: bool, sparse: bool):
    """g (*ids.shape, D) -> the weight's gradient: each position's row of g added into its id's row."""
    def weight_grad(g):
        rows = ids.reshape(-1)
        grads = g.reshape(rows.size, shape[1])
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
    # As in embedding: checked first only where max_norm changes the table before the lookup; else the
    # fused loop checks them as it goes, a pass and a copy fewer (kept for the backward only).
    ids = kernels.check_ids(input, weight.shape[0]) if max_norm is not None else kernels.id_array(input)
    if ids.ndim == 0:
        raise ValueError("embedding_add needs ids of shape (..., seq), got a 0-d id")
    if addend.shape != (ids.shape[-1], weight.shape[1]) or addend.dtype != weight.dtype:
        raise ValueError(f"addend must be {weight.dtype} of shape ({ids.shape[-1]}, {weight.shape[1]}) "
                         f"for ids of shape {ids.shape}, got {addend.dtype} {addend.shape}")
    padding_idx = check_padding_idx(padding_idx, weight.shape[0])
    _check_norm(max_norm, norm_type)
    if max_norm is not None:
        kernels.renorm_rows_(weight.data, ids, max_norm, norm_type)
        weight.increment_version("max_norm renormalization")
    data = kernels.gather_add_rows(weight.data, ids, addend.data, scale)
    if not (is_grad_enabled() and (weight.requires_grad or addend.requires_grad)):
        return Tensor(data)  # inference: no graph, so the ids need not be kept
    ids = np.array(ids, dtype=np.int64)  # the backward keeps them; the caller may reuse its array
    weight_grad = _lookup_backward(ids, weight.shape, padding_idx, scale_grad_by_freq, sparse)

    def backward(g):
        token_grad = weight_grad(g * scale if scale != 1.0 else g)
        return token_grad, g.reshape(math.prod(ids.shape[:-1]), *addend.shape).sum(axis=0)

    return Tensor._from_op(data, (weight, addend), backward, "embedding_add", saved=())


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
    # Checked (and copied: the backward keeps them) here when a backward is recorded or max_norm changes
    # the table first; else the pooling loop checks them as it goes (kernels.bag_pool), a pass fewer.
    records = is_grad_enabled() and (weight.requires_grad or getattr(per_sample_weights, "requires_grad", False))
    ids = (kernels.check_ids(input, num_embeddings) if records or max_norm is not None
           else kernels.id_array(input))
    try:
        flat, bounds = kernels.bag_bounds(ids, offsets, include_last_offset)
        padding_idx = check_padding_idx(padding_idx, num_embeddings)
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
            weight.increment_version("max_norm renormalization")
        flat = flat.astype(np.int64, copy=False)
        data, argmax = kernels.bag_pool(weight.data, flat, bounds, mode, psw, padding_idx)
    except (IndexError, ValueError, TypeError):
        kernels.check_ids(input, num_embeddings)  # a bad id is named first, at its place in the input
        raise

    def backward(g):
        rows, grads, grad_psw = kernels.bag_pool_backward(
            g, weight.data, flat, bounds, mode, psw, padding_idx, argmax, scale_grad_by_freq)
        weight_grad = _row_grad(rows, grads, weight.shape, sparse) if weight.requires_grad else None
        if psw_tensor is None:
            return (weight_grad,)
        return weight_grad, (None if grad_psw is None else grad_psw.reshape(psw_tensor.shape))

    parents = (weight,) if psw_tensor is None else (weight, psw_tensor)
    # Only the per-sample weights' gradient reads the table's rows.
    return Tensor._from_op(data, parents, backward, "embedding_bag", saved=() if psw is None else (weight,))
