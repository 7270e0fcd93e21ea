"""Misuse that PyTorch refuses is refused here too, and a failing call changes nothing.

Each case is held against torch 2.13 doing the same thing: where torch raises, we
raise; where torch gives a gradient, we give the same one.
"""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyembed import Tensor, no_grad
from tinyembed.nn import Embedding, EmbeddingBag, Linear
from tinyembed.optim import SGD, Adam, AdamW, RowWiseAdagrad, SparseAdam

INPLACE = "modified by an inplace operation"


def as_torch(x, requires_grad=False):
    return torch.tensor(np.asarray(x.data if isinstance(x, Tensor) else x), requires_grad=requires_grad)


# -- in-place changes to tensors a backward needs ----------------------------------------------
def test_attend_then_max_norm_renorm_then_backward_raises_as_torch_does():
    emb = Embedding(10, 4, max_norm=1.0, seed=0)  # N(0, 1) rows of 4: norms near 2, so renorm changes them
    h = Tensor(np.random.default_rng(1).standard_normal((2, 4)).astype(np.float32), requires_grad=True)
    scores = emb.attend(h)  # saves the weight: d scores / d h = weight
    emb([1, 2])             # renormalises rows 1 and 2 of the weight in place
    with pytest.raises(RuntimeError, match=INPLACE) as info:
        scores.sum().backward()
    assert "(10, 4)" in str(info.value) and "max_norm" in str(info.value)
    assert h.grad is None  # nothing was accumulated before the error

    t_emb = torch.nn.Embedding(10, 4, max_norm=1.0)
    with torch.no_grad():
        t_emb.weight.copy_(torch.from_numpy(np.random.default_rng(0).standard_normal((10, 4)).astype(np.float32)))
    t_scores = as_torch(h, True) @ t_emb.weight.T
    t_emb(torch.tensor([1, 2]))
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        t_scores.sum().backward()


def _docstring_example(emb_weight, w, clone: bool, lib):
    """PyTorch's nn.Embedding docstring example of max_norm with a differentiable use of the weight."""
    if lib == "torch":
        embedding = torch.nn.Embedding(3, 5, max_norm=1.0, dtype=torch.float64)
        with torch.no_grad():
            embedding.weight.copy_(torch.from_numpy(emb_weight))
        W = torch.tensor(w, requires_grad=True)
        idx = torch.tensor([1, 2])
        a = (embedding.weight.clone() if clone else embedding.weight) @ W.t()
        b = embedding(idx) @ W.t()  # modifies weight in place
        out = a.unsqueeze(0) + b.unsqueeze(1)
        out.sigmoid().prod().backward()
        return W.grad.numpy(), embedding.weight.grad.numpy()
    embedding = Embedding.from_pretrained(emb_weight.copy(), freeze=False, max_norm=1.0)
    W = Tensor(w, requires_grad=True)
    idx = np.array([1, 2])
    a = (embedding.weight.clone() if clone else embedding.weight) @ W.T
    b = embedding(idx) @ W.T
    out = a.unsqueeze(0) + b.unsqueeze(1)
    out.sigmoid().prod().backward()
    return W.grad, embedding.weight.grad


def test_the_torch_docstring_example_gives_torchs_gradients_with_clone_and_raises_without():
    rng = np.random.default_rng(2)
    weight = rng.standard_normal((3, 5)).astype(np.float64)
    w = rng.standard_normal((7, 5)).astype(np.float64)
    ours, theirs = (_docstring_example(weight, w, True, lib) for lib in ("tinyembed", "torch"))
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-10, atol=1e-14)
    for lib in ("tinyembed", "torch"):
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            _docstring_example(weight, w, False, lib)


def test_an_optimizer_step_before_backward_invalidates_a_matmul_but_not_a_lookup():
    rng = np.random.default_rng(3)
    lin = Linear(4, 3, seed=0)
    x = Tensor(rng.standard_normal((2, 4)).astype(np.float32), requires_grad=True)
    y = lin(x)  # saves lin.weight for x's gradient
    lin.weight.grad = np.ones_like(lin.weight.data)
    SGD(lin.parameters(), lr=0.1).step()
    with pytest.raises(RuntimeError, match=INPLACE):
        y.sum().backward()
    # A lookup's backward needs only the ids, as in torch: a step in between is fine.
    emb = Embedding(6, 3, seed=0)
    rows = emb([1, 2])
    emb.weight.grad = np.ones_like(emb.weight.data)
    SGD(emb.parameters(), lr=0.1).step()
    emb.weight.grad = None
    rows.sum().backward()
    np.testing.assert_array_equal(emb.weight.grad[[1, 2]], 1.0)


