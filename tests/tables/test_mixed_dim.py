"""MixedDimEmbedding: frequency-ranked blocks with power-law widths, projected to one width, trained.
The protocol every table offers (lookup, bag, save/load, EmbeddingLayer, ...) is test_protocol.py."""

import math

import numpy as np
import pytest
from table_files import rewrite

import tinyembed as te
from tinyembed.optim import Adam
from tinyembed.tables.mixed_dim import MixedDimEmbedding, power_law_dims

SIZES, DIMS = [4, 6, 10], [8, 3, 1]  # V = 20, D = 8: the first block needs no projection


def _table(dtype=np.float32, seed=0, id_rank=None):
    if id_rank is None:
        id_rank = np.random.default_rng(9).permutation(20)
    return MixedDimEmbedding(20, 8, SIZES, DIMS, id_rank=id_rank, seed=seed, dtype=dtype)


def brute_force_row(table, i):
    """Row of id i by the definition, in float64: find its block by walking the block sizes."""
    rank = int(table.id_rank[i])
    start = 0
    for k, n in enumerate(table.block_sizes):
        if rank < start + n:
            row = table.state_arrays()[f"block{k}_weight"][rank - start].astype(np.float64)
            proj = table.state_arrays().get(f"block{k}_projection")
            return row if proj is None else row @ proj.astype(np.float64)
        start += n
    raise AssertionError("rank outside every block")


# -- the sizing rule ------------------------------------------------------------------------------
def test_power_law_dims_follow_d_proportional_to_popularity_to_the_alpha():
    p, n = [0.05, 0.02, 0.001, 0.0], [4, 10, 100, 1000]
    for alpha in (0.25, 0.5, 1.0):
        # The most popular block gets D; the others D (p_k / p_max)^alpha, rounded, at least 1.
        expected = [min(64, max(1, round(64 * (pk / 0.05) ** alpha))) for pk in p]
        assert power_law_dims(p, n, 64, alpha) == expected
    assert power_law_dims(p, n, 64, 0.5) == [64, 40, 9, 1]


def test_power_law_dims_with_a_budget_is_algorithm_1():
    p, n = np.array([0.1, 0.01, 0.001]), np.array([5, 50, 500])
    budget, alpha = 3000, 0.5
    lam = budget / sum(nk * pk**alpha for nk, pk in zip(n, p, strict=True))  # lambda = B / sum_k n_k p_k^alpha
    expected = [min(200, max(1, round(lam * pk**alpha))) for pk in p]
    assert power_law_dims(p, n, 200, alpha, budget=budget) == expected
    # Before rounding, the block tables use the budget exactly.
    assert sum(nk * lam * pk**alpha for nk, pk in zip(n, p, strict=True)) == pytest.approx(budget)
    assert expected == [42, 13, 4]
    assert power_law_dims(p, n, 10, alpha, budget=budget) == [10, 10, 4]  # capped at D


def test_power_law_dims_reproduce_dlrm_md_solver_for_tables_of_n_rows():
    # DLRM's md_solver sizes whole tables: one query per table, so one row of a table of n
    # rows is queried with probability 1/n, and d = d0 * (n_min / n)^alpha.
    n = np.array([100, 400, 1600, 25600])
    d0, alpha = 64, 0.5
    expected = [max(1, round(d0 * (n.min() / nk) ** alpha)) for nk in n]
    assert power_law_dims(1.0 / n, n, d0, alpha) == expected == [64, 32, 16, 4]


def test_alpha_zero_gives_every_block_the_full_width():
    assert power_law_dims([0.3, 0.01, 0.0], [1, 2, 3], 12, alpha=0) == [12, 12, 12]


@pytest.mark.parametrize("kwargs, match", [
    (dict(alpha=-0.5), "alpha must be a finite number >= 0, got -0.5"),
    (dict(alpha=float("nan")), "alpha must be a finite number >= 0, got nan"),
    (dict(budget=0), "budget must be a finite number > 0, got 0"),
    (dict(popularity=[0.0, 0.0]), "not all 0"),
    (dict(popularity=[0.5, -0.1]), "popularity must be finite, >= 0"),
    (dict(block_sizes=[1, 2, 3]), "one length"),
    (dict(embedding_dim=0), "embedding_dim must be a positive integer, got 0"),
])
def test_power_law_dims_refuse_bad_input(kwargs, match):
    args = dict(popularity=[0.5, 0.1], block_sizes=[1, 2], embedding_dim=8, alpha=0.5) | kwargs
    with pytest.raises(ValueError, match=match):
        power_law_dims(**args)


