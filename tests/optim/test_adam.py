"""Adam, AdamW and SparseAdam: step-by-step parity with torch.optim 2.13."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyembed.nn.module import Parameter
from tinyembed.optim import Adam, AdamW, SparseAdam
from tinyembed.sparse import RowSparseGrad

torch = pytest.importorskip("torch")
from optim_oracle import TOL, dense_trajectories, max_abs_diff  # noqa: E402

SHAPES = [(7, 3), (5,), (), (2, 3, 2)]
DTYPES = [np.float32, np.float64]

NAMED_CONFIGS = {
    "plain": dict(lr=0.01),
    "amsgrad": dict(lr=0.01, amsgrad=True),
    "weight_decay": dict(lr=0.01, weight_decay=0.1),
    "amsgrad_weight_decay": dict(lr=0.01, weight_decay=0.1, amsgrad=True),
    "maximize": dict(lr=0.01, maximize=True, weight_decay=0.05),
    "betas_eps": dict(lr=0.05, betas=(0.3, 0.6), eps=1e-3),  # lerp weight >= 0.5 takes torch's other branch
}


def _torch(cls):
    return lambda params, **kw: cls(params, foreach=False, **kw)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(NAMED_CONFIGS))
@pytest.mark.parametrize("ours, theirs", [(Adam, torch.optim.Adam), (AdamW, torch.optim.AdamW)],
                         ids=["Adam", "AdamW"])
def test_adam_and_adamw_trajectories_match_torch_for_each_variant(ours, theirs, name, dtype):
    kw = NAMED_CONFIGS[name]
    worst = dense_trajectories(lambda ps: ours(ps, **kw), lambda ps: _torch(theirs)(ps, **kw),
                               SHAPES, dtype, steps=8, seed=1)
    assert worst <= TOL[np.dtype(dtype)]


@pytest.mark.parametrize("dtype", DTYPES)
def test_adamw_default_weight_decay_is_torchs_and_decoupled(dtype):
    worst = dense_trajectories(lambda ps: AdamW(ps, lr=0.1), lambda ps: _torch(torch.optim.AdamW)(ps, lr=0.1),
                               SHAPES, dtype, steps=6, seed=2)
    assert worst <= TOL[np.dtype(dtype)]
    assert AdamW([Parameter(np.zeros(1))]).defaults["weight_decay"] == 1e-2


@st.composite
def adam_options(draw):
    # No beta2 = 0: then v = g² alone, the step is m / |g|, and where g cancels to about 0
    # (gradient plus weight decay) one rounding difference is amplified by 1 / |g|. PyTorch's
    # CPU kernels fuse multiply-adds (FMA) and NumPy rounds twice, so float32 would differ there.
    beta = st.sampled_from([0.0, 0.3, 0.5, 0.9, 0.99, 0.999])
    beta2 = st.sampled_from([0.3, 0.5, 0.9, 0.99, 0.999])
    return dict(lr=draw(st.floats(0.0, 0.1)), betas=(draw(beta), draw(beta2)),
                eps=draw(st.sampled_from([0.0, 1e-8, 1e-4, 0.1])),
                weight_decay=draw(st.sampled_from([0.0, 1e-2, 0.3])), amsgrad=draw(st.booleans()),
                maximize=draw(st.booleans()))


shapes = st.lists(st.lists(st.integers(1, 5), max_size=3).map(tuple), min_size=1, max_size=3)


@settings(max_examples=20, deadline=None)
@given(kw=adam_options(), shapes=shapes, dtype=st.sampled_from(DTYPES), steps=st.integers(5, 9),
       seed=st.integers(0, 2**31 - 1), decoupled=st.booleans())
def test_adam_and_adamw_trajectories_match_torch_for_random_hyperparameters(kw, shapes, dtype, steps, seed, decoupled):
    ours, theirs = (AdamW, torch.optim.AdamW) if decoupled else (Adam, torch.optim.Adam)
    worst = dense_trajectories(lambda ps: ours(ps, **kw), lambda ps: _torch(theirs)(ps, **kw),
                               shapes, dtype, steps, seed)
    assert worst <= TOL[np.dtype(dtype)]


@pytest.mark.parametrize("dtype", DTYPES)
def test_adam_param_groups_use_their_own_hyperparameters_like_torch(dtype):
    groups = [(0, 1, dict(lr=0.1, amsgrad=True)), (1, 4, dict(betas=(0.5, 0.9), weight_decay=0.2))]
    worst = dense_trajectories(lambda ps: Adam(ps, lr=0.01), lambda ps: _torch(torch.optim.Adam)(ps, lr=0.01),
                               SHAPES, dtype, steps=6, seed=4, param_groups=groups)
    assert worst <= TOL[np.dtype(dtype)]


@pytest.mark.parametrize("cls", [Adam, AdamW])
def test_dense_adam_refuses_row_sparse_grads_and_names_the_fix(cls):
    dense = Parameter(np.ones(3, np.float32))
    table = Parameter(np.ones((4, 2), np.float32))
    dense.grad = np.ones(3, np.float32)
    table.grad = RowSparseGrad(np.array([2]), np.ones((1, 2), np.float32), (4, 2))
    opt = cls([dense, table])
    with pytest.raises(RuntimeError, match=rf"{cls.__name__} does not support row-sparse.*\['params'\]\[1\]"
                                           r".*SparseAdam or RowWiseAdagrad.*sparse=False"):
        opt.step()
    np.testing.assert_array_equal(dense.data, 1)
    assert opt.state == {}


# -- SparseAdam ------------------------------------------------------------------------------
def _sparse_run(num, dim, dtype, kw, steps, seed, rows_of_step):
    """Run SparseAdam and torch.optim.SparseAdam on the same COO gradients; check every step."""
    rng = np.random.default_rng(seed)
    init = rng.standard_normal((num, dim)).astype(dtype)
    p = Parameter(init.copy())
    t = torch.tensor(init.copy(), requires_grad=True)
    opt, topt = SparseAdam([p], **kw), torch.optim.SparseAdam([t], **kw)
    touched = np.zeros(num, dtype=bool)
    for step in range(steps):
        rows = rows_of_step(rng, step)
        values = rng.standard_normal((len(rows), dim)).astype(dtype)
        touched[rows] = True
        p.grad = RowSparseGrad.from_rows(rows, values, (num, dim))
        t.grad = torch.sparse_coo_tensor(torch.from_numpy(rows[None]), torch.from_numpy(values), (num, dim),
                                         check_invariants=True)  # uncoalesced: torch coalesces in step()
        opt.step()
        topt.step()
        tstate = topt.state[t]
        assert opt.state[p]["step"] == tstate["step"] == step + 1
        assert max_abs_diff(p.data, t) <= TOL[np.dtype(dtype)]
        assert max_abs_diff(opt.state[p]["exp_avg"], tstate["exp_avg"]) <= TOL[np.dtype(dtype)]
        assert max_abs_diff(opt.state[p]["exp_avg_sq"], tstate["exp_avg_sq"]) <= TOL[np.dtype(dtype)]
    return init, p, opt, touched


@settings(max_examples=20, deadline=None)
@given(num=st.integers(1, 20), dim=st.integers(1, 6), dtype=st.sampled_from(DTYPES),
       lr=st.floats(1e-4, 0.1), betas=st.tuples(st.sampled_from([0.0, 0.5, 0.9]), st.sampled_from([0.5, 0.999])),
       eps=st.sampled_from([1e-8, 1e-3]), maximize=st.booleans(), steps=st.integers(5, 8),
       seed=st.integers(0, 2**31 - 1))
def test_sparse_adam_matches_torch_sparse_adam_and_leaves_untouched_rows_alone(
        num, dim, dtype, lr, betas, eps, maximize, steps, seed):
    # Row ids from the lower half of the table only, with repeats; sometimes no rows at all.
    def rows_of_step(rng, step):
        return rng.integers(0, max(1, num // 2), size=rng.integers(0, 8))

    kw = dict(lr=lr, betas=betas, eps=eps, maximize=maximize)
    init, p, opt, touched = _sparse_run(num, dim, dtype, kw, steps, seed, rows_of_step)
    np.testing.assert_array_equal(p.data[~touched], init[~touched])
    assert not opt.state[p]["exp_avg"][~touched].any()
    assert not opt.state[p]["exp_avg_sq"][~touched].any()


def test_sparse_adam_counts_a_step_even_for_an_empty_grad_like_torch():
    # Steps 1-2 have no rows: nothing moves, but the bias correction still advances.
    def rows_of_step(rng, step):
        return np.array([], np.int64) if step < 2 else np.array([3, 3, 1])

    init, p, opt, touched = _sparse_run(6, 2, np.float64, dict(lr=0.1), 5, 0, rows_of_step)
    assert opt.state[p]["step"] == 5


def test_sparse_adam_refuses_a_dense_grad_naming_the_parameter_index():
    a = Parameter(np.zeros((3, 2), np.float32))
    b = Parameter(np.zeros((3, 2), np.float32))
    a.grad = RowSparseGrad(np.array([0]), np.ones((1, 2), np.float32), (3, 2))
    b.grad = np.ones((3, 2), np.float32)
    opt = SparseAdam([{"params": [a]}, {"params": [b], "lr": 0.1}])
    where = r"param_groups\[1\]\['params'\]\[0\]"
    with pytest.raises(RuntimeError, match=rf"SparseAdam does not support dense.*{where}.*Adam"):
        opt.step()
    np.testing.assert_array_equal(a.data, 0)
    assert opt.state == {}


def _whole_array_adam(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, *, lr, beta1, beta2, eps,
                      weight_decay, decoupled_weight_decay, maximize):
    """adam_step's formula on whole arrays, one NumPy expression per line (the form before blocking)."""
    g = -grad if maximize else grad
    if weight_decay != 0:
        if decoupled_weight_decay:
            param *= 1 - lr * weight_decay
        else:
            g = g + weight_decay * param
    w = exp_avg.dtype.type(1 - beta1)
    if abs(w) < 0.5:
        exp_avg += w * (g - exp_avg)
    else:
        exp_avg[...] = g - (g - exp_avg) * (exp_avg.dtype.type(1) - w)
    exp_avg_sq *= beta2
    exp_avg_sq += (1 - beta2) * g * g
    second = exp_avg_sq
    if max_exp_avg_sq is not None:
        np.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        second = max_exp_avg_sq
    param += (-lr / (1 - beta1**step)) * exp_avg / (np.sqrt(second) / (1 - beta2**step) ** 0.5 + eps)