@pytest.mark.parametrize("make, sparse", [(SGD, False), (SGD, True), (Adam, False), (AdamW, False),
                                          (SparseAdam, True), (RowWiseAdagrad, True)],
                         ids=["SGD", "SGD-sparse", "Adam", "AdamW", "SparseAdam", "RowWiseAdagrad"])
def test_every_optimizer_step_invalidates_a_graph_that_saved_the_weight(make, sparse):
    emb = Embedding(6, 3, sparse=sparse, seed=0)
    h = Tensor(np.ones((1, 3), np.float32), requires_grad=True)
    scores = emb.attend(h)  # saves the weight for h's gradient
    emb([1, 2]).sum().backward()
    make(emb.parameters(), lr=0.1).step()
    with pytest.raises(RuntimeError, match=INPLACE):
        scores.sum().backward()


def test_setitem_under_no_grad_bumps_the_version_like_an_inplace_op():
    emb = Embedding(3, 3, padding_idx=0, seed=0)
    h = Tensor(np.ones((1, 3), np.float32), requires_grad=True)
    scores = emb.attend(h)
    with no_grad():
        emb.weight[0] = np.ones(3, np.float32)  # torch's docstring: change the pad vector
    np.testing.assert_array_equal(emb.weight.data[0], 1.0)
    with pytest.raises(RuntimeError, match=INPLACE):
        scores.sum().backward()


def test_setitem_on_a_leaf_that_requires_grad_outside_no_grad_is_refused():
    emb = Embedding(3, 3, seed=0)
    before = emb.weight.data.copy()
    with pytest.raises(RuntimeError, match="leaf .* requires grad .* in-place"):
        emb.weight[0] = np.ones(3, np.float32)
    np.testing.assert_array_equal(emb.weight.data, before)


# -- backward twice ------------------------------------------------------------------------------
def test_a_second_backward_through_a_freed_graph_raises_as_torch_does():
    x = Tensor(np.array([1.0, 2.0], np.float32), requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time.*retain_graph=True"):
        y.backward()
    np.testing.assert_array_equal(x.grad, [2.0, 4.0])  # not doubled by the refused call

    tx = torch.tensor([1.0, 2.0], requires_grad=True)
    ty = (tx * tx).sum()
    ty.backward()
    with pytest.raises(RuntimeError, match="second time"):
        ty.backward()


def test_retain_graph_lets_backward_run_again_and_gradients_add_up():
    x = Tensor(np.array([1.0, 2.0], np.float32), requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    tx = torch.tensor([1.0, 2.0], requires_grad=True)
    ty = (tx * tx).sum()
    ty.backward(retain_graph=True)
    ty.backward()
    np.testing.assert_array_equal(x.grad, tx.grad.numpy())


# -- zero-width and empty tables ---------------------------------------------------------------------
@pytest.mark.parametrize("num, dim", [(10, 0), (0, 0), (0, 3)])
@pytest.mark.parametrize("sparse", [False, True])
def test_zero_width_and_empty_tables_work_as_in_torch(num, dim, sparse):
    emb, t_emb = Embedding(num, dim, sparse=sparse, seed=0), torch.nn.Embedding(num, dim, sparse=sparse)
    assert emb.weight.shape == tuple(t_emb.weight.shape) == (num, dim)
    ids = [[1, 2], [3, 1]] if num else np.zeros((2, 0), np.int64)
    out, t_out = emb(ids), t_emb(torch.tensor(np.asarray(ids)))
    assert out.shape == tuple(t_out.shape)
    out.sum().backward()
    t_out.sum().backward()
    grad = emb.weight.grad
    dense = grad.to_dense() if sparse else grad
    t_grad = t_emb.weight.grad.to_dense() if sparse else t_emb.weight.grad
    np.testing.assert_array_equal(dense, t_grad.numpy())
    if sparse:
        assert grad.values.shape[1] == dim


def test_zero_width_bags_pool_to_empty_rows():
    bag = EmbeddingBag(5, 0, mode="sum", seed=0)
    assert bag([1, 2, 3], offsets=[0, 2]).shape == (2, 0)


# -- torch users' conveniences ---------------------------------------------------------------------
def test_clone_is_a_differentiable_copy_and_detach_cuts_the_graph():
    x = Tensor(np.array([1.0, 2.0], np.float32), requires_grad=True)
    c = x.clone()
    assert c.data is not x.data and c.requires_grad
    (c * 3).sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 3.0])
    d = x.detach()
    assert not d.requires_grad and d.is_leaf


