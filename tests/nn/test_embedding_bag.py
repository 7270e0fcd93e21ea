"""EmbeddingBag: parity with torch.nn.EmbeddingBag 2.13, a brute-force reference, and errors.

Where torch is wrong or refuses, the brute-force reference below (a loop over bags and
entries, written from the definition) is the oracle instead:

* dense CPU backward with ``scale_grad_by_freq`` and repeated ids (pytorch issue 190063);
* ``scale_grad_by_freq`` with ``sparse=True`` or with ``mode='max'`` (torch raises);
* ids past ``offsets[-1]`` with ``include_last_offset=True``. We leave them out of
  everything (pooling, renorm, gradients). torch 2.13 on CPU is not consistent there:
  float32 'sum'/'mean' ignore them, float64 and 'max' pool them into the last bag, the
  renorm touches their rows, the dense backward writes uninitialized memory into their
  rows and per-sample-weight grads, the sparse backward raises, and with zero bags the
  backward segfaults. The torch oracle for such inputs is torch on the ids that belong
  to bags (``ids[:offsets[-1]]``).
"""

from collections import Counter

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from tinyembed import Tensor
from tinyembed.nn import EmbeddingBag
from tinyembed.nn.functional import embedding_bag
from tinyembed.sparse import RowSparseGrad

torch = pytest.importorskip("torch")

TOL = {np.float32: 1e-5, np.float64: 1e-10}
MODES = ("sum", "mean", "max")


# -- cases -----------------------------------------------------------------------------------
def make_case(rng, num, dim, length, num_bags, batch, width):
    """One random EmbeddingBag call: table, ids, bags and every option, drawn from ``rng``.

    Sizes are given (hypothesis shrinks them well); options are drawn from ``rng`` so that
    each combination is as likely (hypothesis repeats its seeds, which skews them).
    """
    def coin():
        return bool(rng.integers(2))

    dtype = [np.float32, np.float64][rng.integers(2)]
    mode = MODES[rng.integers(3)]
    padding_idx = int(rng.integers(-num, num)) if coin() else None
    max_norm = float(rng.uniform(0.1, 3.0)) if coin() else None
    if mode == "max" and max_norm is not None:
        # With one column, every renormed row is +-max_norm: its max is a tie that only
        # float rounding breaks. Ties have their own test.
        dim = max(dim, 2)
    # Ids often come from a small pool (plus the padding row), so repeats and padding are common.
    pool = rng.integers(0, num, size=rng.integers(1, 7))
    if padding_idx is not None:
        pool = np.append(pool, padding_idx % num)
    def pick(shape):
        return rng.choice(pool, size=shape) if coin() else rng.integers(0, num, size=shape)

    include_last_offset = False
    offsets = None
    if coin():  # 1-D ids with offsets
        ids = pick(length)
        include_last_offset = coin()
        num_bags = max(num_bags, 0 if include_last_offset else 1)
        # Sorted cut points in [0, n]: equal neighbours are empty bags.
        cuts = np.sort(rng.integers(0, length + 1, size=num_bags + include_last_offset))
        if include_last_offset and coin():
            cuts[-1] = length  # no ids past offsets[-1] (with the other half, some are left out)
        cuts[0] = 0
        offsets = cuts
        end = int(offsets[-1]) if include_last_offset else length
    else:  # 2-D: fixed-size bags (torch fails on zero-width bags: width >= 1)
        ids = pick((batch, width))
        num_bags, end = batch, ids.size

    per_sample_weights = None
    if mode == "sum" and coin():
        per_sample_weights = rng.standard_normal(ids.shape).astype(dtype)
    return dict(
        dtype=dtype, mode=mode, weight=rng.standard_normal((num, dim)).astype(dtype), ids=ids,
        offsets=offsets, include_last_offset=include_last_offset, end=end,
        per_sample_weights=per_sample_weights, padding_idx=padding_idx,
        max_norm=max_norm,
        norm_type=[1.0, 2.0, 3.5][rng.integers(3)], scale_grad_by_freq=coin(),
        sparse=mode != "max" and coin(), use_module=coin(),
        upstream=rng.standard_normal((num_bags, dim)).astype(dtype),
    )


