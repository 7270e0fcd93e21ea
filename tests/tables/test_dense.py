"""The dense Embedding as a table: its rows are the weight, its bags leave padding out, its options
survive a save; and weight tying through attend. The protocol every table offers is test_protocol.py."""

import numpy as np
import pytest

import tinyembed as te
from tinyembed.io import safetensors
from tinyembed.nn import Embedding, Module
from tinyembed.tables import load_table


def test_rows_are_the_weight_and_bags_leave_padding_out():
    emb = Embedding(50, 6, padding_idx=3, seed=0)
    ids = np.array([[1, 3], [49, 1]])
    np.testing.assert_array_equal(emb.lookup(ids), emb.weight.data[ids])
    assert emb.nbytes == 50 * 6 * 4 and emb.compression_ratio == 1.0
    np.testing.assert_array_equal(emb.to_dense(), emb.weight.data)
    # Padding id 3 is left out of its bag and of the mean, as in EmbeddingBag.
    expected_means = [emb.weight.data[1], emb.weight.data[[49, 1]].mean(axis=0)]
    np.testing.assert_allclose(emb.bag(ids, mode="mean"), expected_means, atol=1e-7)
    flat, offsets = np.array([1, 2, 3, 4, 5]), np.array([0, 2, 2])
    expected = [emb.weight.data[[1, 2]].sum(0), np.zeros(6), emb.weight.data[[3, 4, 5]].sum(0)]
    np.testing.assert_allclose(emb.bag(flat, offsets), expected, atol=1e-6)


def test_save_then_load_keeps_padding_idx_max_norm_and_float64(tmp_path):
    emb = Embedding(20, 4, padding_idx=-1, max_norm=2.0, dtype=np.float64, seed=1)
    emb.save(tmp_path / "t.safetensors")
    back = load_table(tmp_path / "t.safetensors")
    assert isinstance(back, Embedding) and repr(back) == repr(emb)
    np.testing.assert_array_equal(back.weight.data, emb.weight.data)
    assert back.weight.dtype == np.float64


class TiedLM(Module):
    def __init__(self):
        super().__init__()
        self.emb = Embedding(12, 5, seed=0, dtype=np.float64)

    def forward(self, ids):
        return self.emb.attend(self.emb(ids))  # (.., 12) logits from one table


def test_attend_is_h_times_weight_transposed():
    emb = Embedding(7, 3, seed=0)
    h = np.random.default_rng(1).standard_normal((2, 3)).astype(np.float32)
    np.testing.assert_allclose(emb.attend(h).data, h @ emb.weight.data.T, atol=1e-6)


def test_tied_table_gradients_from_both_uses_accumulate_and_match_finite_differences():
    model = TiedLM()
    ids = np.array([1, 4, 4])
    te.gradcheck(lambda w: model(ids), [model.emb.weight])
    assert model.num_parameters() == 12 * 5  # one table, counted once


def test_tied_table_with_sparse_lookup_gets_one_dense_gradient():
    emb = Embedding(6, 2, sparse=True, seed=0)
    out = emb.attend(emb([1, 2]))
    out.sum().backward()
    assert isinstance(emb.weight.grad, np.ndarray) and emb.weight.grad.shape == (6, 2)


def test_attend_refuses_h_of_another_width():
    with pytest.raises(ValueError, match=r"\(\.\.\., 4\).*\(2, 3\)"):
        Embedding(10, 4, seed=0).attend(np.ones((2, 3)))


def test_dense_bag_leaves_padding_out_as_embedding_bag_does():
    emb = Embedding(5, 3, padding_idx=0, seed=0)
    expected = emb.weight.data[[1, 2]].mean(axis=0)
    np.testing.assert_allclose(emb.bag([0, 1, 2, 0], [0], mode="mean")[0], expected, atol=1e-7)


def test_load_refuses_a_config_of_another_table_type(tmp_path):
    from tinyembed.tables import FactorizedEmbedding

    path = tmp_path / "t.safetensors"
    Embedding(6, 4, seed=0).save(path)
    _, metadata = safetensors.read_header(path)
    metadata = {**metadata, "tinyembed.table": "FactorizedEmbedding"}
    table = FactorizedEmbedding(6, 4, rank=2, seed=0)
    safetensors.save(table.state_arrays(), path, metadata=metadata)
    with pytest.raises(ValueError, match="does not fit a FactorizedEmbedding"):
        load_table(path)
