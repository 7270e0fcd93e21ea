import json
from collections import OrderedDict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyembed.profile import cachesim
from tinyembed.profile.cachesim import (
    CacheHierarchy,
    LevelStats,
    PerfCounts,
    SetAssociativeLRU,
    lru_stack_distances,
    parse_perf_stat,
    perf_cache_misses,
    row_line_trace,
    simulate,
)
from tinyembed.profile.machine import CacheLevel


# -- references ----------------------------------------------------------------------------------
def brute_force_hits(lines, sets, ways):
    """One OrderedDict per set, most recently used last: the textbook LRU."""
    cache = [OrderedDict() for _ in range(sets)]
    hits = []
    for line in np.asarray(lines).reshape(-1).tolist():
        s = cache[line % sets]
        hits.append(line in s)
        if line in s:
            s.move_to_end(line)
        else:
            s[line] = None
            if len(s) > ways:
                s.popitem(last=False)
    return np.array(hits, dtype=bool)


def brute_force_hierarchy(lines, geometries):
    """Each level replays the misses of the one above; returns (accesses, hits) per level."""
    out = []
    lines = np.asarray(lines)
    for sets, ways in geometries:
        hit = brute_force_hits(lines, sets, ways)
        out.append((lines.size, int(hit.sum())))
        lines = lines[~hit]
    return out


def brute_force_distances(stream):
    stack, out = [], []  # most recent last
    for x in stream:
        if x in stack:
            out.append(len(stack) - 1 - stack.index(x))
            stack.remove(x)
        else:
            out.append(-1)
        stack.append(x)
    return out


def brute_force_lines(ids, row_bytes, line_bytes, base):
    out = []
    for r in np.asarray(ids).reshape(-1).tolist():
        start = base + r * row_bytes
        out.extend(range(start // line_bytes, (start + row_bytes - 1) // line_bytes + 1))
    return out


def cache(sets, ways, line=64, name=""):
    return SetAssociativeLRU(sets * ways * line, line, ways, name)


# -- the trace of a gather -------------------------------------------------------------------------
def test_row_line_trace_known_answers():
    assert row_line_trace([2, 0], row_bytes=128).tolist() == [4, 5, 0, 1]
    # rows of 96 bytes straddle lines: row 1 is bytes 96..191, lines 1 and 2
    assert row_line_trace([0, 1, 2], row_bytes=96).tolist() == [0, 1, 1, 2, 3, 4]
    # 32 bytes into a line, a 64-byte row touches two lines
    assert row_line_trace([0], row_bytes=64, base_address=32).tolist() == [0, 1]
    assert row_line_trace([[1], [0]], row_bytes=4, line_bytes=8).tolist() == [0, 0]  # two rows per line
    assert row_line_trace(np.zeros((0, 3), np.int64), row_bytes=64).tolist() == []


def test_row_line_trace_matches_a_row_by_row_reference():
    rng = np.random.default_rng(0)
    for _ in range(200):
        line = int(2 ** rng.integers(2, 8))
        row = int(rng.integers(1, 300))
        base = int(rng.integers(0, 1000))
        ids = rng.integers(0, 50, size=tuple(rng.integers(0, 4, size=rng.integers(1, 3))))
        got = row_line_trace(ids, row, line, base)
        assert got.dtype == np.int64
        assert got.tolist() == brute_force_lines(ids, row, line, base), (row, line, base)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(ids=[0, -3], row_bytes=64), ValueError, r"-3 at position 1"),
    (dict(ids=[0.0, 1.0], row_bytes=64), TypeError, "float64"),
    (dict(ids=[True], row_bytes=64), TypeError, "bool"),
    (dict(ids=[0], row_bytes=0), ValueError, "row_bytes"),
    (dict(ids=[0], row_bytes=64, line_bytes=48), ValueError, "power of two, got 48"),
    (dict(ids=[0], row_bytes=64, line_bytes=0), ValueError, "line_bytes"),
    (dict(ids=[0], row_bytes=64, base_address=-1), ValueError, "base_address"),
    (dict(ids=[2**60], row_bytes=64), ValueError, "2\\*\\*63"),
])
def test_row_line_trace_rejects_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        row_line_trace(**kwargs)