@st.composite
def bag_cases(draw):
    sizes = dict(num=draw(st.integers(1, 30)), dim=draw(st.integers(1, 8)), length=draw(st.integers(0, 40)),
                 num_bags=draw(st.integers(0, 8)), batch=draw(st.integers(0, 8)), width=draw(st.integers(1, 5)))
    return make_case(np.random.default_rng(draw(st.integers(0, 2**32 - 1))), **sizes)


def seeded_case(seed):
    """A case whose sizes, too, come from ``seed``: uniform coverage for the sweeps."""
    rng = np.random.default_rng(seed)
    return make_case(rng, num=int(rng.integers(1, 31)), dim=int(rng.integers(1, 9)), length=int(rng.integers(0, 41)),
                     num_bags=int(rng.integers(0, 9)), batch=int(rng.integers(0, 9)), width=int(rng.integers(1, 6)))


def features(case):
    """The options a case exercises, to show (and check) what a run covered."""
    return {
        f"mode={case['mode']}", f"dtype={np.dtype(case['dtype']).name}",
        "1-D+offsets" if case["offsets"] is not None else "2-D",
        *(["include_last_offset"] if case["include_last_offset"] else []),
        *(["ids past offsets[-1]"] if case["end"] < case["ids"].size else []),
        *(["empty bag"] if case["upstream"].shape[0] > 0 and has_empty_bag(case) else []),
        *(["per_sample_weights"] if case["per_sample_weights"] is not None else []),
        *([f"padding_idx{'<0' if case['padding_idx'] < 0 else '>=0'}"] if case["padding_idx"] is not None else []),
        *([f"max_norm,p={case['norm_type']}"] if case["max_norm"] is not None else []),
        *(["scale_grad_by_freq"] if case["scale_grad_by_freq"] else []),
        *(["scale_grad_by_freq+repeats"] if case["scale_grad_by_freq"] and used_ids_repeat(case) else []),
        *(["sparse"] if case["sparse"] else []),
        "module" if case["use_module"] else "functional",
    }


def has_empty_bag(case):
    bounds = bag_bounds(case)
    return any(a == b for a, b in zip(bounds[:-1], bounds[1:], strict=True))


def bag_bounds(case):
    """(B + 1,) bag boundaries into the flat ids, written independently of the library."""
    if case["offsets"] is None:
        batch, length = case["ids"].shape
        return [b * length for b in range(batch + 1)]
    offsets = [int(o) for o in case["offsets"]]
    return offsets if case["include_last_offset"] else offsets + [len(case["ids"])]


# -- brute-force reference -----------------------------------------------------------------------
def reference_renorm(weight, ids, max_norm, norm_type):
    """torch.embedding_renorm_ from its definition: every id of the input, once each."""
    weight = weight.astype(np.float64)
    if max_norm is not None:
        for i in set(int(i) for i in np.ravel(ids)):
            norm = np.sum(np.abs(weight[i]) ** norm_type) ** (1.0 / norm_type)
            if norm > max_norm:
                weight[i] *= max_norm / (norm + 1e-7)
    return weight


def reference_bag(weight, case):
    """(out (B, D), weight grad (V, D), per-sample-weight grad (n,)) by loops over bags and entries.

    ``weight`` is the (already renormed) table. The gradients are for the upstream
    gradient ``case['upstream']``. Padding entries are not in their bag; with
    scale_grad_by_freq each entry's contribution is divided by how often its id
    occurs in the entries that belong to a bag (padding excluded).
    """
    weight = weight.astype(np.float64)
    flat = [int(i) for i in np.ravel(case["ids"])]
    psw = None if case["per_sample_weights"] is None else np.ravel(case["per_sample_weights"]).astype(np.float64)
    upstream = case["upstream"].astype(np.float64)
    padding = None if case["padding_idx"] is None else case["padding_idx"] % len(weight)
    bounds = bag_bounds(case)
    dim = weight.shape[1]
    out = np.zeros((len(bounds) - 1, dim))
    grad_w = np.zeros_like(weight)
    grad_psw = np.zeros(len(flat))
    count = Counter(i for i in flat[: bounds[-1]] if i != padding)
    freq = (lambda i: 1.0 / count[i]) if case["scale_grad_by_freq"] else (lambda i: 1.0)
    for b in range(len(bounds) - 1):
        entries = [j for j in range(bounds[b], bounds[b + 1]) if flat[j] != padding]
        if not entries:
            continue  # empty bag: zeros, and no gradient
        if case["mode"] == "max":
            for d in range(dim):
                best = entries[0]
                for j in entries[1:]:
                    if weight[flat[j], d] > weight[flat[best], d]:  # strict: the first maximum wins
                        best = j
                out[b, d] = weight[flat[best], d]
                grad_w[flat[best], d] += upstream[b, d] * freq(flat[best])
            continue
        for j in entries:
            scale = 1.0 / len(entries) if case["mode"] == "mean" else (1.0 if psw is None else psw[j])
            out[b] += scale * weight[flat[j]]
            grad_w[flat[j]] += upstream[b] * scale * freq(flat[j])
            if psw is not None:
                grad_psw[j] = weight[flat[j]] @ upstream[b]
    return out, grad_w, grad_psw.reshape(case["ids"].shape)