def test_module_requires_grad_freezes_and_unfreezes_every_parameter():
    lin = Linear(3, 2, seed=0)
    assert lin.requires_grad_(False) is lin
    assert [p.requires_grad for p in lin.parameters()] == [False, False]
    lin.requires_grad_()
    assert all(p.requires_grad for p in lin.parameters())


# -- one rule for trained weights: finite, from from_pretrained or load_state_dict -----------------
def test_load_state_dict_refuses_non_finite_values_as_from_pretrained_does_and_changes_nothing():
    weight = np.ones((3, 2), np.float32)
    weight[1, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite value nan at row 1, column 0"):
        Embedding.from_pretrained(weight)
    emb = Embedding(3, 2, seed=0)
    before = emb.weight.data.copy()
    with pytest.raises(ValueError, match="weight.*non-finite value nan at row 1, column 0"):
        emb.load_state_dict({"weight": weight})
    np.testing.assert_array_equal(emb.weight.data, before)


def test_from_pretrained_on_a_list_gives_float32_as_its_docstring_says():
    emb = Embedding.from_pretrained([[1.0, 2.0], [3.0, 4.0]])
    assert emb.weight.dtype == np.float32
    assert torch.nn.Embedding.from_pretrained(torch.tensor([[1.0, 2.0], [3.0, 4.0]])).weight.dtype == torch.float32


def test_an_id_beyond_int64_is_named_as_itself():
    emb = Embedding(10, 2, seed=0)
    with pytest.raises(IndexError, match=f"id {2**63 + 1} at position \\(1,\\)"):
        emb(np.array([3, 2**63 + 1], dtype=np.uint64))


# -- a failing call leaves weights and optimizer state byte-identical ----------------------------------
def _snapshot(module, optimizer):
    weights = {k: v.tobytes() for k, v in module.state_dict().items()}
    state = optimizer.state_dict()
    return weights, repr(state["param_groups"]), {
        k: {name: np.asarray(v).tobytes() for name, v in s.items()} for k, s in state["state"].items()}


BAD_CALLS = {
    "id out of range": lambda m: m(np.array([[1, 2], [3, 99]])),
    "negative id": lambda m: m(np.array([1, -1])),
    "float ids": lambda m: m(np.array([1.0, 2.0])),
    "uint64 beyond int64": lambda m: m(np.array([1, 2**63 + 5], np.uint64)),
    "out of the wrong shape": lambda m: m(np.array([1, 2]), out=np.empty((3, 4), np.float32)),
    "bag offsets that decrease": lambda m: m.bag(np.array([1, 2, 3]), np.array([0, 2, 1])),
    "bag with a bad id": lambda m: m.bag(np.array([1, 20, 3]), np.array([0, 1])),
    "bag weights of the wrong length": lambda m: m.bag(np.array([1, 2, 3]), np.array([0, 1]),
                                                      per_sample_weights=np.ones(2)),
    "attend of the wrong width": lambda m: m.attend(np.ones((2, 3), np.float32)),
}


@settings(max_examples=40, deadline=None)
@given(bad=st.sampled_from(sorted(BAD_CALLS)), optimizer=st.sampled_from(["sgd", "adam", "sparse_adam", "adagrad"]),
       steps=st.integers(0, 2), max_norm=st.sampled_from([None, 0.5]))
def test_any_failing_call_leaves_weights_and_optimizer_state_byte_identical(bad, optimizer, steps, max_norm):
    sparse = optimizer in ("sparse_adam", "adagrad")
    emb = Embedding(12, 4, max_norm=max_norm, sparse=sparse, seed=0)
    opt = {"sgd": lambda p: SGD(p, lr=0.1, momentum=0.9), "adam": lambda p: Adam(p, lr=0.1),
           "sparse_adam": lambda p: SparseAdam(p, lr=0.1),
           "adagrad": lambda p: RowWiseAdagrad(p, lr=0.1)}[optimizer](list(emb.parameters()))
    for k in range(steps):  # some optimizer state first
        opt.zero_grad()
        emb(np.array([k, 3, 5])).sum().backward()
        opt.step()
    before = _snapshot(emb, opt)
    with pytest.raises((ValueError, IndexError, TypeError)):
        BAD_CALLS[bad](emb)
    assert _snapshot(emb, opt) == before
