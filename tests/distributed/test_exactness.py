"""Sharded tables train as one table: every plan and optimizer against nn.Embedding + tinyembed.optim.

Five steps of lookups with repeated ids, then the outputs of every step, the rows and the
optimizer state must agree to 1e-5 (row plans agree bit for bit: the same coalesced
gradient rows meet the same functional step; only row-wise Adagrad with weight decay on
column slices sums its exchanged row statistic in another order).
"""

import numpy as np
import pytest

from tinyembed import nn, optim
from tinyembed.distributed import ShardedEmbedding, ShardedEmbeddingCollection
from tinyembed.plan.sharding import STRATEGIES, DeviceSpec, TableSpec, Workload

OPTIMIZERS = {
    "sgd": (optim.SGD, {"lr": 0.1}),
    "sparse_adam": (optim.SparseAdam, {"lr": 0.02, "betas": (0.8, 0.99)}),
    "rowwise_adagrad": (optim.RowWiseAdagrad, {"lr": 0.1}),
    "rowwise_adagrad+decay": (optim.RowWiseAdagrad, {"lr": 0.1, "weight_decay": 0.05,
                                                     "initial_accumulator_value": 0.1}),
}
V, D, STEPS = 30, 7, 5


def _batches(seed, vocab=V, dim=D):
    """Ids with many repeats (ids 0-9 of a 30-row table) and their output gradients."""
    rng = np.random.default_rng(seed)
    for _ in range(STEPS):
        ids = rng.integers(0, 10, size=(4, 6))
        yield ids, rng.standard_normal((4, 6, dim)).astype(np.float32)


def _reference(name, weight):
    cls, options = OPTIMIZERS[name]
    table = nn.Embedding.from_pretrained(weight.copy(), freeze=False, sparse=True)
    return table, cls(table.parameters(), **options)


def _assert_state_equal(sharded_state, optimizer, param):
    state = optimizer.state.get(param, {})
    assert sorted(sharded_state) == sorted(state)
    for key, value in state.items():
        np.testing.assert_allclose(sharded_state[key], value, rtol=1e-5, atol=1e-5, err_msg=key)