# -- runners --------------------------------------------------------------------------------------
def run_ours(case, sparse=None):
    """(out, weight after the call, dense weight grad, per-sample-weight grad)."""
    sparse = case["sparse"] if sparse is None else sparse
    opts = dict(max_norm=case["max_norm"], norm_type=case["norm_type"], mode=case["mode"], sparse=sparse,
                scale_grad_by_freq=case["scale_grad_by_freq"], include_last_offset=case["include_last_offset"])
    psw = None
    if case["per_sample_weights"] is not None:
        psw = Tensor(case["per_sample_weights"].copy(), requires_grad=True)
    if case["use_module"]:
        bag = EmbeddingBag.from_pretrained(case["weight"].copy(), freeze=False,
                                           padding_idx=case["padding_idx"], **opts)
        weight = bag.weight
        out = bag(case["ids"], offsets=case["offsets"], per_sample_weights=psw)
    else:
        weight = Tensor(case["weight"].copy(), requires_grad=True)
        out = embedding_bag(case["ids"], weight, case["offsets"], per_sample_weights=psw,
                            padding_idx=case["padding_idx"], **opts)
    out.backward(case["upstream"])
    grad = weight.grad
    if sparse:
        assert isinstance(grad, RowSparseGrad)
    if isinstance(grad, RowSparseGrad):
        grad = grad.to_dense()
    grad = np.zeros_like(weight.data) if grad is None else grad
    psw_grad = None if psw is None else psw.grad
    return out.data, weight.data, grad, psw_grad


def run_torch(case, sparse=False, scale_grad_by_freq=False, backward=True):
    """torch's (out, weight after the call, dense weight grad, per-sample-weight grad)."""
    weight = torch.tensor(case["weight"].copy(), requires_grad=True)
    psw = None
    if case["per_sample_weights"] is not None:
        psw = torch.tensor(case["per_sample_weights"].copy(), requires_grad=True)
    offsets = None if case["offsets"] is None else torch.tensor(case["offsets"])
    out = torch.nn.functional.embedding_bag(
        torch.tensor(case["ids"]), weight, offsets, max_norm=case["max_norm"], norm_type=case["norm_type"],
        scale_grad_by_freq=scale_grad_by_freq, mode=case["mode"], sparse=sparse, per_sample_weights=psw,
        include_last_offset=case["include_last_offset"], padding_idx=case["padding_idx"])
    if not backward:
        return out.detach().numpy(), weight.detach().numpy(), None, None
    out.backward(torch.tensor(case["upstream"]))
    grad = weight.grad
    grad = torch.zeros_like(weight) if grad is None else grad.to_dense() if grad.is_sparse else grad
    psw_grad = None if psw is None else psw.grad.numpy()
    return out.detach().numpy(), weight.detach().numpy(), grad.numpy(), psw_grad


def assert_close(actual, expected, tol, what):
    """Max abs difference <= tol, times the largest magnitude compared when that is over 1.

    Float error is relative: a float32 bag of 30 renormed rows summing to 20 differs from
    torch's by a few ulps of 20, more than 1e-5, though both are right to float32 precision.
    """
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    diff = np.max(np.abs(actual.astype(np.float64) - expected), initial=0.0)
    bound = tol * max(1.0, np.max(np.abs(expected), initial=0.0))
    assert diff <= bound, f"{what}: max abs difference {diff} > {bound}"


