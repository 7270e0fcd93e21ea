"""The bag reference the table tests share: pooled ``lookup`` rows, summed in float64 by hand."""

import numpy as np

# float32 pooling against a float64 reference: a few float32 roundings of the sizes of the bag's rows
# (a quantized table sums its rows' biases apart from their codes, as FBGEMM: values that cancel to
# near zero keep the rounding of the terms they cancel).
RTOL, ATOL = 1e-6, 1e-6


def _assert_pooled_close(pooled, expected, sizes, err_msg=""):
    """|pooled - expected| below RTOL times ``sizes`` (B,) (each bag's sum of |weight| * max|row|), + ATOL."""
    bound = RTOL * np.asarray(sizes, np.float64)[:, None] + ATOL
    excess = np.abs(pooled - expected) - bound
    assert not (excess > 0).any(), f"{err_msg}: off by up to {excess.max():.3g} past the bound\n{pooled}\n{expected}"


def _segments(ids, offsets):
    bounds = list(offsets) + [len(ids)]
    return [slice(bounds[b], bounds[b + 1]) for b in range(len(offsets))]


def assert_bags_equal_pooled_lookups(table, ids, offsets):
    """``table.bag`` (sum and mean; 1-D ids with offsets, and 2-D ids of fixed-size bags) equals
    its lookups pooled bag by bag; an empty bag pools to zeros."""
    rows = table.lookup(ids).astype(np.float64)
    sizes = np.abs(rows).max(axis=1, initial=0.0)
    for mode in ("sum", "mean"):
        expected = np.zeros((len(offsets), table.embedding_dim))
        bag_sizes = np.zeros(len(offsets))
        for b, seg in enumerate(_segments(ids, offsets)):
            if len(rows[seg]):
                expected[b] = rows[seg].sum(0) if mode == "sum" else rows[seg].mean(0)
                bag_sizes[b] = sizes[seg].sum() if mode == "sum" else sizes[seg].mean()
        _assert_pooled_close(table.bag(ids, offsets, mode=mode), expected, bag_sizes, f"mode={mode}")
    fixed = ids[:len(ids) // 3 * 3].reshape(-1, 3)  # 2-D ids: bags of 3
    fixed_rows = table.lookup(fixed).astype(np.float64)
    fixed_sizes = np.abs(fixed_rows).max(axis=2, initial=0.0)
    for mode, pooled, bag_sizes in (("sum", fixed_rows.sum(1), fixed_sizes.sum(1)),
                                    ("mean", fixed_rows.mean(1), fixed_sizes.mean(1))):
        _assert_pooled_close(table.bag(fixed, mode=mode), pooled, bag_sizes, f"fixed-size bags, mode={mode}")


def assert_weighted_bags_equal_pooled_lookups(table, ids, offsets, weights):
    """``table.bag`` with per_sample_weights equals each bag's lookups times their weights, summed."""
    rows = table.lookup(ids).astype(np.float64)
    expected = np.array([(rows[seg] * weights[seg, None]).sum(0) for seg in _segments(ids, offsets)])
    sizes = np.abs(rows).max(axis=1, initial=0.0) * np.abs(weights)
    _assert_pooled_close(table.bag(ids, offsets, per_sample_weights=weights), expected,
                         [sizes[seg].sum() for seg in _segments(ids, offsets)], "weighted")