# -- from_counts ---------------------------------------------------------------------------------
def test_from_counts_ranks_ids_splits_equal_blocks_and_sizes_them_by_popularity():
    rng = np.random.default_rng(1)
    counts = rng.zipf(1.5, size=50) * (rng.random(50) < 0.8)  # heavy-tailed, some zeros, ties
    table = MixedDimEmbedding.from_counts(counts, 32, num_blocks=4, alpha=0.5, seed=0)
    ranking = sorted(range(50), key=lambda i: (-counts[i], i))  # equal counts: lower id first
    assert [ranking[r] for r in range(50)] == [int(np.flatnonzero(table.id_rank == r)[0]) for r in range(50)]
    assert table.block_sizes == (13, 13, 12, 12)
    total, start, expected_dims = counts.sum(), 0, []
    for n in table.block_sizes:
        p = sum(counts[i] for i in ranking[start:start + n]) / total / n
        expected_dims.append(p)
        start += n
    top = max(expected_dims)
    assert list(table.block_dims) == [min(32, max(1, round(32 * math.sqrt(p / top)))) for p in expected_dims]
    assert table.block_dims[0] == 32 and list(table.block_dims) == sorted(table.block_dims, reverse=True)


def test_from_counts_takes_explicit_block_sizes_and_a_budget():
    counts = np.arange(30, 0, -1)  # already ranked: id i has rank i
    table = MixedDimEmbedding.from_counts(counts, 16, block_sizes=[5, 10, 15], alpha=1.0, budget=200)
    np.testing.assert_array_equal(table.id_rank, np.arange(30))
    n = np.array([5, 10, 15])
    p = np.array([counts[:5].sum(), counts[5:15].sum(), counts[15:].sum()]) / counts.sum() / n
    assert list(table.block_dims) == power_law_dims(p, n, 16, 1.0, budget=200)


@pytest.mark.parametrize("kwargs, match", [
    (dict(counts=np.zeros(10)), "all 0"),
    (dict(counts=np.r_[np.ones(9), -1]), r"counts\[9\] = -1"),
    (dict(counts=np.r_[np.inf, np.ones(9)]), r"counts\[0\] = inf"),
    (dict(counts=np.ones((2, 5))), "1-D"),
    (dict(num_blocks=11), r"num_blocks \(at most V\) must be an integer in \[1, 10\], got 11"),
    (dict(num_blocks=0), r"num_blocks \(at most V\) must be an integer in \[1, 10\], got 0"),
    (dict(block_sizes=[5, 4]), r"add up to num_embeddings=10, got \[5, 4\]"),
    (dict(block_sizes=[5, 5], num_blocks=3), "num_blocks=3 disagrees with the 2 block_sizes"),
    (dict(alpha=-1), "alpha must be a finite number >= 0, got -1"),
])
def test_from_counts_refuses_bad_input_naming_the_value(kwargs, match):
    args = dict(counts=np.arange(10, 0, -1), embedding_dim=8) | kwargs
    with pytest.raises(ValueError, match=match):
        MixedDimEmbedding.from_counts(**args)


# -- rows ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(), (0,), (9,), (4, 5)])
def test_rows_are_each_blocks_row_times_its_projection_in_id_order(shape):
    table = _table()
    ids = np.random.default_rng(2).integers(0, 20, size=shape)
    expected = np.array([brute_force_row(table, i) for i in ids.reshape(-1)]).reshape(shape + (8,))
    np.testing.assert_allclose(table.lookup(ids), expected, rtol=1e-5, atol=1e-6)


def test_full_width_block_has_no_projection_and_its_rows_are_exact():
    table = _table()
    assert "block0_projection" not in table.state_arrays() and "block1_projection" in table.state_arrays()
    top = np.flatnonzero(table.id_rank < 4)  # the ids of block 0
    np.testing.assert_array_equal(table.lookup(top), table.block0_weight.data[table.id_rank[top]])
    np.testing.assert_array_equal(table.to_dense()[top], table.lookup(top))


def test_new_table_rows_have_unit_variance_like_a_dense_embedding():
    # A projected block's row variance is trace(P^T P) / D: its estimate has sd sqrt(2 / (d_k D)) <= 1.6% here.
    table = MixedDimEmbedding(6000, 512, [1000, 2000, 3000], [512, 64, 16], seed=0)
    assert table.to_dense().var() == pytest.approx(1.0, rel=0.05)


@pytest.mark.parametrize("dtype, itemsize", [(np.float32, 4), (np.float64, 8)])
def test_nbytes_counts_blocks_projections_and_the_rank_map(dtype, itemsize):
    table = _table(dtype=dtype)
    numbers = 4 * 8 + 6 * 3 + 10 * 1 + 3 * 8 + 1 * 8  # block tables, then the two projections
    assert table.nbytes == numbers * itemsize + 20 * 4  # id_rank is int32
    assert table.num_parameters() == numbers


# -- training ------------------------------------------------------------------------------------
def test_gradients_of_every_block_and_projection_match_finite_differences():
    table = _table(dtype=np.float64)
    ids = np.array([[0, 5, 5, 19], [3, 11, 0, 7]])
    assert len({int(np.searchsorted([4, 10], table.id_rank[i], side="right")) for i in ids.reshape(-1)}) == 3
    te.gradcheck(lambda *params: table(ids), list(table.parameters()))
    assert {name for name, _ in table.named_parameters()} == {
        "block0_weight", "block1_weight", "block1_projection", "block2_weight", "block2_projection"}


