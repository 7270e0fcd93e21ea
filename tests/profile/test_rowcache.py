import json
from collections import Counter, OrderedDict

import numpy as np
import pytest

from tinyembed.profile.rowcache import RowCacheCurves, hot_set_curve, lfu_hit_rates, lru_hit_rates, row_cache_curves


# -- references ----------------------------------------------------------------------------------
def brute_force_lru(ids, capacity):
    cache, hits = OrderedDict(), 0
    for r in ids:
        if r in cache:
            hits += 1
            cache.move_to_end(r)
        else:
            cache[r] = None
            if len(cache) > capacity:
                cache.popitem(last=False)
    return hits / len(ids)


def brute_force_lfu(ids, capacity, admission="always"):
    """Scan the whole cache for the victim: smallest (count, last use); counts never reset."""
    count, last, cache, hits = Counter(), {}, set(), 0
    for t, r in enumerate(ids):
        count[r] += 1
        if r in cache:
            hits += 1
        else:
            if len(cache) == capacity:
                victim = min(cache, key=lambda c: (count[c], last[c]))
                if admission == "frequency" and count[r] < count[victim]:
                    last[r] = t
                    continue
                cache.remove(victim)
            cache.add(r)
        last[r] = t
    return hits / len(ids)


def zipf_stream(rng, n, rows, a=1.2):
    return (rng.zipf(a, size=n) - 1) % rows


# -- LRU -------------------------------------------------------------------------------------------
def test_lru_hit_rates_match_brute_force_for_every_capacity():
    rng = np.random.default_rng(0)
    for _ in range(40):
        n, rows = int(rng.integers(1, 300)), int(rng.integers(1, 60))
        ids = rng.integers(0, rows, size=n) if rng.random() < 0.5 else zipf_stream(rng, n, rows)
        capacities = np.arange(1, rows + 3)
        expected = [brute_force_lru(ids.tolist(), c) for c in capacities]
        np.testing.assert_allclose(lru_hit_rates(ids, capacities), expected, rtol=0, atol=1e-15)


def test_a_cyclic_stream_one_row_larger_than_an_lru_cache_never_hits():
    for capacity in (1, 7, 100):
        ids = np.tile(np.arange(capacity + 1), 9)
        assert lru_hit_rates(ids, [capacity]).tolist() == [0.0]
        assert lru_hit_rates(ids, [capacity + 1])[0] == 1 - (capacity + 1) / ids.size


def test_a_cache_as_large_as_the_distinct_rows_misses_only_first_accesses():
    rng = np.random.default_rng(1)
    ids = zipf_stream(rng, 5000, 300).reshape(50, 100)  # any shape
    distinct = np.unique(ids).size
    expected = 1 - distinct / ids.size
    capacities = [distinct, distinct + 1, 10 * distinct]
    np.testing.assert_allclose(lru_hit_rates(ids, capacities), expected, rtol=1e-15)
    np.testing.assert_allclose(lfu_hit_rates(ids, capacities), expected, rtol=1e-15)
    np.testing.assert_allclose(lfu_hit_rates(ids, capacities, "frequency"), expected, rtol=1e-15)


def test_lru_hit_rate_never_falls_as_the_cache_grows():
    rng = np.random.default_rng(2)
    ids = zipf_stream(rng, 20000, 3000, a=1.1)
    rates = lru_hit_rates(ids, np.arange(1, 3001))
    assert np.all(np.diff(rates) >= 0)
    assert rates[0] > 0 and rates[-1] == 1 - np.unique(ids).size / ids.size


# -- LFU -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("admission", ["always", "frequency"])
def test_lfu_hit_rates_match_brute_force(admission):
    rng = np.random.default_rng(3)
    for _ in range(25):
        n, rows = int(rng.integers(1, 400)), int(rng.integers(1, 40))
        ids = rng.integers(0, rows, size=n) if rng.random() < 0.3 else zipf_stream(rng, n, rows, a=1.5)
        capacities = np.arange(1, rows + 2)
        expected = [brute_force_lfu(ids.tolist(), c, admission) for c in capacities]
        np.testing.assert_allclose(lfu_hit_rates(ids, capacities, admission), expected, rtol=0, atol=1e-15)


