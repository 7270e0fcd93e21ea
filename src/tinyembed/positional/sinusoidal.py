"""The sinusoidal position encoding of Vaswani et al. (2017): no parameters, any length.

Position ``p`` and frequency ``w_i = base ** (-2i / d)`` give the pair
``(sin(p w_i), cos(p w_i))``. Shifting the position by ``k`` rotates every pair
by the angle ``k w_i``, a fixed linear map: this is why attention can read
relative offsets from it, and why it keeps working past any training length.
"""

from __future__ import annotations

import numpy as np

from ..checks import check_float_dtype, check_nonnegative_int, check_positive_int
from ..nn import Module
from ..tensor import Tensor

__all__ = ["PositionalEncoding", "sinusoidal_table"]

_LAYOUTS = ("interleaved", "split")


def sinusoidal_table(positions, embedding_dim: int, base: float = 10000.0,
                     layout: str = "interleaved") -> np.ndarray:
    """The encoding of ``positions`` in float64.

    Args:
        positions: non-negative ints (or floats), any shape.
        embedding_dim: d. With an odd d the last dim is a sine: there are ceil(d/2)
            frequencies, and the last one has no cosine partner.
        layout: 'interleaved' (sin on even dims, cos on odd: the paper) or 'split'
            (all sines, then all cosines: tensor2tensor and several libraries).

    Shape:
        positions (*) -> (*, embedding_dim), float64.
    """
    if layout not in _LAYOUTS:
        raise ValueError(f"layout must be one of {_LAYOUTS}, got {layout!r}")
    pos = np.asarray(positions, dtype=np.float64)
    n_freq = (embedding_dim + 1) // 2
    inv_freq = base ** (-np.arange(n_freq, dtype=np.float64) * 2.0 / embedding_dim)
    angle = pos[..., None] * inv_freq  # (*, ceil(d/2))
    out = np.empty(pos.shape + (embedding_dim,), dtype=np.float64)
    n_cos = embedding_dim // 2
    if layout == "interleaved":
        out[..., 0::2] = np.sin(angle)
        out[..., 1::2] = np.cos(angle[..., :n_cos])
    else:
        out[..., :n_freq] = np.sin(angle)
        out[..., n_freq:] = np.cos(angle[..., :n_cos])
    return out


def check_positions(positions) -> np.ndarray:
    """Positions as an int array of any shape, all >= 0 (TypeError / ValueError naming the value)."""
    pos = np.asarray(positions.data if isinstance(positions, Tensor) else positions)
    if pos.dtype.kind not in "iu":
        raise TypeError(f"positions must be integers, got dtype {pos.dtype}")
    if pos.size and pos.min() < 0:
        raise ValueError(f"positions must be >= 0, got {int(pos.min())}")
    return pos


class PositionalEncoding(Module):
    """Adds the sinusoidal encoding to (batch, seq, dim) inputs. Zero parameters.

    Args:
        embedding_dim: d (odd allowed: the last dim is then a sine).
        max_len: positions cached up front; longer ones are computed on demand, never an error.
        base: the wavelength scale (10000 in the paper).
        layout: 'interleaved' or 'split'; the two agree up to a fixed permutation of dims.

    Shape:
        forward: x (batch, seq, dim) -> same shape and dtype.

    Examples:
        >>> pe = PositionalEncoding(4)
        >>> pe.encoding([0, 1]).round(4)
        array([[0.    , 1.    , 0.    , 1.    ],
               [0.8415, 0.5403, 0.01  , 1.    ]], dtype=float32)
    """

    def __init__(self, embedding_dim: int, max_len: int = 4096, base: float = 10000.0,
                 layout: str = "interleaved"):
        super().__init__()
        self.embedding_dim = check_positive_int(embedding_dim, "embedding_dim")
        self.max_len = check_positive_int(max_len, "max_len")
        if not base > 1.0:
            raise ValueError(f"base must be > 1, got {base}")
        if layout not in _LAYOUTS:
            raise ValueError(f"layout must be one of {_LAYOUTS}, got {layout!r}")
        self.base = float(base)
        self.layout = layout
        # float64 once; each dtype's cast is made the first time it is asked for.
        self._table64 = sinusoidal_table(np.arange(self.max_len), self.embedding_dim, self.base, layout)
        self._cast: dict[np.dtype, np.ndarray] = {}

    def encoding(self, positions, dtype=np.float32) -> np.ndarray:
        """The (*positions.shape, dim) table rows of ``positions``, computed in float64 then cast."""
        pos = check_positions(positions)
        dtype = check_float_dtype(dtype)
        if pos.size == 0 or pos.max() < self.max_len:
            return self._table(dtype)[pos]
        return sinusoidal_table(pos, self.embedding_dim, self.base, self.layout).astype(dtype)

    def _table(self, dtype: np.dtype) -> np.ndarray:
        if dtype not in self._cast:
            table = self._table64.astype(dtype)
            table.flags.writeable = False  # added_rows hands out views of it
            self._cast[dtype] = table
        return self._cast[dtype]

    def forward(self, x: Tensor, start: int = 0) -> Tensor:
        """``x + PE[start : start + seq]``; ``start`` serves incremental decoding."""
        x = _check_input(x, self.embedding_dim)
        return x + self.added_rows(x.shape[-2], start, x.dtype)

    def added_rows(self, seq: int, start: int = 0, dtype=np.float32) -> Tensor:
        """The (seq, dim) rows :meth:`forward` adds for positions ``start .. start + seq - 1``."""
        start = check_nonnegative_int(start, "start")
        if start + seq <= self.max_len:  # the common case: a read-only view of the cached table
            return Tensor(self._table(check_float_dtype(dtype))[start:start + seq])
        return Tensor(self.encoding(np.arange(start, start + seq), dtype=dtype))

    def extra_repr(self) -> str:
        return f"{self.embedding_dim}, max_len={self.max_len}, base={self.base:g}, layout={self.layout!r}"


def _check_input(x, dim: int) -> Tensor:
    x = x if isinstance(x, Tensor) else Tensor(x)
    if x.ndim < 2 or x.shape[-1] != dim:
        raise ValueError(f"input must be (..., seq, {dim}), got shape {x.shape}")
    return x
