"""Learned positions: trainable, and honest about their length limit."""

import numpy as np
import pytest

import tinyembed as te
from tinyembed import Tensor
from tinyembed.positional import LearnedPositionalEmbedding


def test_adds_the_rows_of_its_positions():
    pos = LearnedPositionalEmbedding(10, 3, seed=0)
    x = np.random.default_rng(1).standard_normal((2, 4, 3)).astype(np.float32)
    out = pos(Tensor(x), start=5).data
    np.testing.assert_allclose(out, x + pos.weight.data[5:9], atol=0)


def test_gradient_matches_finite_differences():
    pos = LearnedPositionalEmbedding.from_pretrained(np.random.default_rng(0).standard_normal((6, 3)), freeze=False)
    x = Tensor(np.random.default_rng(1).standard_normal((2, 4, 3)), requires_grad=True)
    te.gradcheck(lambda x, w: pos(x, start=1), [x, pos.weight])


def test_gradient_of_each_row_sums_over_the_batch():
    pos = LearnedPositionalEmbedding(5, 2, seed=0)
    pos(Tensor(np.zeros((3, 2, 2), np.float32))).sum().backward()
    np.testing.assert_array_equal(pos.weight.grad, [[3, 3], [3, 3], [0, 0], [0, 0], [0, 0]])


def test_too_long_a_sequence_names_both_lengths():
    pos = LearnedPositionalEmbedding(8, 2, seed=0)
    with pytest.raises(ValueError, match=r"positions up to 10 requested.*max_len=8"):
        pos(Tensor(np.zeros((1, 6, 2))), start=4)
    with pytest.raises(ValueError, match="max_len=8"):
        pos.encoding([0, 8])


def test_default_init_is_gpt2_scale_and_from_pretrained_freezes():
    w = LearnedPositionalEmbedding(512, 64, seed=0).weight.data
    assert abs(w.std() - 0.02) < 0.001
    frozen = LearnedPositionalEmbedding.from_pretrained(np.ones((4, 2), np.float32))
    assert frozen.weight.requires_grad is False and frozen.max_len == 4
