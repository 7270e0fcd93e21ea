"""Kernels: each against an independent reference (fancy indexing, np.add.at, Python loops)."""

import re
from collections import Counter

import numpy as np
import pytest

from tinyembed import kernels
from tinyembed.kernels import (
    bag_pool,
    bag_pool_backward,
    check_ids,
    check_offsets,
    frequency_scale,
    gather_rows,
    jit,
    renorm_rows_,
    scatter_add_rows,
    segment_reduce,
    segment_sum_rows,
)


@pytest.fixture
def restore_threads():
    """Tests may change the kernels' thread count; put it back afterwards."""
    before = kernels.get_num_threads()
    yield
    kernels.set_num_threads(before)


def table(num=20, dim=4, dtype=np.float32, seed=0):
    return np.random.default_rng(seed).standard_normal((num, dim)).astype(dtype)


# -- gather_rows ------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ids", [
    np.int64(7),
    np.array(3),
    np.zeros(0, dtype=np.int64),
    np.zeros((3, 0), dtype=np.int64),
    np.array([[1, 2, 3, 4], [5, 6, 7, 8]])[:, ::2],  # non-contiguous columns
    np.arange(12).reshape(3, 4).T,  # transposed: F-contiguous
    np.array([19, 0, 19, 5, 0], dtype=np.int32),
], ids=["0d_scalar", "0d_array", "empty", "empty_3x0", "strided", "transposed", "int32_repeats"])
def test_gather_rows_equals_fancy_indexing(ids, dtype):
    weight = table(dtype=dtype)
    out = gather_rows(weight, np.asarray(ids))
    expected = weight[ids]
    assert out.shape == expected.shape == np.shape(ids) + (4,)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, expected)


def test_gather_rows_writes_into_preallocated_out():
    weight, ids = table(), np.array([[3, 1], [19, 3]])
    out = np.full((2, 2, 4), np.nan, dtype=np.float32)
    result = gather_rows(weight, ids, out=out)
    assert result is out
    np.testing.assert_array_equal(out, weight[ids])


@pytest.mark.parametrize("out", [
    np.empty((2, 3), dtype=np.float32),  # shape: (2, 4) wanted
    np.empty((2, 4), dtype=np.float64),  # dtype
    np.empty((2, 8), dtype=np.float32)[:, ::2],  # right shape and dtype, not contiguous
], ids=["shape", "dtype", "non_contiguous"])
def test_gather_rows_rejects_out_of_wrong_shape_dtype_or_layout(out):
    with pytest.raises(ValueError, match=r"out must"):
        gather_rows(table(), np.array([1, 2]), out=out)


# 4099 ids x 256 float32 = 4 MiB of output (the threshold is 2 MiB); 4099 is prime, so no
# thread count used here divides it and the chunks have unequal lengths.
@pytest.mark.parametrize("threads", [2, 3, 7])
@pytest.mark.parametrize("num_ids", [4096, 4099])
def test_gather_rows_is_identical_on_one_thread_and_many(restore_threads, threads, num_ids):
    rng = np.random.default_rng(threads)
    weight = rng.standard_normal((5000, 256)).astype(np.float32)
    ids = rng.integers(0, 5000, size=num_ids)
    # The input must really be split, or this test checks nothing about chunk boundaries.
    kernels.set_num_threads(threads)
    assert len(kernels.threads.chunks(num_ids, 256 * 4)) == threads

    many = gather_rows(weight, ids)
    out = np.zeros((num_ids, 256), dtype=np.float32)
    gather_rows(weight, ids, out=out)
    kernels.set_num_threads(1)
    one = gather_rows(weight, ids)
    np.testing.assert_array_equal(many, one)
    np.testing.assert_array_equal(out, one)
    np.testing.assert_array_equal(one, weight[ids])