@pytest.mark.parametrize("name", sorted(NAMED_CONFIGS))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(5,), (300, 7), (1 << 19,)])  # one block, several, several per thread
@pytest.mark.parametrize("decoupled", [False, True])
def test_adam_step_in_cache_sized_blocks_equals_the_whole_array_formula_to_the_bit(name, dtype, shape, decoupled):
    from tinyembed.optim import adam_step

    kw = dict(lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, maximize=False)
    kw.update(NAMED_CONFIGS[name])
    rng = np.random.default_rng(0)
    param, grad, exp_avg = (rng.standard_normal(shape).astype(dtype) for _ in range(3))
    exp_avg_sq = np.abs(rng.standard_normal(shape)).astype(dtype)
    states = [[a.copy() for a in (param, grad, exp_avg, exp_avg_sq, exp_avg_sq * 1.5)] for _ in range(2)]
    for fn, (p, g, m, v, vmax) in zip((adam_step, _whole_array_adam), states, strict=True):
        fn(p, g, m, v, vmax if kw["amsgrad"] else None, 3, lr=kw["lr"], beta1=kw["betas"][0], beta2=kw["betas"][1],
           eps=kw["eps"], weight_decay=kw["weight_decay"], decoupled_weight_decay=decoupled, maximize=kw["maximize"])
    for ours, reference in zip(*states, strict=True):
        np.testing.assert_array_equal(ours, reference)


def test_adamw_step_on_a_column_major_gradient_equals_the_row_major_one():
    from tinyembed.optim import adam_step

    rng = np.random.default_rng(1)
    param, grad = rng.standard_normal((2, 600, 9)).astype(np.float32)
    runs = []
    for g in (grad, np.asfortranarray(grad)):
        p, m, v = param.copy(), np.zeros_like(param), np.zeros_like(param)
        adam_step(p, g, m, v, None, 1, lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01,
                  decoupled_weight_decay=True, maximize=False)
        runs.append((p, m, v))
    for a, b in zip(*runs, strict=True):
        np.testing.assert_array_equal(a, b)
