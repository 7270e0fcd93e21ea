"""HashedEmbedding and QREmbedding: hashes and index pairs checked against Python integer
arithmetic and brute-force loops, gradients, and that both learn. The protocol every table
offers (lookup, bag, save/load, EmbeddingLayer, ...) is test_protocol.py."""

import math

import numpy as np
import pytest
from table_cases import CASES
from table_files import rewrite

import tinyembed as te
from tinyembed.nn import Linear, init
from tinyembed.optim import Adam, SparseAdam
from tinyembed.sparse import RowSparseGrad
from tinyembed.tables.hashing import MERSENNE_61, HashedEmbedding, QREmbedding, universal_hash

P = 2**61 - 1  # the Mersenne prime, written out independently of the module


def reference_hash(i: int, a: int, b: int, m: int) -> int:
    """The universal hash in Python's unbounded integers: no overflow to get wrong."""
    return ((a * i + b) % P) % m


def reference_hashed_row(table: HashedEmbedding, i: int) -> np.ndarray:
    """Sum (or mean) of the rows of id i's buckets, with signs, in Python integers and float64."""
    w = table.weight.data.astype(np.float64)
    row = np.zeros(table.embedding_dim)
    for k, (a, b) in enumerate(table.hash_params.tolist()):
        sign = 1.0
        if table.signed:
            c, d = table.sign_params[k].tolist()
            sign = 1.0 if ((c * i + d) % P) % 2 == 0 else -1.0
        row += sign * w[reference_hash(i, a, b, table.num_buckets)]
    return row / table.num_hashes if table.combiner == "mean" else row


