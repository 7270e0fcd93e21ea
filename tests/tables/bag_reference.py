"""The bag reference the table tests share: pooled ``lookup`` rows, summed in float64 by hand."""

import numpy as np

# float32 pooling against a float64 reference: a few float32 roundings per bag.
RTOL, ATOL = 1e-6, 1e-6


def _segments(ids, offsets):
    bounds = list(offsets) + [len(ids)]
    return [slice(bounds[b], bounds[b + 1]) for b in range(len(offsets))]


def assert_bags_equal_pooled_lookups(table, ids, offsets):
    """``table.bag`` (sum and mean; 1-D ids with offsets, and 2-D ids of fixed-size bags) equals
    its lookups pooled bag by bag; an empty bag pools to zeros."""
    rows = table.lookup(ids).astype(np.float64)
    for mode in ("sum", "mean"):
        expected = np.zeros((len(offsets), table.embedding_dim))
        for b, seg in enumerate(_segments(ids, offsets)):
            if len(rows[seg]):
                expected[b] = rows[seg].sum(0) if mode == "sum" else rows[seg].mean(0)
        np.testing.assert_allclose(table.bag(ids, offsets, mode=mode), expected, rtol=RTOL, atol=ATOL,
                                   err_msg=f"mode={mode}")
    fixed = ids[:len(ids) // 3 * 3].reshape(-1, 3)  # 2-D ids: bags of 3
    fixed_rows = table.lookup(fixed).astype(np.float64)
    for mode, pooled in (("sum", fixed_rows.sum(1)), ("mean", fixed_rows.mean(1))):
        np.testing.assert_allclose(table.bag(fixed, mode=mode), pooled, rtol=RTOL, atol=ATOL,
                                   err_msg=f"fixed-size bags, mode={mode}")


def assert_weighted_bags_equal_pooled_lookups(table, ids, offsets, weights):
    """``table.bag`` with per_sample_weights equals each bag's lookups times their weights, summed."""
    rows = table.lookup(ids).astype(np.float64)
    expected = np.array([(rows[seg] * weights[seg, None]).sum(0) for seg in _segments(ids, offsets)])
    np.testing.assert_allclose(table.bag(ids, offsets, per_sample_weights=weights), expected, rtol=RTOL, atol=ATOL)
