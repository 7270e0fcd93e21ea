"""Checkpoints: a safetensors file per shard and a manifest, re-sharded on load, refused when damaged."""

import json
import os

import numpy as np
import pytest

from tinyembed import nn, optim
from tinyembed.distributed import (
    CheckpointError,
    ShardedEmbedding,
    ShardedEmbeddingCollection,
    load_embedding,
    read_checkpoint,
    save_embedding,
)
from tinyembed.io import safetensors
from tinyembed.io.files import DestinationError

V, D = 26, 6
OPTIONS = {"sgd": {"lr": 0.2}, "sparse_adam": {"lr": 0.05}, "rowwise_adagrad": {"lr": 0.1, "weight_decay": 0.01}}
CLASSES = {"sgd": optim.SGD, "sparse_adam": optim.SparseAdam, "rowwise_adagrad": optim.RowWiseAdagrad}


def _step(table, ids, g):
    out = table(ids)
    out.backward(g)
    table.step()
    return out.data


def _reference_step(emb, opt, ids, g):
    opt.zero_grad()
    out = emb(ids)
    out.backward(g)
    opt.step()
    return out.data


def _trained(servers, optimizer, plan, num_shards, steps=3):
    table = ShardedEmbedding(V, D, num_shards=num_shards, plan=plan, optimizer=optimizer, seed=3, servers=servers,
                             **OPTIONS[optimizer])
    emb = nn.Embedding(V, D, seed=3, sparse=True)
    opt = CLASSES[optimizer](emb.parameters(), **OPTIONS[optimizer])
    rng = np.random.default_rng(0)
    for _ in range(steps):
        ids, g = rng.integers(0, 8, (3, 5)), rng.standard_normal((3, 5, D)).astype(np.float32)
        _step(table, ids, g)
        _reference_step(emb, opt, ids, g)
    return table, emb, opt


@pytest.mark.parametrize("optimizer, before, after", [
    ("sgd", ("row", 3), ("column", 2)),
    ("sparse_adam", ("hashed-row", 4), ("row", 2)),
    ("rowwise_adagrad", ("column", 2), ("hashed-row", 3)),
])
def test_save_then_load_with_another_shard_count_then_one_more_step_equals_the_unsharded_run(
        servers, tmp_path, optimizer, before, after):
    table, emb, opt = _trained(servers, optimizer, *before)
    table.save(tmp_path / "ckpt")
    table.close()
    loaded = ShardedEmbedding.load(tmp_path / "ckpt", num_shards=after[1], plan=after[0], servers=servers)
    try:
        assert (loaded.num_shards, loaded.plan, loaded.optimizer) == (after[1], after[0], optimizer)
        assert loaded.optimizer_options == table.optimizer_options
        ids, g = np.array([0, 5, 5, 7, 25]), np.random.default_rng(9).standard_normal((5, D)).astype(np.float32)
        np.testing.assert_allclose(_step(loaded, ids, g), _reference_step(emb, opt, ids, g), atol=1e-5)
        np.testing.assert_allclose(loaded.to_dense(), emb.weight.data, rtol=1e-5, atol=1e-5)
        state = loaded.optimizer_state()
        for key, value in opt.state.get(emb.weight, {}).items():
            np.testing.assert_allclose(state[key], value, rtol=1e-5, atol=1e-5)
    finally:
        loaded.close()


def test_the_directory_holds_a_file_per_shard_and_a_manifest_naming_plan_shapes_optimizer_and_step(
        servers, tmp_path):
    table, _, _ = _trained(servers, "sparse_adam", "row", 3)
    try:
        path = table.save(tmp_path / "ckpt")
    finally:
        table.close()
    names = sorted(p.name for p in path.iterdir())
    assert names == ["manifest.json"] + [f"t0-table.shard-0000{i}.safetensors" for i in range(3)]
    manifest = json.loads((path / "manifest.json").read_text())
    entry = manifest["tables"]["table"]
    assert manifest["optimizer"] == "sparse_adam"
    assert (entry["plan"], entry["num_embeddings"], entry["embedding_dim"], entry["step"]) == ("row", V, D, 3)
    assert [s["rows"] for s in entry["shards"]] == [[0, 9, 1], [9, 18, 1], [18, 26, 1]]
    tensors = safetensors.load(path / "t0-table.shard-00001.safetensors")
    assert {k: v.shape for k, v in tensors.items()} == {"weight": (9, D), "exp_avg": (9, D), "exp_avg_sq": (9, D)}
    assert safetensors.read_header(path / "t0-table.shard-00001.safetensors")[1]["counter.step"] == "3"


def test_a_checkpoint_loads_into_one_embedding_and_optimizer_and_back(servers, tmp_path):
    table, emb, opt = _trained(servers, "rowwise_adagrad", "hashed-row", 3)
    table.save(tmp_path / "sharded")
    table.close()
    single, single_opt = load_embedding(tmp_path / "sharded")
    np.testing.assert_array_equal(single.weight.data, emb.weight.data)
    assert isinstance(single_opt, optim.RowWiseAdagrad) and single_opt.param_groups[0]["weight_decay"] == 0.01
    ids, g = np.array([1, 1, 4]), np.ones((3, D), np.float32)
    _reference_step(single, single_opt, ids, g)
    _reference_step(emb, opt, ids, g)
    np.testing.assert_array_equal(single.weight.data, emb.weight.data)
    save_embedding(tmp_path / "single", single, single_opt)
    back = ShardedEmbedding.load(tmp_path / "single", num_shards=2, servers=servers)
    try:
        np.testing.assert_array_equal(back.to_dense(), emb.weight.data)
        np.testing.assert_array_equal(back.optimizer_state()["sum"], opt.state[emb.weight]["sum"])
    finally:
        back.close()