def used_ids_repeat(case, count_padding=False):
    """Whether some id occurs twice among the entries that belong to bags."""
    flat = np.ravel(case["ids"])[: case["end"]]
    if case["padding_idx"] is not None and not count_padding:
        flat = flat[flat != case["padding_idx"] % len(case["weight"])]
    return len(np.unique(flat)) < len(flat)


# -- parity ---------------------------------------------------------------------------------------
def bags_only(case):
    """The case without the ids past offsets[-1]: what torch is asked (see the module docstring)."""
    if case["ids"].ndim != 1:
        return case
    end, psw = case["end"], case["per_sample_weights"]
    return dict(case, ids=case["ids"][:end], per_sample_weights=None if psw is None else psw[:end])


def check_against_torch(case):
    """Output, renormed weight and gradients against torch, wherever torch is right."""
    tol = TOL[case["dtype"]]
    out, weight, grad, psw_grad = run_ours(case)
    torch_case = bags_only(case)
    # scale_grad_by_freq only changes the backward (and torch refuses it with mode='max').
    t_out, t_weight, t_grad, t_psw_grad = run_torch(torch_case)
    assert out.dtype == case["dtype"] and weight.dtype == case["dtype"]
    assert_close(out, t_out, tol, "output")
    assert_close(weight, t_weight, tol, "weight after max_norm renorm")

    if case["scale_grad_by_freq"]:
        # torch's dense backward is wrong with repeated ids, the padding id included
        # (issue 190063); where no id repeats it is right, and both must agree.
        if case["mode"] != "max" and not used_ids_repeat(case, count_padding=True):
            _, _, t_grad, _ = run_torch(torch_case, scale_grad_by_freq=True)
            assert_close(grad, t_grad, tol, "weight grad (scale_grad_by_freq, no repeats)")
    else:
        assert_close(grad, t_grad, tol, "weight grad")
        if case["sparse"]:
            _, _, t_sparse_grad, _ = run_torch(torch_case, sparse=True)
            assert_close(grad, t_sparse_grad, tol, "weight grad vs torch sparse")
    if psw_grad is not None:
        flat_psw_grad = psw_grad.reshape(-1)
        assert_close(flat_psw_grad[: case["end"]], t_psw_grad.reshape(-1), tol, "per_sample_weights grad")
        assert not np.any(flat_psw_grad[case["end"]:]), "ids past offsets[-1] get no per_sample_weights grad"


def check_against_reference(case):
    """Output, renormed weight and gradients against the loops: every case, torch's bugs included."""
    tol = TOL[case["dtype"]]
    out, weight, grad, psw_grad = run_ours(case)
    renormed = reference_renorm(case["weight"], case["ids"].reshape(-1)[: case["end"]],
                                case["max_norm"], case["norm_type"])
    r_out, r_grad, r_psw_grad = reference_bag(renormed, case)
    assert_close(weight, renormed, tol, "weight after max_norm renorm")
    assert_close(out, r_out, tol, "output")
    assert_close(grad, r_grad, tol, "weight grad")
    if psw_grad is not None:
        assert_close(psw_grad, r_psw_grad, tol, "per_sample_weights grad")


SWEEP_SEEDS = range(300)
EVERY_FEATURE = {
    "mode=sum", "mode=mean", "mode=max", "dtype=float32", "dtype=float64", "1-D+offsets", "2-D",
    "include_last_offset", "ids past offsets[-1]", "empty bag", "per_sample_weights", "padding_idx<0",
    "padding_idx>=0", "max_norm,p=1.0", "max_norm,p=2.0", "max_norm,p=3.5", "scale_grad_by_freq",
    "scale_grad_by_freq+repeats", "sparse", "module", "functional",
}


@settings(max_examples=60, deadline=None)
@given(bag_cases())
def test_embedding_bag_matches_torch_forward_renorm_and_gradients(case):
    for feature in features(case):
        event(feature)
    check_against_torch(case)
    check_against_reference(case)


def test_embedding_bag_matches_torch_and_reference_on_seeded_sweep_covering_every_option():
    seen = set()
    for seed in SWEEP_SEEDS:
        case = seeded_case(seed)
        seen |= features(case)
        try:
            check_against_torch(case)
            check_against_reference(case)
        except AssertionError as error:
            raise AssertionError(f"seeded_case({seed}): {error}") from error
    assert EVERY_FEATURE <= seen, f"the sweep missed {EVERY_FEATURE - seen}"


