"""Tensor and autograd: every op against finite differences, the engine's bookkeeping, torch parity."""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest

from tinyembed.gradcheck import gradcheck
from tinyembed.tensor import Tensor, cat, enable_grad, is_grad_enabled, no_grad, stack, unbroadcast

try:  # the engine tests run without torch; only the parity tests need the oracle
    import torch
except ImportError:
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="torch==2.13.0 is the test oracle")


def _array(shape, seed=0, low=-1.0, high=1.0):
    return np.random.default_rng(seed).uniform(low, high, shape)


def _positive(shape, seed=0):
    """Values in [0.5, 2] with random sign removed: safe for log, sqrt, division."""
    return _array(shape, seed, 0.5, 2.0)


def _away_from_zero(shape, seed=0):
    """Values with |v| in [0.2, 1]: relu and abs are differentiable there."""
    a = _array(shape, seed, 0.2, 1.0)
    return a * np.where(_array(shape, seed + 1) > 0, 1.0, -1.0)


# Each case: (id, fn taking Tensors, list of input arrays). gradcheck runs every case in
# float64; the dtype test runs every case in float32.
_X34 = _array((3, 4))
CASES = [
    # -- arithmetic with broadcasting both ways ---------------------------------------
    ("add_same_shape", lambda a, b: a + b, [_X34, _array((3, 4), 1)]),
    ("add_row_broadcast_right", lambda a, b: a + b, [_X34, _array((4,), 1)]),
    ("add_row_broadcast_left", lambda a, b: a + b, [_array((4,), 1), _X34]),
    ("add_both_broadcast", lambda a, b: a + b, [_array((2, 1, 4)), _array((3, 1), 1)]),
    ("add_scalar_tensor", lambda a, b: a + b, [_array(()), _X34]),
    ("sub_broadcast_right", lambda a, b: a - b, [_X34, _array((3, 1), 1)]),
    ("sub_broadcast_left", lambda a, b: a - b, [_array((1, 4), 1), _X34]),
    ("mul_broadcast_right", lambda a, b: a * b, [_X34, _array((4,), 1)]),
    ("mul_broadcast_left", lambda a, b: a * b, [_array((3, 1), 1), _X34]),
    ("mul_both_broadcast", lambda a, b: a * b, [_array((3, 1)), _array((1, 4), 1)]),
    ("div_broadcast_right", lambda a, b: a / b, [_X34, _positive((4,), 1)]),
    ("div_broadcast_left", lambda a, b: a / b, [_array((3, 1), 1), _positive((3, 4))]),
    ("div_both_broadcast", lambda a, b: a / b, [_array((2, 1, 4)), _positive((3, 1), 1)]),
    ("scalar_right_add", lambda a: a + 2.5, [_X34]),
    ("scalar_left_add", lambda a: 2.5 + a, [_X34]),
    ("scalar_right_sub", lambda a: a - 2.5, [_X34]),
    ("scalar_left_sub", lambda a: 2.5 - a, [_X34]),
    ("scalar_right_mul", lambda a: a * -1.5, [_X34]),
    ("scalar_left_mul", lambda a: -1.5 * a, [_X34]),
    ("scalar_right_div", lambda a: a / 4.0, [_X34]),
    ("scalar_left_div", lambda a: 3.0 / a, [_positive((3, 4))]),
    ("int_scalar_left_sub", lambda a: 2 - a, [_X34]),
    ("ndarray_left_sub", lambda a: np.full((2, 3, 4), 0.5) - a, [_X34]),
    ("ndarray_left_mul", lambda a: np.arange(4.0) * a, [_X34]),
    ("neg", lambda a: -a, [_X34]),
    ("pow_square", lambda a: a ** 2, [_X34]),
    ("pow_cube", lambda a: a ** 3, [_X34]),
    ("pow_half", lambda a: a ** 0.5, [_positive((3, 4))]),
    ("pow_negative_fraction", lambda a: a ** -1.5, [_positive((3, 4))]),
    # -- matmul -----------------------------------------------------------------------
    ("matmul_2d", lambda a, b: a @ b, [_array((3, 4)), _array((4, 5), 1)]),
    ("matmul_batched", lambda a, b: a @ b, [_array((2, 3, 4)), _array((2, 4, 5), 1)]),
    ("matmul_1d_2d", lambda a, b: a @ b, [_array((4,)), _array((4, 5), 1)]),
    ("matmul_2d_1d", lambda a, b: a @ b, [_array((3, 4)), _array((4,), 1)]),
    ("matmul_1d_1d", lambda a, b: a @ b, [_array((4,)), _array((4,), 1)]),
    ("matmul_1d_3d", lambda a, b: a @ b, [_array((4,)), _array((2, 4, 3), 1)]),
    ("matmul_3d_1d", lambda a, b: a @ b, [_array((2, 3, 4)), _array((4,), 1)]),
    ("matmul_2d_3d_batch_broadcast", lambda a, b: a @ b, [_array((3, 4)), _array((2, 4, 5), 1)]),
    ("matmul_batch_broadcast_both", lambda a, b: a @ b, [_array((2, 1, 3, 4)), _array((5, 4, 2), 1)]),
    ("rmatmul_ndarray_left", lambda a: _array((2, 3), 7) @ a, [_array((3, 4))]),
    # -- reductions -------------------------------------------------------------------
    ("sum_all", lambda a: a.sum(), [_array((2, 3, 4))]),
    ("sum_axis0", lambda a: a.sum(axis=0), [_array((2, 3, 4))]),
    ("sum_axis_negative", lambda a: a.sum(axis=-1), [_array((2, 3, 4))]),
    ("sum_axis_tuple", lambda a: a.sum(axis=(0, 2)), [_array((2, 3, 4))]),
    ("sum_axis_tuple_negative", lambda a: a.sum(axis=(-1, -3)), [_array((2, 3, 4))]),
    ("sum_keepdims", lambda a: a.sum(axis=1, keepdims=True), [_array((2, 3, 4))]),
    ("sum_all_keepdims", lambda a: a.sum(keepdims=True), [_array((2, 3, 4))]),
    ("sum_tuple_keepdims", lambda a: a.sum(axis=(0, -1), keepdims=True), [_array((2, 3, 4))]),
    ("mean_all", lambda a: a.mean(), [_array((2, 3, 4))]),
    ("mean_axis", lambda a: a.mean(axis=1), [_array((2, 3, 4))]),
    ("mean_axis_negative", lambda a: a.mean(axis=-2), [_array((2, 3, 4))]),
    ("mean_axis_tuple", lambda a: a.mean(axis=(0, 2)), [_array((2, 3, 4))]),
    ("mean_keepdims", lambda a: a.mean(axis=(-1,), keepdims=True), [_array((2, 3, 4))]),
    ("max_all", lambda a: a.max(), [_array((2, 3, 4))]),
    ("max_axis", lambda a: a.max(axis=1), [_array((2, 3, 4))]),
    ("max_axis_negative_keepdims", lambda a: a.max(axis=-1, keepdims=True), [_array((2, 3, 4))]),
    ("max_axis_tuple", lambda a: a.max(axis=(0, 2)), [_array((2, 3, 4))]),
    # -- shape ------------------------------------------------------------------------
    ("reshape", lambda a: a.reshape(4, 6), [_array((2, 3, 4))]),
    ("reshape_tuple_infer", lambda a: a.reshape((-1, 2)), [_array((2, 3, 4))]),
    ("view", lambda a: a.view(6, 4), [_array((2, 3, 4))]),
    ("flatten", lambda a: a.flatten(), [_array((2, 3, 4))]),
    ("permute", lambda a: a.permute(2, 0, 1), [_array((2, 3, 4))]),
    ("permute_tuple", lambda a: a.permute((1, 2, 0)), [_array((2, 3, 4))]),
    ("permute_negative_dims", lambda a: a.permute(0, -1, 1), [_array((2, 3, 4))]),
    ("transpose_default", lambda a: a.transpose(), [_array((2, 3, 4))]),
    ("transpose_explicit", lambda a: a.transpose(0, 2), [_array((2, 3, 4))]),
    ("transpose_negative", lambda a: a.transpose(-3, -2), [_array((2, 3, 4))]),
    ("T_2d", lambda a: a.T, [_array((3, 4))]),
    ("T_3d", lambda a: a.T, [_array((2, 3, 4))]),
    ("unsqueeze_front", lambda a: a.unsqueeze(0), [_array((3, 4))]),
    ("unsqueeze_negative", lambda a: a.unsqueeze(-1), [_array((3, 4))]),
    ("squeeze_all", lambda a: a.squeeze(), [_array((3, 1, 4, 1))]),
    ("squeeze_dim", lambda a: a.squeeze(1), [_array((3, 1, 4, 1))]),
    # -- indexing ---------------------------------------------------------------------
    ("slice_basic", lambda a: a[1:3], [_array((4, 5))]),
    ("slice_2d", lambda a: a[1:, :3], [_array((4, 5))]),
    ("slice_step", lambda a: a[::2, 1::2], [_array((4, 5))]),
    ("slice_negative_step", lambda a: a[::-1, ::-2], [_array((4, 5))]),
    ("slice_int_and_ellipsis", lambda a: a[..., 1], [_array((2, 4, 5))]),
    ("slice_newaxis", lambda a: a[None, 1], [_array((4, 5))]),
    ("index_int_array_repeated", lambda a: a[[0, 2, 0, 0]], [_array((4, 5))]),
    ("index_int_array_2d", lambda a: a[np.array([[0, 1], [1, 1]])], [_array((4, 5))]),
    ("index_pairs_repeated", lambda a: a[[0, 0, 3], [1, 1, 2]], [_array((4, 5))]),
    ("index_tensor", lambda a: a[Tensor([3, 3, 1])], [_array((4, 5))]),
    ("index_array_and_slice", lambda a: a[:, [4, 0, 4]], [_array((4, 5))]),
    ("index_boolean_mask", lambda a: a[_array((4, 5), 3) > 0], [_array((4, 5))]),
    ("index_boolean_rows", lambda a: a[np.array([True, False, True, True])], [_array((4, 5))]),
    # -- cat / stack ------------------------------------------------------------------
    ("cat_dim0", lambda a, b: cat([a, b]), [_array((2, 3)), _array((4, 3), 1)]),
    ("cat_dim1", lambda a, b: cat([a, b], dim=1), [_array((2, 3)), _array((2, 1), 1)]),
    ("cat_negative_dim", lambda a, b, c: cat([a, b, c], dim=-1),
     [_array((2, 3)), _array((2, 1), 1), _array((2, 2), 2)]),
    ("cat_same_tensor_twice", lambda a: cat([a, a * 2.0]), [_array((2, 3))]),
    ("stack_dim0", lambda a, b: stack([a, b]), [_array((2, 3)), _array((2, 3), 1)]),
    ("stack_dim_negative", lambda a, b: stack([a, b], dim=-1), [_array((2, 3)), _array((2, 3), 1)]),
    # -- elementwise functions --------------------------------------------------------
    ("exp", lambda a: a.exp(), [_X34]),
    ("log", lambda a: a.log(), [_positive((3, 4))]),
    ("sqrt", lambda a: a.sqrt(), [_positive((3, 4))]),
    ("tanh", lambda a: a.tanh(), [_array((3, 4), 0, -3, 3)]),
    ("sigmoid", lambda a: a.sigmoid(), [_array((3, 4), 0, -5, 5)]),
    ("sigmoid_saturated", lambda a: a.sigmoid(), [np.array([-100.0, -30.0, 30.0, 100.0])]),
    ("relu", lambda a: a.relu(), [_away_from_zero((3, 4))]),
    ("abs", lambda a: a.abs(), [_away_from_zero((3, 4))]),
    ("astype_same_dtype", lambda a: a.astype(a.dtype) * 2.0, [_X34]),
    # -- a composite: several ops sharing inputs ------------------------------------
    ("composite_mlp_like", lambda x, w, b: ((x @ w + b).tanh() * x.sum(axis=1, keepdims=True)).mean(),
     [_array((3, 4)), _array((4, 2), 1), _array((2,), 2)]),
]