# -- stack distances -------------------------------------------------------------------------------
def test_lru_stack_distances_match_brute_force():
    rng = np.random.default_rng(1)
    for _ in range(200):
        stream = rng.integers(0, rng.integers(1, 30), size=rng.integers(0, 80))
        assert lru_stack_distances(stream).tolist() == brute_force_distances(stream.tolist())


def test_lru_stack_distances_of_a_long_stream_match_brute_force():
    # large enough for many wavelet levels (values up to ~2**12)
    rng = np.random.default_rng(2)
    stream = rng.zipf(1.3, size=5000) % 700
    assert lru_stack_distances(stream).tolist() == brute_force_distances(stream.tolist())


def test_lru_stack_distances_of_huge_ids_match_brute_force():
    # ids spanning more than 48 bits take the sort that is not a radix sort
    stream = [2**62, 0, 2**62, 5, 0, 2**40, 5, 2**62, 2**40]
    assert lru_stack_distances(np.array(stream, dtype=np.uint64)).tolist() == brute_force_distances(stream)
    with pytest.raises(ValueError, match="2\\*\\*63"):
        lru_stack_distances(np.array([2**63], dtype=np.uint64))


# -- one cache ---------------------------------------------------------------------------------------
GEOMETRIES = [(1, 1), (1, 4), (1, 16), (2, 2), (3, 2), (4, 1), (4, 3), (8, 8), (5, 4), (16, 2)]


@pytest.mark.parametrize("sets, ways", GEOMETRIES)
def test_set_associative_lru_matches_brute_force(sets, ways):
    rng = np.random.default_rng([sets, ways])
    for _ in range(40):
        n = int(rng.integers(0, 600))
        universe = int(rng.integers(1, 4 * sets * ways + 8))
        if rng.random() < 0.5:
            lines = rng.integers(0, universe, size=n)
        else:  # skewed reuse, long runs of one hot line and a tail
            lines = (rng.zipf(1.2, size=n) - 1) % universe
        assert np.array_equal(cache(sets, ways).hits(lines), brute_force_hits(lines, sets, ways))


@settings(max_examples=60, deadline=None)
@given(sets=st.integers(1, 6), ways=st.integers(1, 5),
       lines=st.lists(st.integers(0, 40), max_size=120))
def test_set_associative_lru_matches_brute_force_on_any_trace(sets, ways, lines):
    assert np.array_equal(cache(sets, ways).hits(np.array(lines, dtype=np.int64)),
                          brute_force_hits(lines, sets, ways))


def test_hits_of_large_line_numbers_and_of_a_real_gather_match_brute_force():
    rng = np.random.default_rng(3)
    ids = np.minimum(rng.zipf(1.1, size=400) - 1, 4999)
    lines = row_line_trace(ids, row_bytes=200, base_address=0x7F00_0000_1234)  # unaligned rows, high addresses
    for sets, ways in [(64, 8), (16, 4), (7, 3)]:
        assert np.array_equal(cache(sets, ways).hits(lines), brute_force_hits(lines, sets, ways))


def test_a_working_set_that_fits_always_hits_after_warm_up():
    l1 = cache(64, 8)                             # 32 KiB: 512 lines
    lines = np.tile(np.arange(512), 5)            # consecutive lines fill every set exactly
    hit = l1.hits(lines)
    assert not hit[:512].any() and hit[512:].all()
    [stats] = simulate(lines, [l1], warmup=512)
    assert (stats.accesses, stats.hits, stats.misses, stats.hit_rate) == (4 * 512, 4 * 512, 0, 1.0)


def test_a_cyclic_scan_one_line_larger_than_a_fully_associative_cache_always_misses():
    full = SetAssociativeLRU.fully_associative(64 * 64)   # 64 lines
    assert full.sets == 1 and full.ways == 64
    assert not full.hits(np.tile(np.arange(65), 10)).any()
    assert full.hits(np.tile(np.arange(64), 10))[64:].all()  # one line fewer: all hits after the first pass


