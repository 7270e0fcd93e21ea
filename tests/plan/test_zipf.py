import math

import numpy as np
import pytest

from tinyembed.plan.zipf import (
    EXACT_HEAD_ROWS,
    zipf_expected_distinct,
    zipf_ids,
    zipf_mass,
    zipf_probabilities,
    zipf_residue_mass,
)


def brute_zipf_probs(num_rows, alpha):
    w = np.arange(1, num_rows + 1, dtype=np.float64) ** -alpha
    return w / w.sum()


# ---------------------------------------------------------------------------
# Probabilities and masses against the plain sum
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0])
@pytest.mark.parametrize("num_rows", [1, 2, 7, 1000])
def test_zipf_probabilities_match_the_definition(num_rows, alpha):
    p = zipf_probabilities(num_rows, alpha)
    assert p.shape == (num_rows,) and p.dtype == np.float64
    np.testing.assert_allclose(p, brute_zipf_probs(num_rows, alpha), rtol=1e-12)
    assert math.fsum(p) == pytest.approx(1.0, abs=1e-12)
    # p[r] / p[0] = (r + 1)^-alpha: the ratio needs no normalizer
    np.testing.assert_allclose(p / p[0], np.arange(1.0, num_rows + 1) ** -alpha, rtol=1e-12)


def test_zipf_probabilities_agree_with_zipf_mass_row_by_row():
    p = zipf_probabilities(300, 1.3)
    np.testing.assert_allclose(p, [zipf_mass(300, 1.3, r, r + 1) for r in range(300)], rtol=1e-12)


def test_zipf_probabilities_stop_at_the_exact_head():
    p = zipf_probabilities(EXACT_HEAD_ROWS, 1.0)
    assert math.fsum(p) == pytest.approx(1.0, abs=1e-12)
    # 1 / H(2^20), H(n) ~ ln n + gamma + 1/(2n)
    assert p[0] == pytest.approx(1 / (math.log(EXACT_HEAD_ROWS) + 0.5772156649015329 + 0.5 / EXACT_HEAD_ROWS),
                                 rel=1e-10)
    with pytest.raises(ValueError, match=f"EXACT_HEAD_ROWS={EXACT_HEAD_ROWS}.*num_rows={EXACT_HEAD_ROWS + 1}"):
        zipf_probabilities(EXACT_HEAD_ROWS + 1, 1.0)