def _leaves(arrays, dtype):
    return [Tensor(a.astype(dtype), requires_grad=True) for a in arrays]


@pytest.mark.parametrize("name, fn, arrays", CASES, ids=[c[0] for c in CASES])
def test_autograd_matches_finite_differences(name, fn, arrays):
    assert gradcheck(fn, _leaves(arrays, np.float64))


@pytest.mark.parametrize("name, fn, arrays", CASES, ids=[c[0] for c in CASES])
def test_float32_gradients_keep_dtype_and_shape(name, fn, arrays):
    inputs = _leaves(arrays, np.float32)
    out = fn(*inputs)
    assert out.dtype == np.float32
    (out * Tensor(np.ones(out.shape, dtype=np.float32))).sum().backward()
    for t in inputs:
        assert t.grad is not None
        assert t.grad.dtype == np.float32, t.grad.dtype
        assert t.grad.shape == t.shape


# -- the checker itself must be able to fail -------------------------------------------
def _times_two_with_wrong_gradient(x: Tensor) -> Tensor:
    return Tensor._from_op(x.data * 2, (x,), lambda g: (g * 3,), "bad")


def test_gradcheck_rejects_a_wrong_backward():
    with pytest.raises(AssertionError, match="differs"):
        gradcheck(_times_two_with_wrong_gradient, [Tensor(_array((3,)), requires_grad=True)])