def test_more_lines_than_ways_in_one_set_thrash_while_more_ways_hold_them():
    sets, ways = 16, 4
    conflicting = np.arange(ways + 1) * sets      # five lines, all in set 0
    trace = np.tile(conflicting, 20)
    assert not cache(sets, ways).hits(trace).any()
    # the same lines in a cache with more ways (same number of sets), or fully associative
    assert cache(sets, ways + 1).hits(trace)[ways + 1:].all()
    assert SetAssociativeLRU.fully_associative(sets * ways * 64).hits(trace)[ways + 1:].all()
    # and spread over different sets (consecutive lines) they fit the 4-way cache
    assert cache(sets, ways).hits(np.tile(np.arange(ways + 1), 20))[ways + 1:].all()


@pytest.mark.parametrize("args, match", [
    ((1000, 64, 2), "not a whole number of 64-byte lines"),
    ((6 * 64, 64, 4), "6 lines .* do not divide into sets of 4 ways"),
    ((4096, 64, 0), "ways"),
    ((0, 64, 1), "size_bytes"),
    ((4096, 96, 1), "power of two, got 96"),
    ((4096, 64, 1.0), "ways"),
])
def test_set_associative_lru_rejects_impossible_geometries(args, match):
    with pytest.raises(ValueError, match=match):
        SetAssociativeLRU(*args)


def test_hits_validates_the_trace():
    with pytest.raises(ValueError, match="-1 at position 2"):
        cache(2, 2).hits([0, 1, -1])
    with pytest.raises(TypeError, match="integers"):
        cache(2, 2).hits([0.5])


# -- hierarchies ------------------------------------------------------------------------------------
def test_hierarchy_matches_a_chain_of_brute_force_caches():
    rng = np.random.default_rng(4)
    geometries = [(4, 2), (8, 4), (16, 8)]
    levels = [cache(s, w, name=f"L{i + 1}") for i, (s, w) in enumerate(geometries)]
    for _ in range(30):
        lines = (rng.zipf(1.05, size=int(rng.integers(1, 3000))) - 1) % int(rng.integers(1, 1000))
        stats = simulate(lines, levels)
        assert [(s.accesses, s.hits) for s in stats] == brute_force_hierarchy(lines, geometries)
        for upper, lower in zip(stats, stats[1:], strict=False):
            assert lower.accesses == upper.misses


def test_a_working_set_between_l1_and_l2_misses_l1_and_hits_l2():
    hierarchy = CacheHierarchy((cache(8, 2, name="L1"), cache(64, 8, name="L2")))  # 16 and 512 lines
    lines = np.tile(np.arange(100), 6)
    l1, l2 = hierarchy.simulate(lines, warmup=100)
    assert (l1.accesses, l1.hits) == (500, 0)                 # a cyclic scan of 100 lines through 16
    assert (l2.accesses, l2.hits, l2.hit_rate) == (500, 500, 1.0)


def test_warmup_counts_only_later_accesses_and_is_checked():
    levels = [cache(2, 2)]
    lines = np.array([0, 1, 0, 1, 2, 0])
    [all_of_it] = simulate(lines, levels)
    [after] = simulate(lines, levels, warmup=2)
    hit = brute_force_hits(lines, 2, 2)
    assert (all_of_it.accesses, all_of_it.hits) == (6, int(hit.sum()))
    assert (after.accesses, after.hits) == (4, int(hit[2:].sum()))
    [nothing] = simulate(lines, levels, warmup=6)
    assert (nothing.accesses, nothing.hit_rate) == (0, None)
    for bad in (-1, 7, 1.5):
        with pytest.raises(ValueError, match="warmup"):
            simulate(lines, levels, warmup=bad)


