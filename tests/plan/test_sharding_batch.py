import math

import numpy as np

from tinyembed.plan.sharding import TableSpec, Workload, draw_ids, simulated_batch
from tinyembed.plan.zipf import zipf_ids


def test_draw_ids_of_a_zipf_table_are_zipf_ids():
    for rows in (50, 10**9):
        table = TableSpec("z", num_rows=rows, dim=1, zipf_alpha=1.2)
        np.testing.assert_array_equal(draw_ids(table, 10_000, np.random.default_rng(1)),
                                      zipf_ids(rows, 1.2, 10_000, np.random.default_rng(1)))


def test_draw_ids_uniform_and_seeded():
    table = TableSpec("u", num_rows=10, dim=1)
    a = draw_ids(table, 100_000, np.random.default_rng(3))
    b = draw_ids(table, 100_000, np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.int64 and a.shape == (100_000,)
    counts = np.bincount(a, minlength=10)
    assert np.all(np.abs(counts - 10_000) < 5 * math.sqrt(100_000 * 0.1 * 0.9))


def test_simulated_batch_draws_each_table_with_its_own_seeded_generator():
    tables = [TableSpec("a", 100, 1, lookups_per_sample=2.5, zipf_alpha=1.0), TableSpec("b", 7, 1)]
    w = Workload(batch_size=10, num_devices=3, seed=4)
    (ids_a, src_a), (ids_b, src_b) = simulated_batch(tables, w)
    np.testing.assert_array_equal(ids_a, draw_ids(tables[0], 25, np.random.default_rng([4, 0])))
    np.testing.assert_array_equal(ids_b, draw_ids(tables[1], 10, np.random.default_rng([4, 1])))
    assert not ids_a.flags.writeable  # shared by every plan of the batch
    # id j belongs to sample j * B // n, on device sample * N // B; samples 0-3, 4-6, 7-9
    sample_a = np.arange(25) * 10 // 25
    np.testing.assert_array_equal(src_a, np.searchsorted([4, 7], sample_a, side="right"))
    np.testing.assert_array_equal(src_b, [0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