def test_gradcheck_rejects_a_gradient_of_the_wrong_shape():
    # (1, 3) input whose backward forgets to keep the leading 1: values right, shape wrong.
    def squeeze_badly(x):
        return Tensor._from_op(x.data[0] * 2, (x,), lambda g: (g * 2,), "bad")

    with pytest.raises(AssertionError, match="shape"):
        gradcheck(squeeze_badly, [Tensor(_array((1, 3)), requires_grad=True)])


def test_gradcheck_perturbs_non_contiguous_inputs():
    # A transposed (Fortran-ordered) input: reshape(-1) would copy, and the finite
    # differences would silently see no change, so a zero gradient would pass.
    def zero_gradient(x):
        return Tensor._from_op(x.data * 2, (x,), lambda g: (np.zeros_like(g),), "bad")

    x = Tensor(np.ascontiguousarray(_array((4, 3))).T, requires_grad=True)
    assert not x.data.flags.c_contiguous
    with pytest.raises(AssertionError):
        gradcheck(zero_gradient, [x])
    assert gradcheck(lambda t: t * 2.0, [x])


def test_gradcheck_requires_float64_inputs():
    with pytest.raises(TypeError, match="float64"):
        gradcheck(lambda t: t * 2.0, [Tensor(np.ones(3, dtype=np.float32), requires_grad=True)])


