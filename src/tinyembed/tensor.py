"""Tensor: a NumPy array with reverse-mode automatic differentiation.

Every differentiable operation builds its output with :func:`Tensor._from_op`
and, right beside the forward computation, a small ``backward`` closure that
maps the output's gradient to one gradient per input (or ``None`` for an input
that needs none). :meth:`Tensor.backward` sorts the graph once, iteratively so
that long chains never hit Python's recursion limit, and runs the closures in
reverse topological order.

Gradients are plain NumPy arrays, except for row-sparse gradients of embedding
tables (:class:`tinyembed.sparse.RowSparseGrad`). As in PyTorch, only leaf
tensors (those created by the user with ``requires_grad=True``) keep ``.grad``.

Two misuses that would give a silently wrong gradient are refused, as PyTorch does:

* An op records the version of each tensor whose values its backward reads; every
  in-place change (``max_norm`` renormalization, an optimizer step,
  ``load_state_dict``, ``t[i] = v``) bumps the version (:meth:`Tensor.increment_version`).
  A backward that would read a changed tensor raises, naming it and what changed it.
* ``backward`` frees the graph it ran through; a second backward through it raises
  unless the first passed ``retain_graph=True``.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from .checks import FLOAT_DTYPES
from .sparse import RowSparseGrad, accumulate_grad

__all__ = ["Tensor", "no_grad", "enable_grad", "is_grad_enabled", "tensor", "cat", "stack"]


class _GradState(threading.local):
    # A class default, so that a thread that never set the mode reads it without a failed lookup
    # (getattr with a default raised and caught AttributeError inside: 0.78 us a call, now 0.06).
    grad_enabled = True


_state = _GradState()


def is_grad_enabled() -> bool:
    return _state.grad_enabled


class _set_grad_enabled:
    """Record a graph (``mode`` True) or not inside a ``with`` block or a decorated function, then
    restore the mode before it. A class rather than a generator: making, entering and leaving one cost
    0.55 us against 1.18, on every call of a layer under ``no_grad``."""

    def __init__(self, mode: bool):
        self.mode = bool(mode)
        self._previous: list[bool] = []  # a stack: one object may be entered again inside itself

    def __enter__(self) -> None:
        self._previous.append(_state.grad_enabled)
        _state.grad_enabled = self.mode

    def __exit__(self, *exc) -> None:
        _state.grad_enabled = self._previous.pop()

    def __call__(self, fn: Callable) -> Callable:
        # Each call enters an object of its own: threads calling the decorated function share none.
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with _set_grad_enabled(self.mode):
                return fn(*args, **kwargs)
        return wrapper


def no_grad():
    """Context manager (and decorator) under which operations record no graph."""
    return _set_grad_enabled(False)


def enable_grad():
    return _set_grad_enabled(True)


def _as_array(data, dtype=None) -> np.ndarray:
    """Convert input to an ndarray following PyTorch's dtype inference.

    Python floats and float arrays become float32 unless already float64;
    integers become int64; bools stay bool.
    """
    if isinstance(data, Tensor):
        data = data.data
    if dtype is not None:
        return np.asarray(data, dtype=dtype)
    arr = np.asarray(data)
    # Python floats (and lists of them) parse as float64 but default to float32, as in PyTorch.
    if arr.dtype.kind == "f" and (arr.dtype != np.float64 or not isinstance(data, (np.ndarray, np.generic))):
        return arr.astype(np.float32, copy=False)
    if arr.dtype.kind in "iu" and not isinstance(data, np.ndarray):
        return arr.astype(np.int64, copy=False)
    return arr


def unbroadcast(grad: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum ``grad`` down to ``shape``: the backward of NumPy broadcasting."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra:
        grad = grad.sum(axis=tuple(range(extra)))
    keep = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if keep:
        grad = grad.sum(axis=keep, keepdims=True)
    return grad.reshape(shape)


class Tensor:
    """An n-dimensional array that can record the operations applied to it.

    Args:
        data: array-like. Floats default to float32; float64 is kept.
        requires_grad: track operations so that ``backward`` fills ``.grad``.
        dtype: optional NumPy dtype to convert to.

    Attributes:
        data (np.ndarray): the values.
        grad (np.ndarray | RowSparseGrad | None): accumulated gradient (leaves only).
    """

    __array_priority__ = 1000  # make ndarray + Tensor dispatch to Tensor.__radd__

    def __init__(self, data, requires_grad: bool = False, dtype=None):
        self.data = _as_array(data, dtype)
        if requires_grad and self.data.dtype not in FLOAT_DTYPES:
            raise TypeError(
                f"only float32 and float64 tensors can require gradients, got {self.data.dtype}"
            )
        self.requires_grad = bool(requires_grad)
        self.grad: np.ndarray | RowSparseGrad | None = None
        self._parents: tuple[Tensor, ...] = ()
        self._backward: Callable | None = None
        self._op = ""
        self._version = 0
        self._modified_by = ""
        self._saved: tuple[tuple[Tensor, int], ...] = ()

    # -- graph construction --------------------------------------------------------
    @classmethod
    def _from_op(cls, data: np.ndarray, parents: Sequence[Tensor], backward: Callable, op: str,
                 saved: Sequence[Tensor] | None = None) -> Tensor:
        """Output of an op. ``backward(g)`` returns one gradient (or None) per parent.

        ``saved``: the tensors whose values ``backward`` reads (default: every parent);
        their versions are recorded, so that an in-place change before the backward is caught.
        """
        out = cls.__new__(cls)
        out.data = data
        out.grad = None
        out._op = op
        out._version, out._modified_by = 0, ""
        if is_grad_enabled() and any(p.requires_grad for p in parents):
            out.requires_grad = True
            out._parents = tuple(parents)
            out._backward = backward
            out._saved = tuple((t, t._version) for t in (parents if saved is None else saved))
        else:
            out.requires_grad = False
            out._parents = ()
            out._backward = None
            out._saved = ()
        return out

    @property
    def version(self) -> int:
        """How many in-place changes ``data`` has had (PyTorch's ``_version``)."""
        return self._version

    def increment_version(self, op: str) -> None:
        """Record that ``op`` changed ``data`` in place: a backward that saved the old values will raise."""
        self._version += 1
        self._modified_by = op

    @property
    def is_leaf(self) -> bool:
        return self._backward is None

    def backward(self, grad=None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad``.

        Args:
            grad: gradient of the final objective w.r.t. this tensor, same shape.
                May be omitted only for a single-element tensor (it is then 1).
            retain_graph: keep the graph for another backward; by default it is freed.

        Raises:
            RuntimeError: the graph was freed by an earlier backward, or a tensor it saved
                was changed in place since; nothing is accumulated then.
        """
        if not self.requires_grad:
            raise RuntimeError("backward() called on a tensor that does not require grad")
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"grad can be implicitly created only for scalar outputs, got shape {self.shape}"
                )
            grad = np.ones_like(self.data)
        else:
            grad = np.asarray(grad.data if isinstance(grad, Tensor) else grad, dtype=self.data.dtype)
            if grad.shape != self.shape:
                raise ValueError(f"grad shape {grad.shape} does not match tensor shape {self.shape}")

        order = self._topological_order()
        for node in order:  # every check before any gradient moves
            _check_saved(node)
        grads: dict[int, np.ndarray | RowSparseGrad] = {id(self): grad}
        with no_grad():
            for node in order:
                g = grads.pop(id(node), None)
                if g is None:
                    continue
                if node._backward is None:  # a leaf that asked for gradients
                    # Copy the first gradient: backward closures may hand one array to several parents.
                    if node.grad is None and isinstance(g, np.ndarray):
                        node.grad = g.copy()
                    else:
                        node.grad = accumulate_grad(node.grad, g)
                    continue
                for parent, pg in zip(node._parents, node._backward(g), strict=True):
                    if pg is None or not parent.requires_grad:
                        continue
                    if pg.dtype != parent.dtype:  # float32 * float64 must still give a float32 grad
                        pg = pg.astype(parent.dtype)
                    key = id(parent)
                    grads[key] = accumulate_grad(grads.get(key), pg)
        if not retain_graph:
            for node in order:
                if node._backward is not None:  # free what the closures hold; the graph stays walkable
                    node._backward, node._saved = _freed, ()

    def _topological_order(self) -> list[Tensor]:
        """Nodes reachable from self, each after every node that consumes it."""
        order: list[Tensor] = []
        visited: set[int] = set()
        stack: list[tuple[Tensor, bool]] = [(self, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
                continue
            if id(node) in visited:
                continue
            visited.add(id(node))
            stack.append((node, True))
            for parent in node._parents:
                if id(parent) not in visited:
                    stack.append((parent, False))
        order.reverse()
        return order

    # -- array protocol ------------------------------------------------------------
    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    def __len__(self) -> int:
        return len(self.data)

    def numpy(self) -> np.ndarray:
        return self.data

    def __array__(self, dtype=None, copy=None):
        # np.asarray(t) shares the data; np.array(t) (copy=True) must not, or a "snapshot" keeps training.
        if copy or (dtype is not None and np.dtype(dtype) != self.dtype):
            return self.data.astype(dtype or self.dtype, copy=True)
        return self.data

    def item(self):
        return self.data.item()

    def __bool__(self) -> bool:
        return bool(self.data)  # as NumPy: ambiguous (an error) for more than one element

    def detach(self) -> Tensor:
        """The same data, cut from the graph."""
        return Tensor(self.data)

    def clone(self) -> Tensor:
        """A copy of the data that stays in the graph: its gradient flows back to ``self``."""
        return Tensor._from_op(self.data.copy(), (self,), lambda g: (g,), "clone", saved=())

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Start (or stop) recording operations on this leaf; returns it."""
        if not self.is_leaf:
            raise RuntimeError("requires_grad can only be changed on a leaf tensor; use detach() for a graph's output")
        if requires_grad and self.data.dtype not in FLOAT_DTYPES:
            raise TypeError(f"only float32 and float64 tensors can require gradients, got {self.data.dtype}")
        self.requires_grad = bool(requires_grad)
        return self

    def __setitem__(self, index, value) -> None:
        """``t[index] = value`` in place, as PyTorch allows it: under ``no_grad()`` for a leaf that
        requires grad (changing a weight), never for a tensor inside a graph."""
        if self.requires_grad and is_grad_enabled():
            kind = "a leaf tensor that requires grad" if self.is_leaf else "a tensor that is part of a graph"
            raise RuntimeError(f"{kind} is being used in an in-place operation (t[...] = value); "
                               "wrap it in tinyembed.no_grad() to change a weight")
        index = index.data if isinstance(index, Tensor) else index
        self.data[index] = value.data if isinstance(value, Tensor) else value
        self.increment_version("t[...] = value")

    def astype(self, dtype) -> Tensor:
        src = self.dtype
        return Tensor._from_op(self.data.astype(dtype), (self,), lambda g: (g.astype(src),), "astype")

    def zero_grad(self) -> None:
        self.grad = None

    def __repr__(self) -> str:
        body = np.array2string(self.data, precision=4, separator=", ", prefix="tensor(")
        grad = ", requires_grad=True" if self.requires_grad else ""
        dtype = "" if self.dtype == np.float32 else f", dtype={self.dtype}"
        return f"tensor({body}{dtype}{grad})"

    # -- elementwise arithmetic ----------------------------------------------------
    def _lift(self, other) -> Tensor:
        if isinstance(other, Tensor):
            return other
        # Python scalars take this tensor's dtype, as in PyTorch.
        return Tensor(np.asarray(other, dtype=self.dtype if self.dtype.kind == "f" else None))

    def __add__(self, other):
        other = self._lift(other)
        a, b = self.shape, other.shape
        return Tensor._from_op(self.data + other.data, (self, other),
                               lambda g: (unbroadcast(g, a), unbroadcast(g, b)), "add")

    __radd__ = __add__

    def __neg__(self):
        return Tensor._from_op(-self.data, (self,), lambda g: (-g,), "neg")

    def __sub__(self, other):
        other = self._lift(other)
        a, b = self.shape, other.shape
        return Tensor._from_op(self.data - other.data, (self, other),
                               lambda g: (unbroadcast(g, a), unbroadcast(-g, b)), "sub")

    def __rsub__(self, other):
        return self._lift(other) - self

    def __mul__(self, other):
        other = self._lift(other)
        x, y = self.data, other.data
        return Tensor._from_op(x * y, (self, other),
                               lambda g: (unbroadcast(g * y, x.shape), unbroadcast(g * x, y.shape)), "mul")

    __rmul__ = __mul__

    def __truediv__(self, other):
        other = self._lift(other)
        x, y = self.data, other.data
        return Tensor._from_op(
            x / y, (self, other),
            lambda g: (unbroadcast(g / y, x.shape), unbroadcast(-g * x / (y * y), y.shape)), "div")

    def __rtruediv__(self, other):
        return self._lift(other) / self

    def __pow__(self, exponent):
        if isinstance(exponent, Tensor):
            raise TypeError("pow supports a scalar exponent only")
        x = self.data
        e = np.asarray(exponent, dtype=x.dtype)
        # x**0 is constant: its gradient is 0 even at x = 0, where x**-1 would give nan.
        backward = (lambda g: (np.zeros_like(x),)) if e == 0 else (lambda g: (g * e * x ** (e - 1),))
        return Tensor._from_op(x ** e, (self,), backward, "pow")

    def __matmul__(self, other):
        other = self._lift(other)
        x, y = self.data, other.data

        def backward(g):
            # Promote 1-D operands to matrices so one rule covers every case.
            x2 = x[None, :] if x.ndim == 1 else x
            y2 = y[:, None] if y.ndim == 1 else y
            g2 = g
            # Restore the dropped axes innermost first: for 1-D @ 1-D, g is 0-d.
            if y.ndim == 1:
                g2 = np.expand_dims(g2, -1)
            if x.ndim == 1:
                g2 = np.expand_dims(g2, -2)
            gx = unbroadcast(g2 @ np.swapaxes(y2, -1, -2), x2.shape).reshape(x.shape)
            gy = unbroadcast(np.swapaxes(x2, -1, -2) @ g2, y2.shape).reshape(y.shape)
            return gx, gy

        return Tensor._from_op(x @ y, (self, other), backward, "matmul")

    def __rmatmul__(self, other):
        return self._lift(other) @ self

    # Comparisons give plain boolean tensors: they are not differentiable.
    def __eq__(self, other):
        return Tensor(self.data == _as_array(other))

    def __ne__(self, other):
        return Tensor(self.data != _as_array(other))

    def __lt__(self, other):
        return Tensor(self.data < _as_array(other))

    def __le__(self, other):
        return Tensor(self.data <= _as_array(other))

    def __gt__(self, other):
        return Tensor(self.data > _as_array(other))

    def __ge__(self, other):
        return Tensor(self.data >= _as_array(other))

    __hash__ = object.__hash__

    # -- reductions -----------------------------------------------------------------
    def sum(self, axis=None, keepdims: bool = False) -> Tensor:
        shape = self.shape

        def backward(g):
            if not keepdims and axis is not None:
                g = np.expand_dims(g, axis)
            return (np.broadcast_to(g, shape).copy(),)

        return Tensor._from_op(np.asarray(self.data.sum(axis=axis, keepdims=keepdims)), (self,), backward, "sum")

    def mean(self, axis=None, keepdims: bool = False) -> Tensor:
        count = self.data.size if axis is None else int(np.prod([self.shape[a] for a in np.atleast_1d(axis)]))
        # The mean of nothing is nan, as in NumPy and PyTorch.
        return self.sum(axis=axis, keepdims=keepdims) * (1.0 / count if count else float("nan"))

    def prod(self, axis=None, keepdims: bool = False) -> Tensor:
        """Product of elements; the gradient of each is the product of all the others (exact
        with zeros: computed from products before and after it, never by dividing)."""
        x = self.data
        moved = x.reshape(-1) if axis is None else np.moveaxis(x, axis, -1)  # reduce over the last axis
        ones = np.ones(moved.shape[:-1] + (1,), dtype=x.dtype)
        before = np.cumprod(np.concatenate([ones, moved[..., :-1]], axis=-1), axis=-1)
        after = np.flip(np.cumprod(np.flip(np.concatenate([moved[..., 1:], ones], axis=-1), -1), axis=-1), -1)
        others = before * after  # product of every element but this one

        def backward(g):
            if axis is None:
                return ((others * g).reshape(x.shape),)
            g = g if keepdims else np.expand_dims(g, axis)
            return (np.moveaxis(others * np.moveaxis(g, axis, -1), -1, axis),)

        return Tensor._from_op(np.asarray(x.prod(axis=axis, keepdims=keepdims)), (self,), backward, "prod")

    def max(self, axis=None, keepdims: bool = False) -> Tensor:
        """Maximum; the gradient is split evenly between tied maxima."""
        x = self.data
        out = x.max(axis=axis, keepdims=True)

        def backward(g):
            if not keepdims and axis is not None:
                g = np.expand_dims(g, axis)
            mask = x == out
            # Cast the tie count: float32 / int64 would promote the gradient to float64.
            return (mask * (g / mask.sum(axis=axis, keepdims=True).astype(x.dtype)),)

        result = out if keepdims else (out.reshape(()) if axis is None else np.squeeze(out, axis))
        return Tensor._from_op(np.asarray(result), (self,), backward, "max")

    # -- shape ---------------------------------------------------------------------
    def reshape(self, *shape) -> Tensor:
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        src = self.shape
        return Tensor._from_op(self.data.reshape(shape), (self,), lambda g: (g.reshape(src),), "reshape")

    view = reshape

    def flatten(self) -> Tensor:
        return self.reshape(-1)

    def permute(self, *dims) -> Tensor:
        if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
            dims = tuple(dims[0])
        inverse = np.argsort([d % self.ndim for d in dims])  # argsort needs non-negative dims
        return Tensor._from_op(np.transpose(self.data, dims), (self,),
                               lambda g: (np.transpose(g, inverse),), "permute")

    def transpose(self, dim0: int = -2, dim1: int = -1) -> Tensor:
        """Swap two dimensions (PyTorch's ``transpose``; default: the last two)."""
        return Tensor._from_op(np.swapaxes(self.data, dim0, dim1), (self,),
                               lambda g: (np.swapaxes(g, dim0, dim1),), "transpose")

    @property
    def T(self) -> Tensor:
        return self.permute(tuple(reversed(range(self.ndim))))

    def unsqueeze(self, dim: int) -> Tensor:
        return self.reshape(np.expand_dims(self.data, dim).shape)

    def squeeze(self, dim=None) -> Tensor:
        if dim is not None and self.shape[dim] != 1:
            return self.reshape(self.shape)  # as PyTorch: squeezing a dim that is not 1 is a no-op
        return self.reshape(np.squeeze(self.data, dim).shape)

    def __getitem__(self, index) -> Tensor:
        index = index.data if isinstance(index, Tensor) else index
        if isinstance(index, tuple):
            index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
        x = self.data

        def backward(g):
            full = np.zeros_like(x)
            # add.at, not assignment: an advanced index may select an element twice.
            np.add.at(full, index, g)
            return (full,)

        return Tensor._from_op(np.asarray(x[index]), (self,), backward, "getitem")

    # -- elementwise functions -------------------------------------------------------
    def exp(self) -> Tensor:
        y = np.exp(self.data)
        return Tensor._from_op(y, (self,), lambda g: (g * y,), "exp")

    def log(self) -> Tensor:
        x = self.data
        return Tensor._from_op(np.log(x), (self,), lambda g: (g / x,), "log")

    def sqrt(self) -> Tensor:
        y = np.sqrt(self.data)
        return Tensor._from_op(y, (self,), lambda g: (g / (2 * y),), "sqrt")

    def tanh(self) -> Tensor:
        y = np.tanh(self.data)
        return Tensor._from_op(y, (self,), lambda g: (g * (1 - y * y),), "tanh")

    def sigmoid(self) -> Tensor:
        x = self.data
        # Two-branch form: exp never overflows for large |x|.
        e = np.exp(-np.abs(x))
        y = np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)
        return Tensor._from_op(y, (self,), lambda g: (g * y * (1 - y),), "sigmoid")

    def relu(self) -> Tensor:
        x = self.data
        return Tensor._from_op(np.maximum(x, 0), (self,), lambda g: (g * (x > 0),), "relu")

    def abs(self) -> Tensor:
        x = self.data
        return Tensor._from_op(np.abs(x), (self,), lambda g: (g * np.sign(x),), "abs")


def _freed(g):
    raise RuntimeError("Trying to backward through the graph a second time: its saved values were freed by "
                       "the first backward(). Specify retain_graph=True on the first backward() if you need "
                       "to backward through the graph a second time.")


def _check_saved(node: Tensor) -> None:
    """Raise if ``node``'s graph was freed or a tensor its backward reads changed in place since."""
    if node._backward is _freed:
        _freed(None)
    for t, version in node._saved:
        if t._version != version:
            kind = "a Parameter" if type(t).__name__ == "Parameter" else "a tensor"
            raise RuntimeError(
                f"one of the tensors needed for the gradient of {node._op} has been modified by an inplace "
                f"operation: {kind} of shape {t.shape} ({t.dtype}) is at version {t._version}; expected version "
                f"{version} instead (changed by {t._modified_by}). Run the forward again after the change, "
                "or use a .clone() of the tensor where the gradient needs its old values.")


def tensor(data, requires_grad: bool = False, dtype=None) -> Tensor:
    """PyTorch-style constructor alias."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def cat(tensors: Iterable[Tensor], dim: int = 0) -> Tensor:
    """Concatenate tensors along ``dim``; the backward splits the gradient back."""
    tensors = [t if isinstance(t, Tensor) else Tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("cat() needs at least one tensor")
    sizes = [t.shape[dim] for t in tensors]
    bounds = np.cumsum(sizes)[:-1]

    def backward(g):
        return tuple(np.split(g, bounds, axis=dim))

    return Tensor._from_op(np.concatenate([t.data for t in tensors], axis=dim), tensors, backward, "cat")


concatenate = cat


def stack(tensors: Iterable[Tensor], dim: int = 0) -> Tensor:
    """Stack same-shape tensors along a new dimension ``dim``."""
    tensors = [t if isinstance(t, Tensor) else Tensor(t) for t in tensors]
    return cat([t.unsqueeze(dim) for t in tensors], dim=dim)
