"""Bytes moved: the formulas of tinyembed.profile.traffic on a hand-computed example."""

import pytest

from tinyembed.kernels.rows import storage_row_bytes
from tinyembed.profile.traffic import bytes_moved


def test_bytes_moved_formulas_on_a_hand_computed_example():
    # V=10, D=4, float32: n=6 ids (48 B), B=2 bags (16 B of offsets), k=3 distinct, L=3 positions.
    # A row is 16 B, so the n rows are 96 B.
    args = dict(vocab=10, dim=4, n=6, bags=2, distinct=3, positions=3, row_bytes=16, out_itemsize=4)
    assert bytes_moved("forward", **args) == 48 + 96 + 96
    assert bytes_moved("forward_out", **args) == 48 + 96 + 96
    assert bytes_moved("dense_backward", **args) == 48 + 96 + 10 * 16
    assert bytes_moved("sparse_backward", **args) == 48 + 96 + 3 * (8 + 16)
    assert bytes_moved("bag_sum", **args) == 48 + 16 + 96 + 2 * 16
    assert bytes_moved("bag_mean", **args) == 48 + 16 + 96 + 2 * 16
    assert bytes_moved("layer_forward", **args) == 48 + 96 + 3 * 16 + 96
    # An int8 table reads fused rows of D + 8 bytes and writes float32 bags.
    int8 = dict(args, row_bytes=storage_row_bytes("int8", 4))
    assert bytes_moved("bag_sum", **int8) == 48 + 16 + 6 * (4 + 8) + 2 * 16
    with pytest.raises(ValueError, match="op must be one of"):
        bytes_moved("nope", **args)