# -- specific gradient semantics --------------------------------------------------------
def test_unbroadcast_sums_leading_and_unit_dimensions():
    g = np.ones((2, 3, 4))
    assert unbroadcast(g, (3, 1)).tolist() == [[8.0]] * 3
    assert unbroadcast(g, ()).item() == 24.0
    assert unbroadcast(g, (2, 3, 4)) is g


@needs_torch
def test_max_gradient_is_split_evenly_between_tied_maxima_like_torch_amax():
    data = np.array([[1.0, 3.0, 3.0], [2.0, 0.0, 2.0]])
    x = Tensor(data, requires_grad=True)
    x.max().backward()
    tx = torch.tensor(data, requires_grad=True)
    tx.amax().backward()
    np.testing.assert_array_equal(x.grad, tx.grad.numpy())
    x.grad = None
    x.max(axis=1).sum().backward()
    tx.grad = None
    tx.amax(dim=1).sum().backward()
    np.testing.assert_array_equal(x.grad, tx.grad.numpy())


def test_relu_and_abs_have_zero_gradient_at_zero_like_torch():
    x = Tensor(np.zeros(3), requires_grad=True)
    (x.relu() + x.abs()).sum().backward()
    np.testing.assert_array_equal(x.grad, np.zeros(3))


def test_sigmoid_at_plus_minus_100_has_no_overflow_and_saturates():
    for dtype in (np.float32, np.float64):
        x = Tensor(np.array([-100.0, 100.0], dtype=dtype), requires_grad=True)
        with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
            warnings.simplefilter("error")
            y = x.sigmoid()
            y.sum().backward()
        assert y.dtype == dtype
        assert y.data[0] == pytest.approx(0.0, abs=1e-40) and y.data[1] == 1.0
        assert np.all(np.isfinite(x.grad)) and np.all(x.grad >= 0) and np.all(x.grad < 1e-40)