@settings(max_examples=50, deadline=None)
@given(bag_cases())
def test_embedding_bag_matches_bruteforce_reference_in_every_mode(case):
    check_against_reference(case)


@settings(max_examples=40, deadline=None)
@given(bag_cases().filter(lambda c: c["mode"] != "max"))
def test_embedding_bag_sparse_grad_equals_dense_grad_including_scale_grad_by_freq(case):
    # torch refuses sparse + scale_grad_by_freq; we allow it, and it must be the dense gradient.
    case = dict(case, scale_grad_by_freq=True)
    _, _, dense, _ = run_ours(case, sparse=False)
    _, _, sparse, _ = run_ours(case, sparse=True)
    np.testing.assert_array_equal(sparse, dense)


def test_scale_grad_by_freq_divides_by_count_in_whole_input_where_torch_dense_is_wrong():
    # ids [1, 1 | 2, 1]: id 1 occurs three times in the input, id 2 once.
    weight = np.arange(12, dtype=np.float64).reshape(4, 3)
    for mode, expected_1, expected_2 in (("sum", 1.0, 1.0), ("mean", 0.5, 0.5)):
        w = Tensor(weight.copy(), requires_grad=True)
        embedding_bag([1, 1, 2, 1], w, [0, 2], mode=mode, scale_grad_by_freq=True).backward(np.ones((2, 3)))
        np.testing.assert_allclose(w.grad[1], expected_1)
        np.testing.assert_allclose(w.grad[2], expected_2)
        assert not w.grad[[0, 3]].any()


# -- max ties, empty bags -------------------------------------------------------------------------
@pytest.mark.parametrize("order", [[0, 1, 2], [1, 0, 2], [2, 1, 0]])
def test_max_mode_gives_tied_gradient_to_first_occurrence_as_torch(order):
    table = np.array([[1.0, 2.0], [1.0, 2.0], [0.0, 2.0]])  # column 0: rows 0, 1 tie; column 1: all tie
    w = Tensor(table.copy(), requires_grad=True)
    out = embedding_bag(np.array(order), w, [0], mode="max")
    out.backward(np.array([[3.0, 5.0]]))
    first_of_tie_0 = next(i for i in order if i in (0, 1))
    expected = np.zeros_like(table)
    expected[first_of_tie_0, 0] = 3.0
    expected[order[0], 1] = 5.0
    np.testing.assert_array_equal(out.data, [[1.0, 2.0]])
    np.testing.assert_array_equal(w.grad, expected)

    tw = torch.tensor(table.copy(), requires_grad=True)
    torch.nn.functional.embedding_bag(torch.tensor(order), tw, torch.tensor([0]), mode="max").backward(
        torch.tensor([[3.0, 5.0]], dtype=torch.float64))
    np.testing.assert_array_equal(w.grad, tw.grad.numpy())


@pytest.mark.parametrize("mode, sparse", [("sum", False), ("sum", True), ("mean", False), ("mean", True),
                                          ("max", False)])  # max mode has no sparse gradient
def test_empty_bags_give_zeros_and_no_gradient_in_every_mode(mode, sparse):
    table = np.random.default_rng(0).standard_normal((5, 3)) + 10.0  # no row is near zero
    w = Tensor(table.copy(), requires_grad=True)
    # Bags: [], [1, 2], [], [4 (padding)], [] — with include_last_offset the last offset closes bag 4.
    out = embedding_bag([1, 2, 4], w, [0, 0, 2, 2, 3, 3], mode=mode, sparse=sparse,
                        include_last_offset=True, padding_idx=4)
    assert out.shape == (5, 3)
    empty = [0, 2, 3, 4]
    np.testing.assert_array_equal(out.data[empty], 0.0)
    assert np.all(out.data[1] != 0)
    upstream = np.zeros((5, 3))
    upstream[empty] = 1.0  # gradient only on empty bags
    out.backward(upstream)
    grad = w.grad.to_dense() if isinstance(w.grad, RowSparseGrad) else w.grad
    np.testing.assert_array_equal(grad, 0.0)


