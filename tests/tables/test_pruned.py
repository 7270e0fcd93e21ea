"""PrunedEmbedding: the most frequent rows kept exactly, the rest hashed into shared OOV rows.
The protocol every table offers (lookup, bag, save/load, EmbeddingLayer, ...) is test_protocol.py."""

import numpy as np
import pytest
from table_files import rewrite

from tinyembed.nn import Embedding
from tinyembed.tables.pruned import PrunedEmbedding, oov_bucket

MASK = (1 << 64) - 1


def splitmix64(x: int) -> int:
    """SplitMix64's output function in Python integers: the reference for the NumPy version."""
    x = (x + 0x9E3779B97F4A7C15) & MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK
    return x ^ (x >> 31)


def reference_bucket(i: int, seed: int, buckets: int) -> int:
    return splitmix64(i ^ splitmix64(seed)) % buckets


def reference_ranking(counts):
    """Ids from most to least frequent, equal counts by lower id: sorted by the key (-count, id)."""
    return sorted(range(len(counts)), key=lambda i: (-counts[i], i))


V, D, K, B = 60, 5, 20, 6


@pytest.fixture
def setup():
    rng = np.random.default_rng(0)
    table = rng.standard_normal((V, D)).astype(np.float32)
    counts = rng.integers(0, 8, size=V)  # small range: many ties
    return table, counts, PrunedEmbedding.from_counts(table, counts, keep=K, oov_buckets=B, seed=7)


# -- what from_counts promises ---------------------------------------------------------------
def test_kept_ids_are_exact_copies_of_the_most_frequent_rows(setup):
    table, counts, pruned = setup
    kept = reference_ranking(counts.tolist())[:K]
    np.testing.assert_array_equal(pruned.lookup(kept), table[kept])
    np.testing.assert_array_equal(pruned.weight[:K], table[kept])  # kept row r is the id of rank r


def test_id_map_sends_kept_ids_to_their_rank_and_the_rest_to_k_plus_their_bucket(setup):
    _, counts, pruned = setup
    ranking = reference_ranking(counts.tolist())
    expected = np.empty(V, dtype=np.int64)
    for rank, i in enumerate(ranking[:K]):
        expected[i] = rank
    for i in ranking[K:]:
        expected[i] = K + reference_bucket(i, 7, B)
    np.testing.assert_array_equal(pruned.id_map, expected)
    assert pruned.id_map.dtype == np.int32


def test_pruned_ids_get_their_buckets_row_the_mean_of_the_rows_it_serves(setup):
    table, counts, pruned = setup
    served = {}
    for i in reference_ranking(counts.tolist())[K:]:
        served.setdefault(reference_bucket(i, 7, B), []).append(i)
    for ids in served.values():
        mean = table[ids].astype(np.float64).mean(axis=0)
        np.testing.assert_allclose(pruned.lookup(ids), np.broadcast_to(mean, (len(ids), D)), rtol=1e-6, atol=1e-7)
    assert len(served) == B  # every bucket serves some id here


def test_a_bucket_that_serves_no_id_is_a_zero_row():
    table = np.arange(8, dtype=np.float32).reshape(4, 2)
    pruned = PrunedEmbedding.from_counts(table, [3, 2, 1, 0], keep=3, oov_buckets=8)
    used = 3 + reference_bucket(3, 0, 8)
    assert pruned.id_map[3] == used
    np.testing.assert_array_equal(pruned.lookup(3), table[3])  # the only id it serves
    unused = [r for r in range(3, 11) if r != used]
    np.testing.assert_array_equal(pruned.weight[unused], 0)


def test_equal_counts_keep_the_lower_ids():
    table = np.random.default_rng(1).standard_normal((10, 3)).astype(np.float32)
    pruned = PrunedEmbedding.from_counts(table, np.ones(10), keep=4, oov_buckets=2)
    np.testing.assert_array_equal(pruned.id_map[:4], [0, 1, 2, 3])
    np.testing.assert_array_equal(pruned.weight[:4], table[:4])
    assert (pruned.id_map[4:] >= 4).all()


def test_keeping_every_id_without_buckets_is_lossless():
    table = np.random.default_rng(2).standard_normal((9, 4)).astype(np.float32)
    counts = np.array([0.5, 3, 3, 0, 1, 2, 7, 0, 1.5])  # float counts are fine
    pruned = PrunedEmbedding.from_counts(table, counts, keep=9, oov_buckets=0)
    np.testing.assert_array_equal(pruned.to_dense(), table)
    assert pruned.oov_buckets == 0
    assert pruned.nbytes == 9 * 4 * 4 + 9 * 4


def test_from_counts_takes_any_embedding_table(setup):
    table, counts, pruned = setup
    again = PrunedEmbedding.from_counts(Embedding.from_pretrained(table), counts, keep=K, oov_buckets=B, seed=7)
    np.testing.assert_array_equal(again.weight, pruned.weight)
    np.testing.assert_array_equal(again.id_map, pruned.id_map)


