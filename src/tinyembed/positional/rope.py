"""Rotary position embeddings (RoPE, Su et al. 2021) and their context-extension scalings.

RoPE turns each pair of query/key dims by the angle ``position * inv_freq[pair]``.
Since <R(m) q, R(n) k> = <q, R(n - m) k>, attention scores see only the offset.

Two pairings are in use, and they agree up to a fixed permutation of dims:
  * half-split (``interleaved=False``; GPT-NeoX, LLaMA): dim i pairs with i + rotary_dim/2.
  * adjacent (``interleaved=True``; GPT-J, RoFormer): dims (2i, 2i+1) pair up.

The inputs' dtype picks how the turn is computed (:meth:`RotaryEmbedding.apply`):
  * float32 q and k: the fused float32 path. Both are turned in one pass, each pair
    (a, b) becoming (a c - b s, b c + a s) from float32 tables (one value per pair,
    rounded once from the float64 ones): a compiled loop (numba, threaded) or, without
    numba or with ``TINYEMBED_JIT=0``, a vectorised NumPy path with the same bits. Both
    layouts, partial rotary_dim and every scaling run on it. The half-split result is HF's
    float32 ``q * cos + rotate_half(q) * sin`` to the bit (given the same tables), and
    within 1e-5 of the float64 path; the backward is the same loop turning by -theta.
  * float64 (or mixed float32/float64) q and k: the float64 path, computed in float64 and
    cast back to each input's dtype. It is the exact reference the float32 path is tested
    against, and the one to use for gradient checks.

Scalings let a model trained on ``original_max_position_embeddings`` tokens read
longer inputs. As in Hugging Face's ``modeling_rope_utils``, each is one pure
function ``(dim, base, scaling, seq_len) -> (inv_freq, attention_factor)`` in
:data:`ROPE_SCALINGS`; :class:`RotaryEmbedding` looks it up and never branches on
a name. Where we differ from HF, on purpose:
  * inv_freq, the ramp and the cos/sin tables are float64 (HF: float32); the float32
    path rounds each table value once, so its angles stay exact at large positions;
  * 'dynamic' depends on the current length only. HF grows its frequencies with the
    longest length seen and keeps them until a call drops below the original length,
    so its output for a given input can depend on earlier calls.
  * 'dynamic' reads ``original_max_position_embeddings`` from the scaling dict (HF:
    the config's max_position_embeddings); yarn's beta_fast=0 or beta_slow=0 is an
    error (HF's ``get(...) or 32`` silently turns them into the defaults).
"""

from __future__ import annotations

import math

import numpy as np

from ..checks import FLOAT_DTYPES, check_number, check_positive_int
from ..kernels import jit, threads
from ..kernels.jit import prange
from ..nn import Module
from ..tensor import Tensor
from .sinusoidal import check_positions

__all__ = ["RotaryEmbedding", "apply_rotary", "apply_rotary_float32", "ROPE_SCALINGS"]

_SEQ_AXIS = {"bhsd": 2, "bshd": 1}  # (batch, heads, seq, dim) and (batch, seq, heads, dim)


# -- scaling variants: pure functions (dim, base, scaling, seq_len) -> (inv_freq, attention_factor) --
def _params(scaling: dict, required: tuple, optional: dict) -> dict:
    """The scaling dict with defaults filled in; names what is missing or unknown."""
    rope_type = scaling.get("rope_type", "default")
    missing = [key for key in required if key not in scaling]
    if missing:
        raise ValueError(f"rope_type {rope_type!r} needs {missing} in scaling, got keys {sorted(scaling)}")
    unknown = sorted(set(scaling) - set(required) - set(optional) - {"rope_type"})
    if unknown:  # a typo such as 'factr' would otherwise silently mean "unscaled"
        raise ValueError(f"unknown keys {unknown} for rope_type {rope_type!r}; "
                         f"accepted: {sorted(set(required) | set(optional))}")
    return {**optional, **scaling}


def _factor(p: dict) -> float:
    return check_number(p["factor"], "scaling factor", low=1)


def _unscaled_inv_freq(dim: int, base: float) -> np.ndarray:
    # Pair i turns once every 2*pi*base^(2i/dim) positions: wavelengths grow geometrically.
    return 1.0 / base ** (np.arange(0, dim, 2, dtype=np.float64) / dim)


