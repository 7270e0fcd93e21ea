"""Failures are named errors within seconds, never hangs; bad input touches no shard."""

import os
import signal
import time

import numpy as np
import pytest

from tinyembed.distributed import (
    ShardedEmbedding,
    ShardedEmbeddingCollection,
    ShardLostError,
    ShardPlacementError,
    ShardTimeoutError,
)

V, D = 20, 4


def _settled_cpus(ray, wait=5.0):
    """Ray's free CPUs once they stop changing (killed actors hand theirs back a moment later)."""
    last, deadline = None, time.monotonic() + wait
    while time.monotonic() < deadline:
        free = ray.available_resources().get("CPU", 0)
        if free == last:
            return free
        last = free
        time.sleep(0.3)
    return last


def _zeros(stats):
    return all(v == 0 for s in stats["shards"] for k, v in s.items() if isinstance(v, int) and k not in
               ("shard", "device", "rows", "cols"))


def test_a_killed_actor_raises_shard_lost_error_naming_it_at_once_and_restore_brings_the_table_back(
        ray_local, tmp_path):
    table = ShardedEmbedding(V, D, num_shards=3, plan="row", optimizer="sparse_adam", lr=0.1, seed=0, timeout=30)
    try:
        table(np.arange(V)).sum().backward()
        table.step()
        table.save(tmp_path / "ckpt")
        saved = table.to_dense()
        table(np.arange(5)).sum().backward()
        table.step()  # a step the checkpoint does not hold

        os.kill(table._tables.servers.pids[1], signal.SIGKILL)
        start = time.monotonic()
        with pytest.raises(ShardLostError, match=r"server 1 \(pid \d+ .*holds shard table/1\) died"):
            table(np.array([0, 8, 19]))
        assert time.monotonic() - start < 10  # Ray reports the death; the timeout is 30 s
        with pytest.raises(ShardLostError, match="lost earlier"):  # and every later call, at once
            table.lookup(np.array([1]))
        with pytest.raises(ShardLostError):  # a save fails whole: nothing half-written is left
            table.save(tmp_path / "partial")
        assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]

        table.restore(tmp_path / "ckpt")
        np.testing.assert_array_equal(table.to_dense(), saved)
        assert table.optimizer_state()["step"] == 1
        table(np.array([3])).sum().backward()
        table.step()
    finally:
        table.close()


def test_a_stopped_actor_raises_shard_timeout_error_after_the_timeout_not_a_hang(ray_local):
    table = ShardedEmbedding(V, D, num_shards=2, optimizer="sgd", seed=0, timeout=2)
    pid = table._tables.servers.pids[0]
    try:
        os.kill(pid, signal.SIGSTOP)
        start = time.monotonic()
        with pytest.raises(ShardTimeoutError, match=r"no answer within 2 s from server 0"):
            table(np.array([1, 15]))
        assert time.monotonic() - start < 8
    finally:
        os.kill(pid, signal.SIGCONT)
        table.close()


def test_actors_that_do_not_fit_are_refused_at_once_and_leave_nothing_running(ray_local):
    free = _settled_cpus(ray_local)
    start = time.monotonic()
    with pytest.raises(ShardPlacementError, match=r"need 40 CPUs, but Ray has .* free"):
        ShardedEmbedding(V, D, num_shards=4, num_cpus=10)
    assert time.monotonic() - start < 10
    assert _settled_cpus(ray_local) == free


@pytest.mark.parametrize("ids, error, message", [
    (np.array([[1, 2], [3, 20]]), IndexError, r"id 20 at position \(1, 1\) is out of range for a table of 20"),
    (np.array([-1]), IndexError, "id -1 at position"),
    (np.array([1.0]), TypeError, "must hold integer ids"),
])
def test_bad_ids_raise_before_any_shard_is_asked_and_change_nothing(servers, ids, error, message):
    table = ShardedEmbedding(V, D, num_shards=3, plan="hashed-row", optimizer="sgd", lr=1.0, seed=0,
                             servers=servers)
    try:
        before = table.to_dense()
        table.stats(reset=True)
        with pytest.raises(error, match=message):
            table(ids)
        with pytest.raises(error, match=message):
            table.lookup(ids)
        table.step()  # nothing collected: nothing moves
        assert _zeros(table.stats())
        np.testing.assert_array_equal(table.to_dense(), before)
    finally:
        table.close()


def test_one_tables_bad_ids_stop_the_whole_collection_lookup_before_any_actor(servers):
    tables = ShardedEmbeddingCollection.from_pretrained(
        {"a": np.zeros((10, 3), np.float32), "b": np.ones((5, 3), np.float32)}, 2, "row", servers=servers)
    try:
        tables.stats(reset=True)
        with pytest.raises(IndexError, match="ids of table 'b' id 5"):
            tables({"a": [1, 2, 3], "b": [0, 5]})
        with pytest.raises(KeyError, match="no table 'c'"):
            tables({"c": [0]})
        assert _zeros(tables.stats())
    finally:
        tables.close()


def test_bad_construction_arguments_are_refused_before_any_actor_starts(ray_local):
    free = _settled_cpus(ray_local)
    with pytest.raises(ValueError, match="more than the table's 20 rows"):
        ShardedEmbedding(V, D, num_shards=21)
    with pytest.raises(ValueError, match="more than the table's 4 columns"):
        ShardedEmbedding(V, D, num_shards=5, plan="column")
    with pytest.raises(ValueError, match="row-sparse"):
        ShardedEmbedding(V, D, optimizer="sgd", momentum=0.9)
    with pytest.raises(ValueError, match="non-finite value nan at row 1, column 0"):
        ShardedEmbedding.from_pretrained(np.array([[0.0, 1.0], [np.nan, 2.0]]))
    assert _settled_cpus(ray_local) == free