def test_blocks_the_batch_does_not_touch_get_no_gradient():
    table = _table(dtype=np.float64)
    ids = np.flatnonzero(table.id_rank < 4)[:2]  # block 0 only
    (table(ids) * 1.0).sum().backward()
    assert table.block0_weight.grad is not None
    assert table.block1_weight.grad is None and table.block2_projection.grad is None


def _blockwise_floor(target, table):
    """The least mean squared error any table of these blocks can reach: each block is a
    rank-d_k product, so by Eckart-Young its best fit drops all but its d_k largest singular values."""
    ranks = table.id_rank
    total, start = 0.0, 0
    for n, d in zip(table.block_sizes, table.block_dims, strict=True):
        rows = target[np.argsort(ranks)[start:start + n]].astype(np.float64)
        s = np.linalg.svd(rows, compute_uv=False)
        total += np.sum(s[d:] ** 2)
        start += n
    return total / target.size


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_learns_a_regression_task_down_to_near_the_blockwise_optimum(dtype):
    num, dim = 64, 16
    rng = np.random.default_rng(0)
    counts = rng.permutation(np.arange(num, 0, -1) ** 2)  # skewed, in shuffled id order
    table = MixedDimEmbedding.from_counts(counts, dim, num_blocks=4, alpha=0.5, seed=0, dtype=dtype)
    assert table.block_dims[0] == dim and table.block_dims[-1] < dim
    target = rng.standard_normal((num, dim)).astype(dtype)
    opt = Adam(table.parameters(), lr=0.05)
    ids = np.arange(num)
    losses = []
    for _ in range(400):
        diff = table(ids) - te.Tensor(target)
        loss = (diff * diff).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.item()))
    assert losses[-1] < 0.5 * losses[0]
    floor = _blockwise_floor(target, table)
    assert floor * (1 - 1e-4) <= losses[-1] < 1.05 * floor


# -- save / load -------------------------------------------------------------------------------
def test_config_records_the_block_sizes_and_widths():
    config = _table().config()
    assert config["block_sizes"] == SIZES and config["block_dims"] == DIMS


def _duplicate_rank(arrays):
    id_rank = arrays["id_rank"].copy()
    id_rank[id_rank == 3] = 4  # rank 4 twice, rank 3 never
    return {**arrays, "id_rank": id_rank}


@pytest.mark.parametrize("change, match", [
    (lambda a: {**a, "block0_projection": np.zeros((8, 8), np.float32)}, "the file has"),
    (_duplicate_rank, "rank 3 is missing"),
])
def test_load_refuses_a_projection_of_the_full_width_block_or_a_repeated_rank(tmp_path, change, match):
    good, bad = tmp_path / "good.safetensors", tmp_path / "bad.safetensors"
    table = _table()
    table.save(good)
    rewrite(good, bad, change(table.state_arrays()))
    with pytest.raises(ValueError, match=match):
        MixedDimEmbedding.load(bad)


# -- configuration and bad input --------------------------------------------------------------
def test_repr_shows_the_configuration():
    table = MixedDimEmbedding(20, 8, SIZES, DIMS)
    assert repr(table) == "MixedDimEmbedding(20, 8, block_sizes=[4, 6, 10], block_dims=[8, 3, 1])"
    np.testing.assert_array_equal(table.id_rank, np.arange(20))  # default: ids already ranked


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(num_embeddings=0), ValueError, "num_embeddings must be a positive integer, got 0"),
    (dict(block_sizes=[4, 6, 9]), ValueError, r"add up to num_embeddings=20, got \[4, 6, 9\] \(sum 19\)"),
    (dict(block_sizes=[4, 0, 16]), ValueError, r"block_sizes\[1\] must be a positive integer, got 0"),
    (dict(block_dims=[8, 9, 1]), ValueError, r"block_dims\[1\]=9 exceeds embedding_dim=8"),
    (dict(block_dims=[8, 3]), ValueError, "2 dims"),
    (dict(block_sizes=[], block_dims=[]), ValueError, "non-empty"),
    (dict(id_rank=np.arange(19)), ValueError, r"id_rank must be \(20,\) integers"),
    (dict(id_rank=np.r_[np.arange(19), 25]), ValueError, "rank 19 is missing"),
    (dict(id_rank=np.arange(20.0)), ValueError, "integers"),
    (dict(dtype=np.float16), TypeError, "float32 or float64"),
])
def test_bad_constructor_input_is_refused_naming_the_value(kwargs, error, match):
    args = dict(num_embeddings=20, embedding_dim=8, block_sizes=SIZES, block_dims=DIMS) | kwargs
    with pytest.raises(error, match=match):
        MixedDimEmbedding(**args)
