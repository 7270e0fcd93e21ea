"""Embedding: parity with torch.nn.Embedding 2.13, and what PyTorch does not cover."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinyembed as te
from tinyembed.nn import Embedding, init
from tinyembed.nn.functional import embedding
from tinyembed.sparse import RowSparseGrad

torch = pytest.importorskip("torch")

TOL = {np.float32: 1e-5, np.float64: 1e-10}
TORCH_DTYPE = {np.float32: torch.float32, np.float64: torch.float64}


@st.composite
def embedding_cases(draw):
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    num, dim = draw(st.integers(1, 25)), draw(st.integers(1, 9))
    shape = tuple(draw(st.lists(st.integers(0, 5), min_size=0, max_size=3)))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, num, size=shape)
    if ids.size and draw(st.booleans()):
        ids.reshape(-1)[: ids.size // 2] = ids.reshape(-1)[0]  # many repeats
    padding_idx = draw(st.one_of(st.none(), st.integers(-num, num - 1)))
    max_norm = draw(st.one_of(st.none(), st.floats(0.1, 3.0)))
    norm_type = draw(st.sampled_from([1.0, 2.0, 3.5, float("inf")]))
    scale = draw(st.booleans())
    sparse = draw(st.booleans())
    weight = rng.standard_normal((num, dim)).astype(dtype)
    upstream = rng.standard_normal(ids.shape + (dim,)).astype(dtype)
    return dict(dtype=dtype, ids=ids, weight=weight, upstream=upstream, padding_idx=padding_idx,
                max_norm=max_norm, norm_type=norm_type, scale_grad_by_freq=scale, sparse=sparse)


def run_ours(case):
    opts = {k: case[k] for k in ("padding_idx", "max_norm", "norm_type", "scale_grad_by_freq", "sparse")}
    emb = Embedding.from_pretrained(case["weight"].copy(), freeze=False, **opts)
    out = emb(case["ids"])
    out.backward(case["upstream"])
    grad = emb.weight.grad
    if grad is not None and case["sparse"]:
        assert isinstance(grad, RowSparseGrad)
        grad = grad.to_dense()
    return out.data, emb.weight.data, grad


def run_torch(case, sparse):
    opts = {k: case[k] for k in ("padding_idx", "max_norm", "norm_type", "scale_grad_by_freq")}
    emb = torch.nn.Embedding.from_pretrained(torch.tensor(case["weight"]), freeze=False, sparse=sparse, **opts)
    out = emb(torch.tensor(case["ids"]))
    out.backward(torch.tensor(case["upstream"]))
    grad = emb.weight.grad
    if grad is not None and grad.is_sparse:
        grad = grad.to_dense()
    return out.detach().numpy(), emb.weight.detach().numpy(), None if grad is None else grad.numpy()


@settings(max_examples=150, deadline=None)
@given(embedding_cases())
def test_embedding_matches_torch_forward_renorm_and_gradients(case):
    tol = TOL[case["dtype"]]
    out, weight, grad = run_ours(case)
    # torch refuses sparse + scale_grad_by_freq (pytorch issue 189720) and fails on a
    # sparse 0-d lookup with padding_idx: there its dense gradient, the same matrix, is the reference.
    torch_sparse = case["sparse"] and not case["scale_grad_by_freq"] and case["ids"].ndim > 0
    t_out, t_weight, t_grad = run_torch(case, sparse=torch_sparse)
    assert out.shape == case["ids"].shape + (case["weight"].shape[1],)
    assert out.dtype == case["dtype"]
    np.testing.assert_allclose(out, t_out, rtol=0, atol=tol)
    np.testing.assert_allclose(weight, t_weight, rtol=0, atol=tol)
    if case["ids"].size == 0:
        assert grad is None or not np.any(grad)
        return
    np.testing.assert_allclose(grad, t_grad, rtol=0, atol=tol)


def test_sparse_grad_with_scale_grad_by_freq_equals_brute_force():
    ids = np.array([[3, 1, 3], [3, 0, 1]])
    w = np.random.default_rng(0).standard_normal((5, 4))
    up = np.random.default_rng(1).standard_normal((2, 3, 4))
    emb = Embedding.from_pretrained(w, freeze=False, sparse=True, scale_grad_by_freq=True)
    emb(ids).backward(up)
    expected = np.zeros_like(w)
    counts = np.bincount(ids.ravel(), minlength=5)
    for pos in np.ndindex(ids.shape):
        expected[ids[pos]] += up[pos] / counts[ids[pos]]
    g = emb.weight.grad
    assert list(g.indices) == [0, 1, 3]
    np.testing.assert_allclose(g.to_dense(), expected, atol=1e-12)


def test_sparse_grad_accumulates_coalesced_over_backward_calls():
    emb = Embedding(6, 2, sparse=True, seed=0)
    emb([4, 1, 4]).sum().backward()
    emb([[1, 5]]).sum().backward()
    g = emb.weight.grad
    assert isinstance(g, RowSparseGrad)
    np.testing.assert_array_equal(g.indices, [1, 4, 5])
    np.testing.assert_array_equal(g.values, [[2, 2], [2, 2], [1, 1]])


def test_padding_row_is_zero_at_init_and_never_gets_gradient():
    emb = Embedding(7, 3, padding_idx=-2, seed=0)
    assert emb.padding_idx == 5
    np.testing.assert_array_equal(emb.weight.data[5], 0)
    assert np.all(emb.weight.data[[0, 1, 2, 3, 4, 6]] != 0)
    emb([5, 5, 2]).sum().backward()
    np.testing.assert_array_equal(emb.weight.grad[5], 0)
    np.testing.assert_array_equal(emb.weight.grad[2], 1)


def test_from_pretrained_keeps_the_given_padding_row():
    w = np.ones((4, 2))
    emb = Embedding.from_pretrained(w, padding_idx=1)
    np.testing.assert_array_equal(emb.weight.data[1], 1)
    assert emb.weight.requires_grad is False
    assert emb.weight.dtype == np.float64


@pytest.mark.parametrize("ids", [3, [], [[]], np.zeros((2, 0, 3), dtype=np.int32), [[1, 2], [3, 0]]])
def test_any_input_shape_gives_ids_shape_plus_dim(ids):
    emb = Embedding(5, 4, seed=0)
    out = emb(ids)
    expected = np.asarray(ids).shape + (4,)
    assert out.shape == expected
    np.testing.assert_array_equal(out.data, emb.weight.data[np.asarray(ids, dtype=np.int64)])


def test_tensor_ndarray_and_list_inputs_agree():
    emb = Embedding(9, 2, seed=3)
    ids = np.array([[8, 0], [4, 4]], dtype=np.uint8)
    a = emb(ids).data
    np.testing.assert_array_equal(a, emb(ids.tolist()).data)
    np.testing.assert_array_equal(a, emb(te.Tensor(ids)).data)


def test_forward_into_preallocated_out():
    emb = Embedding(9, 3, seed=1)
    out = np.empty((2, 3), dtype=np.float32)
    res = emb([2, 7], out=out)
    assert res.data is out
    np.testing.assert_array_equal(out, emb.weight.data[[2, 7]])


def test_default_init_is_standard_normal_and_seeded():
    w = Embedding(400, 50, seed=7).weight.data
    assert abs(w.mean()) < 0.01 and abs(w.std() - 1) < 0.01
    np.testing.assert_array_equal(w, Embedding(400, 50, seed=7).weight.data)
    assert not np.array_equal(w, Embedding(400, 50, seed=8).weight.data)


def test_named_initializers():
    w = Embedding(300, 40, init=init.normal(std=0.02), seed=0).weight.data
    assert abs(w.std() - 0.02) < 0.001
    u = Embedding(300, 40, init="uniform", seed=0).weight.data
    assert u.min() >= 0 and u.max() < 1 and abs(u.mean() - 0.5) < 0.01
    x = Embedding(300, 40, init="xavier_uniform", seed=0).weight.data
    bound = np.sqrt(6 / (300 + 40))
    assert np.abs(x).max() <= bound and np.abs(x).max() > 0.95 * bound
    with pytest.raises(ValueError, match="bogus"):
        Embedding(3, 2, init="bogus")


def test_float64_table_gives_float64_rows_and_grads():
    emb = Embedding(5, 3, dtype=np.float64, seed=0)
    out = emb([1, 1])
    assert out.dtype == np.float64
    out.sum().backward()
    assert emb.weight.grad.dtype == np.float64


@pytest.mark.parametrize("sparse", [False, True])
def test_embedding_gradient_matches_finite_differences(sparse):
    # padding_idx and scale_grad_by_freq change the gradient on purpose (it is no
    # longer the derivative), so they are checked against torch and brute force above.
    w = te.Tensor(np.random.default_rng(0).standard_normal((6, 3)), requires_grad=True, dtype=np.float64)
    ids = np.array([[0, 5, 5], [2, 0, 5]])
    te.gradcheck(lambda w: embedding(ids, w, sparse=sparse), [w])


def test_repr_shows_configuration():
    text = repr(Embedding(10, 3, padding_idx=0, max_norm=1.0, sparse=True))
    assert text == "Embedding(10, 3, padding_idx=0, max_norm=1.0, sparse=True)"


# -- bad input: a clear error, and nothing changes ---------------------------------------------
def _table(**kwargs):
    return Embedding.from_pretrained(np.random.default_rng(0).standard_normal((5, 3)) * 10,
                                     freeze=False, **kwargs)


@pytest.mark.parametrize("ids, error, message", [
    ([0, 7, 1], IndexError, r"id 7 at position \(1,\)"),
    ([[0, 1], [-1, 2]], IndexError, r"id -1 at position \(1, 0\)"),
    ([0.0, 1.0], TypeError, "float64"),
    ([True, False], TypeError, "bool"),
    (np.array(["a"], dtype=object), TypeError, "object"),
])
def test_bad_ids_raise_and_leave_weight_untouched(ids, error, message):
    emb = _table(max_norm=1.0)
    before = emb.weight.data.copy()
    with pytest.raises(error, match=message):
        emb(ids)
    np.testing.assert_array_equal(emb.weight.data, before)
    assert emb.weight.grad is None


@pytest.mark.parametrize("kwargs, message", [
    (dict(padding_idx=5), "padding_idx 5"),
    (dict(padding_idx=-6), "padding_idx -6"),
    (dict(max_norm=0.0), "max_norm must be > 0, got 0.0"),
    (dict(max_norm=-1.0), "max_norm must be > 0, got -1.0"),
    (dict(norm_type=0), "norm_type"),
])
def test_bad_options_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Embedding(5, 3, **kwargs)


@pytest.mark.parametrize("n, d", [(-1, 2), (2.5, 2), (3, -1), (True, 2)])
def test_bad_sizes_raise(n, d):
    # Zero rows or zero width are tables, as in torch (tests/test_misuse.py); negatives are not.
    with pytest.raises(ValueError, match="must be an integer >= 0"):
        Embedding(n, d)


def test_from_pretrained_rejects_bad_weights():
    with pytest.raises(ValueError, match=r"2-D.*\(4,\)"):
        Embedding.from_pretrained(np.ones(4))
    bad = np.ones((3, 2))
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match="row 2, column 1"):
        Embedding.from_pretrained(bad)
    bad[2, 1] = np.inf
    with pytest.raises(ValueError, match="inf"):
        Embedding.from_pretrained(bad)
    with pytest.raises(TypeError, match="floating"):
        Embedding.from_pretrained(np.ones((3, 2), dtype=np.int64))


def test_load_state_dict_round_trip_and_shape_check():
    a, b = Embedding(6, 2, seed=0), Embedding(6, 2, seed=1)
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    with pytest.raises(ValueError, match=r"\(5, 2\)"):
        b.load_state_dict({"weight": np.zeros((5, 2), np.float32)})
    np.testing.assert_array_equal(a.weight.data, b.weight.data)


def test_changing_the_callers_ids_after_forward_does_not_move_the_gradient():
    emb = Embedding(6, 2, seed=0)
    ids = np.array([1, 2])
    out = emb(ids)
    ids[:] = [4, 5]
    out.sum().backward()
    np.testing.assert_array_equal(np.flatnonzero(emb.weight.grad.any(axis=1)), [1, 2])


def test_bad_out_raises_before_max_norm_renorm_changes_the_weight():
    emb = _table(max_norm=0.5)
    before = emb.weight.data.copy()
    with pytest.raises(ValueError, match=r"out must be an array of shape \(2, 3\)"):
        emb([1, 2], out=np.empty((3, 3), np.float32))
    np.testing.assert_array_equal(emb.weight.data, before)


def test_module_zero_grad_keeps_a_sparse_grad_sparse_for_sparse_adam():
    emb = Embedding(5, 2, sparse=True, seed=0)
    opt = te.optim.SparseAdam(emb.parameters())
    emb([1]).sum().backward()
    emb.zero_grad(set_to_none=False)
    assert isinstance(emb.weight.grad, RowSparseGrad) and emb.weight.grad.nnz_rows == 0
    opt.step()  # accepted: still row-sparse