def test_astype_to_float32_sends_gradient_back_as_float64():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = x.astype(np.float32)
    assert y.dtype == np.float32
    (y * 3.0).sum().backward()
    assert x.grad.dtype == np.float64
    np.testing.assert_array_equal(x.grad, [3.0, 3.0])


# -- the engine ------------------------------------------------------------------------
def test_chain_of_20000_ops_backpropagates_without_recursion_error():
    x = Tensor(np.array([1.0]), requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
        y = y + 0.5
    y.sum().backward()
    assert x.grad[0] == pytest.approx(1.0001 ** 10_000, rel=1e-9)
    del y  # tearing down a deep graph must not recurse either


def test_tensor_used_twice_accumulates_gradient():
    data = np.array([1.5, -2.0, 3.0])
    x = Tensor(data, requires_grad=True)
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * data)


def test_diamond_graph_sums_both_paths():
    x = Tensor(np.array([2.0]), requires_grad=True)
    a = x * 3.0
    b = x.exp()
    (a * b).sum().backward()  # d/dx (3x e^x) = 3 e^x (1 + x)
    np.testing.assert_allclose(x.grad, 3 * np.exp(2.0) * 3.0)


def test_backward_twice_with_retain_graph_accumulates_into_leaf_grad():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    out = (x * 3.0).sum()
    out.backward(retain_graph=True)
    out.backward()
    np.testing.assert_array_equal(x.grad, [6.0, 6.0])


def test_only_leaves_keep_grad():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = x * 2.0
    z = y.sum()
    z.backward()
    assert x.is_leaf and not y.is_leaf
    assert y.grad is None and z.grad is None
    np.testing.assert_array_equal(x.grad, [2.0, 2.0])


def test_inputs_without_requires_grad_get_no_grad():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    c = Tensor(np.array([5.0, 6.0]))
    (x * c).sum().backward()
    assert c.grad is None and not c.requires_grad


def test_no_grad_records_nothing_and_restores_state():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    with no_grad():
        assert not is_grad_enabled()
        y = (x * 2.0).exp().sum()
        with no_grad():
            pass
        assert not is_grad_enabled()
    assert is_grad_enabled()
    assert not y.requires_grad and y.is_leaf and y._parents == ()
    with pytest.raises(RuntimeError):
        y.backward()
    assert (x * 2.0).requires_grad


def test_no_grad_restores_state_after_an_exception():
    with pytest.raises(ZeroDivisionError):
        with no_grad():
            _ = 1 / 0
    assert is_grad_enabled()


def test_no_grad_and_enable_grad_as_decorators_nest_and_restore():
    @no_grad()
    def depth(n):  # the same decorated function entered again inside itself
        assert not is_grad_enabled()
        return n if n == 0 else depth(n - 1) + 1

    @enable_grad()
    def inner():
        return is_grad_enabled()

    assert depth(3) == 3 and is_grad_enabled()
    with no_grad():
        assert inner() is True
        assert not is_grad_enabled()
    with pytest.raises(ZeroDivisionError):
        no_grad()(lambda: 1 / 0)()
    assert is_grad_enabled()


def test_grad_mode_is_per_thread_and_a_new_thread_starts_enabled():
    seen = {}
    barrier = threading.Barrier(2)

    @no_grad()
    def off():
        barrier.wait()  # both threads inside the one decorated function at once
        seen["off"] = is_grad_enabled()
        barrier.wait()

    def on():
        seen["fresh"] = is_grad_enabled()
        barrier.wait()
        barrier.wait()
        seen["on"] = is_grad_enabled()

    with no_grad():  # the calling thread's mode is not the new threads'
        threads = [threading.Thread(target=off), threading.Thread(target=on)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not is_grad_enabled()
    assert seen == {"fresh": True, "off": False, "on": True}
    assert is_grad_enabled()


def test_detach_cuts_the_graph():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    d = x.detach()
    assert not d.requires_grad and d.is_leaf
    assert np.shares_memory(d.data, x.data)
    (x * 2.0 + d * 10.0).sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0, 2.0])
    assert d.grad is None


