"""nn.functional: finite differences, parity with torch 2.13 (values and gradients), dropout statistics, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyembed.gradcheck import gradcheck
from tinyembed.nn import functional as F
from tinyembed.tensor import Tensor

torch = pytest.importorskip("torch")
TF = torch.nn.functional

# Parity tolerances (max abs difference) per dtype.
TOL = {np.float32: 1e-5, np.float64: 1e-10}
DTYPES = [np.float32, np.float64]
FEW = settings(max_examples=25, deadline=None)


def _normal(shape, seed=0, scale=1.0):
    return np.random.default_rng(seed).standard_normal(shape) * scale


def _leaf(shape, seed=0, scale=1.0, dtype=np.float64):
    return Tensor(_normal(shape, seed, scale).astype(dtype), requires_grad=True)


def _pair(array, dtype):
    """The same values as a tinyembed leaf and a torch leaf."""
    a = np.asarray(array).astype(dtype)
    return Tensor(a.copy(), requires_grad=True), torch.tensor(a.copy(), requires_grad=True)


def _assert_close(ours, theirs, tol):
    """Max abs difference <= tol, for values up to magnitude 1; relative beyond.

    (A float32 sum of 30 losses near 100 has an ulp of 7.6e-6: no two summation
    orders agree to 1e-5 absolute there.)
    """
    theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else theirs
    ours = ours.data if isinstance(ours, Tensor) else ours
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    finite = np.abs(theirs[np.isfinite(theirs)])
    scale = max(1.0, float(finite.max())) if finite.size else 1.0
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=tol * scale)


def _backward_both(out, tout, seed=5):
    """Backpropagate the same random cotangent through both outputs."""
    w = _normal(out.shape, seed).astype(out.dtype)
    (out * Tensor(w)).sum().backward()
    (tout * torch.tensor(w)).sum().backward()


# == gradcheck of every functional op (float64) ==========================================
def _targets(shape, num_classes, seed=0, ignore_every=0):
    t = np.random.default_rng(seed).integers(0, num_classes, shape)
    if ignore_every:
        t.reshape(-1)[::ignore_every] = -100
    return t


GRADCHECK_CASES = [
    ("linear_with_bias", lambda x, w, b: F.linear(x, w, b), [(5, 4), (3, 4), (3,)]),
    ("linear_without_bias", lambda x, w: F.linear(x, w), [(5, 4), (3, 4)]),
    ("linear_1d_input", lambda x, w, b: F.linear(x, w, b), [(4,), (3, 4), (3,)]),
    ("linear_3d_input", lambda x, w, b: F.linear(x, w, b), [(2, 5, 4), (3, 4), (3,)]),
    ("gelu_exact", lambda x: F.gelu(x), [(4, 5)]),
    ("gelu_tanh", lambda x: F.gelu(x, approximate="tanh"), [(4, 5)]),
    ("relu", F.relu, [(4, 5)]),
    ("tanh", F.tanh, [(4, 5)]),
    ("sigmoid", F.sigmoid, [(4, 5)]),
    ("softmax_last", lambda x: F.softmax(x), [(2, 3, 4)]),
    ("softmax_dim0", lambda x: F.softmax(x, dim=0), [(2, 3, 4)]),
    ("softmax_dim1", lambda x: F.softmax(x, dim=1), [(2, 3, 4)]),
    ("softmax_1d", lambda x: F.softmax(x, dim=0), [(5,)]),
    ("log_softmax_last", lambda x: F.log_softmax(x), [(2, 3, 4)]),
    ("log_softmax_dim0", lambda x: F.log_softmax(x, dim=0), [(2, 3, 4)]),
    ("log_softmax_dim_negative", lambda x: F.log_softmax(x, dim=-2), [(2, 3, 4)]),
    ("cross_entropy_mean", lambda z: F.cross_entropy(z, _targets(6, 4)), [(6, 4)]),
    ("cross_entropy_sum", lambda z: F.cross_entropy(z, _targets(6, 4), reduction="sum"), [(6, 4)]),
    ("cross_entropy_none", lambda z: F.cross_entropy(z, _targets(6, 4), reduction="none"), [(6, 4)]),
    ("cross_entropy_ignore_index_mean",
     lambda z: F.cross_entropy(z, _targets(6, 4, ignore_every=3)), [(6, 4)]),
    ("cross_entropy_ignore_index_none",
     lambda z: F.cross_entropy(z, _targets(6, 4, ignore_every=2), reduction="none"), [(6, 4)]),
    ("cross_entropy_custom_ignore_index",
     lambda z: F.cross_entropy(z, np.array([0, 3, 3, 1, 2]), ignore_index=3), [(5, 4)]),
    ("cross_entropy_label_smoothing",
     lambda z: F.cross_entropy(z, _targets(6, 4, ignore_every=4), label_smoothing=0.2), [(6, 4)]),
    ("cross_entropy_label_smoothing_sum",
     lambda z: F.cross_entropy(z, _targets(6, 4), reduction="sum", label_smoothing=0.7), [(6, 4)]),
    ("cross_entropy_nc_d",
     lambda z: F.cross_entropy(z, _targets((2, 3), 4, ignore_every=4)), [(2, 4, 3)]),
    ("cross_entropy_nc_d1_d2_none",
     lambda z: F.cross_entropy(z, _targets((2, 3, 2), 4), reduction="none", label_smoothing=0.1),
     [(2, 4, 3, 2)]),
    ("cross_entropy_unbatched", lambda z: F.cross_entropy(z, np.array(2)), [(5,)]),
    ("layer_norm_affine", lambda x, w, b: F.layer_norm(x, 5, w, b), [(3, 5), (5,), (5,)]),
    ("layer_norm_plain", lambda x: F.layer_norm(x, (5,)), [(3, 5)]),
    ("layer_norm_weight_only", lambda x, w: F.layer_norm(x, 5, w), [(3, 5), (5,)]),
    ("layer_norm_bias_only", lambda x, b: F.layer_norm(x, 5, bias=b), [(3, 5), (5,)]),
    ("layer_norm_2d_shape", lambda x, w, b: F.layer_norm(x, (3, 4), w, b), [(2, 3, 4), (3, 4), (3, 4)]),
    ("layer_norm_large_eps", lambda x: F.layer_norm(x, 4, eps=0.5), [(3, 4)]),
    ("dropout_fixed_mask", lambda x: F.dropout(x, 0.4, rng=np.random.default_rng(3)), [(4, 5)]),
]


@pytest.mark.parametrize("name, fn, shapes", GRADCHECK_CASES, ids=[c[0] for c in GRADCHECK_CASES])
def test_functional_autograd_matches_finite_differences(name, fn, shapes):
    inputs = [_leaf(s, seed=i) for i, s in enumerate(shapes)]
    assert gradcheck(fn, inputs)


@pytest.mark.parametrize("name, fn, shapes", GRADCHECK_CASES, ids=[c[0] for c in GRADCHECK_CASES])
def test_functional_float32_keeps_dtype_of_output_and_gradients(name, fn, shapes):
    inputs = [_leaf(s, seed=i, dtype=np.float32) for i, s in enumerate(shapes)]
    out = fn(*inputs)
    assert out.dtype == np.float32
    (out * Tensor(np.ones(out.shape, dtype=np.float32))).sum().backward()
    for t in inputs:
        assert t.grad.dtype == np.float32 and t.grad.shape == t.shape


# == parity with torch ===================================================================
shapes = st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple)
seeds = st.integers(0, 2**31 - 1)
dtypes = st.sampled_from(DTYPES)


@FEW
@given(batch=st.lists(st.integers(1, 3), min_size=0, max_size=2).map(tuple), n_in=st.integers(1, 5),
       n_out=st.integers(1, 5), use_bias=st.booleans(), dtype=dtypes, seed=seeds)
def test_linear_matches_torch(batch, n_in, n_out, use_bias, dtype, seed):
    x, tx = _pair(_normal(batch + (n_in,), seed), dtype)
    w, tw = _pair(_normal((n_out, n_in), seed + 1), dtype)
    b, tb = _pair(_normal((n_out,), seed + 2), dtype) if use_bias else (None, None)
    out, tout = F.linear(x, w, b), TF.linear(tx, tw, tb)
    _assert_close(out, tout, TOL[dtype])
    _backward_both(out, tout)
    for ours, theirs in ((x, tx), (w, tw), (b, tb)):
        if ours is not None:
            _assert_close(ours.grad, theirs.grad, TOL[dtype])


_GELU_POINTS = np.concatenate([np.linspace(-10, 10, 2001), [-40.0, -6.5, -1e-8, 0.0, 1e-8, 40.0]])


@pytest.mark.parametrize("dtype, tol", [(np.float32, 1e-6), (np.float64, 1e-12)])
def test_gelu_exact_matches_torch_to_1e6_in_float32_and_1e12_in_float64(dtype, tol):
    _check_gelu_against_torch("none", dtype, tol)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gelu_tanh_matches_torch(dtype):
    # Not 1e-6 in float32: near x = -5 torch's float32 tanh saturates to -1 and its
    # gradient rounds to 0, where the true (and our float64-computed) value is ~1e-6.
    _check_gelu_against_torch("tanh", dtype, TOL[dtype])


def _check_gelu_against_torch(approximate, dtype, tol):
    values = _GELU_POINTS
    x, tx = _pair(values, dtype)
    out, tout = F.gelu(x, approximate=approximate), TF.gelu(tx, approximate=approximate)
    # Relative near the large values (|x| up to 40), absolute near zero.
    np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=tol, atol=tol)
    _backward_both(out, tout)
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=tol, atol=tol)


@FEW
@given(shape=shapes, dtype=dtypes, seed=seeds, data=st.data())
def test_softmax_and_log_softmax_match_torch(shape, dtype, seed, data):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    values = _normal(shape, seed, scale=5.0)
    for ours_fn, torch_fn in ((F.softmax, TF.softmax), (F.log_softmax, TF.log_softmax)):
        x, tx = _pair(values, dtype)
        out, tout = ours_fn(x, dim=dim), torch_fn(tx, dim=dim)
        _assert_close(out, tout, TOL[dtype])
        _backward_both(out, tout)
        _assert_close(x.grad, tx.grad, TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_is_stable_for_huge_logits(dtype):
    big = np.array([[1000.0, 0.0, -1000.0], [3e4, 3e4, 3e4]])
    with np.errstate(all="raise", under="ignore"):
        probs = F.softmax(Tensor(big.astype(dtype))).data
        logp = F.log_softmax(Tensor(big.astype(dtype))).data
    _assert_close(probs, TF.softmax(torch.tensor(big.astype(dtype)), -1), TOL[dtype])
    _assert_close(logp, TF.log_softmax(torch.tensor(big.astype(dtype)), -1), TOL[dtype])
    assert np.all(np.isfinite(logp))


@FEW
@given(n=st.integers(1, 5), c=st.integers(1, 5), extra=st.lists(st.integers(1, 3), max_size=2).map(tuple),
       reduction=st.sampled_from(["mean", "sum", "none"]),
       label_smoothing=st.sampled_from([0.0, 0.1, 0.5, 1.0]), ignore_fraction=st.sampled_from([0.0, 0.3]),
       dtype=dtypes, seed=seeds)
def test_cross_entropy_matches_torch(n, c, extra, reduction, label_smoothing, ignore_fraction, dtype, seed):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((n, c) + extra) * 3
    target = rng.integers(0, c, (n,) + extra)
    target[rng.random(target.shape) < ignore_fraction] = -100
    x, tx = _pair(logits, dtype)
    kwargs = dict(reduction=reduction, label_smoothing=label_smoothing)
    out = F.cross_entropy(x, target, **kwargs)
    tout = TF.cross_entropy(tx, torch.tensor(target), **kwargs)
    _assert_close(out, tout, TOL[dtype])  # nan == nan when every target is ignored
    _backward_both(out, tout)
    _assert_close(x.grad, tx.grad, TOL[dtype])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
def test_cross_entropy_all_ignored_matches_torch_nan_mean_and_zero_gradient(reduction, label_smoothing):
    x, tx = _pair(_normal((3, 4)), np.float32)
    target = np.full(3, -100)
    out = F.cross_entropy(x, target, reduction=reduction, label_smoothing=label_smoothing)
    tout = TF.cross_entropy(tx, torch.tensor(target), reduction=reduction, label_smoothing=label_smoothing)
    if reduction == "mean":
        assert math.isnan(out.item()) and math.isnan(tout.item())
    _assert_close(out, tout, 0.0)
    out.sum().backward()
    tout.sum().backward()
    np.testing.assert_array_equal(x.grad, np.zeros((3, 4), dtype=np.float32))
    np.testing.assert_array_equal(x.grad, tx.grad.numpy())


def test_cross_entropy_unbatched_matches_torch():
    x, tx = _pair(_normal(5), np.float64)
    out, tout = F.cross_entropy(x, 3), TF.cross_entropy(tx, torch.tensor(3))
    _assert_close(out, tout, 1e-12)
    out.backward()
    tout.backward()
    _assert_close(x.grad, tx.grad, 1e-12)


def test_cross_entropy_accepts_target_tensor_and_int32_ids():
    x = Tensor(_normal((3, 4)))
    ref = F.cross_entropy(x, np.array([0, 1, 3])).item()
    assert F.cross_entropy(x, Tensor([0, 1, 3])).item() == ref
    assert F.cross_entropy(x, np.array([0, 1, 3], dtype=np.int32)).item() == ref


def test_cross_entropy_of_uniform_logits_is_log_num_classes():
    out = F.cross_entropy(Tensor(np.zeros((4, 7))), np.arange(4))
    assert out.item() == pytest.approx(math.log(7), rel=1e-6)


@FEW
@given(lead=st.lists(st.integers(1, 3), max_size=2).map(tuple),
       norm=shapes.filter(lambda s: len(s) <= 2 and math.prod(s) >= 2), affine=st.booleans(), dtype=dtypes,
       seed=seeds)
def test_layer_norm_matches_torch(lead, norm, affine, dtype, seed):
    # Well-conditioned rows: a fixed spread plus noise keeps the variance away from zero,
    # where float32 rounding of 1/std (in torch as here) dominates the comparison.
    spread = np.linspace(-3.0, 3.0, math.prod(norm)).reshape(norm)
    x, tx = _pair(_normal(lead + norm, seed, scale=0.5) + spread + 1.0, dtype)
    if affine:
        w, tw = _pair(_normal(norm, seed + 1), dtype)
        b, tb = _pair(_normal(norm, seed + 2), dtype)
    else:
        w = tw = b = tb = None
    out, tout = F.layer_norm(x, norm, w, b), TF.layer_norm(tx, norm, tw, tb)
    _assert_close(out, tout, TOL[dtype])
    _backward_both(out, tout)
    for ours, theirs in ((x, tx), (w, tw), (b, tb)):
        if ours is not None:
            _assert_close(ours.grad, theirs.grad, TOL[dtype])


def test_layer_norm_uses_biased_variance():
    out = F.layer_norm(Tensor(np.array([[1.0, 3.0]])), 2, eps=0.0)
    np.testing.assert_allclose(out.data, [[-1.0, 1.0]])


@pytest.mark.parametrize("fn, tfn", [(F.relu, torch.relu), (F.tanh, torch.tanh), (F.sigmoid, torch.sigmoid)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_reexported_activations_match_torch(fn, tfn, dtype):
    x, tx = _pair(_normal((3, 4), scale=3.0), dtype)
    out, tout = fn(x), tfn(tx)
    _assert_close(out, tout, TOL[dtype])
    _backward_both(out, tout)
    _assert_close(x.grad, tx.grad, TOL[dtype])


# == dropout =============================================================================
@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_preserves_the_mean_and_drops_a_fraction_p(p):
    n = 200_000
    out = F.dropout(Tensor(np.ones(n)), p, rng=np.random.default_rng(0)).data
    # mean has std sqrt(p / ((1 - p) n)) <= 0.0045; 0.02 is over four of them.
    assert out.mean() == pytest.approx(1.0, abs=0.02)
    assert (out == 0).mean() == pytest.approx(p, abs=0.01)
    np.testing.assert_allclose(np.unique(out[out != 0]), [1.0 / (1.0 - p)])


def test_dropout_gradient_is_the_same_scaled_mask():
    x = Tensor(np.ones((50, 40)), requires_grad=True)
    out = F.dropout(x, 0.25, rng=np.random.default_rng(1))
    out.sum().backward()
    np.testing.assert_array_equal(x.grad, out.data)  # x is all ones: output == mask / (1 - p)


def test_dropout_in_eval_is_identity():
    x = Tensor(_normal((3, 4)), requires_grad=True)
    assert F.dropout(x, 0.5, training=False) is x


def test_dropout_with_p_zero_is_identity():
    x = Tensor(_normal((3, 4)))
    np.testing.assert_array_equal(F.dropout(x, 0.0, rng=np.random.default_rng(0)).data, x.data)


@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_with_p_one_gives_zeros_and_zero_gradient(dtype):
    x = Tensor(_normal((3, 4)).astype(dtype), requires_grad=True)
    out = F.dropout(x, 1.0, rng=np.random.default_rng(0))
    assert out.dtype == dtype
    np.testing.assert_array_equal(out.data, np.zeros((3, 4)))
    out.sum().backward()
    np.testing.assert_array_equal(x.grad, np.zeros((3, 4)))


def test_dropout_same_seed_same_mask_in_any_dtype():
    x = np.ones((20, 30))
    masks = [F.dropout(Tensor(x.astype(dt)), 0.5, rng=np.random.default_rng(7)).data != 0
             for dt in (np.float32, np.float64, np.float32)]
    np.testing.assert_array_equal(masks[0], masks[1])
    np.testing.assert_array_equal(masks[0], masks[2])
    other = F.dropout(Tensor(x), 0.5, rng=np.random.default_rng(8)).data != 0
    assert not np.array_equal(masks[0], other)


def test_dropout_without_rng_still_drops():
    out = F.dropout(Tensor(np.ones(1000)), 0.5).data
    assert 0 < (out == 0).sum() < 1000


@pytest.mark.parametrize("p", [-0.1, 1.5, float("nan")])
def test_dropout_rejects_probability_outside_unit_interval(p):
    with pytest.raises(ValueError, match="probability"):
        F.dropout(Tensor(np.ones(3)), p)


# == bad inputs ==========================================================================
def test_linear_rejects_mismatched_in_features_naming_shapes():
    with pytest.raises(ValueError, match=r"\(2, 5\)"):
        F.linear(Tensor(np.ones((2, 5))), Tensor(np.ones((3, 4))))


def test_linear_rejects_bias_of_wrong_shape():
    with pytest.raises(ValueError, match="bias"):
        F.linear(Tensor(np.ones((2, 4))), Tensor(np.ones((3, 4))), Tensor(np.ones(4)))


def test_linear_rejects_mixed_dtypes():
    with pytest.raises(TypeError, match="float32"):
        F.linear(Tensor(np.ones((2, 4))), Tensor(np.ones((3, 4), dtype=np.float32)))


def test_functions_reject_non_tensors_and_int_tensors():
    with pytest.raises(TypeError, match="Tensor"):
        F.softmax(np.ones(3))
    with pytest.raises(TypeError, match="int64"):
        F.gelu(Tensor([1, 2]))


def test_gelu_rejects_unknown_approximation():
    with pytest.raises(ValueError, match="'erf'"):
        F.gelu(Tensor(np.ones(3)), approximate="erf")


@pytest.mark.parametrize("fn", [F.softmax, F.log_softmax])
def test_softmax_rejects_dim_out_of_range(fn):
    with pytest.raises(IndexError, match="dim 2"):
        fn(Tensor(np.ones((2, 3))), dim=2)


@pytest.mark.parametrize("bad", [4, -1, 99])
def test_cross_entropy_target_out_of_range_raises_index_error_naming_value(bad):
    with pytest.raises(IndexError, match=rf"target {bad} is out of bounds"):
        F.cross_entropy(Tensor(np.zeros((3, 4))), np.array([0, bad, 1]))


def test_cross_entropy_rejects_float_targets():
    with pytest.raises(TypeError, match="integer"):
        F.cross_entropy(Tensor(np.zeros((3, 4))), np.array([0.0, 1.0, 2.0]))


def test_cross_entropy_rejects_target_of_wrong_shape():
    with pytest.raises(ValueError, match=r"expected \(3, 2\)"):
        F.cross_entropy(Tensor(np.zeros((3, 4, 2))), np.zeros(3, dtype=np.int64))


def test_cross_entropy_rejects_unknown_reduction_and_bad_smoothing():
    x, t = Tensor(np.zeros((3, 4))), np.zeros(3, dtype=np.int64)
    with pytest.raises(ValueError, match="'avg'"):
        F.cross_entropy(x, t, reduction="avg")
    with pytest.raises(ValueError, match="1.5"):
        F.cross_entropy(x, t, label_smoothing=1.5)


def test_layer_norm_rejects_shape_that_is_not_trailing():
    with pytest.raises(ValueError, match=r"\(3,\)"):
        F.layer_norm(Tensor(np.ones((3, 4))), 3)
    with pytest.raises(ValueError, match="weight"):
        F.layer_norm(Tensor(np.ones((3, 4))), 4, weight=Tensor(np.ones(3)))
    with pytest.raises(ValueError):
        F.layer_norm(Tensor(np.ones(4)), (2, 4))
