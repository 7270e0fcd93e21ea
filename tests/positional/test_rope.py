"""RotaryEmbedding: the relative-position property, both pairings, the scalings against
formulas written here from the papers, a per-pair 2x2 rotation and a torch oracle,
gradients, dtypes, the table cache and input errors.

float32 q and k take the fused float32 path (compiled, or NumPy without numba), float64 the
float64 one: the parity tests run on both dtypes, float32 at a float32 tolerance, and the
float32 path is checked against the float64 one (1e-5), against HF's float32 formula (to the
bit), and compiled against NumPy (to the bit)."""

import importlib.util
import math
import os

import numpy as np
import pytest

from tinyembed.gradcheck import gradcheck
from tinyembed.kernels import jit
from tinyembed.kernels import threads as kernel_threads
from tinyembed.positional import rope as rope_module
from tinyembed.positional.rope import RotaryEmbedding
from tinyembed.tensor import Tensor, cat


# -- references, written per dimension from the published formulas --------------------------------
def ref_unscaled(dim, base):
    """RoFormer: theta_i = base^(-2i/d), i = 0 .. d/2 - 1."""
    return [base ** (-2.0 * i / dim) for i in range(dim // 2)]


def ref_linear(dim, base, factor):
    """Position interpolation: position m becomes m / factor, the same as theta_i / factor."""
    return [theta / factor for theta in ref_unscaled(dim, base)]


def ref_dynamic(dim, base, factor, orig, length):
    """Dynamic NTK: base grows with the length once it exceeds the original context."""
    if length > orig:
        base = base * ((factor * length / orig) - (factor - 1)) ** (dim / (dim - 2))
    return ref_unscaled(dim, base)


def ref_yarn(dim, base, factor, orig, beta_fast=32, beta_slow=1, truncate=True):
    """YaRN as the reference code and HF ramp it: linear in the pair index between the
    pairs that turn beta_fast and beta_slow times within the original context."""
    def index_turning(turns):  # orig / (2 pi base^(2i/d)) = turns, solved for i
        return dim / 2 * math.log(orig / (2 * math.pi * turns), base)

    lo, hi = index_turning(beta_fast), index_turning(beta_slow)
    if truncate:
        lo, hi = math.floor(lo), math.ceil(hi)
    lo, hi = max(lo, 0), min(hi, dim - 1)
    out = []
    for i, theta in enumerate(ref_unscaled(dim, base)):
        weight = (1.0 if i > lo else 0.0) if hi == lo else min(max((i - lo) / (hi - lo), 0.0), 1.0)
        out.append((1 - weight) * theta + weight * theta / factor)  # weight 1: fully interpolated
    return out


def ref_yarn_attention(factor, attention_factor=None, mscale=None, mscale_all_dim=None):
    def m(coef):
        return 0.1 * coef * math.log(factor) + 1.0
    if attention_factor is not None:
        return attention_factor
    return m(mscale) / m(mscale_all_dim) if mscale and mscale_all_dim else m(1.0)


def ref_llama3(dim, base, factor, low_freq_factor, high_freq_factor, orig):
    """Llama 3.1's apply_scaling, one frequency at a time."""
    low_freq_wavelen, high_freq_wavelen = orig / low_freq_factor, orig / high_freq_factor
    out = []
    for freq in ref_unscaled(dim, base):
        wavelen = 2 * math.pi / freq
        if wavelen < high_freq_wavelen:
            out.append(freq)
        elif wavelen > low_freq_wavelen:
            out.append(freq / factor)
        else:
            smooth = (orig / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
            out.append((1 - smooth) * freq / factor + smooth * freq)
    return out


def rotate_pairwise(x, positions, inv_freq, scale, interleaved, rotary_dim):
    """Each pair (a, b) times scale * [[cos, -sin], [sin, cos]], one 2x2 product at a time."""
    out = x.astype(np.float64).copy()
    batch, heads, seq, _ = x.shape
    half = rotary_dim // 2
    for b in range(batch):
        for h in range(heads):
            for s in range(seq):
                for i in range(half):
                    a, c = (2 * i, 2 * i + 1) if interleaved else (i, i + half)
                    angle = positions[s] * inv_freq[i]
                    rot = scale * np.array([[math.cos(angle), -math.sin(angle)],
                                            [math.sin(angle), math.cos(angle)]])
                    out[b, h, s, [a, c]] = rot @ x[b, h, s, [a, c]]
    return out


LINEAR = {"rope_type": "linear", "factor": 4.0}
DYNAMIC = {"rope_type": "dynamic", "factor": 2.0, "original_max_position_embeddings": 16}
YARN = {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 16}
LLAMA3 = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
          "original_max_position_embeddings": 32}
SCALINGS = [None, LINEAR, DYNAMIC, YARN, LLAMA3]
SCALING_IDS = ["default", "linear", "dynamic", "yarn", "llama3"]


DTYPES = [np.float64, np.float32]
# How close a rotated float32 value is to the exact one: a few float32 roundings of values of
# size ~1-5 (inputs are standard normal, YaRN's attention factor is ~1.14).
F32_TOL = dict(rtol=1e-5, atol=1e-5)

# numba is optional; CI installs it. TINYEMBED_JIT=0 runs everything on the NumPy path.
needs_numba = pytest.mark.skipif(
    (importlib.util.find_spec("numba") is None and not os.environ.get("CI"))
    or os.environ.get("TINYEMBED_JIT") == "0",
    reason="numba not installed, or the compiled kernels switched off with TINYEMBED_JIT=0")


@pytest.fixture(params=[True, False], ids=["compiled", "numpy"])
def float32_path(request):
    """Run the body with the compiled kernels as set (on where numba is, unless TINYEMBED_JIT=0) and
    off, then restore the setting."""
    old = jit.set_enabled(False)
    jit.set_enabled(old and request.param)
    yield request.param
    jit.set_enabled(old)


def same_vector_everywhere(rng, seq, dim):
    return np.broadcast_to(rng.standard_normal(dim), (1, 1, seq, dim)).copy()


# -- the relative-position property -------------------------------------------------------------
@pytest.mark.parametrize("scaling", SCALINGS, ids=SCALING_IDS)
@pytest.mark.parametrize("rotary_dim", [None, 8])
@pytest.mark.parametrize("interleaved", [False, True])
@pytest.mark.parametrize("start", [0, 500])
@pytest.mark.parametrize("dtype", DTYPES)
def test_rope_dot_product_depends_only_on_offset(scaling, rotary_dim, interleaved, start, dtype):
    rng = np.random.default_rng(0)
    rope = RotaryEmbedding(16, rotary_dim=rotary_dim, interleaved=interleaved, scaling=scaling)
    q, k = same_vector_everywhere(rng, 64, 16).astype(dtype), same_vector_everywhere(rng, 64, 16).astype(dtype)
    # One call for all positions: 'dynamic' frequencies depend on the call's length.
    qr, kr = rope.apply(q, k, positions=np.arange(start, start + 64))
    scores = qr.data[0, 0].astype(np.float64) @ kr.data[0, 0].T  # scores[m, n] = <R(m) q, R(n) k>
    tol = 1e-9 if dtype == np.float64 else 1e-5
    for offset in (0, 3, -5, 40):
        values = [scores[m, m - offset] for m in range(64) if 0 <= m - offset < 64]
        np.testing.assert_allclose(values, values[0], rtol=tol, atol=tol)
    assert not np.isclose(scores[10, 7], scores[10, 6])  # the offset does matter


@pytest.mark.parametrize("scaling", [None, LINEAR, DYNAMIC, LLAMA3], ids=["default", "linear", "dynamic", "llama3"])
@pytest.mark.parametrize("rotary_dim", [None, 6])
@pytest.mark.parametrize("interleaved", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
def test_rope_preserves_norms_when_attention_scaling_is_one(scaling, rotary_dim, interleaved, dtype):
    rope = RotaryEmbedding(16, rotary_dim=rotary_dim, interleaved=interleaved, scaling=scaling)
    rng = np.random.default_rng(1)
    q, k = rng.standard_normal((2, 3, 40, 16)).astype(dtype), rng.standard_normal((2, 1, 40, 16)).astype(dtype)
    qr, kr = rope.apply(q, k, positions=rng.integers(0, 5000, size=40))
    assert rope.attention_scaling == 1.0
    tol = 1e-12 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(np.linalg.norm(qr.data, axis=-1), np.linalg.norm(q, axis=-1), rtol=tol)
    np.testing.assert_allclose(np.linalg.norm(kr.data, axis=-1), np.linalg.norm(k, axis=-1), rtol=tol)


@pytest.mark.parametrize("dtype", DTYPES)
def test_yarn_scales_the_norm_of_the_rotated_dims_by_the_attention_factor(dtype):
    rope = RotaryEmbedding(16, rotary_dim=8, scaling=YARN)
    x = np.random.default_rng(2).standard_normal((1, 2, 30, 16)).astype(dtype)
    out = rope.apply(x, x)[0].data
    assert rope.attention_scaling == pytest.approx(0.1 * math.log(4.0) + 1)
    np.testing.assert_allclose(np.linalg.norm(out[..., :8], axis=-1),
                               rope.attention_scaling * np.linalg.norm(x[..., :8], axis=-1),
                               rtol=1e-12 if dtype == np.float64 else 1e-6)


@pytest.mark.parametrize("rotary_dim", [None, 10])
@pytest.mark.parametrize("dtype", DTYPES)
def test_rope_conventions_agree_up_to_a_fixed_permutation_of_dims(rotary_dim, dtype):
    head_dim, rd = 16, rotary_dim or 16
    # Adjacent pair i = dims (2i, 2i+1) sits at dims (i, i + rd/2) in the half-split layout.
    perm = np.arange(head_dim)
    perm[: rd // 2], perm[rd // 2: rd] = np.arange(0, rd, 2), np.arange(1, rd, 2)
    rng = np.random.default_rng(3)
    q, k = (rng.standard_normal((2, 2, 9, head_dim)).astype(dtype) for _ in range(2))
    pos = rng.integers(0, 3000, size=9)
    adjacent = RotaryEmbedding(head_dim, rotary_dim=rotary_dim, interleaved=True, scaling=YARN)
    half = RotaryEmbedding(head_dim, rotary_dim=rotary_dim, interleaved=False, scaling=YARN)
    qa, ka = adjacent.apply(q, k, pos)
    qh, kh = half.apply(q[..., perm], k[..., perm], pos)
    if dtype == np.float32:  # one value per pair in both tables and the same products: the same bits
        np.testing.assert_array_equal(qh.data, qa.data[..., perm])
        np.testing.assert_array_equal(kh.data, ka.data[..., perm])
    np.testing.assert_allclose(qh.data, qa.data[..., perm], rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(kh.data, ka.data[..., perm], rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("interleaved", [False, True])
def test_rotary_dim_leaves_the_other_dims_bit_identical(dtype, interleaved):
    rope = RotaryEmbedding(12, rotary_dim=4, interleaved=interleaved, scaling=YARN)  # factor != 1
    q = np.random.default_rng(4).standard_normal((1, 2, 7, 12)).astype(dtype)
    out = rope.apply(q, q)[0].data
    np.testing.assert_array_equal(out[..., 4:], q[..., 4:])
    assert not np.allclose(out[..., 1:, :4], q[..., 1:, :4])  # the first 4 do turn


# -- scalings against the published formulas ---------------------------------------------------
def reference_cases():
    yield "default", dict(head_dim=64), lambda L: (ref_unscaled(64, 10000.0), 1.0)
    yield "linear", dict(head_dim=64, base=500000.0, scaling={"rope_type": "linear", "factor": 8}), \
        lambda L: (ref_linear(64, 500000.0, 8), 1.0)
    dyn = {"rope_type": "dynamic", "factor": 4.0, "original_max_position_embeddings": 256}
    yield "dynamic", dict(head_dim=64, scaling=dyn), lambda L: (ref_dynamic(64, 10000.0, 4.0, 256, L), 1.0)
    yield "dynamic-partial", dict(head_dim=64, rotary_dim=16, scaling=dyn), \
        lambda L: (ref_dynamic(16, 10000.0, 4.0, 256, L), 1.0)
    yarn = {"rope_type": "yarn", "factor": 8.0, "original_max_position_embeddings": 256}
    yield "yarn", dict(head_dim=128, scaling=yarn), \
        lambda L: (ref_yarn(128, 10000.0, 8.0, 256), ref_yarn_attention(8.0))
    yarn_loose = {**yarn, "beta_fast": 16, "beta_slow": 2, "truncate": False, "mscale": 1.0, "mscale_all_dim": 0.5}
    yield "yarn-no-truncate", dict(head_dim=64, rotary_dim=32, base=50000.0, scaling=yarn_loose), \
        lambda L: (ref_yarn(32, 50000.0, 8.0, 256, 16, 2, truncate=False), ref_yarn_attention(8.0, None, 1.0, 0.5))
    yarn_ds = {**yarn, "mscale": 0.707, "mscale_all_dim": 0.707}  # DeepSeek-V3: the two cancel
    yield "yarn-deepseek", dict(head_dim=64, scaling=yarn_ds), lambda L: (ref_yarn(64, 10000.0, 8.0, 256), 1.0)
    yarn_af = {**yarn, "attention_factor": 0.8}
    yield "yarn-attention-factor", dict(head_dim=64, scaling=yarn_af), lambda L: (ref_yarn(64, 10000.0, 8.0, 256), 0.8)
    # A long original context: even the slowest pair turns more than beta_slow times, so the
    # ramp ends past the last pair and no pair is fully interpolated.
    yarn_long = {**yarn, "original_max_position_embeddings": 65536}
    yield "yarn-long-original", dict(head_dim=32, scaling=yarn_long), \
        lambda L: (ref_yarn(32, 10000.0, 8.0, 65536), ref_yarn_attention(8.0))
    llama = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
             "original_max_position_embeddings": 8192}
    yield "llama3", dict(head_dim=128, base=500000.0, scaling=llama), \
        lambda L: (ref_llama3(128, 500000.0, 8.0, 1.0, 4.0, 8192), 1.0)
    llama_small = {**llama, "low_freq_factor": 2.0, "high_freq_factor": 8.0, "original_max_position_embeddings": 256}
    yield "llama3-small", dict(head_dim=32, scaling=llama_small), \
        lambda L: (ref_llama3(32, 10000.0, 8.0, 2.0, 8.0, 256), 1.0)


@pytest.mark.parametrize("name, kwargs, reference", list(reference_cases()), ids=[c[0] for c in reference_cases()])
@pytest.mark.parametrize("length", [1, 100, 256, 257, 700, 3000, 9000])
def test_scaling_inv_freq_and_attention_scaling_match_the_published_formulas(name, kwargs, reference, length):
    rope = RotaryEmbedding(**kwargs)
    cos, sin = rope.cos_sin(np.arange(length))
    inv_freq, scale = reference(length)
    np.testing.assert_allclose(rope.inv_freq, inv_freq, rtol=1e-13)
    assert rope.inv_freq.dtype == np.float64 and rope.inv_freq.shape == (rope.rotary_dim // 2,)
    assert rope.attention_scaling == pytest.approx(scale, rel=1e-14)
    last = length - 1  # the largest angle, where an error in the frequencies shows most
    angles = np.concatenate([inv_freq, inv_freq]) * last
    np.testing.assert_allclose(cos[last], scale * np.cos(angles), atol=1e-9)
    np.testing.assert_allclose(sin[last], scale * np.sin(angles), atol=1e-9)


def test_dynamic_is_unscaled_up_to_the_original_length_and_scaled_beyond():
    dyn = {"rope_type": "dynamic", "factor": 4.0, "original_max_position_embeddings": 256}
    rope, plain = RotaryEmbedding(64, scaling=dyn), RotaryEmbedding(64)
    for length in (10, 256):
        np.testing.assert_array_equal(rope.cos_sin(np.arange(length))[0], plain.cos_sin(np.arange(length))[0])
    rope.cos_sin(np.arange(257))
    assert np.all(rope.inv_freq[1:] < plain.inv_freq[1:])  # a larger base: slower turns


def test_yarn_keeps_fast_pairs_and_interpolates_slow_pairs_as_in_the_paper():
    dim, orig, factor = 128, 4096, 8.0
    rope = RotaryEmbedding(dim, scaling={"rope_type": "yarn", "factor": factor,
                                         "original_max_position_embeddings": orig})
    theta = np.array(ref_unscaled(dim, 10000.0))
    turns = orig * theta / (2 * math.pi)  # full turns of each pair within the original context
    fast, slow = turns > 32, turns < 1
    middle = ~fast & ~slow
    assert fast.any() and slow.any() and middle.any()
    np.testing.assert_allclose(rope.inv_freq[fast], theta[fast], rtol=1e-15)
    np.testing.assert_allclose(rope.inv_freq[slow], theta[slow] / factor, rtol=1e-15)
    assert np.all((rope.inv_freq[middle] < theta[middle]) & (rope.inv_freq[middle] > theta[middle] / factor))


# -- parity of the rotated q and k -----------------------------------------------------------
@pytest.mark.parametrize("scaling, inv_freq, scale", [
    (None, ref_unscaled(6, 10000.0), 1.0),
    (YARN, ref_yarn(6, 10000.0, 4.0, 16), ref_yarn_attention(4.0)),
    (LLAMA3, ref_llama3(6, 10000.0, 8.0, 1.0, 4.0, 32), 1.0),
], ids=["default", "yarn", "llama3"])
@pytest.mark.parametrize("interleaved", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
def test_rotated_qk_match_a_per_pair_2x2_rotation(scaling, inv_freq, scale, interleaved, dtype, float32_path):
    rope = RotaryEmbedding(10, rotary_dim=6, interleaved=interleaved, scaling=scaling)
    rng = np.random.default_rng(5)
    q, k = rng.standard_normal((2, 2, 5, 10)).astype(dtype), rng.standard_normal((2, 1, 5, 10)).astype(dtype)
    pos = [0, 1, 7, 300, 12345]
    qr, kr = rope.apply(q, k, np.array(pos))
    tol = dict(atol=1e-12) if dtype == np.float64 else F32_TOL
    np.testing.assert_allclose(qr.data, rotate_pairwise(q, pos, inv_freq, scale, interleaved, 6), **tol)
    np.testing.assert_allclose(kr.data, rotate_pairwise(k, pos, inv_freq, scale, interleaved, 6), **tol)


@pytest.mark.parametrize("interleaved", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
def test_rotated_qk_match_torch_rotate_half_and_complex_multiplication(interleaved, dtype, float32_path):
    torch = pytest.importorskip("torch")
    rope = RotaryEmbedding(64, base=500000.0, interleaved=interleaved, scaling=LLAMA3)
    rng = np.random.default_rng(6)
    q, k = rng.standard_normal((2, 4, 33, 64)).astype(dtype), rng.standard_normal((2, 2, 33, 64)).astype(dtype)
    pos = rng.integers(0, 20000, size=33)
    inv_freq = torch.tensor(ref_llama3(64, 500000.0, 8.0, 1.0, 4.0, 32), dtype=torch.float64)
    angles = torch.outer(torch.tensor(pos, dtype=torch.float64), inv_freq)  # (S, 32)

    def oracle(x):  # in float64, on the (float32 or float64) inputs
        x = torch.tensor(x, dtype=torch.float64)
        if interleaved:  # RoFormer / Meta LLaMA: pairs as complex numbers times e^(i angle)
            pairs = torch.view_as_complex(x.reshape(*x.shape[:-1], -1, 2).contiguous())
            return torch.view_as_real(pairs * torch.polar(torch.ones_like(angles), angles)).flatten(-2)
        emb = torch.cat([angles, angles], dim=-1)  # GPT-NeoX / HF: x cos + rotate_half(x) sin
        rotated_half = torch.cat([-x[..., 32:], x[..., :32]], dim=-1)
        return x * emb.cos() + rotated_half * emb.sin()

    qr, kr = rope.apply(q, k, pos)
    tol = dict(atol=1e-11) if dtype == np.float64 else F32_TOL
    np.testing.assert_allclose(qr.data, oracle(q).numpy(), **tol)
    np.testing.assert_allclose(kr.data, oracle(k).numpy(), **tol)


@pytest.mark.parametrize("dtype", DTYPES)
def test_layouts_bhsd_and_bshd_agree(dtype, float32_path):
    rope = RotaryEmbedding(8, rotary_dim=6, scaling=YARN)
    rng = np.random.default_rng(7)
    q, k = rng.standard_normal((2, 3, 5, 8)).astype(dtype), rng.standard_normal((2, 1, 5, 8)).astype(dtype)
    for pos in (None, np.array([4, 0, 9, 2, 30]), np.array([[0, 1, 2, 3, 4], [100, 101, 102, 103, 104]])):
        qb, kb = rope.apply(q, k, pos, layout="bhsd")
        qs, ks = rope.apply(q.transpose(0, 2, 1, 3), k.transpose(0, 2, 1, 3), pos, layout="bshd")
        np.testing.assert_array_equal(qs.data.transpose(0, 2, 1, 3), qb.data)
        np.testing.assert_array_equal(ks.data.transpose(0, 2, 1, 3), kb.data)


@pytest.mark.parametrize("layout", ["bhsd", "bshd"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_2d_positions_turn_each_batch_row_by_its_own_positions(layout, dtype, float32_path):
    rope = RotaryEmbedding(8, interleaved=True)
    rng = np.random.default_rng(8)
    shape = (3, 2, 4, 8) if layout == "bhsd" else (3, 4, 2, 8)
    q, k = rng.standard_normal(shape).astype(dtype), rng.standard_normal(shape).astype(dtype)
    pos = np.array([[0, 1, 2, 3], [50, 7, 7, 0], [999, 1000, 1001, 1002]])
    qr, kr = rope.apply(q, k, pos, layout=layout)
    for b in range(3):
        qb, kb = rope.apply(q[b:b + 1], k[b:b + 1], pos[b], layout=layout)
        np.testing.assert_array_equal(qr.data[b:b + 1], qb.data)
        np.testing.assert_array_equal(kr.data[b:b + 1], kb.data)
    assert not np.allclose(qr.data[1], rope.apply(q[1:2], k[1:2], pos[0], layout=layout)[0].data[0])


# -- autograd and dtypes ------------------------------------------------------------------------
@pytest.mark.parametrize("scaling", [None, YARN], ids=["default", "yarn"])
@pytest.mark.parametrize("rotary_dim", [None, 4])
@pytest.mark.parametrize("interleaved", [False, True])
def test_rope_gradient_matches_finite_differences(scaling, rotary_dim, interleaved):
    rope = RotaryEmbedding(8, rotary_dim=rotary_dim, interleaved=interleaved, scaling=scaling)
    rng = np.random.default_rng(9)
    q = Tensor(rng.standard_normal((2, 2, 3, 8)), requires_grad=True)
    k = Tensor(rng.standard_normal((2, 1, 3, 8)), requires_grad=True)
    pos = np.array([[0, 5, 9], [3, 4, 100]])

    def both(q, k):
        qr, kr = rope.apply(q, k, pos)
        return cat([qr.reshape(-1), kr.reshape(-1)])

    assert gradcheck(both, [q, k])


@pytest.mark.parametrize("interleaved", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
def test_rope_backward_is_the_inverse_rotation(interleaved, dtype, float32_path):
    rope = RotaryEmbedding(8, rotary_dim=6, interleaved=interleaved)
    q = Tensor(np.random.default_rng(10).standard_normal((1, 2, 6, 8)).astype(dtype), requires_grad=True)
    qr, _ = rope.apply(q, q.detach(), np.arange(6) * 17)
    qr.backward(qr.data)  # R^T (R q) = q for a rotation
    assert q.grad.dtype == dtype
    np.testing.assert_allclose(q.grad, q.data, atol=1e-13 if dtype == np.float64 else 1e-6)


def test_float32_input_gives_float32_output_and_gradients():
    rope = RotaryEmbedding(8, scaling=YARN)
    x = np.random.default_rng(11).standard_normal((1, 2, 5, 8))
    q = Tensor(x.astype(np.float32), requires_grad=True)
    qr, kr = rope.apply(q, x.astype(np.float32))
    assert qr.dtype == np.float32 and kr.dtype == np.float32
    np.testing.assert_allclose(qr.data, rope.apply(x, x)[0].data, rtol=1e-6, atol=1e-6)
    qr.sum().backward()
    assert q.grad.dtype == np.float32


# -- the fused float32 path --------------------------------------------------------------------
LAYOUT_SHAPES = {"bhsd": ((2, 3, 67, 16), (2, 1, 67, 16)), "bshd": ((2, 67, 3, 16), (2, 67, 1, 16))}


def position_cases(rng, batch, seq):
    """0..seq-1, a start offset, explicit scattered positions, and one row of positions per batch row."""
    yield None
    yield np.arange(700, 700 + seq)
    yield rng.integers(0, 5000, size=seq)
    yield rng.integers(0, 5000, size=(batch, seq))


def float32_and_float64(rope, q, k, pos, layout):
    """The float32 path on float32 q and k, and the float64 path on the same values."""
    q32, k32 = q.astype(np.float32), k.astype(np.float32)
    return rope.apply(q32, k32, pos, layout), rope.apply(q32.astype(np.float64), k32.astype(np.float64), pos, layout)


@pytest.mark.parametrize("scaling", SCALINGS, ids=SCALING_IDS)
@pytest.mark.parametrize("rotary_dim", [None, 6])
@pytest.mark.parametrize("interleaved", [False, True])
@pytest.mark.parametrize("layout", ["bhsd", "bshd"])
def test_float32_path_is_within_1e_5_of_the_float64_path(scaling, rotary_dim, interleaved, layout, float32_path):
    # 67 positions: an odd length, and one whole block of 64 positions plus a partial one.
    rope = RotaryEmbedding(16, rotary_dim=rotary_dim, interleaved=interleaved, scaling=scaling)
    rng = np.random.default_rng(20)
    q_shape, k_shape = LAYOUT_SHAPES[layout]
    q, k = rng.standard_normal(q_shape), rng.standard_normal(k_shape)
    for pos in position_cases(rng, 2, 67):
        (q32, k32), (q64, k64) = float32_and_float64(rope, q, k, pos, layout)
        assert q32.dtype == k32.dtype == np.float32 and q64.dtype == np.float64
        np.testing.assert_allclose(q32.data, q64.data, **F32_TOL)
        np.testing.assert_allclose(k32.data, k64.data, **F32_TOL)
        rd = rotary_dim or 16
        np.testing.assert_array_equal(q32.data[..., rd:], q.astype(np.float32)[..., rd:])  # passed through


@pytest.mark.parametrize("scaling", [None, YARN, DYNAMIC], ids=["default", "yarn", "dynamic"])
@pytest.mark.parametrize("rotary_dim", [None, 6])
@pytest.mark.parametrize("interleaved", [False, True])
@pytest.mark.parametrize("layout", ["bhsd", "bshd"])
def test_float32_backward_is_within_1e_5_of_the_float64_backward(scaling, rotary_dim, interleaved, layout,
                                                                  float32_path):
    rope = RotaryEmbedding(16, rotary_dim=rotary_dim, interleaved=interleaved, scaling=scaling)
    rng = np.random.default_rng(21)
    q_shape, k_shape = LAYOUT_SHAPES[layout]
    x = rng.standard_normal(q_shape).astype(np.float32), rng.standard_normal(k_shape).astype(np.float32)
    gq, gk = rng.standard_normal(q_shape), rng.standard_normal(k_shape)
    for pos in position_cases(rng, 2, 67):
        grads = {}
        for dtype in (np.float32, np.float64):
            q, k = (Tensor(a.astype(dtype), requires_grad=True) for a in x)
            qr, kr = rope.apply(q, k, pos, layout)
            qr.backward(gq.astype(dtype))
            kr.backward(gk.astype(dtype))
            grads[dtype] = q.grad, k.grad
        for g32, g64 in zip(grads[np.float32], grads[np.float64], strict=True):
            assert g32.dtype == np.float32
            np.testing.assert_allclose(g32, g64, **F32_TOL)


@pytest.mark.parametrize("interleaved", [False, True])
def test_float32_path_is_hugging_faces_float32_formula_to_the_bit(interleaved, float32_path):
    # Given the same float32 tables, a c - b s and b c + a s round as HF's q * cos + rotate_half(q) * sin
    # (and GPT-J's rotate_every_two for adjacent pairs): one product, the other, their sum.
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(22)
    pos = rng.integers(0, 9000, size=37)
    rope = RotaryEmbedding(64, base=500000.0, interleaved=interleaved, scaling=LLAMA3)
    q, k = (rng.standard_normal((2, 4, 37, 64)).astype(np.float32) for _ in range(2))
    cos, sin = (torch.from_numpy(t.astype(np.float32)) for t in rope.cos_sin(pos))  # HF's cached (S, 64) tables

    def hf(x):
        x = torch.from_numpy(x)
        if interleaved:
            turned = torch.stack([-x[..., 1::2], x[..., 0::2]], dim=-1).flatten(-2)
        else:
            turned = torch.cat([-x[..., 32:], x[..., :32]], dim=-1)
        return (x * cos + turned * sin).numpy()

    qr, kr = rope.apply(q, k, pos)
    np.testing.assert_array_equal(qr.data, hf(q))
    np.testing.assert_array_equal(kr.data, hf(k))


@needs_numba
@pytest.mark.parametrize("rotary_dim", [None, 6])
@pytest.mark.parametrize("interleaved", [False, True])
@pytest.mark.parametrize("layout", ["bhsd", "bshd"])
@pytest.mark.parametrize("pieces", ["whole", "small"])
def test_compiled_and_numpy_float32_paths_agree_bit_for_bit(rotary_dim, interleaved, layout, pieces, monkeypatch):
    if pieces == "small":  # the NumPy path in pieces of 5 rows, spread over the threads
        monkeypatch.setattr(kernel_threads, "CHUNK_BYTES", 5 * 16 * 4)
        monkeypatch.setattr(kernel_threads, "PARALLEL_MIN_BYTES", 0)
    rope = RotaryEmbedding(16, rotary_dim=rotary_dim, interleaved=interleaved, scaling=YARN)
    rng = np.random.default_rng(23)
    q_shape, k_shape = LAYOUT_SHAPES[layout]
    q, k = rng.standard_normal(q_shape).astype(np.float32), rng.standard_normal(k_shape).astype(np.float32)
    gq, gk = rng.standard_normal(q_shape).astype(np.float32), rng.standard_normal(k_shape).astype(np.float32)
    for pos in position_cases(rng, 2, 67):
        results = []
        for enabled in (True, False):
            old = jit.set_enabled(enabled)
            try:
                qt, kt = Tensor(q, requires_grad=True), Tensor(k, requires_grad=True)
                qr, kr = rope.apply(qt, kt, pos, layout)
                qr.backward(gq)
                kr.backward(gk)
                results.append((qr.data, kr.data, qt.grad, kt.grad))
            finally:
                jit.set_enabled(old)
        for compiled, numpy in zip(*results, strict=True):
            np.testing.assert_array_equal(compiled, numpy)


def test_the_dtype_picks_the_path(monkeypatch):
    rope = RotaryEmbedding(8, rotary_dim=6)
    rng = np.random.default_rng(24)
    x32, x64 = rng.standard_normal((1, 2, 5, 8)).astype(np.float32), rng.standard_normal((1, 2, 5, 8))
    float64_calls, float64_path = [], rope_module.apply_rotary

    def counting(x, *args):
        float64_calls.append(x.dtype)
        return float64_path(x, *args)

    monkeypatch.setattr(rope_module, "apply_rotary", counting)
    q, k = rope.apply(x32, x32)
    assert float64_calls == [] and q.dtype == k.dtype == np.float32
    q, k = rope.apply(x64, x64)
    assert float64_calls == [np.float64] * 2
    float64_calls.clear()
    q, k = rope.apply(x32, x64)  # mixed: both take the float64 path and keep their own dtype
    assert float64_calls == [np.float32, np.float64] and (q.dtype, k.dtype) == (np.float32, np.float64)


@pytest.mark.parametrize("layout", ["bhsd", "bshd"])
def test_float32_path_takes_views_other_batches_empty_and_read_only_inputs(layout, float32_path):
    rope = RotaryEmbedding(8, interleaved=True, scaling=YARN)
    rng = np.random.default_rng(25)
    q = rng.standard_normal((2, 3, 5, 8)).astype(np.float32)
    k = rng.standard_normal((1, 3, 5, 8)).astype(np.float32)  # another batch: positions shared (1-D)
    k.setflags(write=False)
    transposed = q.transpose(0, 2, 1, 3)  # a view, not contiguous
    pos = np.array([9, 0, 4, 4, 2], dtype=np.uint16)
    for a, b in ((q, k), (transposed, transposed.copy()), (q[:, :, :0], k[:, :, :0])):
        seq = a.shape[2 if layout == "bhsd" else 1]
        (a32, b32), (a64, b64) = float32_and_float64(rope, a, b, pos[:seq], layout)
        assert a32.shape == a.shape and b32.shape == b.shape
        np.testing.assert_allclose(a32.data, a64.data, **F32_TOL)
        np.testing.assert_allclose(b32.data, b64.data, **F32_TOL)


def test_float32_tables_are_rounded_once_from_the_float64_ones_and_follow_them():
    dyn = {"rope_type": "dynamic", "factor": 4.0, "original_max_position_embeddings": 16}
    for interleaved in (False, True):
        rope = RotaryEmbedding(8, rotary_dim=6, interleaved=interleaved, scaling=dyn)
        x = np.random.default_rng(26).standard_normal((1, 1, 40, 8)).astype(np.float32)
        for length in (10, 12, 40, 30, 10):  # same, shorter, then new frequencies each time
            q, _ = rope.apply(x[:, :, :length], x[:, :, :length])
            cos, sin, neg_sin = rope._tables_float32(length)
            first = slice(0, 6, 2) if interleaved else slice(0, 3)
            np.testing.assert_array_equal(cos, rope._cos[:, first].astype(np.float32))
            np.testing.assert_array_equal(sin, rope._sin[:, first].astype(np.float32))
            np.testing.assert_array_equal(neg_sin, -sin)
            fresh, _ = RotaryEmbedding(8, rotary_dim=6, interleaved=interleaved, scaling=dyn).apply(
                x[:, :, :length], x[:, :, :length])
            np.testing.assert_array_equal(q.data, fresh.data)  # never depends on earlier calls


# -- the cos/sin cache ------------------------------------------------------------------------
@pytest.fixture
def table_builds(monkeypatch):
    lengths = []
    build = rope_module._build_tables

    def counting(inv_freq, factor, length, interleaved):
        lengths.append(length)
        return build(inv_freq, factor, length, interleaved)

    monkeypatch.setattr(rope_module, "_build_tables", counting)
    return lengths


def test_cos_sin_tables_are_reused_for_shorter_lengths_and_rebuilt_for_longer(table_builds):
    rope = RotaryEmbedding(8)
    rope.cos_sin(np.arange(10))
    first = rope._cos
    rope.cos_sin(np.arange(4))
    rope.apply(np.ones((1, 1, 3, 8)), np.ones((1, 1, 3, 8)), np.array([9, 0, 2]))
    assert len(table_builds) == 1 and rope._cos is first
    cos, _ = rope.cos_sin(np.arange(1000))
    assert len(table_builds) == 2 and table_builds[-1] >= 1000
    np.testing.assert_array_equal(cos, RotaryEmbedding(8).cos_sin(np.arange(1000))[0])


def test_dynamic_tables_are_rebuilt_when_the_length_changes_the_frequencies(table_builds):
    dyn = {"rope_type": "dynamic", "factor": 4.0, "original_max_position_embeddings": 16}
    lengths = (40, 30, 30, 10)
    fresh = [RotaryEmbedding(8, scaling=dyn).cos_sin(np.arange(n)) for n in lengths]
    table_builds.clear()
    rope = RotaryEmbedding(8, scaling=dyn)
    rope.cos_sin(np.arange(16))
    rope.cos_sin(np.arange(12))  # below the original length: same frequencies, shorter
    assert len(table_builds) == 1
    # Above it every length has its own frequencies; the answer never depends on earlier calls.
    for length, (fresh_cos, fresh_sin) in zip(lengths, fresh, strict=True):
        cos, sin = rope.cos_sin(np.arange(length))
        np.testing.assert_array_equal(cos, fresh_cos)
        np.testing.assert_array_equal(sin, fresh_sin)
        np.testing.assert_allclose(rope.inv_freq, ref_dynamic(8, 10000.0, 4.0, 16, length), rtol=1e-13)
    assert len(table_builds) == 4  # 40, 30 and back to unscaled; the second 30 reused


# -- errors --------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, match", [
    (dict(head_dim=7), "head_dim must be even.*7"),
    (dict(head_dim=0), "head_dim must be a positive integer, got 0"),
    (dict(head_dim=-4), "head_dim.*-4"),
    (dict(head_dim=8, rotary_dim=3), "rotary_dim must be even.*3"),
    (dict(head_dim=8, rotary_dim=0), "rotary_dim.*0"),
    (dict(head_dim=8, rotary_dim=10), r"rotary_dim \(10\) must be <= head_dim \(8\)"),
    (dict(head_dim=8, base=1.0), "base must be > 1"),
    (dict(head_dim=8, scaling={"rope_type": "ntk"}), "unknown rope_type 'ntk'.*'dynamic'.*'linear'.*'yarn'"),
    (dict(head_dim=8, scaling={"factor": 2.0}), "unknown rope_type None"),
    (dict(head_dim=8, scaling={"rope_type": "linear"}), r"'linear' needs \['factor'\]"),
    (dict(head_dim=8, scaling={"rope_type": "yarn", "factor": 2.0}), "original_max_position_embeddings"),
    (dict(head_dim=8, scaling={"rope_type": "llama3", "factor": 8.0, "original_max_position_embeddings": 64}),
     r"\['low_freq_factor', 'high_freq_factor'\]"),
    (dict(head_dim=8, scaling={"rope_type": "linear", "factor": 0.5}), "factor must be a finite number >= 1, got 0.5"),
    (dict(head_dim=8, scaling={"rope_type": "linear", "factr": 2.0, "factor": 2.0}), r"unknown keys \['factr'\]"),
    (dict(head_dim=8, scaling={**DYNAMIC, "original_max_position_embeddings": 0}), "original_max_position_embeddings"),
    (dict(head_dim=2, scaling=DYNAMIC), "'dynamic' needs rotary_dim >= 4, got 2"),
    (dict(head_dim=8, scaling={**YARN, "beta_fast": 1, "beta_slow": 1}), "beta_fast > beta_slow"),
    (dict(head_dim=8, scaling={**YARN, "attention_factor": -1.0}), "attention_factor must be > 0"),
    (dict(head_dim=8, scaling={**LLAMA3, "high_freq_factor": 1.0}), "high_freq_factor > low_freq_factor"),
])
def test_bad_configuration_raises_a_value_error_naming_it(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RotaryEmbedding(**kwargs)


@pytest.mark.parametrize("q_shape, k_shape, positions, layout, error, match", [
    ((1, 2, 3, 6), (1, 2, 3, 8), None, "bhsd", ValueError, "q has last dim 6, expected head_dim=8"),
    ((1, 2, 3, 8), (1, 2, 3, 4), None, "bhsd", ValueError, "k has last dim 4"),
    ((2, 3, 8), (2, 3, 8), None, "bhsd", ValueError, "must be 4-D"),
    ((1, 2, 3, 8), (1, 2, 4, 8), None, "bhsd", ValueError, "same sequence length"),
    ((1, 2, 3, 8), (1, 2, 3, 8), [0, -1, 2], "bhsd", ValueError, "positions must be >= 0, got -1"),
    ((1, 2, 3, 8), (1, 2, 3, 8), [0.0, 1.0, 2.0], "bhsd", TypeError, "positions must be integers"),
    ((1, 2, 3, 8), (1, 2, 3, 8), [0, 1], "bhsd", ValueError, "do not match the sequence length 3"),
    ((1, 2, 3, 8), (1, 2, 3, 8), [[0, 1, 2]] * 2, "bhsd", ValueError, "positions of batch 2"),
    ((1, 2, 3, 8), (1, 2, 3, 8), None, "bsd", ValueError, "layout must be one of"),
])
def test_bad_inputs_raise_clear_errors(q_shape, k_shape, positions, layout, error, match):
    rope = RotaryEmbedding(8)
    with pytest.raises(error, match=match):
        rope.apply(np.zeros(q_shape), np.zeros(k_shape), None if positions is None else np.array(positions), layout)


def test_cos_sin_rejects_negative_positions_and_integer_inputs_are_refused():
    rope = RotaryEmbedding(8)
    with pytest.raises(ValueError, match="got -3"):
        rope.cos_sin(np.array([1, -3]))
    with pytest.raises(TypeError, match="q must be float32 or float64, got int64"):
        rope.apply(np.zeros((1, 1, 2, 8), dtype=np.int64), np.zeros((1, 1, 2, 8)))


def test_an_infinite_scaling_factor_is_refused():
    with pytest.raises(ValueError, match="finite number >= 1, got inf"):
        RotaryEmbedding(8, scaling={"rope_type": "linear", "factor": float("inf")})