def test_ids_past_last_offset_are_left_out_of_pooling_renorm_and_gradients():
    # offsets [0, 2, 3] with include_last_offset: bags [1, 2] and [3]; ids 4, 5 belong to no bag.
    # (torch 2.13 renorms rows 4 and 5 too, and pools them into the last bag in float64.)
    table = np.random.default_rng(2).standard_normal((6, 3)) * 5
    for mode in MODES:
        w = Tensor(table.copy(), requires_grad=True)
        psw = Tensor(np.ones(5), requires_grad=True) if mode == "sum" else None
        out = embedding_bag([1, 2, 3, 4, 5], w, [0, 2, 3], mode=mode, include_last_offset=True,
                            max_norm=1.0, per_sample_weights=psw)
        w_only = Tensor(table.copy(), requires_grad=True)
        expected = embedding_bag([1, 2, 3], w_only, [0, 2, 3], mode=mode, include_last_offset=True, max_norm=1.0,
                                 per_sample_weights=None if psw is None else np.ones(3))
        np.testing.assert_array_equal(out.data, expected.data)
        np.testing.assert_array_equal(w.data[[0, 4, 5]], table[[0, 4, 5]])  # not looked up: not renormed
        out.backward(np.ones((2, 3)))
        assert not w.grad[[0, 4, 5]].any()
        if psw is not None:
            assert not psw.grad[3:].any()


def test_two_dimensional_zero_width_input_gives_zero_bags():
    w = Tensor(np.ones((4, 2)), requires_grad=True)
    for mode in MODES:
        out = embedding_bag(np.zeros((3, 0), dtype=np.int64), w, mode=mode)
        np.testing.assert_array_equal(out.data, np.zeros((3, 2)))


def test_module_and_functional_agree_and_repr_shows_configuration():
    bag = EmbeddingBag(10, 3, mode="max", padding_idx=-1, include_last_offset=True, seed=0)
    assert "mode='max'" in repr(bag) and "include_last_offset=True" in repr(bag) and "padding_idx=9" in repr(bag)
    ids, offsets = [1, 9, 3, 4], [0, 2, 4]
    np.testing.assert_array_equal(
        bag(ids, offsets).data,
        embedding_bag(ids, bag.weight, offsets, mode="max", padding_idx=9, include_last_offset=True).data)


# -- errors: validation first, and the table untouched ----------------------------------------
@pytest.fixture
def big_table():
    """A table whose rows all exceed max_norm=0.5: a renorm before the error would change it."""
    data = np.random.default_rng(1).standard_normal((6, 4)) * 5
    return Tensor(data.copy(), requires_grad=True), data


ERROR_CASES = [
    # (id, input, kwargs, exception, pattern naming the bad value)
    ("offsets_start_past_0", [1, 2, 3], dict(offsets=[1, 2]), ValueError, r"offsets\[0\] must be 0.*got 1"),
    ("offsets_decrease", [1, 2, 3], dict(offsets=[0, 3, 2]), ValueError, r"offsets\[2\] = 2 < 3"),
    ("offsets_past_input", [1, 2, 3], dict(offsets=[0, 7]), ValueError, r"offset 7 runs past the input of 3"),
    ("last_offset_past_input", [1, 2, 3], dict(offsets=[0, 4], include_last_offset=True), ValueError, r"offset 4"),
    ("2d_with_offsets", [[1, 2], [3, 4]], dict(offsets=[0, 1]), ValueError, r"2-D input.*offsets must be None"),
    ("1d_without_offsets", [1, 2, 3], dict(), ValueError, r"1-D input needs offsets"),
    ("3d_input", np.ones((2, 2, 2), dtype=np.int64), dict(), ValueError, r"\(2, 2, 2\)"),
    ("psw_mean", [1, 2], dict(offsets=[0], mode="mean", per_sample_weights=np.ones(2)), ValueError, r"mode='mean'"),
    ("psw_max", [1, 2], dict(offsets=[0], mode="max", per_sample_weights=np.ones(2)), ValueError, r"mode='max'"),
    ("psw_shape", [1, 2], dict(offsets=[0], mode="sum", per_sample_weights=np.ones(3)), ValueError,
     r"per_sample_weights has shape \(3,\), input has \(2,\)"),
    ("id_too_large", [1, 6, 2], dict(offsets=[0]), IndexError, r"id 6 at position \(1,\)"),
    ("id_negative", [1, 2, -1], dict(offsets=[0]), IndexError, r"id -1 at position \(2,\)"),
    ("id_too_large_2d", [[1, 2], [9, 3]], dict(), IndexError, r"id 9 at position \(1, 0\)"),
    ("float_ids", np.array([1.0, 2.0]), dict(offsets=[0]), TypeError, r"float64"),
    ("bool_ids", np.array([True, False]), dict(offsets=[0]), TypeError, r"bool"),
    ("unknown_mode", [1, 2], dict(offsets=[0], mode="median"), ValueError, r"'median'"),
    ("sparse_max", [1, 2], dict(offsets=[0], mode="max", sparse=True), ValueError, r"max mode.*sparse"),
    ("padding_idx_too_large", [1, 2], dict(offsets=[0], padding_idx=6), ValueError, r"padding_idx 6"),
    ("padding_idx_too_negative", [1, 2], dict(offsets=[0], padding_idx=-7), ValueError, r"padding_idx -7"),
]