def default_rope(dim, base, scaling, seq_len):
    """The original RoPE: inv_freq = base^(-2i/dim), no attention factor."""
    _params(scaling, (), {})
    return _unscaled_inv_freq(dim, base), 1.0


def linear_rope(dim, base, scaling, seq_len):
    """Position interpolation (Chen et al. 2023): position/factor, i.e. inv_freq/factor."""
    p = _params(scaling, ("factor",), {})
    return _unscaled_inv_freq(dim, base) / _factor(p), 1.0


def dynamic_ntk_rope(dim, base, scaling, seq_len):
    """NTK-aware scaling with a base that grows with the current length L (None: not known yet).

    Up to original_max_position_embeddings the frequencies are the unscaled ones; beyond,
    base' = base * (factor * L / orig - (factor - 1)) ** (dim / (dim - 2)).
    """
    p = _params(scaling, ("factor", "original_max_position_embeddings"), {})
    factor = _factor(p)
    orig = check_positive_int(p["original_max_position_embeddings"], "original_max_position_embeddings")
    if dim < 4:  # the exponent dim / (dim - 2) divides by zero (HF raises ZeroDivisionError)
        raise ValueError(f"rope_type 'dynamic' needs rotary_dim >= 4, got {dim}")
    length = orig if seq_len is None else max(seq_len, orig)
    base = base * (factor * length / orig - (factor - 1)) ** (dim / (dim - 2))
    return _unscaled_inv_freq(dim, base), 1.0