@pytest.mark.parametrize("alpha", [0.5, 1.0, 1.2, 2.0])
@pytest.mark.parametrize("start,stop", [(0, 1), (0, 1000), (3, 17), (500, 1000), (999, 1000), (10, 10)])
def test_zipf_mass_matches_brute_force_small_table(alpha, start, stop):
    p = brute_zipf_probs(1000, alpha)
    assert zipf_mass(1000, alpha, start, stop) == pytest.approx(p[start:stop].sum(), rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("alpha", [0.8, 1.0, 1.5])
def test_zipf_mass_beyond_exact_head_matches_brute_force(alpha):
    # 3M rows: the rows past EXACT_HEAD_ROWS use the midpoint integral; compare with the plain sum.
    v = 3 * EXACT_HEAD_ROWS
    p = brute_zipf_probs(v, alpha)
    for start, stop in [(0, v), (0, EXACT_HEAD_ROWS), (EXACT_HEAD_ROWS - 10, EXACT_HEAD_ROWS + 10),
                        (EXACT_HEAD_ROWS + 12345, 2 * EXACT_HEAD_ROWS), (v - 1, v), (100, v)]:
        assert zipf_mass(v, alpha, start, stop) == pytest.approx(p[start:stop].sum(), rel=1e-10)


def test_zipf_mass_of_disjoint_ranges_adds_up_to_one_for_a_billion_rows():
    v = 10**9
    cuts = [0, 1, 1000, EXACT_HEAD_ROWS, 10**8, 5 * 10**8, v]
    masses = [zipf_mass(v, 1.0, a, b) for a, b in zip(cuts, cuts[1:], strict=False)]
    assert math.fsum(masses) == pytest.approx(1.0, abs=1e-12)
    # 1 / H(10^9) with H(n) ~ ln n + gamma + 1/(2n): the hottest row's share
    assert masses[0] == pytest.approx(1 / (math.log(v) + 0.5772156649015329 + 0.5 / v), rel=1e-12)


@pytest.mark.parametrize("num_rows,num_devices,alpha", [(1000, 4, 1.0), (1001, 7, 0.7), (5, 8, 1.3),
                                                       (3 * EXACT_HEAD_ROWS + 5, 7, 1.0),
                                                       (3 * EXACT_HEAD_ROWS, 16, 1.4)])
def test_zipf_residue_mass_matches_brute_force(num_rows, num_devices, alpha):
    p = brute_zipf_probs(num_rows, alpha)
    expected = np.bincount(np.arange(num_rows) % num_devices, weights=p, minlength=num_devices)
    np.testing.assert_allclose(zipf_residue_mass(num_rows, alpha, num_devices), expected, rtol=1e-9, atol=1e-15)


# ---------------------------------------------------------------------------
# The sampler
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("num_rows,alpha", [(2, 1.0), (50, 0.6), (50, 1.0), (50, 1.7), (1000, 1.0)])
def test_zipf_ids_frequencies_match_zipf_probabilities(num_rows, alpha):
    n = 200_000
    ids = zipf_ids(num_rows, alpha, n, np.random.default_rng(11))
    assert ids.dtype == np.int64 and ids.min() >= 0 and ids.max() < num_rows
    expected = n * zipf_probabilities(num_rows, alpha)
    counts = np.bincount(ids, minlength=num_rows)
    # Pearson's statistic has mean df and standard deviation sqrt(2 df) for a correct sampler.
    chi2 = float(np.sum((counts - expected) ** 2 / expected))
    df = num_rows - 1
    assert chi2 < df + 6 * math.sqrt(2 * df), chi2
    sigma = np.sqrt(expected * (1 - expected / n))
    assert np.all(np.abs(counts - expected) < 5 * sigma)


@pytest.mark.parametrize("alpha", [0.5, 1.0])
def test_zipf_ids_beyond_exact_head_are_the_exact_inverse_cdf(alpha):
    # Same uniforms (zipf_ids takes one rng.random(n)), searched in the exact cumulative
    # sum of all 3M weights: the closed-form tail must pick the same rows.
    v = 3 * EXACT_HEAD_ROWS
    ids = zipf_ids(v, alpha, 50_000, np.random.default_rng(4))
    cdf = np.cumsum(np.arange(1, v + 1, dtype=np.float64) ** -alpha)
    reference = np.searchsorted(cdf, np.random.default_rng(4).random(50_000) * cdf[-1], side="right")
    assert np.count_nonzero(ids >= EXACT_HEAD_ROWS) > 100  # the tail is exercised
    assert np.count_nonzero(ids != reference) <= 2  # only a draw within rounding of a boundary may differ


def test_zipf_ids_billion_rows_tail_mass_matches_zipf_mass():
    # The sampler's tail (inverse of the integral) and zipf_mass describe the same distribution.
    v = 10**9
    n = 200_000
    ids = zipf_ids(v, 1.0, n, np.random.default_rng(2))
    assert ids.min() >= 0 and ids.max() < v
    for start, stop in [(0, 1), (0, EXACT_HEAD_ROWS), (EXACT_HEAD_ROWS, 10**7), (10**8, v), (9 * 10**8, v)]:
        p = zipf_mass(v, 1.0, start, stop)
        observed = np.count_nonzero((ids >= start) & (ids < stop))
        assert abs(observed - n * p) < 5 * math.sqrt(n * p * (1 - p)) + 1, (start, stop)


def test_zipf_ids_of_one_row_are_all_zero():
    ids = zipf_ids(1, 1.5, 100, np.random.default_rng(0))
    np.testing.assert_array_equal(ids, np.zeros(100, dtype=np.int64))


@pytest.mark.parametrize("num_rows", [1000, 10**9])
@pytest.mark.parametrize("size,shape", [(12, (12,)), ((3, 4), (3, 4)), ([2, 3, 2], (2, 3, 2)),
                                        (np.int64(12), (12,)), ((), ()), (0, (0,)), ((2, 0), (2, 0))])
def test_zipf_ids_shape_is_size_and_the_ids_do_not_depend_on_it(num_rows, size, shape):
    ids = zipf_ids(num_rows, 1.1, size, np.random.default_rng(8))
    assert ids.shape == shape and ids.dtype == np.int64
    flat = zipf_ids(num_rows, 1.1, math.prod(shape), np.random.default_rng(8))
    np.testing.assert_array_equal(ids.reshape(-1), flat)


def test_zipf_ids_are_deterministic_for_a_seed_and_use_one_uniform_per_id():
    a = zipf_ids(10**9, 1.0, 1000, np.random.default_rng(5))
    np.testing.assert_array_equal(a, zipf_ids(10**9, 1.0, 1000, np.random.default_rng(5)))
    assert np.count_nonzero(a != zipf_ids(10**9, 1.0, 1000, np.random.default_rng(6))) > 500
    # The generator advances by exactly rng.random(n): what follows a draw is reproducible.
    drawn, plain = np.random.default_rng(9), np.random.default_rng(9)
    zipf_ids(5000, 0.9, (10, 10), drawn)
    plain.random(100)
    assert drawn.random() == plain.random()


# ---------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("make,value", [
    (lambda: zipf_mass(0, 1.0, 0, 0), "0"),
    (lambda: zipf_mass(10, -0.5, 0, 1), "-0.5"),
    (lambda: zipf_mass(10, 1.0, 3, 11), "11"),
    (lambda: zipf_residue_mass(10, 1.0, 0), "0"),
    (lambda: zipf_probabilities(-3, 1.0), "-3"),
    (lambda: zipf_probabilities(10, 0.0), "0.0"),
    (lambda: zipf_probabilities(10, float("inf")), "inf"),
    (lambda: zipf_ids(10, float("nan"), 5, np.random.default_rng()), "nan"),
    (lambda: zipf_ids(10, "1", 5, np.random.default_rng()), "'1'"),
    (lambda: zipf_ids(2.5, 1.0, 5, np.random.default_rng()), "2.5"),
    (lambda: zipf_ids(True, 1.0, 5, np.random.default_rng()), "True"),
    (lambda: zipf_ids(10, 1.0, -1, np.random.default_rng()), "-1"),
    (lambda: zipf_ids(10, 1.0, (2, -4), np.random.default_rng()), "-4"),
    (lambda: zipf_ids(10, 1.0, 2.0, np.random.default_rng()), "2.0"),
])
def test_bad_input_raises_value_error_naming_the_value(make, value):
    with pytest.raises(ValueError, match=value.replace("(", r"\(").replace(".", r"\.")):
        make()