def test_the_seed_chooses_the_buckets_deterministically(setup):
    table, counts, pruned = setup
    same = PrunedEmbedding.from_counts(table, counts, keep=K, oov_buckets=B, seed=7)
    other = PrunedEmbedding.from_counts(table, counts, keep=K, oov_buckets=B, seed=8)
    np.testing.assert_array_equal(same.id_map, pruned.id_map)
    assert (other.id_map != pruned.id_map).any()
    np.testing.assert_array_equal(other.weight[:K], pruned.weight[:K])


# -- the hash ---------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 12345, 2**63 + 5, 2**64 - 1])
def test_oov_bucket_is_splitmix64_of_the_id_xor_the_mixed_seed(seed):
    ids = np.array([0, 1, 2, 17, 30521, 2**31 - 1, 2**40 + 3, 2**63 - 1])
    for buckets in (1, 7, 1024):
        expected = [reference_bucket(int(i), seed, buckets) for i in ids]
        np.testing.assert_array_equal(oov_bucket(ids, seed, buckets), expected)
    assert oov_bucket(np.int64(17), seed, 7).shape == ()
    assert oov_bucket(ids.reshape(2, 4), seed, 7).shape == (2, 4)


def test_oov_buckets_are_close_to_uniform_on_consecutive_ids():
    counts = np.bincount(oov_bucket(np.arange(100_000), 3, 16), minlength=16)
    # Each count is Binomial(100000, 1/16): mean 6250, sd 76.5; 6 sd either way.
    assert np.all(np.abs(counts - 6250) < 460), counts


# -- rows and sizes ------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(), (0,), (7,), (3, 4)])
def test_lookup_is_the_row_the_id_map_names(setup, shape):
    pruned = setup[2]
    ids = np.random.default_rng(3).integers(0, V, size=shape)
    np.testing.assert_array_equal(pruned.lookup(ids), pruned.weight[pruned.id_map[ids]])


def test_nbytes_counts_the_id_map_and_num_parameters_does_not(setup):
    pruned = setup[2]
    stored = (K + B) * D * 4 + V * 4  # float32 rows, int32 id map
    assert pruned.nbytes == stored
    assert pruned.num_parameters() == (K + B) * D


# -- save / load -------------------------------------------------------------------------------
def test_config_records_keep_oov_buckets_and_seed(setup):
    assert setup[2].config() == {"num_embeddings": V, "embedding_dim": D, "keep": K, "oov_buckets": B, "seed": 7}


def _bad_map(arrays):
    id_map = arrays["id_map"].copy()
    id_map[5] = K + B  # one past the last row
    return {**arrays, "id_map": id_map}


def test_load_refuses_an_id_map_naming_a_row_past_the_last(tmp_path, setup):
    good, bad = tmp_path / "good.safetensors", tmp_path / "bad.safetensors"
    setup[2].save(good)
    rewrite(good, bad, _bad_map(setup[2].state_arrays()))
    with pytest.raises(ValueError, match=r"id_map\[5\] = 26 is not a row of the 26-row weight"):
        PrunedEmbedding.load(bad)


def test_repr_shows_the_configuration(setup):
    assert repr(setup[2]) == "PrunedEmbedding(60, 5, keep=20, oov_buckets=6, seed=7)"


# -- bad input ---------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, match", [
    (dict(keep=0), r"keep \(at most V\) must be an integer in \[1, 60\], got 0"),
    (dict(keep=61), r"\[1, 60\], got 61"),
    (dict(keep=-3), r"\[1, 60\], got -3"),
    (dict(keep=2.5), r"\[1, 60\], got 2.5"),
    (dict(oov_buckets=-1), "oov_buckets must be an integer >= 0, got -1"),
    (dict(oov_buckets=0), "oov_buckets=0 leaves the 40 pruned ids without a row"),
    (dict(counts=np.ones(59)), r"shape \(60,\), got shape \(59,\)"),
    (dict(counts=np.r_[np.ones(59), -2.0]), r"counts\[59\] = -2.0"),
    (dict(counts=np.r_[np.nan, np.ones(59)]), r"counts\[0\] = nan"),
    (dict(counts=np.array(["a"] * 60)), "counts must be numbers"),
    (dict(table=np.ones(60)), "2-D"),
    (dict(seed=-1), "seed must be an integer >= 0, got -1"),
])
def test_from_counts_refuses_bad_input_naming_the_value(setup, kwargs, match):
    table, counts, _ = setup
    args = dict(table=table, counts=counts, keep=K, oov_buckets=B, seed=0) | kwargs
    with pytest.raises(ValueError, match=match):
        PrunedEmbedding.from_counts(**args)


@pytest.mark.parametrize("weight, id_map, keep, match", [
    (np.ones((4, 2)), np.zeros(5, np.int32), 2, "float32"),
    (np.ones((4, 2), np.float32), np.zeros(5), 2, "integer array"),
    (np.ones((4, 2), np.float32), np.zeros(5, np.int32), 5, "keep=5 exceeds"),
    (np.ones((4, 2), np.float32), np.array([0, 1, 4, 0, 0]), 2, r"id_map\[2\] = 4"),
])
def test_constructor_refuses_arrays_that_do_not_fit(weight, id_map, keep, match):
    with pytest.raises(ValueError, match=match):
        PrunedEmbedding(weight, id_map, keep)