def yarn_rope(dim, base, scaling, seq_len):
    """YaRN (Peng et al. 2023), with HF's ramp: interpolate slow dims, keep fast ones.

    A pair that turns more than beta_fast times within the original context keeps its
    frequency; one that turns fewer than beta_slow times is divided by factor; between,
    the blend is linear in the *dim index* (HF and the YaRN code; the paper writes it
    linear in the number of turns). ``truncate`` (default True) widens the ramp to whole
    dims with floor/ceil. The attention factor multiplies cos and sin.
    """
    p = _params(scaling, ("factor", "original_max_position_embeddings"),
                {"beta_fast": 32.0, "beta_slow": 1.0, "attention_factor": None,
                 "mscale": None, "mscale_all_dim": None, "truncate": True})
    factor = _factor(p)
    orig = check_positive_int(p["original_max_position_embeddings"], "original_max_position_embeddings")
    beta_fast, beta_slow = float(p["beta_fast"]), float(p["beta_slow"])
    if not beta_fast > beta_slow > 0:
        raise ValueError(f"yarn needs beta_fast > beta_slow > 0, got {beta_fast} and {beta_slow}")

    def mscale(coefficient):  # the paper's 0.1 ln(s) + 1, with DeepSeek's coefficient on the 0.1
        return 1.0 if factor <= 1 else 0.1 * coefficient * math.log(factor) + 1.0

    attention_factor = p["attention_factor"]
    if attention_factor is None:
        # As HF: both set (and non-zero) gives their ratio (1 when equal, as DeepSeek-V3).
        both = p["mscale"] and p["mscale_all_dim"]
        attention_factor = mscale(p["mscale"]) / mscale(p["mscale_all_dim"]) if both else mscale(1.0)
    if not float(attention_factor) > 0:
        raise ValueError(f"yarn attention_factor must be > 0, got {attention_factor!r}")

    def dim_turning(turns):  # the (fractional) pair index that turns `turns` times in orig tokens
        return dim * math.log(orig / (turns * 2 * math.pi)) / (2 * math.log(base))

    low, high = dim_turning(beta_fast), dim_turning(beta_slow)
    if p["truncate"]:
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, dim - 1)  # HF clamps to dim - 1, not dim/2 - 1: kept for parity
    if low == high:
        high += 0.001  # one-point ramp: avoid 0/0
    ramp = np.clip((np.arange(dim // 2, dtype=np.float64) - low) / (high - low), 0.0, 1.0)
    inv_freq = _unscaled_inv_freq(dim, base)
    return inv_freq / factor * ramp + inv_freq * (1.0 - ramp), float(attention_factor)


def llama3_rope(dim, base, scaling, seq_len):
    """Llama 3.1: divide long wavelengths by factor, keep short ones, blend in between.

    Wavelengths above orig/low_freq_factor are interpolated, below orig/high_freq_factor
    kept; between, the weight of the unscaled frequency rises linearly in orig/wavelength.
    """
    p = _params(scaling, ("factor", "low_freq_factor", "high_freq_factor",
                          "original_max_position_embeddings"), {})
    factor = _factor(p)
    orig = check_positive_int(p["original_max_position_embeddings"], "original_max_position_embeddings")
    low_ff, high_ff = float(p["low_freq_factor"]), float(p["high_freq_factor"])
    if not high_ff > low_ff > 0:
        raise ValueError(f"llama3 needs high_freq_factor > low_freq_factor > 0, got {high_ff} and {low_ff}")
    inv_freq = _unscaled_inv_freq(dim, base)
    wavelen = 2 * math.pi / inv_freq
    # Clipping the blend weight to [0, 1] is the three cases at once: 0 for long wavelengths
    # (divide by factor), 1 for short ones (keep), linear in between.
    smooth = np.clip((orig / wavelen - low_ff) / (high_ff - low_ff), 0.0, 1.0)
    return inv_freq / factor * (1.0 - smooth) + inv_freq * smooth, 1.0


ROPE_SCALINGS = {
    "default": default_rope,
    "linear": linear_rope,
    "dynamic": dynamic_ntk_rope,
    "yarn": yarn_rope,
    "llama3": llama3_rope,
}


# -- the rotation: a differentiable op ------------------------------------------------------------
def _turn_pairs_90(x: np.ndarray, interleaved: bool) -> np.ndarray:
    """Each pair (a, b) -> (-b, a): the quarter turn that sin multiplies."""
    if interleaved:
        out = np.empty_like(x)
        out[..., 0::2], out[..., 1::2] = -x[..., 1::2], x[..., 0::2]
        return out
    half = x.shape[-1] // 2
    return np.concatenate([-x[..., half:], x[..., :half]], axis=-1)


def apply_rotary(x, cos: np.ndarray, sin: np.ndarray, interleaved: bool = False) -> Tensor:
    """Rotate the first ``cos.shape[-1]`` dims of ``x``; the other dims pass through bit-identical.

    Args:
        x: Tensor (float32 or float64), (..., head_dim).
        cos, sin: float64 tables laid out for the convention, broadcastable to
            (..., rotary_dim); any attention factor is already multiplied in.

    Returns a Tensor of x's shape and dtype, computed in float64 then cast: the float64
    path of :meth:`RotaryEmbedding.apply` (float32 q and k take :func:`apply_rotary_float32`).
    """
    x = x if isinstance(x, Tensor) else Tensor(x)
    rd = cos.shape[-1]

    def rotate(a: np.ndarray, sin: np.ndarray) -> np.ndarray:
        out = a.copy()  # the pass-through dims are copied, never recomputed
        part = a[..., :rd].astype(np.float64)
        out[..., :rd] = part * cos + _turn_pairs_90(part, interleaved) * sin
        return out

    # A rotation's adjoint is its inverse, the turn by -theta: negate sin. The attention
    # factor, a scalar in cos and sin, is its own adjoint and stays.
    return Tensor._from_op(rotate(x.data, sin), (x,), lambda g: (rotate(g, -sin),), "rotary")


def _check_positions(positions) -> np.ndarray:
    pos = check_positions(positions)
    if pos.ndim not in (1, 2):
        raise ValueError(f"positions must be (seq,) or (batch, seq), got shape {pos.shape}")
    return pos


def _build_tables(inv_freq: np.ndarray, attention_factor: float, length: int, interleaved: bool):
    """(cos, sin), each (length, rotary_dim) float64, laid out for the convention."""
    angles = np.arange(length, dtype=np.float64)[:, None] * inv_freq  # (length, rotary_dim/2)
    # Both dims of a pair turn by the pair's angle.
    angles = np.repeat(angles, 2, axis=1) if interleaved else np.concatenate([angles, angles], axis=1)
    return attention_factor * np.cos(angles), attention_factor * np.sin(angles)


# -- the float32 path: q and k turned in one pass -------------------------------------------------
# Hugging Face's ``q * cos + rotate_half(q) * sin`` in float32 makes five passes over q (two
# products, the negation, the concatenation, the sum) and reads full-width tables in which
# every value appears twice. Here each pair (a, b) of a row becomes (a c - b s, b c + a s),
# one read and one write of q and of k, from compact (length, rotary_dim/2) float32 tables:
# one (cos, sin) value per pair. The products and the difference are rounded exactly as HF's
# float32 formula rounds them (a * c, then (-b) * s, then their sum), so the half-split result
# is HF's to the bit, given the same float32 tables; ours are computed in float64 and rounded
# once, so large positions keep their angles exact.
_BLOCK = 64  # positions per work item: their table rows stay in L1 while every head of q and k reads them


def _turn_float32_numpy(x: np.ndarray, out: np.ndarray, cos: np.ndarray, sin: np.ndarray, pos: np.ndarray,
                        seq_axis: int, interleaved: bool) -> None:
    """out = x turned, vectorised: the compiled loop's bits, in whole-width ufuncs.

    Each pair (a, b) is turned as (a, b) * (c, c) + (b, a) * (-s, s): the products are the
    loop's a c, b c, a s and -(b s) (negating is exact), and adding -(b s) is subtracting
    b s, so every value rounds as in the loop. Whole-width ufuncs run long inner loops where
    the six half-width ones (a c, b s, ...) of a (rows, rotary_dim/2) view ran one short loop
    per row: 1.3-2.5x faster measured. Pieces of about ``threads.CHUNK_BYTES`` stay in cache
    from one ufunc to the next and spread over the kernels' threads (NumPy releases the GIL).
    """
    if not x.size:
        return
    half = cos.shape[1]
    rotary = 2 * half
    cos, sin = cos[pos], sin[pos]  # (1 or B, S, half), gathered once
    if interleaved:  # (c0, c0, c1, c1, ...) and (-s0, s0, -s1, s1, ...)
        cos_wide = np.repeat(cos, 2, axis=-1)
        sin_signed = np.stack([-sin, sin], axis=-1).reshape(cos_wide.shape)
    else:  # (c, c) and (-s, s)
        cos_wide, sin_signed = np.concatenate([cos, cos], axis=-1), np.concatenate([-sin, sin], axis=-1)
    batch, n1, n2, dim = x.shape  # bhsd: (B, H, S, D), positions on axis 2; bshd: (B, S, H, D), on axis 1
    rows = max(1, threads.CHUNK_BYTES // (dim * x.itemsize))
    step2 = min(n2, rows)
    step1 = max(1, rows // n2) if step2 == n2 else 1
    pieces = [(b, i, j) for b in range(batch) for i in range(0, n1, step1) for j in range(0, n2, step2)]

    def work(first: int, last: int) -> None:
        for b, i, j in pieces[first:last]:
            along1, along2 = slice(i, i + step1), slice(j, j + step2)
            c, s = cos_wide[b % len(cos_wide)], sin_signed[b % len(sin_signed)]  # (S, rotary)
            c, s = (c[None, along2], s[None, along2]) if seq_axis == 2 else (c[along1, None], s[along1, None])
            xs, os = x[b, along1, along2], out[b, along1, along2]
            turning, turned = xs[..., :rotary], os[..., :rotary]
            swapped = np.empty(turning.shape, dtype=np.float32)  # each pair (a, b) as (b, a)
            if interleaved:
                swapped[..., 0::2], swapped[..., 1::2] = turning[..., 1::2], turning[..., 0::2]
            else:
                swapped[..., :half], swapped[..., half:] = turning[..., half:], turning[..., :half]
            np.multiply(turning, c, out=turned)  # (a c, b c)
            np.multiply(swapped, s, out=swapped)  # (-(b s), a s)
            np.add(turned, swapped, out=turned)  # (a c - b s, b c + a s)
            os[..., rotary:] = xs[..., rotary:]  # the pass-through dims, copied

    threads.run_chunks(work, threads.chunks(len(pieces), step1 * step2 * dim * x.itemsize))


@jit.kernel(parallel=True)
def _turn_float32(q, k, q_out, k_out, cos, sin, pos, seq_axis, interleaved):
    # A work item is one batch row and _BLOCK positions: each position's table row is read
    # once and turns that position in every head of q, then of k. bhsd runs a head's rows
    # of the block in order, bshd a position's heads: both walk memory forwards.
    seq, half = q.shape[seq_axis], cos.shape[1]
    rotary, dim = 2 * half, q.shape[3]
    blocks = (seq + _BLOCK - 1) // _BLOCK
    for item in prange(max(q.shape[0], k.shape[0]) * blocks):
        b = item // blocks
        first = (item - b * blocks) * _BLOCK
        count = min(seq, first + _BLOCK) - first
        p = pos[b] if pos.shape[0] > 1 else pos[0]
        for t in range(2):
            x, out = (q, q_out) if t == 0 else (k, k_out)
            if b >= x.shape[0]:  # q and k may differ in batch (then positions are 1-D)
                continue
            heads = x.shape[3 - seq_axis]
            outer, inner = (heads, count) if seq_axis == 2 else (count, heads)
            for u in range(outer):
                for v in range(inner):
                    if seq_axis == 2:
                        s = first + v
                        row, o = x[b, u, s], out[b, u, s]
                    else:
                        s = first + u
                        row, o = x[b, s, v], out[b, s, v]
                    c, sn = cos[p[s]], sin[p[s]]
                    if interleaved:
                        for i in range(half):
                            x1, x2 = row[2 * i], row[2 * i + 1]
                            o[2 * i] = x1 * c[i] - x2 * sn[i]
                            o[2 * i + 1] = x2 * c[i] + x1 * sn[i]
                    else:
                        for i in range(half):
                            x1, x2 = row[i], row[i + half]
                            o[i] = x1 * c[i] - x2 * sn[i]
                            o[i + half] = x2 * c[i] + x1 * sn[i]
                    for d in range(rotary, dim):
                        o[d] = row[d]


def _turn_float32_arrays(xs: tuple[np.ndarray, ...], cos: np.ndarray, sin: np.ndarray, pos: np.ndarray,
                         seq_axis: int, interleaved: bool) -> list[np.ndarray]:
    """(q, k) or (q,) turned: compiled when numba is there, else by NumPy, the same bits either way."""
    xs = tuple(np.ascontiguousarray(x, dtype=np.float32) for x in xs)
    outs = [np.empty_like(x) for x in xs]
    if jit.available():
        # A lone q (a gradient): an empty batch of it stands in for k, and the loop skips it.
        q, k = xs if len(xs) == 2 else (xs[0], xs[0][:0])
        q_out, k_out = outs if len(outs) == 2 else (outs[0], outs[0][:0])
        _turn_float32(q, k, q_out, k_out, cos, sin, pos, seq_axis, interleaved)
    else:
        for x, out in zip(xs, outs, strict=True):
            _turn_float32_numpy(x, out, cos, sin, pos, seq_axis, interleaved)
    return outs


def apply_rotary_float32(q: Tensor, k: Tensor, cos: np.ndarray, sin: np.ndarray, neg_sin: np.ndarray,
                         pos: np.ndarray, seq_axis: int, interleaved: bool) -> tuple[Tensor, Tensor]:
    """Turn float32 q and k in one pass (the fused float32 path of :meth:`RotaryEmbedding.apply`).

    Args:
        q, k: float32 Tensors, 4-D with positions on ``seq_axis`` (2: bhsd, 1: bshd).
        cos, sin, neg_sin: (length, rotary_dim/2) float32, one value per pair (attention
            factor multiplied in), and -sin; row p is position p.
        pos: (1 or batch, seq) int64 positions, all < length.

    The backward turns the gradient by -theta: the same loop with -sin, which is exact, so the
    backward rounds as the forward does.
    """
    q_out, k_out = _turn_float32_arrays((q.data, k.data), cos, sin, pos, seq_axis, interleaved)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        return (_turn_float32_arrays((g,), cos, neg_sin, pos, seq_axis, interleaved)[0],)

    # The backward reads no input values (a rotation's adjoint needs only the angles): nothing saved.
    return (Tensor._from_op(q_out, (q,), backward, "rotary", saved=()),
            Tensor._from_op(k_out, (k,), backward, "rotary", saved=()))


class RotaryEmbedding(Module):
    """Rotates queries and keys by their positions. No parameters.

    Args:
        head_dim: size of each head (even).
        base: the wavelength scale theta (10000 in the paper; LLaMA 3 uses 500000).
        rotary_dim: rotate only the first rotary_dim dims (even, <= head_dim; GPT-NeoX, Phi).
        interleaved: False pairs dim i with i + rotary_dim/2, True pairs (2i, 2i+1).
        scaling: None or a dict with 'rope_type' (one of :data:`ROPE_SCALINGS`) and its keys.

    Attributes:
        inv_freq: (rotary_dim/2,) float64, the frequencies of the cached tables
            ('dynamic': those of the last length used).
        attention_scaling: float multiplying cos and sin (YaRN's attention factor, else 1).

    Shape:
        apply: q (B, Hq, S, head_dim), k (B, Hk, S, head_dim) for layout 'bhsd', or
        (B, S, H, head_dim) for 'bshd' -> the same shapes and dtypes.

    Precision: float32 q and k take the fused float32 path (fast; within 1e-5 of float64),
    float64 ones the float64 path (exact); see the module docstring.

    Examples:
        >>> rope = RotaryEmbedding(8, scaling={"rope_type": "linear", "factor": 2.0})
        >>> x = np.random.default_rng(0).standard_normal((1, 1, 1, 8)).repeat(13, axis=2)
        >>> q, k = rope.apply(x, x)  # the same vector at positions 0..12
        >>> scores = q.data[0, 0] @ k.data[0, 0].T
        >>> bool(np.isclose(scores[5, 3], scores[12, 10]))  # only the offset counts
        True
    """

    def __init__(self, head_dim: int, base: float = 10000.0, rotary_dim: int | None = None,
                 interleaved: bool = False, scaling: dict | None = None):
        super().__init__()
        self.head_dim = _check_even_dim(head_dim, "head_dim")
        self.rotary_dim = self.head_dim if rotary_dim is None else _check_even_dim(rotary_dim, "rotary_dim")
        if self.rotary_dim > self.head_dim:
            raise ValueError(f"rotary_dim ({self.rotary_dim}) must be <= head_dim ({self.head_dim})")
        if not base > 1.0:
            raise ValueError(f"base must be > 1, got {base}")
        self.base = float(base)
        self.interleaved = bool(interleaved)
        self.scaling = dict(scaling) if scaling is not None else {"rope_type": "default"}
        rope_type = self.scaling.get("rope_type")
        if rope_type not in ROPE_SCALINGS:
            raise ValueError(f"unknown rope_type {rope_type!r}; known: {sorted(ROPE_SCALINGS)}")
        self._frequencies = ROPE_SCALINGS[rope_type]
        # Called once now so that a bad scaling dict fails here, not at the first forward.
        self.inv_freq, self.attention_scaling = self._frequencies(self.rotary_dim, self.base, self.scaling, None)
        self._cos = self._sin = np.empty((0, self.rotary_dim))
        # The float32 path's compact tables (cos, sin, -sin), and the float64 table they came from.
        self._float32_tables: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._float32_source: np.ndarray | None = None

    def _tables(self, length: int):
        """cos/sin rows for positions 0..length-1 at least, rebuilt only when needed.

        The frequencies are asked for at every call (O(rotary_dim)): they change with
        the length for 'dynamic' only, and a change is what invalidates the tables.
        """
        inv_freq, factor = self._frequencies(self.rotary_dim, self.base, self.scaling, length)
        same = factor == self.attention_scaling and np.array_equal(inv_freq, self.inv_freq)
        if same and length <= len(self._cos):
            return self._cos, self._sin
        # Same frequencies: grow geometrically so token-by-token decoding rebuilds O(log n) times.
        size = max(length, 2 * len(self._cos)) if same else length
        self._cos, self._sin = _build_tables(inv_freq, factor, size, self.interleaved)
        self.inv_freq, self.attention_scaling = inv_freq, factor
        return self._cos, self._sin

    def _tables_float32(self, length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(cos, sin, -sin), each (>= length, rotary_dim/2) float32: one value per pair, each
        the float64 table's value rounded once. Rebuilt when the float64 tables are."""
        cos, sin = self._tables(length)
        if self._float32_tables is None or self._float32_source is not cos:
            # Both dims of a pair hold the same value: keep the first dim of each pair.
            first = slice(0, self.rotary_dim, 2) if self.interleaved else slice(0, self.rotary_dim // 2)
            cos32 = np.ascontiguousarray(cos[:, first], dtype=np.float32)
            sin32 = np.ascontiguousarray(sin[:, first], dtype=np.float32)
            self._float32_tables, self._float32_source = (cos32, sin32, -sin32), cos
        return self._float32_tables

    def cos_sin(self, positions) -> tuple[np.ndarray, np.ndarray]:
        """(cos, sin) of ``positions`` ((seq,) or (batch, seq) ints >= 0): (*positions.shape, rotary_dim) float64.

        The current length is max(positions) + 1 (what 'dynamic' scales by).
        """
        pos = _check_positions(positions)
        cos, sin = self._tables(int(pos.max()) + 1 if pos.size else 0)
        return cos[pos], sin[pos]

    def apply(self, q, k, positions=None, layout: str = "bhsd") -> tuple[Tensor, Tensor]:
        """Rotated (q, k): Tensors (or arrays) in, Tensors out, differentiable in q and k.

        positions: None (0..seq-1), (seq,) or (batch, seq) ints; shared by q and k.
        q and k both float32: the fused float32 path; otherwise the float64 path, each
        output in its input's dtype.
        """
        if layout not in _SEQ_AXIS:
            raise ValueError(f"layout must be one of {sorted(_SEQ_AXIS)}, got {layout!r}")
        q, k = self._check_input(q, "q", layout), self._check_input(k, "k", layout)
        seq = q.shape[_SEQ_AXIS[layout]]
        if k.shape[_SEQ_AXIS[layout]] != seq:
            raise ValueError(f"q and k must have the same sequence length, got {q.shape} and {k.shape}")
        pos = np.arange(seq) if positions is None else _check_positions(positions)
        if pos.shape[-1] != seq:
            raise ValueError(f"positions {pos.shape} do not match the sequence length {seq}")
        if pos.ndim == 2 and not pos.shape[0] == q.shape[0] == k.shape[0]:
            raise ValueError(f"positions of batch {pos.shape[0]} for q {q.shape} and k {k.shape}")
        if q.dtype == k.dtype == np.float32:  # the fused float32 path
            tables = self._tables_float32(int(pos.max()) + 1 if pos.size else 0)
            pos = np.ascontiguousarray(pos.reshape(len(pos) if pos.ndim == 2 else 1, seq), dtype=np.int64)
            return apply_rotary_float32(q, k, *tables, pos, _SEQ_AXIS[layout], self.interleaved)
        cos, sin = self.cos_sin(pos)  # (S, rd) or (B, S, rd)
        head_axis = -3 if layout == "bhsd" else -2  # a heads axis of 1: (.., 1, S, rd) or (.., S, 1, rd)
        cos, sin = np.expand_dims(cos, head_axis), np.expand_dims(sin, head_axis)
        return apply_rotary(q, cos, sin, self.interleaved), apply_rotary(k, cos, sin, self.interleaved)

    forward = apply

    def _check_input(self, x, name: str, layout: str) -> Tensor:
        x = x if isinstance(x, Tensor) else Tensor(x)
        if x.dtype not in FLOAT_DTYPES:
            raise TypeError(f"{name} must be float32 or float64, got {x.dtype}")
        if x.ndim != 4:
            raise ValueError(f"{name} must be 4-D ({layout}), got shape {x.shape}")
        if x.shape[-1] != self.head_dim:
            raise ValueError(f"{name} has last dim {x.shape[-1]}, expected head_dim={self.head_dim}")
        return x

    def extra_repr(self) -> str:
        return (f"head_dim={self.head_dim}, rotary_dim={self.rotary_dim}, base={self.base:g}, "
                f"interleaved={self.interleaved}, scaling={self.scaling}")


def _check_even_dim(value, name: str) -> int:
    value = check_positive_int(value, name)
    if value % 2:
        raise ValueError(f"{name} must be even (dims rotate in pairs), got {value}")
    return value
