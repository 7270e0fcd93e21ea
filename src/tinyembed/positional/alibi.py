"""ALiBi (Press et al. 2022, "Train Short, Test Long"): position as a linear attention bias.

No position is added to the tokens. Instead each head h adds ``-slope_h * distance``
to the score of a query for a key ``distance`` tokens back, so farther keys weigh
less, at a rate that differs per head. Nothing is learned and nothing depends on a
maximum length, which is why models trained short keep working on longer inputs.
"""

from __future__ import annotations

import math

import numpy as np

from ..checks import check_float_dtype, check_nonnegative_int, check_positive_int
from ..nn import Module

__all__ = ["ALiBi", "alibi_slopes"]


def _geometric_slopes(n: int) -> list[float]:
    # Press et al.: for n a power of two, start at 2^(-8/n) and keep multiplying by it,
    # so the slopes run from 2^(-8/n) down to 2^-8 whatever n is.
    start = 2.0 ** (-8.0 / n)
    return [start ** (i + 1) for i in range(n)]


def alibi_slopes(num_heads: int) -> np.ndarray:
    """The per-head slopes, (num_heads,) float64.

    For a power of two n, the geometric sequence 2^(-8/n), 2^(-16/n), ..., 2^-8.
    Otherwise (the rule of Press et al.'s code and of BLOOM): the slopes of the largest
    power of two n' < n, then every other slope of the 2n' sequence (its 1st, 3rd, ...)
    until there are n. These fall between the first ones, so the extra heads get
    rates that interleave with the others instead of repeating them.

    Examples:
        >>> alibi_slopes(4).tolist()  # 2^-2, 2^-4, 2^-6, 2^-8
        [0.25, 0.0625, 0.015625, 0.00390625]
        >>> alibi_slopes(6).tolist()  # those, then 2^-1 and 2^-3 from the 8-head sequence
        [0.25, 0.0625, 0.015625, 0.00390625, 0.5, 0.125]
    """
    n = check_positive_int(num_heads, "num_heads")
    closest = 2 ** int(math.floor(math.log2(n)))
    extra = _geometric_slopes(2 * closest)[0::2][: n - closest]
    return np.array(_geometric_slopes(closest) + extra, dtype=np.float64)


class ALiBi(Module):
    """Additive attention biases by distance, one slope per head. No parameters.

    Args:
        num_heads: number of attention heads (any positive count).

    Attributes:
        slopes: (num_heads,) float64, see :func:`alibi_slopes`.

    Shape:
        bias(q_len, k_len) -> (num_heads, q_len, k_len); add it to the attention
        scores (batch, num_heads, q_len, k_len) before the softmax.

    Examples:
        >>> ALiBi(2).bias(3, 3)[0]
        array([[ 0.    ,    -inf,    -inf],
               [-0.0625,  0.    ,    -inf],
               [-0.125 , -0.0625,  0.    ]])
    """

    def __init__(self, num_heads: int):
        super().__init__()
        self.num_heads = check_positive_int(num_heads, "num_heads")
        self.slopes = alibi_slopes(self.num_heads)

    def bias(self, q_len: int, k_len: int, causal: bool = True, offset: int = 0,
             dtype=np.float64) -> np.ndarray:
        """The (num_heads, q_len, k_len) bias: -slope * (i + offset - j) for key j at or before query i.

        Args:
            q_len, k_len: number of queries and keys (>= 0).
            causal: keys after the query get -inf (masked); otherwise the bias is the
                symmetric -slope * |i + offset - j|.
            offset: the position of the first query. With a KV cache, queries are the
                newest q_len tokens and keys all k_len = offset + q_len tokens so far,
                so query i sits at position i + offset.
            dtype: float32 or float64 (the distances are exact in both up to 2^24).
        """
        q_len, k_len = check_nonnegative_int(q_len, "q_len"), check_nonnegative_int(k_len, "k_len")
        offset = check_nonnegative_int(offset, "offset")
        dtype = check_float_dtype(dtype)
        # distance[i, j] = how many tokens key j lies before query i (negative: after it).
        distance = (np.arange(q_len)[:, None] + offset) - np.arange(k_len)[None, :]  # (q_len, k_len)
        # Negate the integer distance, not the product: the diagonal is then 0.0, not -0.0.
        bias = self.slopes[:, None, None] * -np.abs(distance)  # (heads, q_len, k_len)
        if causal:
            bias = np.where(distance < 0, -np.inf, bias)
        return bias.astype(dtype)

    forward = bias

    def extra_repr(self) -> str:
        return f"num_heads={self.num_heads}"