def test_hierarchy_from_machine_caches():
    caches = [CacheLevel(3, "Unified", 32 << 20, 64, 16, 32768, "0-1"), CacheLevel(1, "Data", 32 << 10, 64, 8, 64, "0"),
              CacheLevel(2, "Unified", 512 << 10, 64, 8, 1024, "0")]
    hierarchy = CacheHierarchy.from_machine(caches)
    assert [(lv.name, lv.sets, lv.ways) for lv in hierarchy.levels] == [
        ("L1d", 64, 8), ("L2", 1024, 8), ("L3", 32768, 16)]
    assert hierarchy.line_bytes == 64
    # ways 0 (reported by some systems for a fully associative cache) is one set
    [full] = CacheHierarchy.from_machine([CacheLevel(1, "Data", 4096, 64, 0, 1, "0")]).levels
    assert (full.sets, full.ways) == (1, 64)
    with pytest.raises(ValueError, match="no caches"):
        CacheHierarchy.from_machine([])


def test_hierarchy_rejects_mixed_line_sizes_and_empty_levels():
    with pytest.raises(ValueError, match=r"one line size.*\[64, 128\]"):
        CacheHierarchy((cache(4, 2), cache(4, 2, line=128)))
    with pytest.raises(ValueError, match="at least one level"):
        CacheHierarchy(())
    with pytest.raises(TypeError, match="SetAssociativeLRU"):
        CacheHierarchy(("L1",))


def test_results_are_plain_json():
    hierarchy = CacheHierarchy((cache(4, 2, name="L1"),))
    stats = hierarchy.simulate([1, 2, 1])
    data = json.loads(json.dumps([s.to_dict() for s in stats]))
    assert data[0] == {"name": "L1", "size_bytes": 512, "line_bytes": 64, "ways": 2, "sets": 4, "accesses": 3,
                       "hits": 1, "misses": 2, "hit_rate": 1 / 3}
    described = json.loads(json.dumps(hierarchy.to_dict()))
    assert described["levels"][0]["sets"] == 4 and described["assumptions"] == list(cachesim.MODEL_ASSUMPTIONS)
    assert LevelStats("L2", 1, 64, 1, 1, 0, 0, 0).hit_rate is None


# -- perf --------------------------------------------------------------------------------------------
def test_parse_perf_stat_reads_counts_and_marks_what_perf_could_not_count():
    text = ("# started on Fri Nov 27 23:41:14 2026\n\n"
            "1234567,,cache-references:u,1000,100.00,,\n"
            "<not supported>,,cache-misses,0,100.00,,\n"
            "<not counted>,,LLC-loads,0,0.00,,\n"
            "160.79,msec,task-clock,160788056,100.00,0.254,CPUs utilized\n")
    counts = parse_perf_stat(text, ["cache-references", "cache-misses", "LLC-loads", "task-clock", "L1-dcache-loads"])
    assert counts == {"cache-references": 1234567, "cache-misses": None, "LLC-loads": None, "task-clock": 160,
                      "L1-dcache-loads": None}


def test_perf_missing_is_reported_not_raised():
    result = perf_cache_misses("pass", perf="no-such-perf-binary-here")
    assert isinstance(result, PerfCounts)
    assert not result.available and "not on PATH" in result.reason
    assert result.counts == {e: None for e in cachesim.PERF_EVENTS}
    json.dumps(result.to_dict())


def test_perf_counts_what_this_machine_lets_it_count():
    result = perf_cache_misses("import numpy as np; np.ones(1 << 20).sum()")
    assert set(result.counts) == set(cachesim.PERF_EVENTS)
    if result.available:
        assert any(isinstance(v, int) and v > 0 for v in result.counts.values())
    else:  # this KVM guest has no PMU: every hardware event is <not supported>
        assert result.reason and all(v is None for v in result.counts.values())


def test_perf_reports_a_failing_snippet():
    # task-clock is a software event: it counts even in a VM without hardware counters
    ok = perf_cache_misses("pass", events=["task-clock"])
    if not ok.available:
        pytest.skip(f"perf cannot count here: {ok.reason}")
    assert ok.counts["task-clock"] > 0
    with pytest.raises(RuntimeError, match="exited with 3"):
        perf_cache_misses("raise SystemExit(3)", events=["task-clock"])


def test_perf_rejects_bad_arguments():
    with pytest.raises(TypeError, match="python_code"):
        perf_cache_misses(b"pass")
    with pytest.raises(ValueError, match="events"):
        perf_cache_misses("pass", events=["cycles,instructions"])