def reference_qr_row(table: QREmbedding, i: int) -> np.ndarray:
    """The paper's row: Q[i // m] (op) R[i % m], by division in Python integers."""
    m = table.num_collisions
    q, r = table.quotient_weight.data[i // m], table.remainder_weight.data[i % m]
    return {"mult": lambda: q * r, "add": lambda: q + r, "concat": lambda: np.concatenate([q, r])}[table.combiner]()


# The hashed and quotient-remainder tables of the protocol tests (37 ids, width 6), by the names used here.
TABLES = {kind: CASES[name].make for kind, name in [
    ("hashed_sum", "Hashed-sum"), ("hashed_mean_signed", "Hashed-mean-signed"), ("hashed_one_hash", "Hashed-one-hash"),
    ("qr_mult", "QR-mult"), ("qr_add", "QR-add"), ("qr_concat", "QR-concat"),
]}
table_kinds = pytest.mark.parametrize("kind", sorted(TABLES))


def expected_nbytes(table) -> int:
    """Stored bytes from the configuration alone, not from state_arrays."""
    if isinstance(table, HashedEmbedding):
        params = 2 * table.num_hashes * 8 * (2 if table.signed else 1)  # int64 (a, b) [and (c, d)] per hash
        return table.num_buckets * table.embedding_dim * 4 + params
    width = table.embedding_dim // 2 if table.combiner == "concat" else table.embedding_dim
    quotients = math.ceil(table.num_embeddings / table.num_collisions)
    return (quotients + table.num_collisions) * width * 4


# -- the universal hash ---------------------------------------------------------------------------
def test_module_prime_is_the_mersenne_prime_2_61_minus_1():
    # Miller-Rabin with the prime bases up to 37 is deterministic below 3.1e23 (P is 2.3e18).
    assert MERSENNE_61 == P
    d, s = P - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for base in (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37):
        x = pow(base, d, P)
        assert x in (1, P - 1) or any(pow(x, 2**j, P) == P - 1 for j in range(1, s))


@pytest.mark.parametrize("seed", range(5))
def test_universal_hash_equals_python_integer_arithmetic_without_overflow(seed):
    rng = np.random.default_rng(seed)
    ids = np.concatenate([
        rng.integers(0, 2**63 - 1, size=300, dtype=np.int64),  # far beyond p: the split multiply must be exact
        rng.integers(0, 10**6, size=300),
        np.array([0, 1, P - 1, P, P + 1, 2 * P, 2**62, 2**63 - 1], dtype=np.int64),
    ])
    for a, b in [(int(rng.integers(1, P)), int(rng.integers(0, P))), (P - 1, P - 1), (1, 0), (2**32 + 1, 2**61 - 2)]:
        for m in (1, 2, 97, 2**20, 2**40 + 15):
            got = universal_hash(ids, a, b, m)
            want = [reference_hash(int(i), a, b, m) for i in ids]
            assert got.dtype == np.int64
            np.testing.assert_array_equal(got, want)


def test_bucket_ids_and_signs_are_the_stored_hash_functions():
    table = HashedEmbedding(10**6, 4, num_buckets=1000, num_hashes=3, seed=7, signed=True)
    ids = np.random.default_rng(0).integers(0, 10**6, size=(20, 3))
    buckets, signs = table.bucket_ids(ids), table.signs(ids)
    assert buckets.shape == signs.shape == (20, 3, 3)
    for pos in np.ndindex(ids.shape):
        i = int(ids[pos])
        for k in range(3):
            a, b = table.hash_params[k].tolist()
            c, d = table.sign_params[k].tolist()
            assert buckets[pos + (k,)] == reference_hash(i, a, b, 1000)
            assert signs[pos + (k,)] == (1 if ((c * i + d) % P) % 2 == 0 else -1)


def test_hash_parameters_are_in_range_and_hashes_are_independent():
    table = HashedEmbedding(100, 2, num_buckets=10, num_hashes=64, seed=0)
    a, b = table.hash_params[:, 0], table.hash_params[:, 1]
    assert table.hash_params.dtype == np.int64
    assert ((1 <= a) & (a < P) & (0 <= b) & (b < P)).all()
    assert len(set(a.tolist())) == 64  # 64 draws from 2^61 values: repeats would mean a broken stream


def test_pairwise_collision_rate_is_near_one_over_num_buckets():
    # Universal hashing: two distinct ids share a bucket with probability about 1/B.
    ids = np.arange(3000)
    for seed in range(3):
        table = HashedEmbedding(3000, 2, num_buckets=100, num_hashes=1, seed=seed)
        counts = np.bincount(table.bucket_ids(ids)[:, 0], minlength=100)
        colliding_pairs = (counts * (counts - 1) / 2).sum()
        rate = colliding_pairs / (3000 * 2999 / 2)
        assert abs(rate - 1 / 100) < 0.1 / 100, rate
        # Sequential ids must not crowd into few buckets (as `i mod B` would not, but a*i mod p could).
        assert counts.max() < 3 * 30


def test_signs_are_balanced():
    table = HashedEmbedding(20000, 2, num_buckets=10, num_hashes=2, seed=0, signed=True)
    signs = table.signs(np.arange(20000))
    assert set(np.unique(signs)) == {-1.0, 1.0}
    assert abs(signs.mean()) < 0.03


def test_same_seed_gives_same_buckets_and_rows_other_seed_does_not():
    ids = np.arange(500)
    a = HashedEmbedding(500, 4, num_buckets=50, seed=11)
    b = HashedEmbedding(500, 4, num_buckets=50, seed=11)
    c = HashedEmbedding(500, 4, num_buckets=50, seed=12)
    np.testing.assert_array_equal(a.bucket_ids(ids), b.bucket_ids(ids))
    np.testing.assert_array_equal(a.to_dense(), b.to_dense())
    assert (a.bucket_ids(ids) != c.bucket_ids(ids)).mean() > 0.9


def test_initializer_does_not_change_where_ids_hash():
    a = HashedEmbedding(500, 4, num_buckets=50, seed=3, init="normal")
    b = HashedEmbedding(500, 4, num_buckets=50, seed=3, init="uniform")
    np.testing.assert_array_equal(a.hash_params, b.hash_params)
    assert not np.allclose(a.weight.data, b.weight.data)


# -- rows against brute force ---------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["hashed_sum", "hashed_mean_signed", "hashed_one_hash"])
def test_hashed_rows_are_the_sum_or_mean_of_their_signed_buckets(kind):
    table = TABLES[kind]()
    dense = table.to_dense()
    assert dense.dtype == np.float32 and dense.shape == (37, 6)
    want = np.stack([reference_hashed_row(table, i) for i in range(37)])
    np.testing.assert_allclose(dense, want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kind", ["qr_mult", "qr_add", "qr_concat"])
def test_qr_rows_follow_the_quotient_remainder_formula(kind):
    table = TABLES[kind]()
    want = np.stack([reference_qr_row(table, i) for i in range(37)])
    np.testing.assert_allclose(table.to_dense(), want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("num, m", [(37, 5), (40, 5), (7, 7), (7, 10), (1, 1), (100, 1)])
@pytest.mark.parametrize("combiner, width", [("mult", 8), ("add", 8), ("concat", 4)])
def test_qr_tables_have_ceil_v_over_m_quotient_rows_and_m_remainder_rows(num, m, combiner, width):
    table = QREmbedding(num, 8, num_collisions=m, combiner=combiner, seed=0)
    assert table.quotient_weight.shape == (math.ceil(num / m), width)
    assert table.remainder_weight.shape == (m, width)
    q, r = table.split_ids(np.arange(num))
    np.testing.assert_array_equal(q * m + r, np.arange(num))
    assert q.max() == math.ceil(num / m) - 1 and r.max() == min(num, m) - 1


@pytest.mark.parametrize("combiner", ["mult", "add", "concat"])
@pytest.mark.parametrize("num, m", [(24, 4), (25, 4), (30, 7), (50, 50), (50, 1), (64, 8)])
def test_qr_gives_every_id_a_distinct_pair_and_a_distinct_row(num, m, combiner):
    table = QREmbedding(num, 4, num_collisions=m, combiner=combiner, seed=0)
    q, r = table.split_ids(np.arange(num))
    assert len(set(zip(q.tolist(), r.tolist(), strict=True))) == num
    dense = table.to_dense()
    gaps = np.abs(dense[:, None, :] - dense[None, :, :]).max(axis=-1)  # (V, V) largest coordinate gap
    np.fill_diagonal(gaps, np.inf)
    assert gaps.min() > 1e-4  # all V rows pairwise distinct, exhaustively


@pytest.mark.parametrize("num, m", [(24, 4), (50, 5), (64, 8)])
def test_plain_hashing_with_the_same_memory_forces_collisions_qr_does_not(num, m):
    qr = QREmbedding(num, 4, num_collisions=m, combiner="mult", seed=0)
    buckets = qr.nbytes // (4 * 4)  # as many float32 rows of width 4 as QR stores
    hashed = HashedEmbedding(num, 4, num_buckets=buckets, num_hashes=1, seed=0)
    assert hashed.weight.data.nbytes == qr.nbytes
    distinct_hashed = len(np.unique(hashed.to_dense(), axis=0))
    assert distinct_hashed <= buckets < num  # pigeonhole: some ids share a row
    assert len(np.unique(qr.to_dense(), axis=0)) == num


@pytest.mark.parametrize("combiner", ["mult", "add", "concat"])
def test_qr_default_init_gives_rows_of_unit_variance_and_init_is_configurable(combiner):
    dense = QREmbedding(20000, 8, num_collisions=150, combiner=combiner, seed=0).to_dense()
    assert abs(dense.mean()) < 0.05 and dense.var() == pytest.approx(1.0, rel=0.1)
    small = QREmbedding(20000, 8, num_collisions=150, combiner=combiner, seed=0, init=init.normal(std=0.1))
    assert small.quotient_weight.data.std() == pytest.approx(0.1, rel=0.1)


def test_signed_hashing_zeroes_ids_whose_two_buckets_coincide_with_opposite_signs():
    # The documented caveat of signed=True: h_1(i) = h_2(i) and s_1(i) = -s_2(i) cancel exactly.
    ids = np.arange(4000)
    signed = HashedEmbedding(4000, 4, num_buckets=50, num_hashes=2, seed=0, signed=True)
    buckets, signs = signed.bucket_ids(ids), signed.signs(ids)
    cancelled = (buckets[:, 0] == buckets[:, 1]) & (signs[:, 0] == -signs[:, 1])
    assert 10 < cancelled.sum() < 80  # about 4000 / (2 * 50) = 40
    dense = signed.to_dense()
    assert (dense[cancelled] == 0).all() and (np.abs(dense[~cancelled]).sum(axis=1) > 0).all()
    signed(ids[cancelled]).sum().backward()
    np.testing.assert_array_equal(signed.weight.grad, 0)  # they cannot learn their way out
    unsigned = HashedEmbedding(4000, 4, num_buckets=50, num_hashes=2, seed=0)
    assert (np.abs(unsigned.to_dense()).sum(axis=1) > 0).all()


# -- sizes and files --------------------------------------------------------------------------------
@table_kinds
def test_nbytes_is_the_formula_of_the_configuration(kind):
    table = TABLES[kind]()
    assert table.nbytes == expected_nbytes(table)


def test_compression_at_vocabulary_scale():
    # MiniLM's vocabulary: 30522 x 384 float32 is 46.9 MB.
    hashed = HashedEmbedding(30522, 384, num_buckets=3000, num_hashes=2, seed=0)
    assert hashed.compression_ratio == pytest.approx(30522 * 384 * 4 / (3000 * 384 * 4 + 2 * 2 * 8))
    qr = QREmbedding(30522, 384, num_collisions=175, seed=0)  # ceil(30522/175) = 175 quotient rows
    assert qr.compression_ratio == pytest.approx(30522 / (175 + 175))
    assert qr.num_parameters() == (175 + 175) * 384


@pytest.mark.parametrize("kind", ["hashed_sum", "hashed_mean_signed", "hashed_one_hash"])
def test_a_reloaded_hashed_table_sends_every_id_to_the_same_buckets(kind, tmp_path):
    table = TABLES[kind]()
    table.save(tmp_path / "table.safetensors")
    loaded = HashedEmbedding.load(tmp_path / "table.safetensors")
    ids = np.arange(37)
    np.testing.assert_array_equal(loaded.bucket_ids(ids), table.bucket_ids(ids))
    np.testing.assert_array_equal(loaded.signs(ids), table.signs(ids))


def test_load_refuses_hash_parameters_outside_the_family(tmp_path):
    good, bad = tmp_path / "good.safetensors", tmp_path / "bad.safetensors"
    table = HashedEmbedding(37, 6, num_buckets=11, seed=1)
    table.save(good)
    hash_params = table.hash_params.copy()
    hash_params[1, 0] = 0
    rewrite(good, bad, {**table.state_arrays(), "hash_params": hash_params})
    with pytest.raises(ValueError, match="hash_params row 1 is \\(a=0"):
        HashedEmbedding.load(bad)


# -- gradients -------------------------------------------------------------------------------------
GRAD_IDS = np.array([[0, 5, 5, 36], [12, 0, 7, 7]])  # repeats, so bucket and row gradients accumulate


@pytest.mark.parametrize("combiner", ["sum", "mean"])
@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("sparse", [False, True])
def test_hashed_gradient_matches_finite_differences(combiner, signed, sparse):
    table = HashedEmbedding(37, 3, num_buckets=5, num_hashes=3, seed=0, combiner=combiner, signed=signed,
                            sparse=sparse, dtype=np.float64)
    assert te.gradcheck(lambda w: table(GRAD_IDS), [table.weight])
    if sparse:
        assert isinstance(table.weight.grad, RowSparseGrad)


@pytest.mark.parametrize("combiner", ["mult", "add", "concat"])
@pytest.mark.parametrize("sparse", [False, True])
def test_qr_gradient_matches_finite_differences(combiner, sparse):
    table = QREmbedding(37, 4, num_collisions=6, combiner=combiner, seed=0, sparse=sparse, dtype=np.float64)
    assert te.gradcheck(lambda q, r: table(GRAD_IDS), [table.quotient_weight, table.remainder_weight])


@pytest.mark.parametrize("make", [
    lambda s: HashedEmbedding(1000, 4, num_buckets=300, seed=0, signed=True, sparse=s),
    lambda s: QREmbedding(1000, 4, num_collisions=40, seed=0, sparse=s),
])
def test_sparse_gradient_equals_dense_gradient_and_touches_only_used_rows(make):
    ids = np.array([3, 999, 3, 512])
    dense, sparse = make(False), make(True)
    upstream = np.random.default_rng(0).standard_normal((4, 4)).astype(np.float32)
    dense(ids).backward(upstream)
    sparse(ids).backward(upstream)
    for pd, ps in zip(dense.parameters(), sparse.parameters(), strict=True):
        assert isinstance(ps.grad, RowSparseGrad) and ps.grad.nnz_rows <= 2 * len(ids)
        np.testing.assert_allclose(ps.grad.to_dense(), pd.grad, rtol=1e-6, atol=1e-6)


# -- learning --------------------------------------------------------------------------------------
def _mse(out, target):
    diff = out - te.Tensor(target)
    return (diff * diff).mean()


def _train(loss_fn, opt, steps):
    """Full-batch steps; returns (first loss, loss after the last step)."""
    first = float(loss_fn().data)
    for _ in range(steps):
        opt.zero_grad()
        loss_fn().backward()
        opt.step()
    return first, float(loss_fn().data)


@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("sparse", [False, True])
def test_hashed_table_learns_targets_down_to_the_least_squares_optimum(signed, sparse):
    # 50 ids through 40 buckets: the rows are A @ W for a fixed 50 x 40 matrix A (bucket
    # indicators times signs), so the best reachable loss is a least-squares residual.
    rng = np.random.default_rng(0)
    ids, target = np.arange(50), rng.standard_normal((50, 8)).astype(np.float32)
    table = HashedEmbedding(50, 8, num_buckets=40, num_hashes=2, seed=0, signed=signed, sparse=sparse)
    opt = (SparseAdam if sparse else Adam)(table.parameters(), lr=0.05)
    first, final = _train(lambda: _mse(table(ids), target), opt, steps=600)

    incidence = np.zeros((50, 40))
    np.add.at(incidence, (np.repeat(ids, 2), table.bucket_ids(ids).reshape(-1)), table.signs(ids).reshape(-1))
    best_w = np.linalg.lstsq(incidence, target.astype(np.float64), rcond=None)[0]
    optimum = np.mean((incidence @ best_w - target) ** 2)
    assert optimum < 0.5 * np.mean(target ** 2)  # the task is not trivially unreachable
    assert final < 0.5 * first
    assert final < optimum + 1e-3, (final, optimum)  # Adam finds the convex optimum


def _additive_optimum(q, r, target):
    """Least squares of target[i] ~ a[q_i] + b[r_i] (a two-way additive fit), by lstsq."""
    design = np.concatenate([np.eye(q.max() + 1)[q], np.eye(r.max() + 1)[r]], axis=1)
    coef = np.linalg.lstsq(design, target, rcond=None)[0]
    return np.mean((design @ coef - target) ** 2)


def _rank_one_optimum(q, r, target):
    """Best Q[q_i] * R[r_i] per column on a full (quotient x remainder) grid: rank-1 SVD."""
    total = 0.0
    for col in target.T:
        grid = np.zeros((q.max() + 1, r.max() + 1))
        grid[q, r] = col
        s = np.linalg.svd(grid, compute_uv=False)
        total += (s[1:] ** 2).sum()
    return total / target.size


@pytest.mark.parametrize("combiner", ["mult", "add", "concat"])
def test_qr_table_learns_targets_down_to_its_closed_form_optimum(combiner):
    # 56 ids, m = 8: a full 7 x 8 grid. 'add' is a two-way additive fit, 'concat' fits each half
    # by group means, 'mult' is a per-column rank-1 matrix: each has a closed-form best loss.
    rng = np.random.default_rng(1)
    ids, target = np.arange(56), rng.standard_normal((56, 6))
    table = QREmbedding(56, 6, num_collisions=8, combiner=combiner, seed=0)
    opt = Adam(table.parameters(), lr=0.03)
    first, final = _train(lambda: _mse(table(ids), target.astype(np.float32)), opt, 1500)
    q, r = ids // 8, ids % 8
    if combiner == "add":
        optimum = _additive_optimum(q, r, target)
    elif combiner == "concat":
        optimum = (_additive_optimum(q, np.zeros_like(r), target[:, :3]) * 3
                   + _additive_optimum(np.zeros_like(q), r, target[:, 3:]) * 3) / 6
    else:
        optimum = _rank_one_optimum(q, r, target)
    assert final < first
    assert final < optimum + 1e-3, (final, optimum)


@pytest.mark.parametrize("combiner", ["mult", "add", "concat"])
def test_qr_table_with_a_small_mlp_head_learns_arbitrary_targets(combiner):
    # The rows are all distinct, so a nonlinear head can fit targets no additive model can.
    rng = np.random.default_rng(2)
    ids, target = np.arange(50), rng.standard_normal((50, 3)).astype(np.float32)
    table = QREmbedding(50, 16, num_collisions=8, combiner=combiner, seed=0)
    hidden, head = Linear(16, 64, seed=1), Linear(64, 3, seed=2)
    params = [*table.parameters(), *hidden.parameters(), *head.parameters()]
    opt = Adam(params, lr=0.01)
    first, final = _train(lambda: _mse(head(hidden(table(ids)).tanh()), target), opt, steps=800)
    assert final < 0.5 * first
    assert final < 0.1 * np.mean(target ** 2), final


# -- a real table ---------------------------------------------------------------------------------
def test_minilm_rows_through_a_quarter_size_hashed_table():
    # 4096 real MiniLM word rows (ids 2000..6095: words, not [unused] slots) into 1024 buckets.
    # The best bucket table is the least-squares solution of A @ W ~ X; put it in the table
    # and check the table's lookup reproduces A @ W and how much of the rows survives.
    from tinyembed.io.assets import minilm_tensor

    x = minilm_tensor("embeddings.word_embeddings.weight")[2000:6096].astype(np.float64)
    ids, errors = np.arange(4096), {}
    for k in (1, 2):
        table = HashedEmbedding(4096, 384, num_buckets=1024, num_hashes=k, seed=0)
        incidence = np.zeros((4096, 1024))
        np.add.at(incidence, (np.repeat(ids, k), table.bucket_ids(ids).reshape(-1)), 1.0)
        # Normal equations: a 1024 x 1024 solve instead of a 4096 x 1024 one (any solution minimizes).
        table.weight.data[...] = np.linalg.lstsq(incidence.T @ incidence, incidence.T @ x, rcond=None)[0]
        approx = table.to_dense().astype(np.float64)
        np.testing.assert_allclose(approx, incidence @ table.weight.data, rtol=1e-5, atol=1e-5)
        errors[k] = np.linalg.norm(approx - x) / np.linalg.norm(x)
        cosine = np.mean(np.sum(approx * x, 1) / (np.linalg.norm(approx, axis=1) * np.linalg.norm(x, axis=1)))
        print(f"MiniLM rows 2000..6095, 1024 buckets, {k} hash(es): relative error {errors[k]:.4f}, "
              f"mean cosine {cosine:.4f}")
        # Measured: relative error 0.857, mean cosine 0.512 for both k. Sanity bounds only:
        # four ids per bucket keep about half of each row's direction, and lose most of its norm.
        assert 0.8 < errors[k] < 0.9 and 0.45 < cosine < 0.6
    assert errors[2] == pytest.approx(errors[1], abs=0.01)  # for reconstruction a 2nd hash buys nothing


# -- bad input -------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, match", [
    (dict(num_buckets=0), "num_buckets must be a positive integer, got 0"),
    (dict(num_buckets=-3), "num_buckets must be a positive integer, got -3"),
    (dict(num_buckets=2.5), "num_buckets must be a positive integer, got 2.5"),
    (dict(num_hashes=0), "num_hashes must be a positive integer, got 0"),
    (dict(num_hashes=-1), "num_hashes must be a positive integer, got -1"),
    (dict(num_embeddings=0), "num_embeddings must be a positive integer, got 0"),
    (dict(embedding_dim=0), "embedding_dim must be a positive integer, got 0"),
    (dict(combiner="max"), "combiner must be one of 'sum', 'mean', got 'max'"),
    (dict(seed=-1), "seed must be an integer >= 0 or None, got -1"),
    (dict(init="zeros"), "unknown initializer 'zeros'"),
])
def test_hashed_constructor_refuses_bad_input(kwargs, match):
    args = dict(num_embeddings=10, embedding_dim=4, num_buckets=5) | kwargs
    with pytest.raises(ValueError, match=match):
        HashedEmbedding(**args)


def test_hashed_constructor_refuses_bad_dtype():
    with pytest.raises(TypeError, match="float32 or float64"):
        HashedEmbedding(10, 4, num_buckets=5, dtype=np.int32)


@pytest.mark.parametrize("kwargs, match", [
    (dict(num_collisions=0), "num_collisions must be a positive integer, got 0"),
    (dict(num_collisions=-4), "num_collisions must be a positive integer, got -4"),
    (dict(num_collisions=None), "num_collisions must be a positive integer, got None"),
    (dict(combiner="concat", embedding_dim=5), "must be even, got 5"),
    (dict(combiner="sum"), "combiner must be one of 'mult', 'add', 'concat', got 'sum'"),
    (dict(num_embeddings=-1), "num_embeddings must be a positive integer, got -1"),
    (dict(seed=1.5), "seed must be an integer >= 0 or None, got 1.5"),
])
def test_qr_constructor_refuses_bad_input(kwargs, match):
    args = dict(num_embeddings=10, embedding_dim=4, num_collisions=3) | kwargs
    with pytest.raises(ValueError, match=match):
        QREmbedding(**args)


def test_reprs_show_the_configuration():
    assert repr(HashedEmbedding(10, 4, num_buckets=5, signed=True, sparse=True)) == (
        "HashedEmbedding(10, 4, num_buckets=5, num_hashes=2, combiner='sum', signed=True, sparse=True)")
    assert repr(QREmbedding(10, 4, num_collisions=3, combiner="add", dtype=np.float64)) == (
        "QREmbedding(10, 4, num_collisions=3, combiner='add', dtype=float64)")
