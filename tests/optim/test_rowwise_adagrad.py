"""RowWiseAdagrad: against a brute-force per-row loop of FBGEMM's EXACT_ROWWISE_ADAGRAD rule."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyembed.nn.module import Parameter
from tinyembed.optim import RowWiseAdagrad
from tinyembed.sparse import RowSparseGrad

TOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-10}


def reference_step(weight, acc, grad_by_row: dict, *, lr, eps, weight_decay):
    """One row at a time, straight from the rule: acc[r] += mean(g²); w_r -= lr g / (sqrt(acc[r]) + eps)."""
    for r, g in grad_by_row.items():
        g = g + weight_decay * weight[r]
        acc[r] = np.float32(acc[r] + np.mean(g * g))  # one float32 accumulator per row
        denom = np.sqrt(weight.dtype.type(acc[r])) + eps
        if denom > 0:
            weight[r] = weight[r] - lr * g / denom


@st.composite
def adagrad_cases(draw):
    return dict(num=draw(st.integers(1, 15)), dim=draw(st.integers(1, 6)),
                dtype=np.dtype(draw(st.sampled_from([np.float32, np.float64]))),
                lr=draw(st.floats(0.0, 0.5)), eps=draw(st.sampled_from([0.0, 1e-10, 1e-3])),
                weight_decay=draw(st.sampled_from([0.0, 1e-2, 0.5])),
                initial_accumulator_value=draw(st.sampled_from([0.0, 0.1])),
                sparse=draw(st.booleans()), steps=draw(st.integers(5, 8)), seed=draw(st.integers(0, 2**31 - 1)))


@settings(max_examples=20, deadline=None)
@given(case=adagrad_cases())
def test_rowwise_adagrad_matches_per_row_reference(case):
    num, dim, dtype = case["num"], case["dim"], case["dtype"]
    kw = {k: case[k] for k in ("lr", "eps", "weight_decay", "initial_accumulator_value")}
    rng = np.random.default_rng(case["seed"])
    weight = rng.standard_normal((num, dim)).astype(dtype)
    p = Parameter(weight.copy())
    opt = RowWiseAdagrad([p], **kw)
    acc = np.full(num, kw["initial_accumulator_value"], np.float32)
    for _ in range(case["steps"]):
        if case["sparse"]:
            rows = rng.integers(0, num, size=rng.integers(0, 2 * num))  # repeats allowed
            values = rng.standard_normal((len(rows), dim)).astype(dtype)
            p.grad = RowSparseGrad.from_rows(rows, values, (num, dim))
            grad_by_row = {r: p.grad.values[i] for i, r in enumerate(p.grad.indices)}
        else:
            p.grad = rng.standard_normal((num, dim)).astype(dtype)
            grad_by_row = dict(enumerate(p.grad))
        opt.step()
        reference_step(weight, acc, grad_by_row, lr=kw["lr"], eps=kw["eps"], weight_decay=kw["weight_decay"])
        assert np.max(np.abs(p.data - weight)) <= TOL[dtype]
        np.testing.assert_allclose(opt.state[p]["sum"], acc, rtol=1e-6)


@settings(max_examples=20, deadline=None)
@given(num=st.integers(1, 15), dim=st.integers(1, 6), dtype=st.sampled_from([np.float32, np.float64]),
       eps=st.sampled_from([0.0, 1e-10]), seed=st.integers(0, 2**31 - 1))
def test_rowwise_adagrad_dense_and_sparse_grads_give_the_same_result(num, dim, dtype, eps, seed):
    # The dense grad is the densified sparse one: rows outside it have zero gradient and do not move.
    rng = np.random.default_rng(seed)
    init = rng.standard_normal((num, dim)).astype(dtype)
    p_sparse, p_dense = Parameter(init.copy()), Parameter(init.copy())
    opt_sparse = RowWiseAdagrad([p_sparse], lr=0.1, eps=eps)
    opt_dense = RowWiseAdagrad([p_dense], lr=0.1, eps=eps)
    touched = np.zeros(num, dtype=bool)
    for _ in range(6):
        rows = rng.integers(0, num, size=rng.integers(0, num + 1))
        touched[rows] = True
        p_sparse.grad = RowSparseGrad.from_rows(rows, rng.standard_normal((len(rows), dim)).astype(dtype), (num, dim))
        p_dense.grad = p_sparse.grad.to_dense()
        opt_sparse.step()
        opt_dense.step()
        np.testing.assert_array_equal(p_dense.data, p_sparse.data)
        np.testing.assert_array_equal(opt_dense.state[p_dense]["sum"], opt_sparse.state[p_sparse]["sum"])
    np.testing.assert_array_equal(p_sparse.data[~touched], init[~touched])
    assert not opt_sparse.state[p_sparse]["sum"][~touched].any()


def test_rowwise_adagrad_dense_grad_with_weight_decay_decays_rows_a_sparse_grad_leaves_alone():
    init = np.ones((3, 2))
    p_sparse, p_dense = Parameter(init.copy()), Parameter(init.copy())
    grad = RowSparseGrad(np.array([0]), np.ones((1, 2)), (3, 2))
    p_sparse.grad, p_dense.grad = grad, grad.to_dense()
    RowWiseAdagrad([p_sparse], weight_decay=0.1).step()
    RowWiseAdagrad([p_dense], weight_decay=0.1).step()
    np.testing.assert_array_equal(p_sparse.data[1:], 1.0)
    assert (p_dense.data[1:] < 1.0).all()  # the L2 term is a gradient on every row
    np.testing.assert_array_equal(p_dense.data[0], p_sparse.data[0])


def test_rowwise_adagrad_keeps_one_float32_accumulator_per_row():
    p = Parameter(np.zeros((5, 4), np.float64))
    p.grad = np.ones((5, 4))
    opt = RowWiseAdagrad([p], initial_accumulator_value=0.5)
    opt.step()
    acc = opt.state[p]["sum"]
    assert acc.shape == (5,) and acc.dtype == np.float32
    np.testing.assert_array_equal(acc, 1.5)


def test_rowwise_adagrad_update_is_in_place():
    p = Parameter(np.ones((4, 3), np.float32))
    view = p.data[1]  # a tied module holding a view sees the update
    p.grad = RowSparseGrad(np.array([1]), np.ones((1, 3), np.float32), (4, 3))
    RowWiseAdagrad([p], lr=0.5).step()
    np.testing.assert_allclose(view, 0.5, rtol=1e-6)


@pytest.mark.parametrize("shape", [(6,), (2, 3, 4), ()])
def test_rowwise_adagrad_refuses_parameters_that_are_not_2d(shape):
    with pytest.raises(ValueError, match=rf"2-D.*shape {re_shape(shape)}"):
        RowWiseAdagrad([Parameter(np.zeros((3, 3))), Parameter(np.zeros(shape))])


def re_shape(shape):
    import re
    return re.escape(str(tuple(shape)))
