"""Sinusoidal encoding: the properties that make it work, not its shape."""

import numpy as np
import pytest

from tinyembed import Tensor
from tinyembed.positional import PositionalEncoding, sinusoidal_table


def reference(pos, d, base=10000.0):
    """Vaswani et al. written out per dimension, in float64."""
    out = np.zeros(d)
    for j in range(d):
        angle = pos / base ** (2 * (j // 2) / d)
        out[j] = np.sin(angle) if j % 2 == 0 else np.cos(angle)
    return out


@pytest.mark.parametrize("d", [1, 2, 7, 16, 64])
def test_table_matches_the_paper_formula(d):
    table = sinusoidal_table(np.arange(50), d)
    for p in (0, 1, 17, 49):
        np.testing.assert_allclose(table[p], reference(p, d), rtol=0, atol=1e-12)


@pytest.mark.parametrize("layout", ["interleaved", "split"])
@pytest.mark.parametrize("k", [1, 5, 300, 12345])
def test_shift_by_k_is_a_fixed_block_rotation(layout, k):
    d = 32
    pos = np.arange(0, 4000, 7)
    table = sinusoidal_table(pos, d, layout=layout)
    shifted = sinusoidal_table(pos + k, d, layout=layout)
    # One 2x2 rotation per frequency, the same for every position: built from k alone.
    inv_freq = 10000.0 ** (-np.arange(d // 2) * 2.0 / d)
    c, s = np.cos(k * inv_freq), np.sin(k * inv_freq)
    if layout == "interleaved":
        sin, cos = table[:, 0::2], table[:, 1::2]
        new_sin, new_cos = shifted[:, 0::2], shifted[:, 1::2]
    else:
        sin, cos = table[:, : d // 2], table[:, d // 2:]
        new_sin, new_cos = shifted[:, : d // 2], shifted[:, d // 2:]
    np.testing.assert_allclose(new_sin, sin * c + cos * s, atol=1e-9)
    np.testing.assert_allclose(new_cos, cos * c - sin * s, atol=1e-9)


def test_float32_equals_the_float64_reference_to_1e6_at_positions_up_to_a_million():
    pe = PositionalEncoding(64, max_len=1024)
    pos = np.array([0, 1, 1023, 1024, 99_999, 500_000, 1_000_000])
    got = pe.encoding(pos, dtype=np.float32)
    assert got.dtype == np.float32
    expected = np.stack([reference(p, 64) for p in pos])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


def test_layouts_agree_up_to_a_fixed_permutation_of_dims():
    d = 10
    inter = sinusoidal_table(np.arange(100), d, layout="interleaved")
    split = sinusoidal_table(np.arange(100), d, layout="split")
    perm = np.concatenate([np.arange(0, d, 2), np.arange(1, d, 2)])  # sines first, then cosines
    np.testing.assert_array_equal(inter[:, perm], split)


def test_odd_dim_ends_with_a_sine_in_both_layouts():
    for layout in ("interleaved", "split"):
        t = sinusoidal_table(np.arange(5), 5, layout=layout)
        last_freq = 10000.0 ** (-4 / 5)
        np.testing.assert_allclose(t[:, -1] if layout == "interleaved" else t[:, 2],
                                   np.sin(np.arange(5) * last_freq), atol=1e-15)


def test_positions_beyond_max_len_are_computed_not_refused():
    pe = PositionalEncoding(8, max_len=16)
    np.testing.assert_allclose(pe.encoding([16, 40_000]), sinusoidal_table([16, 40_000], 8), atol=1e-7)
    x = Tensor(np.zeros((1, 20, 8), np.float32))
    out = pe(x, start=100)
    np.testing.assert_allclose(out.data[0], sinusoidal_table(np.arange(100, 120), 8), atol=1e-7)


def test_forward_adds_the_encoding_and_start_continues_a_sequence():
    pe = PositionalEncoding(6, max_len=64)
    x = np.random.default_rng(0).standard_normal((2, 10, 6)).astype(np.float32)
    full = pe(Tensor(x)).data
    tail = pe(Tensor(x[:, 4:]), start=4).data
    np.testing.assert_array_equal(full[:, 4:], tail)
    np.testing.assert_allclose(full - x, np.broadcast_to(sinusoidal_table(np.arange(10), 6), x.shape), atol=1e-6)
    assert full.dtype == np.float32


def test_gradient_passes_through_unchanged():
    pe = PositionalEncoding(4)
    x = Tensor(np.ones((2, 3, 4)), requires_grad=True)
    pe(x).sum().backward()
    np.testing.assert_array_equal(x.grad, np.ones((2, 3, 4)))
    assert pe.num_parameters() == 0


@pytest.mark.parametrize("kwargs, message", [
    (dict(embedding_dim=0), "embedding_dim"),
    (dict(embedding_dim=4, max_len=-1), "max_len"),
    (dict(embedding_dim=4, layout="zigzag"), "zigzag"),
    (dict(embedding_dim=4, base=1.0), "base"),
])
def test_bad_configuration_raises(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PositionalEncoding(**kwargs)


def test_bad_inputs_raise():
    pe = PositionalEncoding(4)
    with pytest.raises(ValueError, match=r"\(\.\.\., seq, 4\).*\(2, 3, 5\)"):
        pe(Tensor(np.zeros((2, 3, 5))))
    with pytest.raises(ValueError, match="start must be an integer >= 0, got -1"):
        pe(Tensor(np.zeros((1, 2, 4))), start=-1)
    with pytest.raises(ValueError, match="positions must be >= 0, got -3"):
        pe.encoding([1, -3])


def test_table_function_refuses_an_unknown_layout():
    with pytest.raises(ValueError, match="bogus"):
        sinusoidal_table([0, 1], 4, layout="bogus")