def test_backward_on_non_scalar_without_grad_raises():
    x = Tensor(np.ones((2, 2)), requires_grad=True)
    with pytest.raises(RuntimeError, match="scalar"):
        (x * 2.0).backward()


def test_backward_with_explicit_grad_of_wrong_shape_raises():
    x = Tensor(np.ones((2, 2)), requires_grad=True)
    with pytest.raises(ValueError, match="shape"):
        (x * 2.0).backward(np.ones(3))


def test_backward_with_explicit_grad_weights_the_output():
    x = Tensor(np.ones((2, 2)), requires_grad=True)
    (x * 2.0).backward(np.array([[1.0, 2.0], [3.0, 4.0]]))
    np.testing.assert_array_equal(x.grad, [[2.0, 4.0], [6.0, 8.0]])


# -- dtypes ----------------------------------------------------------------------------
def test_python_floats_default_to_float32():
    assert Tensor([1.0, 2.0]).dtype == np.float32
    assert Tensor(1.5).dtype == np.float32
    assert Tensor(np.ones(2, dtype=np.float16)).dtype == np.float32


def test_float64_arrays_stay_float64():
    assert Tensor(np.ones(2)).dtype == np.float64
    assert (Tensor(np.ones(2)) * 2.0).dtype == np.float64


def test_python_ints_become_int64():
    assert Tensor([1, 2, 3]).dtype == np.int64
    assert Tensor(7).dtype == np.int64


def test_python_scalars_take_the_tensor_dtype():
    x = Tensor(np.ones(2, dtype=np.float32))
    for y in (x + 1.5, 1.5 + x, x * 2, 2 - x, x / 3.0, 3.0 / x, x ** 2):
        assert y.dtype == np.float32


def test_requires_grad_on_int_tensor_raises_type_error():
    with pytest.raises(TypeError):
        Tensor([1, 2], requires_grad=True)


def test_pow_rejects_tensor_exponent():
    with pytest.raises(TypeError):
        Tensor(np.ones(2)) ** Tensor(np.ones(2))


# -- forward parity with torch ---------------------------------------------------------
PARITY = [
    ("add_broadcast", lambda a, b: a + b, lambda a, b: a + b, [(3, 4), (4,)]),
    ("sub_broadcast", lambda a, b: a - b, lambda a, b: a - b, [(3, 1), (3, 4)]),
    ("mul", lambda a, b: a * b, lambda a, b: a * b, [(2, 3), (2, 3)]),
    ("div", lambda a, b: a / (b * b + 1.0), lambda a, b: a / (b * b + 1.0), [(2, 3), (3,)]),
    ("pow", lambda a: (a * a + 1.0) ** 1.5, lambda a: (a * a + 1.0) ** 1.5, [(3, 4)]),
    ("matmul_batched_broadcast", lambda a, b: a @ b, lambda a, b: a @ b, [(2, 1, 3, 4), (5, 4, 2)]),
    ("matmul_1d_2d", lambda a, b: a @ b, lambda a, b: a @ b, [(4,), (4, 3)]),
    ("sum_tuple_keepdims", lambda a: a.sum(axis=(0, 2), keepdims=True),
     lambda a: a.sum(dim=(0, 2), keepdim=True), [(2, 3, 4)]),
    ("mean_negative", lambda a: a.mean(axis=-1), lambda a: a.mean(dim=-1), [(2, 3, 4)]),
    ("max_axis", lambda a: a.max(axis=1), lambda a: a.amax(dim=1), [(2, 3, 4)]),
    ("permute_negative", lambda a: a.permute(0, -1, 1), lambda a: a.permute(0, -1, 1), [(2, 3, 4)]),
    ("transpose", lambda a: a.transpose(0, 2), lambda a: a.transpose(0, 2), [(2, 3, 4)]),
    ("T", lambda a: a.T, lambda a: a.permute(1, 0), [(3, 4)]),
    ("slice_negative_step", lambda a: a[::-1, 1:], lambda a: a.flip(0)[:, 1:], [(4, 5)]),
    ("exp", lambda a: a.exp(), lambda a: a.exp(), [(3, 4)]),
    ("log_abs", lambda a: (a.abs() + 0.1).log(), lambda a: (a.abs() + 0.1).log(), [(3, 4)]),
    ("sqrt", lambda a: (a * a).sqrt(), lambda a: (a * a).sqrt(), [(3, 4)]),
    ("tanh", lambda a: (a * 3.0).tanh(), lambda a: (a * 3.0).tanh(), [(3, 4)]),
    ("sigmoid", lambda a: (a * 50.0).sigmoid(), lambda a: (a * 50.0).sigmoid(), [(3, 4)]),
    ("relu", lambda a: a.relu(), lambda a: a.relu(), [(3, 4)]),
    ("cat", lambda a, b: cat([a, b], dim=-1), lambda a, b: torch.cat([a, b], dim=-1), [(2, 3), (2, 2)]),
    ("stack", lambda a, b: stack([a, b], dim=1), lambda a, b: torch.stack([a, b], dim=1), [(2, 3), (2, 3)]),
]