@pytest.mark.parametrize("ids, kwargs, exc, pattern", [c[1:] for c in ERROR_CASES], ids=[c[0] for c in ERROR_CASES])
def test_invalid_call_raises_naming_value_and_leaves_weight_unchanged(big_table, ids, kwargs, exc, pattern):
    weight, before = big_table
    with pytest.raises(exc, match=pattern):
        embedding_bag(ids, weight, max_norm=0.5, **kwargs)
    np.testing.assert_array_equal(weight.data, before)
    assert weight.grad is None


@pytest.mark.parametrize("ids, kwargs, exc, pattern", [c[1:] for c in ERROR_CASES], ids=[c[0] for c in ERROR_CASES])
def test_invalid_call_on_a_frozen_table_raises_the_same(big_table, ids, kwargs, exc, pattern):
    # No backward recorded and no max_norm: the ids are checked by the pooling loop, not before it.
    with pytest.raises(exc, match=pattern):
        embedding_bag(ids, Tensor(big_table[1]), **kwargs)


@pytest.mark.parametrize("dim", [16, 64, 100])  # each of the compiled loop's paths: 1, 4 vectors, rows in `out`
@pytest.mark.parametrize("threads", ["serial", "parallel"])
def test_a_bad_id_among_many_is_named_where_the_pooling_loop_checks_it(dim, threads, monkeypatch):
    from tinyembed.kernels import threads as pool_threads
    monkeypatch.setattr(pool_threads, "LAUNCH_MIN_BYTES", 1 << 62 if threads == "serial" else 1)
    bag = EmbeddingBag.from_pretrained(np.ones((50, dim), np.float32), mode="sum")
    ids = np.random.default_rng(dim).integers(0, 50, (400, 8))
    for bad, where in ((50, (123, 5)), (-3, (399, 7))):
        wrong = ids.copy()
        wrong[where] = bad
        with pytest.raises(IndexError, match=rf"id {bad} at position \({where[0]}, {where[1]}\)"):
            bag(wrong)
        with pytest.raises(IndexError, match=rf"id {bad} at position \({where[0] * 8 + where[1]},\)"):
            bag(wrong.reshape(-1), np.arange(0, 3200, 8))
    np.testing.assert_array_equal(bag(ids).data, np.full((400, dim), 8, np.float32))


@pytest.mark.parametrize("max_norm", [0.0, -1.0])
def test_nonpositive_max_norm_raises_naming_value_and_leaves_weight_unchanged(big_table, max_norm):
    weight, before = big_table
    with pytest.raises(ValueError, match=rf"max_norm must be > 0, got {max_norm}"):
        embedding_bag([1, 2], weight, [0], max_norm=max_norm)
    np.testing.assert_array_equal(weight.data, before)
    with pytest.raises(ValueError, match=rf"got {max_norm}"):
        EmbeddingBag(6, 4, max_norm=max_norm)


@pytest.mark.parametrize("kwargs, pattern", [
    (dict(mode="median"), r"'median'"),
    (dict(mode="max", sparse=True), r"max mode.*sparse"),
    (dict(padding_idx=6), r"padding_idx 6"),
])
def test_module_constructor_rejects_bad_configuration_naming_value(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        EmbeddingBag(6, 4, **kwargs)


def test_per_sample_weights_must_have_the_tables_dtype():
    bag = EmbeddingBag(5, 2, mode="sum", seed=0)
    with pytest.raises(TypeError, match="float64.*float32"):
        bag([1, 2], offsets=[0], per_sample_weights=np.ones(2))
