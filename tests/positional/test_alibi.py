"""ALiBi: slopes against Press et al.'s rule and BLOOM's published values, the bias
against a per-element reference, offsets for incremental decoding, and errors."""

import math

import numpy as np
import pytest

from tinyembed.positional.alibi import ALiBi, alibi_slopes


def press_slopes(n):
    """Press et al.'s get_slopes, written as a loop: powers of two are geometric, others borrow."""
    if math.log2(n).is_integer():
        ratio = 2.0 ** (-8.0 / n)
        return [ratio ** (i + 1) for i in range(n)]
    closest = 2 ** math.floor(math.log2(n))
    return press_slopes(closest) + press_slopes(2 * closest)[0::2][: n - closest]


def reference_bias(slopes, q_len, k_len, causal, offset):
    out = np.empty((len(slopes), q_len, k_len))
    for h, slope in enumerate(slopes):
        for i in range(q_len):
            for j in range(k_len):
                d = i + offset - j
                out[h, i, j] = -np.inf if causal and d < 0 else -slope * abs(d)
    return out


def test_alibi_8_heads_have_slopes_one_half_to_one_over_256():
    np.testing.assert_array_equal(ALiBi(8).slopes, [1 / 2, 1 / 4, 1 / 8, 1 / 16, 1 / 32, 1 / 64, 1 / 128, 1 / 256])


@pytest.mark.parametrize("n", [1, 2, 4, 16, 32, 64])
def test_alibi_power_of_two_slopes_are_geometric_from_two_to_minus_8_over_n(n):
    slopes = ALiBi(n).slopes
    assert slopes.dtype == np.float64 and slopes[-1] == pytest.approx(2.0 ** -8, rel=1e-14)
    np.testing.assert_allclose(slopes, [2.0 ** (-8.0 * (i + 1) / n) for i in range(n)], rtol=1e-14)


def test_alibi_12_heads_take_every_other_slope_of_the_16_head_sequence():
    by_hand = [2.0 ** -k for k in range(1, 9)] + [2.0 ** -0.5, 2.0 ** -1.5, 2.0 ** -2.5, 2.0 ** -3.5]
    np.testing.assert_allclose(ALiBi(12).slopes, by_hand, rtol=1e-15)
    # BLOOM's build_alibi_tensor for 12 heads, printed to 8 digits.
    bloom = [0.5, 0.25, 0.125, 0.0625, 0.03125, 0.015625, 0.0078125, 0.00390625,
             0.70710678, 0.35355339, 0.17677670, 0.08838835]
    np.testing.assert_allclose(ALiBi(12).slopes, bloom, atol=5e-9)


@pytest.mark.parametrize("n", [3, 5, 6, 7, 12, 20, 24, 40, 96])
def test_alibi_slopes_follow_press_rule_for_any_head_count(n):
    slopes = alibi_slopes(n)
    np.testing.assert_allclose(slopes, press_slopes(n), rtol=1e-14)
    assert len(set(slopes.tolist())) == n  # the borrowed slopes never repeat the first ones


@pytest.mark.parametrize("q_len, k_len", [(5, 5), (3, 7), (6, 2), (1, 1)])
def test_alibi_causal_bias_is_zero_on_the_diagonal_minus_slope_times_distance_below_and_inf_above(q_len, k_len):
    alibi = ALiBi(6)
    bias = alibi.bias(q_len, k_len)
    np.testing.assert_array_equal(bias, reference_bias(alibi.slopes, q_len, k_len, True, 0))
    n = min(q_len, k_len)
    assert np.all(bias[:, np.arange(n), np.arange(n)] == 0)
    assert not np.signbit(bias[:, np.arange(n), np.arange(n)]).any()  # +0.0, not -0.0
    future = np.arange(k_len)[None, :] > np.arange(q_len)[:, None]  # key after the query
    assert np.isneginf(bias[:, future]).all() and np.isfinite(bias[:, ~future]).all()


@pytest.mark.parametrize("offset", [1, 4, 10])
def test_alibi_offset_places_queries_after_the_cached_keys(offset):
    alibi = ALiBi(4)
    q_len = 3
    k_len = offset + q_len  # the KV cache holds `offset` earlier tokens plus the new ones
    bias = alibi.bias(q_len, k_len, offset=offset)
    np.testing.assert_array_equal(bias, reference_bias(alibi.slopes, q_len, k_len, True, offset))
    # The same as the last q_len rows of the full square bias.
    np.testing.assert_array_equal(bias, alibi.bias(k_len, k_len)[:, offset:])
    np.testing.assert_array_equal(bias[:, -1, :], -alibi.slopes[:, None] * np.arange(k_len - 1, -1, -1))
    assert not np.array_equal(bias, alibi.bias(q_len, k_len))


@pytest.mark.parametrize("offset", [0, 2])
def test_alibi_non_causal_bias_is_symmetric_in_distance(offset):
    alibi = ALiBi(5)
    bias = alibi.bias(4, 8, causal=False, offset=offset)
    np.testing.assert_array_equal(bias, reference_bias(alibi.slopes, 4, 8, False, offset))
    assert np.isfinite(bias).all()
    square = alibi.bias(6, 6, causal=False)
    np.testing.assert_array_equal(square, square.transpose(0, 2, 1))


def test_alibi_bias_dtype_and_module_call():
    alibi = ALiBi(3)
    assert alibi.bias(2, 2, dtype=np.float32).dtype == np.float32
    np.testing.assert_array_equal(alibi(4, 4), alibi.bias(4, 4))
    assert alibi.bias(0, 3).shape == (3, 0, 3)


@pytest.mark.parametrize("make, match", [
    (lambda: ALiBi(0), "num_heads must be a positive integer, got 0"),
    (lambda: ALiBi(-2), "num_heads.*-2"),
    (lambda: ALiBi(2.5), "num_heads.*2.5"),
    (lambda: ALiBi(4).bias(-1, 3), "q_len must be an integer >= 0, got -1"),
    (lambda: ALiBi(4).bias(3, -2), "k_len must be an integer >= 0, got -2"),
    (lambda: ALiBi(4).bias(3, 3, offset=-1), "offset must be an integer >= 0, got -1"),
])
def test_alibi_bad_arguments_raise_value_errors_naming_them(make, match):
    with pytest.raises(ValueError, match=match):
        make()