@needs_torch
@pytest.mark.parametrize("dtype, tol", [(np.float32, 1e-6), (np.float64, 1e-12)])
@pytest.mark.parametrize("name, ours, theirs, shapes", PARITY, ids=[p[0] for p in PARITY])
def test_forward_and_gradients_match_torch(name, ours, theirs, shapes, dtype, tol):
    arrays = [_array(s, seed=i).astype(dtype) for i, s in enumerate(shapes)]
    xs = [Tensor(a, requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, tout = ours(*xs), theirs(*ts)
    assert out.shape == tuple(tout.shape)
    assert out.dtype == dtype
    np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=tol, atol=tol)
    w = _array(out.shape, seed=99).astype(dtype)
    (out * Tensor(w)).sum().backward()
    (tout * torch.tensor(w)).sum().backward()
    for x, t in zip(xs, ts, strict=True):
        np.testing.assert_allclose(x.grad, t.grad.numpy(), rtol=tol, atol=tol)


def test_pow_zero_has_zero_gradient_even_at_zero():
    x = Tensor(np.array([0.0, 2.0]), requires_grad=True)
    (x ** 0).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0])


def test_squeeze_of_a_dim_that_is_not_one_is_a_no_op_as_in_torch():
    x = Tensor(np.ones((2, 3)))
    assert x.squeeze(0).shape == (2, 3)
    assert Tensor(np.ones((2, 1))).squeeze(1).shape == (2,)


def test_np_array_copies_but_np_asarray_shares():
    t = Tensor(np.zeros(3, np.float32))
    snapshot = np.array(t)
    snapshot[0] = 99
    assert t.data[0] == 0
    assert np.asarray(t) is t.data


def test_float32_leaf_gets_a_float32_grad_from_a_float64_expression():
    a = Tensor(np.ones(3, np.float32), requires_grad=True)
    (a * Tensor(np.ones(3))).sum().backward()
    assert a.grad.dtype == np.float32


def test_mean_of_nothing_is_nan():
    assert np.isnan(Tensor(np.zeros((0, 3))).mean().item())


def test_bool_of_a_comparison_is_its_value():
    assert not bool(Tensor([-1.0]) > 0)
    assert bool(Tensor([1.0]) > 0)
    with pytest.raises(ValueError):
        bool(Tensor([1.0, 2.0]))


def test_leaf_grad_does_not_alias_an_array_given_to_two_parents():
    a = Tensor(np.ones(2), requires_grad=True)
    b = Tensor(np.ones(2), requires_grad=True)
    (a + b).sum().backward()
    a.grad += 1
    np.testing.assert_array_equal(b.grad, [1.0, 1.0])
