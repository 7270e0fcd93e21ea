"""FactorizedEmbedding: rows A[i] @ B, trained through both factors, and the truncated SVD it is built from.
The protocol every table offers (lookup, bag, save/load, EmbeddingLayer, ...) is test_protocol.py."""

import numpy as np
import pytest

import tinyembed as te
from tinyembed.nn import Embedding
from tinyembed.optim import Adam
from tinyembed.tables.factorized import FactorizedEmbedding


def _table(num=12, dim=6, rank=3, dtype=np.float32, seed=0):
    return FactorizedEmbedding(num, dim, rank, seed=seed, dtype=dtype)


ID_SHAPES = [(), (0,), (5,), (3, 4), (2, 0, 3)]


# -- rows ------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", ID_SHAPES)
def test_rows_are_the_product_of_the_two_factors(shape):
    table = _table()
    ids = np.random.default_rng(1).integers(0, 12, size=shape)
    A, B = table.A.data.astype(np.float64), table.B.data.astype(np.float64)
    expected = (A[ids] @ B).reshape(shape + (6,))  # brute force, in float64
    np.testing.assert_allclose(table.lookup(ids), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype, itemsize", [(np.float32, 4), (np.float64, 8)])
def test_nbytes_and_num_parameters_count_both_factors(dtype, itemsize):
    table = FactorizedEmbedding(1000, 64, 8, seed=0, dtype=dtype)
    assert table.nbytes == (1000 * 8 + 8 * 64) * itemsize
    assert table.num_parameters() == 1000 * 8 + 8 * 64


def test_new_table_rows_have_unit_variance_like_a_dense_embedding():
    rows = FactorizedEmbedding(2000, 512, 32, seed=0).to_dense()  # sd of the estimate: sqrt(2 / (32 * 512)) ~ 1%
    assert rows.var() == pytest.approx(1.0, rel=0.05)


# -- from_float: the truncated SVD ---------------------------------------------------------------
@pytest.mark.parametrize("num, dim, rank", [(40, 10, 1), (40, 10, 4), (40, 10, 10), (8, 20, 8), (8, 20, 3)])
def test_from_float_is_the_best_rank_r_approximation(num, dim, rank):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(num + rank).standard_normal((num, dim))
    table = FactorizedEmbedding.from_float(x, rank, dtype=np.float64)
    approx = table.A.data @ table.B.data
    # Reference: torch's SVD, truncated (unique: random matrices have distinct singular values).
    u, s, vh = torch.linalg.svd(torch.from_numpy(x), full_matrices=False)
    best = (u[:, :rank] * s[:rank]) @ vh[:rank]
    np.testing.assert_allclose(approx, best.numpy(), atol=1e-10)
    # Eckart-Young: the error is the root of the discarded singular values' squares.
    assert np.linalg.norm(x - approx) == pytest.approx(float(torch.sqrt((s[rank:] ** 2).sum())), abs=1e-10)
    assert np.linalg.matrix_rank(approx) == rank


def test_from_float_splits_each_singular_value_evenly_between_the_factors():
    x = np.random.default_rng(3).standard_normal((30, 9))
    table = FactorizedEmbedding.from_float(x, 5, dtype=np.float64)
    s = np.linalg.svd(x, compute_uv=False)[:5]
    A, B = table.A.data, table.B.data
    np.testing.assert_allclose(A.T @ A, np.diag(s), atol=1e-10)  # U_r^T U_r = I
    np.testing.assert_allclose(B @ B.T, np.diag(s), atol=1e-10)


def test_from_float_of_float32_is_within_float32_rounding_of_the_optimum():
    x = np.random.default_rng(4).standard_normal((200, 32)).astype(np.float32)
    table = FactorizedEmbedding.from_float(x, 8)
    assert table.A.dtype == np.float32 and table.B.dtype == np.float32
    s = np.linalg.svd(x.astype(np.float64), compute_uv=False)
    bound = np.sqrt(np.sum(s[8:] ** 2))
    assert np.linalg.norm(x - table.to_dense().astype(np.float64)) == pytest.approx(bound, rel=1e-5)


def test_from_float_takes_any_embedding_table():
    x = np.random.default_rng(5).standard_normal((20, 6)).astype(np.float32)
    from_array = FactorizedEmbedding.from_float(x, 3)
    from_table = FactorizedEmbedding.from_float(Embedding.from_pretrained(x), 3)
    np.testing.assert_array_equal(from_array.to_dense(), from_table.to_dense())


@pytest.mark.parametrize("rank", [0, -1, 8, 100, 2.5, True])
def test_from_float_refuses_a_rank_outside_one_to_min_v_d(rank):
    x = np.ones((12, 7), np.float32)  # min(V, D) = 7, so rank 7 is allowed
    with pytest.raises(ValueError, match=rf"min\(V, D\).*\[1, 7\], got {rank!r}"):
        FactorizedEmbedding.from_float(x, rank)
    assert FactorizedEmbedding.from_float(x, 7).rank == 7


@pytest.mark.parametrize("bad, match", [
    (np.ones(5), "2-D"),
    (np.array([[1.0, np.nan], [0.0, 1.0]]), "non-finite value nan at row 0, column 1"),
])
def test_from_float_refuses_a_bad_table(bad, match):
    with pytest.raises(ValueError, match=match):
        FactorizedEmbedding.from_float(bad, 1)


# -- training ----------------------------------------------------------------------------------
def test_gradients_of_both_factors_match_finite_differences():
    table = _table(num=7, dim=5, rank=3, dtype=np.float64)
    ids = np.array([[0, 3, 3], [6, 0, 2]])  # repeated ids add up
    te.gradcheck(lambda *params: table(ids), list(table.parameters()))
    assert {name for name, _ in table.named_parameters()} == {"A", "B"}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_learns_a_regression_task_down_to_near_the_eckart_young_bound(dtype):
    num, dim, rank = 64, 16, 8
    rng = np.random.default_rng(0)
    target = rng.standard_normal((num, dim)).astype(dtype)
    table = FactorizedEmbedding(num, dim, rank, seed=0, dtype=dtype)
    opt = Adam(table.parameters(), lr=0.05)
    ids = np.arange(num)
    losses = []
    for _ in range(300):
        diff = table(ids) - te.Tensor(target)
        loss = (diff * diff).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.item()))
    assert losses[-1] < 0.5 * losses[0]
    # No rank-8 table beats the truncated SVD of the target; training gets close to it.
    s = np.linalg.svd(target.astype(np.float64), compute_uv=False)
    floor = np.sum(s[rank:] ** 2) / (num * dim)
    assert floor * (1 - 1e-4) <= losses[-1] < 1.05 * floor


