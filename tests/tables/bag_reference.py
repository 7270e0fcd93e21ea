"""The bag reference the table tests share: pooled ``lookup`` rows, summed in float64 by hand."""

import numpy as np


def assert_bags_equal_pooled_lookups(table, ids, offsets, weights):
    """``table.bag`` (sum, mean, weighted sum) equals its lookups pooled bag by bag."""
    bounds = list(offsets) + [len(ids)]
    rows = table.lookup(ids).astype(np.float64)
    bags = len(offsets)
    for mode in ("sum", "mean"):
        expected = np.zeros((bags, table.embedding_dim))
        for b in range(bags):
            seg = rows[bounds[b]:bounds[b + 1]]
            if len(seg):
                expected[b] = seg.sum(0) if mode == "sum" else seg.mean(0)
        np.testing.assert_allclose(table.bag(ids, offsets, mode=mode), expected, rtol=1e-5, atol=1e-6)
    weighted = np.array([(rows[bounds[b]:bounds[b + 1]] * weights[bounds[b]:bounds[b + 1], None]).sum(0)
                         for b in range(bags)])
    np.testing.assert_allclose(table.bag(ids, offsets, per_sample_weights=weights), weighted, rtol=1e-5, atol=1e-6)