def test_a_collection_saves_the_plan_it_ran_and_loads_it_back(servers, tmp_path):
    weights = {"a": np.arange(40, dtype=np.float32).reshape(10, 4), "b": np.ones((6, 4), np.float32)}
    tables = ShardedEmbeddingCollection.from_pretrained(weights, 3, "column", "sgd", lr=0.1, servers=servers)
    try:
        tables({"a": [1, 2], "b": [5]})["a"].sum().backward()
        tables.step()
        tables.save(tmp_path / "ckpt")
        dense = {n: tables[n].to_dense() for n in weights}
    finally:
        tables.close()
    loaded = ShardedEmbeddingCollection.load(tmp_path / "ckpt", servers=servers)
    try:
        assert loaded.plan.strategy == "column_wise" and loaded.plan.shards == tables.plan.shards
        for n in weights:
            np.testing.assert_array_equal(loaded[n].to_dense(), dense[n])
    finally:
        loaded.close()
    one = ShardedEmbedding.load(tmp_path / "ckpt", table="b", num_shards=2, servers=servers)
    try:
        np.testing.assert_array_equal(one.to_dense(), dense["b"])
    finally:
        one.close()


@pytest.fixture(scope="module")
def checkpoint(servers, tmp_path_factory):
    table, _, _ = _trained(servers, "sparse_adam", "row", 3)
    try:
        return table.save(tmp_path_factory.mktemp("good") / "ckpt")
    finally:
        table.close()


def _copy(checkpoint, tmp_path):
    import shutil

    return shutil.copytree(checkpoint, tmp_path / "copy")


def test_a_missing_shard_file_is_refused_naming_it(checkpoint, tmp_path):
    path = _copy(checkpoint, tmp_path)
    os.remove(path / "t0-table.shard-00001.safetensors")
    with pytest.raises(CheckpointError, match=r"t0-table\.shard-00001\.safetensors: missing"):
        read_checkpoint(path)


def test_a_truncated_shard_file_is_refused_naming_it(checkpoint, tmp_path):
    path = _copy(checkpoint, tmp_path)
    file = path / "t0-table.shard-00002.safetensors"
    file.write_bytes(file.read_bytes()[:-16])
    with pytest.raises(CheckpointError, match=r"shard-00002\.safetensors: \d+ bytes, the manifest says"):
        ShardedEmbedding.load(path)


def test_a_changed_shard_file_is_refused_naming_it(checkpoint, tmp_path):
    path = _copy(checkpoint, tmp_path)
    file = path / "t0-table.shard-00000.safetensors"
    data = bytearray(file.read_bytes())
    data[-1] ^= 0xFF  # same size, other bytes
    file.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"shard-00000\.safetensors: its sha256 differs"):
        load_embedding(path)


def test_a_shard_file_disagreeing_with_the_manifest_is_refused_naming_it(checkpoint, tmp_path):
    path = _copy(checkpoint, tmp_path)
    manifest = json.loads((path / "manifest.json").read_text())
    shards = manifest["tables"]["table"]["shards"]
    shards[0]["rows"], shards[1]["rows"] = [0, 8, 1], [8, 18, 1]  # still a partition; the files hold 9 and 9 rows
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match=r"shard-00000\.safetensors: holds .*weight \[9, 6\].*implies.*\[8, 6\]"):
        read_checkpoint(path)


def test_a_file_swapped_for_another_shards_is_refused_by_its_metadata(checkpoint, tmp_path):
    path = _copy(checkpoint, tmp_path)
    manifest = json.loads((path / "manifest.json").read_text())
    shards = manifest["tables"]["table"]["shards"]
    shards[0]["file"], shards[1]["file"] = shards[1]["file"], shards[0]["file"]  # same shapes (9 rows each)
    shards[0]["bytes"], shards[1]["bytes"] = shards[1]["bytes"], shards[0]["bytes"]
    shards[0]["sha256"], shards[1]["sha256"] = shards[1]["sha256"], shards[0]["sha256"]
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match=r"shard-00001\.safetensors: its metadata .*'shard': '1'"):
        read_checkpoint(path)


def test_loading_into_a_table_of_another_width_is_refused_and_changes_nothing(servers, checkpoint):
    wider = ShardedEmbedding(V, D + 1, num_shards=2, optimizer="sparse_adam", seed=0, servers=servers)
    try:
        before = wider.to_dense()
        with pytest.raises(CheckpointError, match=rf"is {V} x {D}, but table 'table' is {V} x {D + 1}"):
            wider.load_state(checkpoint)
        np.testing.assert_array_equal(wider.to_dense(), before)
    finally:
        wider.close()


def test_saving_over_an_existing_checkpoint_needs_replace(servers, checkpoint, tmp_path):
    table = ShardedEmbedding(V, D, num_shards=2, optimizer="sparse_adam", seed=0, servers=servers)
    try:
        with pytest.raises(DestinationError, match="already exists"):
            table.save(checkpoint)
        table.save(tmp_path / "mine")
        table.save(tmp_path / "mine", replace=True)
        assert read_checkpoint(tmp_path / "mine").tables["table"].step == 0
    finally:
        table.close()