@pytest.mark.parametrize("plan", ["row", "hashed-row", "column"])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_every_plan_and_optimizer_equals_one_table_after_five_steps(servers, plan, name):
    _, options = OPTIMIZERS[name]
    table = ShardedEmbedding(V, D, num_shards=3, plan=plan, optimizer=name.split("+")[0], seed=7, servers=servers,
                             **options)
    try:
        reference, reference_opt = _reference(name, nn.Embedding(V, D, seed=7).weight.data)
        np.testing.assert_array_equal(table.to_dense(), reference.weight.data)  # the same initial draw
        for ids, g in _batches(0):
            out = table(ids)
            out.backward(g)
            table.step()
            reference_opt.zero_grad()
            expected = reference(ids)
            expected.backward(g)
            reference_opt.step()
            np.testing.assert_allclose(out.data, expected.data, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(table.to_dense(), reference.weight.data, rtol=1e-5, atol=1e-5)
        _assert_state_equal(table.optimizer_state(), reference_opt, reference.weight)
        if plan != "column" or "decay" not in name:
            np.testing.assert_array_equal(table.to_dense(), reference.weight.data)  # bit for bit
    finally:
        table.close()


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_a_collection_under_each_planner_strategy_trains_each_table_as_one_table(servers, strategy):
    specs = [TableSpec("words", 40, 6, zipf_alpha=1.0, pooled=False), TableSpec("tags", 12, 4, pooled=False)]
    sharding = STRATEGIES[strategy](specs, Workload(batch_size=32, num_devices=3), DeviceSpec(1 << 20, 10.0, 1.0))
    weights = {s.name: np.random.default_rng(i).standard_normal((s.num_rows, s.dim)).astype(np.float32)
               for i, s in enumerate(specs)}
    tables = ShardedEmbeddingCollection(sharding, "rowwise_adagrad", weights=weights, lr=0.1, weight_decay=0.01,
                                        servers=servers)
    try:
        references = {n: _reference("rowwise_adagrad+decay", w) for n, w in weights.items()}
        for _, reference_opt in references.values():  # the collection's options: lr 0.1, weight decay 0.01
            reference_opt.param_groups[0].update(weight_decay=0.01, initial_accumulator_value=0.0)
        rng = np.random.default_rng(3)
        for _ in range(STEPS):
            ids = {"words": rng.integers(0, 40, (5, 3)), "tags": rng.integers(0, 12, 8)}
            out = tables(ids)  # both tables in one request per actor
            for n, x in out.items():
                g = np.ones_like(x.data) * (1.0 + np.arange(x.data.shape[-1], dtype=np.float32))
                x.backward(g)
                reference, reference_opt = references[n]
                reference_opt.zero_grad()
                expected = reference(ids[n])
                expected.backward(g)
                reference_opt.step()
                np.testing.assert_allclose(x.data, expected.data, rtol=1e-5, atol=1e-5)
            tables.step()
        for n, (reference, reference_opt) in references.items():
            np.testing.assert_allclose(tables[n].to_dense(), reference.weight.data, rtol=1e-5, atol=1e-5)
            _assert_state_equal(tables[n].optimizer_state(), reference_opt, reference.weight)
        assert [s for n in tables.tables for s in tables[n].shards] == list(sharding.shards)
        assert strategy in tables.describe()
    finally:
        tables.close()


def test_float64_tables_from_pretrained_keep_their_dtype_and_train_exactly(servers):
    weight = np.random.default_rng(5).standard_normal((V, D))
    table = ShardedEmbedding.from_pretrained(weight, num_shards=4, plan="hashed-row", optimizer="sgd", lr=0.3,
                                             servers=servers)
    try:
        reference = nn.Embedding.from_pretrained(weight.copy(), freeze=False, sparse=True)
        opt = optim.SGD(reference.parameters(), lr=0.3)
        for ids, g in _batches(1):
            out = table(ids)
            assert out.dtype == np.float64
            out.backward(g.astype(np.float64))
            table.step()
            opt.zero_grad()
            reference(ids).backward(g.astype(np.float64))
            opt.step()
        np.testing.assert_array_equal(table.to_dense(), reference.weight.data)
    finally:
        table.close()


def test_gradients_of_several_lookups_add_up_before_one_step(servers):
    table = ShardedEmbedding(V, D, num_shards=2, optimizer="sparse_adam", lr=0.01, seed=1, servers=servers)
    try:
        reference, opt = _reference("sparse_adam", nn.Embedding(V, D, seed=1).weight.data)
        opt.param_groups[0].update(lr=0.01, betas=(0.9, 0.999))
        a, b = np.array([1, 2, 2]), np.array([[2, 5], [1, 1]])
        (table(a).sum() + (table(b) * 2.0).sum()).backward()
        assert table.grad.nnz_rows == 3
        table.step()
        assert table.grad is None  # spent by the step
        (reference(a).sum() + (reference(b) * 2.0).sum()).backward()
        opt.step()
        np.testing.assert_array_equal(table.to_dense(), reference.weight.data)
        table.step()  # no gradient: nothing moves, no step is counted
        assert table.optimizer_state()["step"] == 1
    finally:
        table.close()


def test_the_learning_rate_can_change_between_steps_and_is_checked(servers):
    table = ShardedEmbedding(V, D, num_shards=2, optimizer="sgd", lr=0.1, seed=2, servers=servers)
    try:
        table.lr = 0.5
        assert table.lr == 0.5
        with pytest.raises(ValueError, match="lr=-1"):
            table.lr = -1.0
        before = table.to_dense()
        table(np.array([3])).backward(np.ones((1, D), np.float32))
        table.step()
        np.testing.assert_allclose(table.to_dense()[3], before[3] - 0.5)
    finally:
        table.close()