def test_zipf_ids_refuses_a_legacy_random_state():
    with pytest.raises(TypeError, match="RandomState"):
        zipf_ids(10, 1.0, 5, np.random.RandomState(0))


def test_expected_distinct_uses_the_same_rows_as_zipf_mass_past_the_exact_head():
    # Past EXACT_HEAD_ROWS each rank is the integral of x^-alpha over [r - 1/2, r + 1/2): one
    # draw touches one row, so the expected distinct rows of n = 1 draw is 1; of n draws from
    # a table whose mass is nearly all in its first row, about 1 + (n - 1) * (1 - p0).
    num_rows = EXACT_HEAD_ROWS + 3000
    assert zipf_expected_distinct(num_rows, 1.2, 1) == pytest.approx(1.0, rel=1e-12)
    p0 = zipf_mass(num_rows, 3.0, 0, 1)
    assert zipf_expected_distinct(num_rows, 3.0, 2) == pytest.approx(2 - p0**2 - zipf_mass(num_rows, 3.0, 1, 2)**2
                                                                    - sum(zipf_mass(num_rows, 3.0, r, r + 1)**2
                                                                          for r in range(2, 200)), rel=1e-6)


def test_expected_distinct_past_the_exact_head_matches_the_sampler():
    rng = np.random.default_rng(5)
    num_rows, alpha, n = 4 * EXACT_HEAD_ROWS, 0.9, 20000
    simulated = np.mean([np.unique(zipf_ids(num_rows, alpha, n, rng)).size for _ in range(40)])
    assert zipf_expected_distinct(num_rows, alpha, n) == pytest.approx(simulated, rel=0.01)
