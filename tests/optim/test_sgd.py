"""SGD: step-by-step parity with torch.optim.SGD 2.13, dense and row-sparse."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyembed.nn.module import Parameter
from tinyembed.optim import SGD
from tinyembed.sparse import RowSparseGrad

torch = pytest.importorskip("torch")
from optim_oracle import TOL, dense_trajectories, max_abs_diff  # noqa: E402

SHAPES = [(7, 3), (5,), (), (2, 3, 2)]

NAMED_CONFIGS = {
    "plain": dict(lr=0.1),
    "momentum": dict(lr=0.05, momentum=0.9),
    "nesterov": dict(lr=0.05, momentum=0.9, nesterov=True),
    "dampening": dict(lr=0.05, momentum=0.8, dampening=0.3),
    "weight_decay": dict(lr=0.1, weight_decay=0.05),
    "weight_decay_momentum": dict(lr=0.1, momentum=0.5, weight_decay=0.05),
    "maximize": dict(lr=0.1, momentum=0.9, maximize=True),
    "maximize_nesterov_weight_decay": dict(lr=0.02, momentum=0.7, nesterov=True, weight_decay=0.1, maximize=True),
}


def _torch_sgd(params, **kw):
    return torch.optim.SGD(params, foreach=False, **kw)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(NAMED_CONFIGS))
def test_sgd_trajectory_matches_torch_for_each_variant(name, dtype):
    kw = NAMED_CONFIGS[name]
    worst = dense_trajectories(lambda ps: SGD(ps, **kw), lambda ps: _torch_sgd(ps, **kw),
                               SHAPES, dtype, steps=8, seed=0)
    assert worst <= TOL[np.dtype(dtype)]


@st.composite
def sgd_options(draw):
    momentum = draw(st.sampled_from([0.0, 0.5, 0.9, 0.99]))
    nesterov = momentum > 0 and draw(st.booleans())
    dampening = 0.0 if nesterov else draw(st.sampled_from([0.0, 0.1, 0.5]))
    return dict(lr=draw(st.floats(0.0, 0.5)), momentum=momentum, dampening=dampening,
                weight_decay=draw(st.sampled_from([0.0, 1e-3, 0.1])), nesterov=nesterov,
                maximize=draw(st.booleans()))


shapes = st.lists(st.lists(st.integers(1, 5), max_size=3).map(tuple), min_size=1, max_size=3)


@settings(max_examples=20, deadline=None)
@given(kw=sgd_options(), shapes=shapes, dtype=st.sampled_from([np.float32, np.float64]),
       steps=st.integers(5, 9), seed=st.integers(0, 2**31 - 1))
def test_sgd_trajectory_matches_torch_for_random_hyperparameters(kw, shapes, dtype, steps, seed):
    worst = dense_trajectories(lambda ps: SGD(ps, **kw), lambda ps: _torch_sgd(ps, **kw),
                               shapes, dtype, steps, seed)
    assert worst <= TOL[np.dtype(dtype)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sgd_param_groups_use_their_own_hyperparameters_like_torch(dtype):
    groups = [(0, 2, dict(lr=0.2, momentum=0.9)), (2, 4, dict(weight_decay=0.1, nesterov=False))]
    worst = dense_trajectories(lambda ps: SGD(ps, lr=0.05), lambda ps: _torch_sgd(ps, lr=0.05),
                               SHAPES, dtype, steps=6, seed=3, param_groups=groups)
    assert worst <= TOL[np.dtype(dtype)]


@settings(max_examples=20, deadline=None)
@given(num=st.integers(1, 12), dim=st.integers(1, 5), dtype=st.sampled_from([np.float32, np.float64]),
       lr=st.floats(0.0, 1.0), maximize=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_sgd_row_sparse_grads_match_torch_sparse_grads_and_move_only_their_rows(num, dim, dtype, lr, maximize, seed):
    rng = np.random.default_rng(seed)
    init = rng.standard_normal((num, dim)).astype(dtype)
    p = Parameter(init.copy())
    t = torch.tensor(init.copy(), requires_grad=True)
    opt, topt = SGD([p], lr=lr, maximize=maximize), _torch_sgd([t], lr=lr, maximize=maximize)
    touched = np.zeros(num, dtype=bool)
    for _ in range(6):
        rows = rng.integers(0, num, size=rng.integers(0, 2 * num))  # repeats allowed
        values = rng.standard_normal((len(rows), dim)).astype(dtype)
        touched[rows] = True
        p.grad = RowSparseGrad.from_rows(rows, values, (num, dim))
        t.grad = torch.sparse_coo_tensor(torch.from_numpy(rows[None]), torch.from_numpy(values), (num, dim),
                                         check_invariants=True)
        opt.step()
        topt.step()
        assert max_abs_diff(p.data, t) <= TOL[np.dtype(dtype)]
    np.testing.assert_array_equal(p.data[~touched], init[~touched])
    assert opt.state == {}  # no momentum, no state


def test_sgd_sparse_update_is_in_place_on_the_rows():
    p = Parameter(np.arange(12, dtype=np.float32).reshape(4, 3))
    data = p.data
    p.grad = RowSparseGrad(np.array([1, 3]), np.ones((2, 3), np.float32), (4, 3))
    SGD([p], lr=0.5).step()
    assert p.data is data
    np.testing.assert_array_equal(p.data[[0, 2]], np.arange(12, dtype=np.float32).reshape(4, 3)[[0, 2]])
    np.testing.assert_array_equal(p.data[1], [2.5, 3.5, 4.5])


@pytest.mark.parametrize("kw", [dict(momentum=0.9), dict(weight_decay=0.01), dict(momentum=0.5, weight_decay=0.1)])
def test_sgd_with_momentum_or_weight_decay_refuses_row_sparse_grads(kw):
    dense = Parameter(np.ones(3, np.float32))
    table = Parameter(np.ones((4, 2), np.float32))
    dense.grad = np.ones(3, np.float32)
    table.grad = RowSparseGrad(np.array([0]), np.ones((1, 2), np.float32), (4, 2))
    opt = SGD([dense, table], lr=0.1, **kw)
    with pytest.raises(RuntimeError, match=r"SGD.*param_groups\[0\]\['params'\]\[1\].*SparseAdam.*sparse=False"):
        opt.step()
    np.testing.assert_array_equal(dense.data, 1)  # checked before anything moved
    assert opt.state == {}
