"""A real learned position table: all-MiniLM-L6-v2's 512 x 384, read from its PyPI wheel."""

import numpy as np
import pytest

from tinyembed import Tensor
from tinyembed.io.assets import minilm_tensor
from tinyembed.positional import EmbeddingLayer, LearnedPositionalEmbedding


@pytest.fixture(scope="module")
def table():
    return minilm_tensor("embeddings.position_embeddings.weight")


def test_minilm_positions_load_into_a_learned_table(table):
    pos = LearnedPositionalEmbedding.from_pretrained(table)
    assert (pos.max_len, pos.embedding_dim) == (512, 384)
    assert pos.weight.dtype == np.float32 and np.isfinite(pos.weight.data).all()
    x = np.zeros((2, 7, 384), np.float32)
    np.testing.assert_array_equal(pos(Tensor(x), start=100).data[1], table[100:107])


def test_minilm_neighbouring_positions_are_more_alike_than_distant_ones(table):
    unit = table / np.linalg.norm(table, axis=1, keepdims=True)

    def mean_similarity(offset):
        return float(np.mean(np.sum(unit[:-offset] * unit[offset:], axis=1)))

    assert mean_similarity(1) > mean_similarity(8) > mean_similarity(128)


def test_minilm_positions_cannot_extrapolate_past_512(table):
    layer = EmbeddingLayer(30522, 384, max_len=512, positional=LearnedPositionalEmbedding.from_pretrained(table))
    with pytest.raises(ValueError, match="max_len=512"):
        layer(np.zeros((1, 513), dtype=np.int64))
