"""A shard's fused update is tinyembed.optim's, and its options are the optim classes' (no Ray needed)."""

import numpy as np
import pytest

from tinyembed.distributed.server import ShardServer
from tinyembed.distributed.shard import TableShard, optimizer_options, rowwise_adagrad_slice_step
from tinyembed.optim import SparseAdam, rowwise_adagrad_step


def test_options_are_the_optimizers_defaults_plus_those_given():
    assert optimizer_options("sparse_adam", 4, np.float32, {}) == {
        "lr": 1e-3, "betas": [0.9, 0.999], "eps": 1e-8, "maximize": False}
    adagrad = optimizer_options("rowwise_adagrad", 4, np.float32, {"lr": 0.5})
    assert adagrad["lr"] == 0.5 and adagrad["eps"] == 1e-10 and adagrad["initial_accumulator_value"] == 0


@pytest.mark.parametrize("name, options, error, message", [
    ("sgd", {"momentum": 0.9}, ValueError, "row-sparse"),
    ("sgd", {"weight_decay": 0.1}, ValueError, "row-sparse"),
    ("sparse_adam", {"lr": 0.0}, ValueError, "lr=0.0"),
    ("rowwise_adagrad", {"eps": -1.0}, ValueError, "eps=-1.0"),
    ("sparse_adam", {"momentum": 0.9}, TypeError, "momentum"),
    ("adam", {}, ValueError, "optimizer must be one of"),
])
def test_bad_options_are_refused_by_the_optimizer_naming_the_value(name, options, error, message):
    with pytest.raises(error, match=message):
        optimizer_options(name, 4, np.float32, options)


def test_column_slices_with_the_whole_row_statistic_step_as_rowwise_adagrad_on_whole_rows():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((6, 5)).astype(np.float32)
    rows, grad = np.array([0, 2, 5]), rng.standard_normal((3, 5)).astype(np.float32)
    whole, acc = w.copy(), np.full(6, 0.1, np.float32)
    rowwise_adagrad_step(whole, rows, grad, acc, lr=0.1, eps=1e-10, weight_decay=0.0)
    mean_sq = np.mean(grad * grad, axis=1)
    for a, b in [(0, 2), (2, 5)]:
        part, part_acc = np.ascontiguousarray(w[:, a:b]), np.full(6, 0.1, np.float32)
        rowwise_adagrad_slice_step(part, rows, grad[:, a:b], part_acc, mean_sq, lr=0.1, eps=1e-10, weight_decay=0.0)
        np.testing.assert_array_equal(part, whole[:, a:b])
        np.testing.assert_array_equal(part_acc, acc)


def test_a_shard_steps_its_rows_as_the_optimizer_steps_the_same_rows():
    from tinyembed.nn import Embedding

    rng = np.random.default_rng(1)
    emb = Embedding(8, 3, sparse=True, seed=0)
    opt = SparseAdam(emb.parameters(), lr=0.05)
    shard = TableShard(8, 3, np.float32, "sparse_adam", optimizer_options("sparse_adam", 3, np.float32, {"lr": 0.05}))
    shard.write(np.arange(8), {"weight": emb.weight.data}, {})
    for _ in range(3):
        ids = rng.integers(0, 8, 6)
        g = rng.standard_normal((6, 3)).astype(np.float32)
        opt.zero_grad()
        emb(ids).backward(g)
        opt.step()
        grad = emb.weight.grad
        shard.step(grad.indices, grad.values, shard.options, None)
    np.testing.assert_array_equal(shard.weight, emb.weight.data)
    assert shard.counters() == {"step": 3}
    np.testing.assert_array_equal(shard.state["exp_avg_sq"], opt.state[emb.weight]["exp_avg_sq"])


def test_the_server_counts_the_rows_and_bytes_that_arrive_and_leave():
    server = ShardServer(0)
    options = optimizer_options("rowwise_adagrad", 4, np.float32, {})
    server.create({"k": {"num_rows": 10, "num_cols": 4, "dtype": "float32", "optimizer": "rowwise_adagrad",
                         "options": options}})
    server.lookup({"k": np.array([1, 2, 3])})
    server.step({"k": (np.array([2]), np.ones((1, 4), np.float32), options, None)})
    assert server.stats(["k"])["k"] == {
        "lookups": 1, "ids_received": 3, "id_bytes_received": 24, "rows_sent": 3, "row_bytes_sent": 48,
        "steps": 1, "grad_rows_received": 1, "grad_bytes_received": 8 + 16, "exchange_bytes": 0}