def test_lfu_keeps_a_stable_hot_set_through_a_scan_that_flushes_lru():
    rng = np.random.default_rng(4)
    hot = np.arange(10)
    before = np.concatenate([rng.permutation(hot) for _ in range(50)])
    scan = np.arange(100, 200)                     # 100 rows read once each
    after = np.concatenate([rng.permutation(hot) for _ in range(20)])
    ids = np.concatenate([before, scan, after])
    # capacity 20: both hold the hot set; the scan pushes it out of LRU, not out of LFU
    lru, = lru_hit_rates(ids, [20])
    lfu, = lfu_hit_rates(ids, [20])
    assert lfu * ids.size == ids.size - 10 - 100         # compulsory misses only
    assert lru * ids.size == ids.size - 10 - 100 - 10    # and the hot set again after the scan
    assert lfu > lru


def test_frequency_admission_keeps_one_off_rows_out():
    # FBGEMM's rule: a row read once does not displace a row read twice
    ids = [0, 0, 1, 1, 2, 0, 1]
    assert lfu_hit_rates(ids, [2], "frequency")[0] == 4 / 7   # 2 never cached: 0 and 1 stay
    assert lfu_hit_rates(ids, [2], "always")[0] == 3 / 7      # 2 evicts 0 (count 2, used less recently than 1)


# -- the static oracle -------------------------------------------------------------------------------
def test_hot_set_curve_known_answer_and_brute_force():
    ids = [5, 5, 5, 9, 9, 1]
    assert hot_set_curve(ids, [0, 1, 2, 3, 10]).tolist() == [0.0, 0.5, 5 / 6, 1.0, 1.0]
    rng = np.random.default_rng(5)
    ids = zipf_stream(rng, 3000, 400)
    ks = np.arange(0, 450)
    counts = [c for _, c in Counter(ids.tolist()).most_common()]
    expected = [sum(counts[:k]) / ids.size for k in ks]
    np.testing.assert_allclose(hot_set_curve(ids, ks), expected, rtol=1e-14)


def test_lru_and_lfu_stay_below_the_static_oracle_on_independent_draws():
    rng = np.random.default_rng(6)
    ids = zipf_stream(rng, 20000, 2000, a=1.05)   # i.i.d. draws: popularity never changes
    capacities = [8, 64, 256, 1024]
    oracle = hot_set_curve(ids, capacities)
    # the oracle never misses its hot rows, not even the first time: allow those misses
    slack = np.minimum(capacities, np.unique(ids).size) / ids.size
    assert np.all(lru_hit_rates(ids, capacities) <= oracle + slack)
    assert np.all(lfu_hit_rates(ids, capacities) <= oracle + slack)


# -- results and validation --------------------------------------------------------------------------
def test_row_cache_curves_bundle_the_three_curves_as_json():
    rng = np.random.default_rng(7)
    ids = zipf_stream(rng, 2000, 500)
    curves = row_cache_curves(ids, [4, 32, 256], admission="frequency")
    assert isinstance(curves, RowCacheCurves)
    assert curves.lru == lru_hit_rates(ids, [4, 32, 256]).tolist()
    assert curves.lfu == lfu_hit_rates(ids, [4, 32, 256], "frequency").tolist()
    assert curves.hot_set == hot_set_curve(ids, [4, 32, 256]).tolist()
    data = json.loads(json.dumps(curves.to_dict()))
    assert data["lookups"] == 2000 and data["distinct_rows"] == np.unique(ids).size
    assert data["capacities"] == [4, 32, 256] and data["lfu_admission"] == "frequency"


@pytest.mark.parametrize("fn", [lru_hit_rates, lfu_hit_rates])
def test_capacities_and_ids_are_checked(fn):
    with pytest.raises(ValueError, match=r"capacities must be >= 1, got 0 at position 1"):
        fn([1, 2], [4, 0])
    with pytest.raises(ValueError, match="got -2"):
        fn([1, 2], [-2])
    with pytest.raises(TypeError, match="float64"):
        fn([1, 2], [1.5])
    with pytest.raises(ValueError, match="1-D"):
        fn([1, 2], [])
    with pytest.raises(ValueError, match=r"ids must be >= 0, got -1 at position 2"):
        fn([1, 2, -1], [4])
    with pytest.raises(TypeError, match="ids must hold integers"):
        fn([1.0, 2.0], [4])
    with pytest.raises(ValueError, match="empty"):
        fn(np.zeros(0, np.int64), [4])


def test_hot_set_sizes_and_admission_are_checked():
    assert hot_set_curve([1], [0]).tolist() == [0.0]
    with pytest.raises(ValueError, match="ks must be >= 0, got -1"):
        hot_set_curve([1], [-1])
    with pytest.raises(ValueError, match="admission must be one of"):
        lfu_hit_rates([1], [1], admission="lru")