# -- configuration and bad input --------------------------------------------------------------
def test_repr_shows_the_configuration():
    assert repr(_table()) == "FactorizedEmbedding(12, 6, rank=3)"
    assert "dtype=float64" in repr(_table(dtype=np.float64))


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(num_embeddings=0, embedding_dim=4, rank=1), ValueError, "num_embeddings must be a positive integer, got 0"),
    (dict(num_embeddings=5, embedding_dim=-2, rank=1), ValueError, "embedding_dim must be a positive integer, got -2"),
    (dict(num_embeddings=5, embedding_dim=4, rank=5), ValueError, r"\[1, 4\], got 5"),
    (dict(num_embeddings=3, embedding_dim=4, rank=4), ValueError, r"\[1, 3\], got 4"),
    (dict(num_embeddings=5, embedding_dim=4, rank="2"), ValueError, "got '2'"),
    (dict(num_embeddings=5, embedding_dim=4, rank=2, dtype=np.int32), TypeError, "float32 or float64"),
])
def test_bad_constructor_input_is_refused_naming_the_value(kwargs, error, match):
    with pytest.raises(error, match=match):
        FactorizedEmbedding(**kwargs)


@pytest.mark.parametrize("A, B, match", [
    (np.ones((4, 2)), np.ones((3, 5)), r"A \(V, r\) and B \(r, D\)"),
    (np.ones((4, 2)), np.ones((2, 5), np.float32), "share a dtype"),
    (np.ones((4, 3)), np.ones((3, 2)), r"\[1, 2\], got 3"),
])
def test_from_factors_refuses_factors_that_do_not_fit(A, B, match):
    with pytest.raises(ValueError, match=match):
        FactorizedEmbedding.from_factors(A, B)


# -- a real table ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def minilm():
    from tinyembed.io.assets import minilm_tensor

    return minilm_tensor("embeddings.word_embeddings.weight")


def _mean_cosine(a, b):
    a, b = a.astype(np.float64), b.astype(np.float64)
    return float(np.mean(np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))))


def test_minilm_word_table_at_rank_64_and_128(minilm):
    x = minilm.astype(np.float64)
    energy = np.sort(np.linalg.eigvalsh(x.T @ x))[::-1]  # squared singular values, without an SVD
    cosines = {}
    for rank in (64, 128):
        table = FactorizedEmbedding.from_float(minilm, rank)
        approx = table.to_dense()
        cosines[rank] = _mean_cosine(minilm, approx)
        error = np.linalg.norm(x - approx)
        assert error == pytest.approx(np.sqrt(np.sum(energy[rank:])), rel=1e-4)
        assert table.compression_ratio == pytest.approx(30522 * 384 / ((30522 + 384) * rank))
    print(f"MiniLM word table, mean row cosine: rank 64 {cosines[64]:.4f}, rank 128 {cosines[128]:.4f}")
    # Measured: 0.6876 at rank 64, 0.8210 at rank 128. A sanity bound only.
    assert 0.5 < cosines[64] < cosines[128] < 1.0