def test_gather_rows_splits_two_dimensional_ids_across_threads(restore_threads):
    kernels.set_num_threads(3)
    weight = table(num=100, dim=512)
    ids = np.random.default_rng(1).integers(0, 100, size=(37, 41))  # 1517 rows x 2 KiB = 3 MiB
    np.testing.assert_array_equal(gather_rows(weight, ids), weight[ids])


def test_set_num_threads_rejects_less_than_one(restore_threads):
    with pytest.raises(ValueError, match=r"got 0"):
        kernels.set_num_threads(0)


# -- segment sums and scatter-add ----------------------------------------------------------------
def mixed_segments(rng):
    """Ids where one repeats 20 times (> the 16 of a long segment), others 2-5 times, others once."""
    rows = [3] * 20 + [k for k in (5, 8, 11) for _ in range(rng.integers(2, 6))] + [0, 1, 14, 30]
    return rng.permutation(rows)


ROW_CASES = {
    "no_duplicates": lambda rng: rng.permutation(40)[:25],
    "all_one_id": lambda rng: np.full(33, 7),
    "mixed_short_and_long": mixed_segments,
    "empty": lambda rng: np.zeros(0, dtype=np.int64),
}


def add_at_reference(rows, values, num_rows):
    dense = np.zeros((num_rows, values.shape[1]), dtype=np.float64)
    np.add.at(dense, rows, values.astype(np.float64))
    return dense


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", ROW_CASES)
def test_segment_sum_rows_matches_add_at(case, dtype):
    rng = np.random.default_rng(0)
    rows = ROW_CASES[case](rng).astype(np.int64)
    values = rng.standard_normal((len(rows), 5)).astype(dtype)
    unique, sums = segment_sum_rows(rows, values)
    np.testing.assert_array_equal(unique, np.unique(rows))
    assert sums.shape == (len(unique), 5) and sums.dtype == dtype
    reference = add_at_reference(rows, values, 40)[unique]
    np.testing.assert_allclose(sums, reference, rtol=0, atol=1e-5 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", ROW_CASES)
def test_scatter_add_rows_matches_add_at(case, dtype):
    rng = np.random.default_rng(1)
    rows = ROW_CASES[case](rng).astype(np.int64)
    values = rng.standard_normal((len(rows), 5)).astype(dtype)
    dense = scatter_add_rows(rows, values, 40)
    assert dense.shape == (40, 5) and dense.dtype == dtype
    np.testing.assert_allclose(dense, add_at_reference(rows, values, 40), rtol=0,
                               atol=1e-5 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("case", ROW_CASES)
def test_scatter_add_rows_is_exact_on_integer_valued_float64(case):
    # Integer-valued sums below 2**53 are exact in any order: equality, not closeness.
    rng = np.random.default_rng(2)
    rows = ROW_CASES[case](rng).astype(np.int64)
    values = rng.integers(-1000, 1000, size=(len(rows), 6)).astype(np.float64)
    expected = np.zeros((40, 6))
    np.add.at(expected, rows, values)
    np.testing.assert_array_equal(scatter_add_rows(rows, values, 40), expected)
    unique, sums = segment_sum_rows(rows, values)
    np.testing.assert_array_equal(sums, expected[unique])


def test_segment_sum_rows_does_not_modify_its_inputs():
    rows = mixed_segments(np.random.default_rng(3)).astype(np.int64)
    values = np.random.default_rng(3).standard_normal((len(rows), 3))
    rows_before, values_before = rows.copy(), values.copy()
    segment_sum_rows(rows, values)
    np.testing.assert_array_equal(rows, rows_before)
    np.testing.assert_array_equal(values, values_before)


# -- segment_reduce ----------------------------------------------------------------------------
@pytest.mark.parametrize("op", [np.maximum, np.minimum, np.add], ids=lambda op: op.__name__)
def test_segment_reduce_matches_python_loop_over_short_long_and_gapped_segments(op):
    rng = np.random.default_rng(4)
    counts = np.array([1, 2, 17, 3, 40, 1, 16, 5, 18])  # around the long-segment threshold of 16
    gaps = rng.integers(0, 3, size=len(counts))  # rows between segments that belong to none
    starts = np.cumsum(np.concatenate([[0], counts[:-1] + gaps[:-1]])) + gaps[0]
    values = rng.standard_normal((int(starts[-1] + counts[-1] + 2), 3))
    out = segment_reduce(values, starts, counts, op)
    expected = np.empty((len(counts), 3))
    for i, (s, c) in enumerate(zip(starts, counts, strict=True)):
        acc = values[s].copy()
        for r in range(s + 1, s + c):
            acc = op(acc, values[r])
        expected[i] = acc
    if op is np.add:
        np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    else:
        np.testing.assert_array_equal(out, expected)


def test_segment_reduce_of_no_segments_is_empty():
    out = segment_reduce(np.ones((4, 3)), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
    assert out.shape == (0, 3)


# -- renorm_rows_ ----------------------------------------------------------------------------------
def renorm_reference(weight, ids, max_norm, norm_type):
    weight = weight.astype(np.float64)
    for i in set(int(i) for i in np.ravel(ids)):
        norm = np.linalg.norm(weight[i], ord=norm_type)
        if norm > max_norm:
            weight[i] *= max_norm / (norm + 1e-7)
    return weight


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("norm_type", [1.0, 2.0, np.inf, 3.0])
def test_renorm_rows_matches_reference_and_leaves_other_rows_bitwise_unchanged(norm_type, dtype):
    weight = table(num=12, dim=5, dtype=dtype, seed=5) * 2
    ids = np.array([[0, 3, 4], [7, 3, 11]])
    max_norm = float(np.median([np.linalg.norm(r, ord=norm_type) for r in weight[[0, 3, 4, 7, 11]]]))
    before = weight.copy()
    renorm_rows_(weight, ids, max_norm, norm_type)
    expected = renorm_reference(before, ids, max_norm, norm_type)
    np.testing.assert_allclose(weight, expected, rtol=1e-6 if dtype == np.float32 else 1e-14)
    norms = np.linalg.norm(before.astype(np.float64), ord=norm_type, axis=1)
    looked_up = np.isin(np.arange(12), ids)
    untouched = ~looked_up | (norms <= max_norm)
    assert looked_up.any() and (looked_up & (norms > max_norm)).any() and (looked_up & (norms <= max_norm)).any()
    np.testing.assert_array_equal(weight[untouched], before[untouched])
    renormed = np.linalg.norm(weight.astype(np.float64), ord=norm_type, axis=1)
    assert np.all(renormed[looked_up] <= max_norm * (1 + 1e-6))


def test_renorm_rows_scales_a_repeated_id_once():
    weight = np.array([[3.0, 4.0], [6.0, 8.0]])  # norms 5 and 10
    renorm_rows_(weight, np.array([1, 1, 1, 0, 1]), 1.0, 2.0)
    np.testing.assert_allclose(weight[1], np.array([6.0, 8.0]) / (10 + 1e-7), rtol=1e-15)
    np.testing.assert_allclose(weight[0], np.array([3.0, 4.0]) / (5 + 1e-7), rtol=1e-15)


def test_renorm_rows_with_no_ids_changes_nothing():
    weight = table()
    before = weight.copy()
    renorm_rows_(weight, np.zeros(0, dtype=np.int64), 0.1)
    np.testing.assert_array_equal(weight, before)


# -- frequency_scale ----------------------------------------------------------------------------
@pytest.mark.parametrize("ids", [
    np.array([4, 1, 4, 4, 0, 1]),
    np.array([[2, 2], [3, 2]]),
    np.arange(7),
    np.full(5, 9),
    np.zeros(0, dtype=np.int64),
], ids=["mixed", "2d", "unique", "one_id", "empty"])
def test_frequency_scale_is_inverse_count_per_position(ids):
    count = Counter(int(i) for i in ids.ravel())
    expected = [1.0 / count[int(i)] for i in ids.ravel()]
    np.testing.assert_allclose(frequency_scale(ids), expected, rtol=1e-15)


# -- validation ----------------------------------------------------------------------------------
@pytest.mark.parametrize("ids, bad, where", [
    ([1, 2, 10], 10, (2,)),
    ([[0, 1, 2], [3, -1, 4]], -1, (1, 1)),
    ([[0, 1], [3, 12]], 12, (1, 1)),
    (np.array(10), 10, ()),
])
def test_check_ids_names_first_bad_id_and_its_position(ids, bad, where):
    with pytest.raises(IndexError) as info:
        check_ids(ids, 10)
    message = str(info.value)
    assert f"id {bad} " in message and f"position {where}" in message and "10 rows" in message


@pytest.mark.parametrize("ids, dtype", [
    (np.array([1.0, 2.0]), "float64"),
    (np.array([True, False]), "bool"),
    (np.array([1 + 0j]), "complex128"),
    (np.array([1, None], dtype=object), "object"),
])
def test_check_ids_rejects_non_integer_dtypes_naming_them(ids, dtype):
    with pytest.raises(TypeError, match=dtype):
        check_ids(ids, 10)


@pytest.mark.parametrize("ids", [[1, 2], np.array([[3]], dtype=np.uint8), np.array(4, dtype=np.int32), [],
                                 np.zeros((2, 0), dtype=np.int16)])
def test_check_ids_returns_int64_of_same_shape_and_values(ids):
    out = check_ids(ids, 10)
    assert out.dtype == np.int64 and out.shape == np.shape(ids)
    np.testing.assert_array_equal(out, np.asarray(ids))


@pytest.mark.parametrize("enabled", [True, False])  # many int64 ids: checked in one compiled pass, or in NumPy
@pytest.mark.parametrize("bad, where", [(None, None), (-1, (2, 5)), (5000, (48, 99)), (2**62, (0, 0))])
def test_check_ids_of_many_ids_copies_them_or_names_the_first_bad_one(enabled, bad, where):
    ids = np.random.default_rng(0).integers(0, 5000, size=(50, 100))
    strided = ids[:, ::1].T.T  # a view: the check must copy, never hand back the caller's array
    if bad is not None:
        ids[where] = bad
        ids[-1, -1] = -7  # a later bad id: the message names the first
    old = jit.set_enabled(enabled)
    try:
        if bad is None:
            out = check_ids(strided, 5000)
            assert out.dtype == np.int64 and not np.shares_memory(out, ids)
            np.testing.assert_array_equal(out, ids)
        else:
            with pytest.raises(IndexError, match=re.escape(f"id {bad} at position {where} ")):
                check_ids(strided, 5000)
    finally:
        jit.set_enabled(old)


@pytest.mark.parametrize("offsets, num_ids, last, exc, pattern", [
    ([1, 2], 5, False, ValueError, r"offsets\[0\] must be 0.*got 1"),
    ([0, 3, 1], 5, False, ValueError, r"offsets\[2\] = 1 < 3"),
    ([0, 6], 5, False, ValueError, r"offset 6 runs past the input of 5"),
    ([0, 2, 6], 5, True, ValueError, r"offset 6"),
    ([], 5, True, ValueError, r"include_last_offset=True needs at least one offset"),
    ([[0, 1]], 5, False, ValueError, r"1-D.*\(1, 2\)"),
    ([0.0, 1.0], 5, False, TypeError, r"float64"),
])
def test_check_offsets_rejects_bad_offsets_naming_them(offsets, num_ids, last, exc, pattern):
    with pytest.raises(exc, match=pattern):
        check_offsets(np.asarray(offsets, dtype=None if len(offsets) else np.int64), num_ids, last)


@pytest.mark.parametrize("offsets, num_ids, last, bounds", [
    ([0, 2, 2], 5, False, [0, 2, 2, 5]),
    ([0, 2, 5], 5, True, [0, 2, 5]),
    ([0, 2, 3], 5, True, [0, 2, 3]),  # ids 3 and 4 belong to no bag
    ([0], 0, False, [0, 0]),
    ([0], 5, True, [0]),  # no bags
])
def test_check_offsets_returns_bag_bounds(offsets, num_ids, last, bounds):
    np.testing.assert_array_equal(check_offsets(np.array(offsets), num_ids, last), bounds)


@pytest.mark.parametrize("enabled", [True, False])  # from 64 int64 offsets, one compiled pass checks them
@pytest.mark.parametrize("last", [False, True])
def test_many_offsets_are_checked_and_named_alike_on_both_paths(enabled, last):
    offsets = np.arange(0, 1000, 5)  # 200 bags of 5
    old = jit.set_enabled(enabled)
    try:
        expected = offsets if last else np.append(offsets, 1003)
        np.testing.assert_array_equal(check_offsets(offsets, 1003, last), expected)
        for wrong, pattern in ((np.append([2], offsets[1:]), r"offsets\[0\] must be 0.*got 2"),
                               (np.where(offsets == 500, 480, offsets), r"offsets\[100\] = 480 < 495"),
                               (np.append(offsets[:-1], 1010), r"offset 1010 runs past the input of 1003")):
            with pytest.raises(ValueError, match=pattern):
                check_offsets(wrong, 1003, last)
    finally:
        jit.set_enabled(old)


# -- bag_pool ------------------------------------------------------------------------------------
def pool_reference(weight, ids, bounds, mode, psw, padding_idx):
    """(out, argmax) by a loop over bags and entries; argmax = the row of the first maximum."""
    num_bags, dim = len(bounds) - 1, weight.shape[1]
    out = np.zeros((num_bags, dim))
    argmax = np.full((num_bags, dim), -1)
    for b in range(num_bags):
        entries = [j for j in range(bounds[b], bounds[b + 1]) if ids[j] != padding_idx]
        for d in range(dim):
            if not entries:
                continue
            if mode == "max":
                best = entries[0]
                for j in entries:
                    if weight[ids[j], d] > weight[ids[best], d]:
                        best = j
                out[b, d], argmax[b, d] = weight[ids[best], d], ids[best]
            else:
                total = sum((1.0 if psw is None else psw[j]) * weight[ids[j], d] for j in entries)
                out[b, d] = total / len(entries) if mode == "mean" else total
    return out, argmax


def pool_backward_reference(grad_out, weight, ids, bounds, mode, psw, padding_idx, scale_grad_by_freq):
    """(dense weight grad, per-sample-weight grad) by the same loop, from the definition."""
    grad_w, grad_psw = np.zeros(weight.shape), np.zeros(len(ids))
    used = [int(i) for i in ids[: bounds[-1]] if i != padding_idx]
    count = Counter(used)
    _, argmax = pool_reference(weight, ids, bounds, mode, psw, padding_idx)
    for b in range(len(bounds) - 1):
        entries = [j for j in range(bounds[b], bounds[b + 1]) if ids[j] != padding_idx]
        if mode == "max":
            for d in range(weight.shape[1]):
                row = argmax[b, d]
                if row >= 0:
                    grad_w[row, d] += grad_out[b, d] / (count[row] if scale_grad_by_freq else 1)
            continue
        for j in entries:
            scale = 1.0 / len(entries) if mode == "mean" else (1.0 if psw is None else psw[j])
            grad_w[ids[j]] += grad_out[b] * scale / (count[ids[j]] if scale_grad_by_freq else 1)
            if psw is not None:
                grad_psw[j] = weight[ids[j]] @ grad_out[b]
    return grad_w, grad_psw


def pool_case(seed, mode):
    """Bags with padding, all-padding and empty bags, a long bag, and ids past the last bound."""
    rng = np.random.default_rng(seed)
    weight = rng.standard_normal((10, 3))
    ids = np.concatenate([[2, 0, 5], [0, 0], [], rng.integers(0, 10, size=20), [7, 7, 1], [4, 9]]).astype(np.int64)
    bounds = np.array([0, 3, 5, 5, 25, 28])  # bag 1: all padding; bag 2: empty; ids 28, 29: no bag
    psw = rng.standard_normal(len(ids)) if mode == "sum" else None
    return weight, ids, bounds, psw


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mode, with_psw", [("sum", False), ("sum", True), ("mean", False), ("max", False)],
                         ids=["sum", "sum_psw", "mean", "max"])  # per_sample_weights: 'sum' only
def test_bag_pool_matches_python_loop_with_padding_and_empty_bags(mode, dtype, with_psw):
    weight, ids, bounds, psw = pool_case(6, mode)
    psw = psw if with_psw else None
    weight = weight.astype(dtype)
    out, argmax = bag_pool(weight, ids, bounds, mode, psw, padding_idx=0)
    expected, expected_argmax = pool_reference(weight.astype(np.float64), ids, bounds, mode, psw, 0)
    assert out.shape == (5, 3) and out.dtype == dtype
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-5 if dtype == np.float32 else 1e-12)
    np.testing.assert_array_equal(out[[1, 2]], 0.0)  # all-padding and empty bags
    if mode == "max":
        np.testing.assert_array_equal(argmax, expected_argmax)
        assert (argmax[[1, 2]] == -1).all()
    else:
        assert argmax is None


def test_bag_pool_max_gives_first_of_tied_rows():
    weight = np.array([[1.0, 0.0], [1.0, 3.0], [0.0, 3.0]])
    out, argmax = bag_pool(weight, np.array([2, 1, 0]), np.array([0, 3]), "max")
    np.testing.assert_array_equal(out, [[1.0, 3.0]])
    np.testing.assert_array_equal(argmax, [[1, 2]])  # column 0: rows 1, 0 tie; column 1: rows 2, 1


@pytest.mark.parametrize("scale_grad_by_freq", [False, True], ids=["plain", "scale_grad_by_freq"])
@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_bag_pool_backward_matches_python_loop(mode, scale_grad_by_freq):
    weight, ids, bounds, psw = pool_case(7, mode)
    grad_out = np.random.default_rng(8).standard_normal((5, 3))
    _, argmax = bag_pool(weight, ids, bounds, mode, psw, padding_idx=0)
    rows, row_grads, grad_psw = bag_pool_backward(grad_out, weight, ids, bounds, mode, psw, 0, argmax,
                                                  scale_grad_by_freq)
    assert np.all(np.diff(rows) > 0), "rows must be sorted and unique"
    dense = np.zeros_like(weight)
    dense[rows] = row_grads
    expected, expected_psw = pool_backward_reference(grad_out, weight, ids, bounds, mode, psw, 0, scale_grad_by_freq)
    np.testing.assert_allclose(dense, expected, rtol=0, atol=1e-12)
    assert not dense[0].any(), "the padding row gets no gradient"
    if psw is not None:
        np.testing.assert_allclose(grad_psw, expected_psw, rtol=0, atol=1e-12)
    else:
        assert grad_psw is None


def test_gather_is_safe_while_another_thread_changes_the_thread_count():
    import threading

    weight = np.random.default_rng(0).standard_normal((512, 256)).astype(np.float32)
    ids = np.random.default_rng(1).integers(0, 512, 4096)
    expected = weight[ids]
    errors = []

    def lookups():
        try:
            for _ in range(30):
                np.testing.assert_array_equal(kernels.gather_rows(weight, ids), expected)
        except Exception as e:  # noqa: BLE001 - any failure in a thread must reach the test
            errors.append(e)

    saved = kernels.get_num_threads()
    workers = [threading.Thread(target=lookups) for _ in range(3)]
    try:
        for w in workers:
            w.start()
        for n in [1, 3, 2, 5, 1, 4] * 5:
            kernels.set_num_threads(n)
        for w in workers:
            w.join()
    finally:
        kernels.set_num_threads(saved)
    assert not errors, errors[0]


# -- lookup_rows: the check inside the gather ---------------------------------------------------------
@pytest.mark.parametrize("dim", [0, 1, 3, 16, 64])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ids_dtype", [np.int64, np.int32, np.uint16])
def test_lookup_rows_equals_check_then_gather_on_both_paths(dim, dtype, ids_dtype):
    from tinyembed.kernels import jit

    rng = np.random.default_rng(dim)
    weight = rng.standard_normal((50, dim)).astype(dtype)
    ids = rng.integers(0, 50, (7, 9)).astype(ids_dtype)
    expected = weight[ids]
    old = jit.set_enabled(True)
    try:
        for enabled in (True, False):
            jit.set_enabled(enabled)
            rows, got_ids = kernels.lookup_rows(weight, ids)
            np.testing.assert_array_equal(rows, expected)
            np.testing.assert_array_equal(got_ids, ids)
    finally:
        jit.set_enabled(old)


@pytest.mark.parametrize("bad", [-1, 50, 2**40])
def test_lookup_rows_names_the_first_bad_id_on_both_paths(bad):
    from tinyembed.kernels import jit

    weight = np.ones((50, 4), np.float32)
    ids = np.array([[3, 4], [bad, 7]])
    old = jit.set_enabled(True)
    try:
        for enabled in (True, False):
            jit.set_enabled(enabled)
            with pytest.raises(IndexError, match=rf"input id {bad} at position \(1, 0\) is out of range"):
                kernels.lookup_rows(weight, ids)
    finally:
        jit.set_enabled(old)


@pytest.mark.parametrize("shape, dtype", [((0,), np.float32), ((3, 5), np.int64), ((2048, 128), np.float32),
                                          ((1000, 72), np.uint8), ((4, 4096, 2), np.float64)])
def test_empty_aligned_is_np_empty_starting_on_a_cache_line_when_large(shape, dtype):
    out = kernels.empty_aligned(shape, dtype)
    assert out.shape == shape and out.dtype == dtype and out.flags.c_contiguous and out.flags.writeable
    if out.nbytes >= kernels.lanes.ALIGNED_MIN_BYTES:
        assert out.ctypes.data % 64 == 0
    out[...] = 7  # its whole extent is its own
    assert (out == 7).all()


def test_wide_quantized_bags_and_new_tables_start_on_a_cache_line():
    # NumPy's large arrays start anywhere 16 bytes apart: a 64-byte vector of their rows can straddle two lines.
    # A quantized bag of rows wider than bags.WALKED adds each row into its output row (there it pays); the
    # loops that store each output row once take NumPy's arrays, made sooner.
    from tinyembed import nn
    from tinyembed.kernels import bags as bags_module
    from tinyembed.tables import QuantizedEmbedding

    rng = np.random.default_rng(0)
    width = bags_module.WALKED + 72
    weight = rng.standard_normal((1000, width)).astype(np.float32)
    ids = rng.integers(0, 1000, (64, 64)).reshape(-1)
    offsets = np.arange(0, ids.size, 16)
    outputs = {"int8 bag": QuantizedEmbedding.from_float(weight, bits=8).bag(ids, offsets),
               "int4 bag": QuantizedEmbedding.from_float(weight, bits=4).bag(ids, offsets),
               "new table": nn.Embedding(1000, 128, seed=0).weight.data}
    for name, out in outputs.items():
        assert out.nbytes >= kernels.lanes.ALIGNED_MIN_BYTES, name
        assert out.ctypes.data % 64 == 0, name
