"""EmbeddingProfiler against brute force and published formulas.

Timings are replaced by fixed ones where a test checks arithmetic on them (so the
numbers are exact), and the ids each method draws are recorded from
``AccessPattern.ids`` so statistics are recomputed from the very ids used.
"""

import json
import math
from collections import Counter

import numpy as np
import pytest

from tinyembed.kernels.rows import STORAGE_TYPES
from tinyembed.nn import Embedding
from tinyembed.plan.memory import embedding_memory
from tinyembed.plan.models import MODELS
from tinyembed.profile import EmbeddingProfiler, make_table, rowcache, timing
from tinyembed.profile.machine import CacheLevel
from tinyembed.profile.patterns import AccessPattern, text_stream
from tinyembed.profile.traffic import bytes_moved
from tinyembed.tables import QuantizedEmbedding, ReducedPrecisionEmbedding

TIMES_MS = [1.0, 2.0, 4.0]  # median 2 ms, min 1 ms, max 4 ms
MEDIAN_S, MIN_S, MAX_S = 2e-3, 1e-3, 4e-3


@pytest.fixture
def fixed_timings(monkeypatch):
    """timing.interleaved runs each function once and reports TIMES_MS for it."""
    def interleaved(fns, repeats, warmup=1, min_sample_ms=0.0):
        for fn in fns.values():
            fn()
        return {name: timing.Timing(list(TIMES_MS)) for name in fns}
    monkeypatch.setattr(timing, "interleaved", interleaved)


@pytest.fixture
def drawn(monkeypatch):
    """Every id array AccessPattern.ids returns, in order, as (label, ids)."""
    calls = []
    original = AccessPattern.ids

    def ids(self, vocab, shape, rng):
        out = original(self, vocab, shape, rng)
        calls.append((self.label, out.copy()))
        return out
    monkeypatch.setattr(AccessPattern, "ids", ids)
    return calls


class RecordingTable:
    """The table protocol (lookup with out=, sizes, nbytes) around a real table, recording every id batch."""

    def __init__(self, inner):
        self.inner = inner
        self.num_embeddings, self.embedding_dim = inner.num_embeddings, inner.embedding_dim
        self.nbytes = inner.nbytes
        self.calls = []

    def lookup(self, ids, out=None):
        self.calls.append(np.array(ids, copy=True))
        return self.inner.lookup(ids, out=out)


def profiler(**kwargs):
    return EmbeddingProfiler(**{"repeats": 1, "warmup": 0, **kwargs})


def row_bytes(dtype, dim):
    """Bytes of one stored row, from each format's definition."""
    return {"float32": 4 * dim, "float16": 2 * dim, "bfloat16": 2 * dim, "float8_e4m3fn": dim,
            "int8": dim + 4 + 4,              # codes, float32 scale and bias
            "int4": math.ceil(dim / 2) + 2 + 2,  # two codes a byte, float16 scale and bias
            }[dtype]


def brute_hot_set(batches, ks):
    counts = sorted(Counter(np.concatenate([b.reshape(-1) for b in batches]).tolist()).values(), reverse=True)
    total = sum(counts)
    return [sum(counts[:k]) / total for k in ks]


def lines_of_rows(ids, row_bytes_, line_bytes=64):
    """Cache lines each row read touches: first to last line it overlaps."""
    ids = np.asarray(ids, dtype=np.int64)
    return (ids * row_bytes_ + row_bytes_ - 1) // line_bytes - ids * row_bytes_ // line_bytes + 1


# -- lookup throughput -----------------------------------------------------------------------------
V, D = 300, 12
TABLES = {
    "float32": lambda w: Embedding.from_pretrained(w),
    "float16": lambda w: ReducedPrecisionEmbedding.from_float(w, "float16"),
    "bfloat16": lambda w: ReducedPrecisionEmbedding.from_float(w, "bfloat16"),
    "int8": lambda w: QuantizedEmbedding.from_float(w, bits=8),
    "int4": lambda w: QuantizedEmbedding.from_float(w, bits=4),
    "array": lambda w: w,
}


@pytest.mark.parametrize("kind", TABLES)
def test_lookup_numbers_follow_the_documented_formula(kind, fixed_timings):
    weight = np.random.default_rng(0).standard_normal((V, D), dtype=np.float32)
    table = TABLES[kind](weight)
    results = profiler().measure_lookup_performance(table, [1, 3], [5, 8], "zipf-1.1")
    assert [(m.batch_size, m.seq_len) for m in results] == [(1, 5), (1, 8), (3, 5), (3, 8)]
    dtype = "float32" if kind == "array" else kind
    for m in results:
        n = m.batch_size * m.seq_len
        assert (m.num_embeddings, m.embedding_dim, m.dtype, m.pattern, m.tokens) == (V, D, dtype, "zipf-1.1", n)
        # ids (int64) in, each looked-up row read as stored, float32 rows out
        assert m.bytes_moved == n * (8 + row_bytes(dtype, D) + 4 * D)
        assert (m.median_s, m.min_s, m.max_s) == pytest.approx((MEDIAN_S, MIN_S, MAX_S), rel=1e-12)
        assert m.tokens_per_s == pytest.approx(n / MEDIAN_S, rel=1e-12)
        assert m.gb_per_s == pytest.approx(m.bytes_moved / MEDIAN_S / 1e9, rel=1e-12)
        assert m.spread == pytest.approx((MAX_S - MIN_S) / MEDIAN_S)
        assert m.percent_of_peak is None  # no machine measured yet
        assert 1 <= m.unique_rows <= n
    if dtype == "float32":  # the benchmark's own formula for a forward gather agrees
        assert results[-1].bytes_moved == bytes_moved("forward", n=results[-1].tokens, dim=D, row_bytes=4 * D)


def test_unique_rows_are_those_of_the_ids_looked_up():
    table = RecordingTable(QuantizedEmbedding.from_float(np.ones((1000, 8), np.float32), bits=8))
    results = profiler(repeats=2, warmup=1, min_sample_ms=0).measure_lookup_performance(  # one call a repeat
        table, [2, 4], [16, 64], "zipf", alpha=1.2)
    shapes = [(2, 16), (2, 64), (4, 16), (4, 64)]
    assert len(table.calls) == 3 * len(shapes)  # warm-up and 2 repeats of each shape, nothing else
    for k, (m, shape) in enumerate(zip(results, shapes, strict=True)):
        calls = table.calls[3 * k:3 * k + 3]
        assert all(c.shape == shape and np.array_equal(c, calls[0]) for c in calls)  # one batch, timed again
        assert m.unique_rows == np.unique(calls[0]).size < m.tokens  # Zipf ids repeat
        assert m.pattern == "zipf-1.2" and m.dtype == "RecordingTable"
        assert m.bytes_moved == m.tokens * (8 + (8 + 8) + 4 * 8)


def test_measured_rates_are_consistent_with_the_measured_median():
    [m] = profiler(repeats=3).measure_lookup_performance(make_table(500, 16, "int4"), [4], [32])
    assert 0 < m.min_s <= m.median_s <= m.max_s
    assert m.tokens_per_s * m.median_s == pytest.approx(m.tokens)
    assert m.gb_per_s * m.median_s * 1e9 == pytest.approx(m.bytes_moved)
    assert json.loads(json.dumps(m.to_dict(), allow_nan=False))["spread"] == pytest.approx(m.spread)


def test_percent_of_peak_is_against_the_measured_copy_bandwidth():
    p = profiler()
    machine = p.machine(copy_bytes=1 << 20)
    assert machine.copy_bytes == 1 << 20 and p.machine() is machine  # measured once
    assert machine.peak_gbps == max(machine.copy_gbps_one_thread, machine.copy_gbps_all_cores) > 0
    for m in p.measure_lookup_performance(make_table(200, 8), [2], [16, 32]):
        assert m.percent_of_peak == pytest.approx(100 * m.gb_per_s / machine.peak_gbps)


def test_lookup_scaling_covers_the_grid_with_each_storage(fixed_timings):
    results = profiler().lookup_scaling([50, 70], [4, 9], ["float32", "int8", "bfloat16"], batch_size=2, seq_len=8)
    expected = [(v, d, t) for v in (50, 70) for d in (4, 9) for t in ("float32", "int8", "bfloat16")]
    assert [(m.num_embeddings, m.embedding_dim, m.dtype) for m in results] == expected
    for m in results:
        assert m.tokens == 16 and m.bytes_moved == 16 * (8 + row_bytes(m.dtype, m.embedding_dim) + 4 * m.embedding_dim)


@pytest.mark.parametrize("dtype", STORAGE_TYPES)
def test_make_table_stores_the_seeded_normal_table_in_each_dtype(dtype):
    weight = np.random.default_rng(3).standard_normal((40, 6), dtype=np.float32)
    table = make_table(40, 6, dtype, seed=3)
    rows = table.weight.data if dtype == "float32" else table.lookup(np.arange(40))
    tolerance = {"float32": 0, "float16": 1e-3, "bfloat16": 1e-2, "float8_e4m3fn": 0.07, "int8": 0.02,
                 "int4": 0.4}[dtype]
    np.testing.assert_allclose(rows, weight, atol=tolerance * np.abs(weight).max(), rtol=0)
    assert (table.weight.data.nbytes if dtype == "float32" else table.nbytes) == 40 * row_bytes(dtype, 6)


# -- memory --------------------------------------------------------------------------------------
def test_memory_scaling_bytes_are_vocab_times_row_bytes():
    vocabs, dims = [1, 1000, 50257], [3, 64, 4096]
    scaling = profiler().analyze_memory_scaling(vocabs, dims)
    assert (scaling.vocab_sizes, scaling.dims) == (vocabs, dims)
    assert scaling.dtypes == ["float32", "bfloat16", "int8", "int4"]
    for d in scaling.dtypes:
        assert scaling.bytes[d] == [[v * row_bytes(d, dim) for dim in dims] for v in vocabs]
    assert scaling.bytes["float32"][2][1] == 50257 * 64 * 4
    assert scaling.bytes["bfloat16"][1][2] == 1000 * 4096 * 2
    # the formats' sizes are what the real tables store
    for i, v in enumerate(vocabs[:2]):
        for j, dim in enumerate(dims[:2]):
            zeros = np.zeros((v, dim), np.float32)
            assert scaling.bytes["int8"][i][j] == QuantizedEmbedding.from_float(zeros, bits=8).nbytes
            assert scaling.bytes["int4"][i][j] == QuantizedEmbedding.from_float(zeros, bits=4).nbytes
            assert scaling.bytes["bfloat16"][i][j] == ReducedPrecisionEmbedding.from_float(zeros, "bfloat16").nbytes
    json.dumps(scaling.to_dict(), allow_nan=False)


def test_memory_scaling_model_rows_are_embedding_memory():
    scaling = profiler().analyze_memory_scaling([10], [10], dtypes=["float32", "int4"])
    assert [m["name"] for m in scaling.models] == list(MODELS)
    for row in scaling.models:
        config = MODELS[row["name"]]
        report = embedding_memory(config)
        assert (row["vocab_size"], row["hidden_size"], row["tied"]) == (config.vocab_size, config.hidden_size,
                                                                      config.tied)
        assert row["embedding_params"] == report.embedding_params
        assert row["total_params"] == report.total_params
        assert row["embedding_share"] == report.embedding_share
        assert row["token_table_bytes"] == {"float32": report.token_table_bytes["float32"],
                                            "int4": report.token_table_bytes["int4"]}


# -- positional encodings --------------------------------------------------------------------------
def test_only_learned_positions_stop_at_the_training_length():
    rows = profiler().compare_positional_encodings(batch_size=1, seq_len=16, dim=24, num_heads=3)
    by_name = {r.name: r for r in rows}
    assert list(by_name) == ["sinusoidal", "learned", "rope", "alibi"]
    assert [r.name for r in rows if not r.extrapolates] == ["learned"]
    assert all((r.train_len, r.test_len) == (16, 64) for r in rows)  # defaults: seq_len, then 4x
    assert "63" in by_name["learned"].evidence and "15" in by_name["learned"].evidence
    # parameters: only the learned table has any, one row of dim per trained position
    assert {r.name: r.parameters for r in rows} == {"sinusoidal": 0, "learned": 16 * 24, "rope": 0, "alibi": 0}
    # cached float32 arrays: the PE table, cos and sin of the head dim, the (H, S, S) bias
    assert by_name["sinusoidal"].cached_bytes == 16 * 24 * 4
    assert by_name["rope"].cached_bytes == 2 * 16 * 8 * 4
    assert by_name["alibi"].cached_bytes == 3 * 16 * 16 * 4
    assert all(r.time_s > 0 for r in rows)
    json.dumps([r.to_dict() for r in rows], allow_nan=False)


def test_learned_positions_work_within_the_training_length():
    rows = profiler().compare_positional_encodings(batch_size=1, seq_len=8, dim=8, num_heads=2,
                                                    train_len=32, test_len=32)
    assert all(r.extrapolates for r in rows)
    assert {r.name: r.parameters for r in rows}["learned"] == 32 * 8


@pytest.mark.parametrize("kwargs,match", [
    ({"dim": 10, "num_heads": 3}, "dim 10 must split into 3 heads"),
    ({"dim": 12, "num_heads": 4}, "dim 12 must split into 4 heads of even size"),
    ({"seq_len": 0}, "got 0"),
    ({"batch_size": -2}, "got -2"),
    ({"train_len": 0}, "train_len must be a positive integer, got 0"),
    ({"test_len": 2.5}, "test_len must be a positive integer, got 2.5"),
])
def test_positional_bad_sizes_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        profiler().compare_positional_encodings(**{"seq_len": 8, "dim": 8, "num_heads": 2, **kwargs})


# -- access patterns -------------------------------------------------------------------------------
def test_pattern_statistics_equal_brute_force_on_the_ids_drawn(fixed_timings, drawn):
    table = make_table(30522, 4)  # the MiniLM vocabulary: real text fits
    patterns = ["uniform", "zipf-0.8", AccessPattern("zipf", 1.2), "sequential", "sorted-1", "text"]
    ks = [1, 5, 50, 500, 100_000]
    results = profiler().access_pattern_analysis(table, patterns, batch_size=3, seq_len=40, batches=3,
                                                 hot_set_ks=ks)
    labels = ["uniform", "zipf-0.8", "zipf-1.2", "sequential", "sorted-1", "text"]
    assert [r.pattern for r in results] == labels
    assert [label for label, _ in drawn] == [label for label in labels for _ in range(3)]
    for r in results:
        batches = [ids for label, ids in drawn if label == r.pattern]
        assert all(b.shape == (3, 40) for b in batches)
        assert r.tokens == 120
        assert r.unique_rows == pytest.approx(np.mean([len(set(b.reshape(-1).tolist())) for b in batches]))
        assert r.unique_share == pytest.approx(r.unique_rows / 120)
        assert r.hot_set_ks == ks
        assert r.hot_set_share == pytest.approx(brute_hot_set(batches, ks), rel=1e-12)
        assert np.all(np.diff(r.hot_set_share) >= 0) and r.hot_set_share[-1] == 1.0  # every row is in the top 100k
        assert (r.median_s, r.dedup_median_s) == (MEDIAN_S, MEDIAN_S)
        assert r.gb_per_s == pytest.approx(120 * (8 + 16 + 16) / MEDIAN_S / 1e9)
    by = {r.pattern: r for r in results}
    assert by["sequential"].unique_rows == 120  # 0..119, no repeats
    assert by["uniform"].unique_rows > by["zipf-0.8"].unique_rows > by["zipf-1.2"].unique_rows
    assert by["zipf-1.2"].hot_set_share[0] > by["uniform"].hot_set_share[0]


def test_pattern_batches_are_independent_draws(fixed_timings, drawn):
    # 4 batches of 64 uniform ids from a billion rows: distinct draws practically never repeat an id.
    table = RecordingTable(make_table(10, 2))
    table.num_embeddings = 10**9
    table.lookup = lambda ids: np.zeros(np.shape(ids) + (2,), np.float32)
    [r] = profiler().access_pattern_analysis(table, ["uniform"], batch_size=1, seq_len=64, batches=4,
                                             hot_set_ks=[1, 64, 256])
    batches = [ids for _, ids in drawn]
    assert len(batches) == 4 and len({b.tobytes() for b in batches}) == 4
    assert r.hot_set_share == pytest.approx([1 / 256, 64 / 256, 1.0])


def test_unknown_pattern_fails_before_any_lookup():
    table = RecordingTable(make_table(100, 4, "int8"))
    with pytest.raises(ValueError, match="unknown access pattern 'nope'"):
        profiler().access_pattern_analysis(table, ["uniform", "nope"], batch_size=1, seq_len=4, batches=1)
    assert table.calls == []


def test_text_pattern_needs_a_table_as_large_as_the_vocabulary():
    with pytest.raises(ValueError, match="at least 30142 rows, got 1000"):
        profiler().access_pattern_analysis(make_table(1000, 4), ["text"], batch_size=1, seq_len=4, batches=1)


# -- caches ----------------------------------------------------------------------------------------
def caches(*sizes, ways=8):
    return [CacheLevel(k, "Data" if k == 1 else "Unified", size, 64, ways, size // (64 * ways), "0")
            for k, size in enumerate(sizes, 1)]


def test_a_table_that_fits_in_l1_always_hits_after_warm_up():
    # 32 rows of 64 bytes = 2 KiB in a 32 KiB L1; 500 uniform warm-up lookups touch every row.
    a = profiler().cache_analysis("uniform", num_embeddings=32, embedding_dim=16, itemsize=4, lookups=2000,
                                  warmup_lookups=500, caches=caches(32 << 10, 256 << 10))
    l1, l2 = a.levels
    assert (a.row_bytes, a.lookups, a.line_accesses, a.warmup_accesses) == (64, 2000, 2000, 500)
    assert (l1.name, l1.accesses, l1.hits, l1.misses, l1.hit_rate) == ("L1d", 2000, 2000, 0, 1.0)
    assert (l2.name, l2.accesses, l2.hit_rate) == ("L2", 0, None)


def test_a_cold_cache_misses_once_per_line_then_hits():
    # Sequential lookups of 64 rows of 128 bytes, 10 times over, no warm-up: 128 compulsory misses.
    a = profiler().cache_analysis("sequential", num_embeddings=64, embedding_dim=32, itemsize=4, lookups=640,
                                  warmup_lookups=0, caches=caches(32 << 10))
    [l1] = a.levels
    assert (a.line_accesses, a.warmup_accesses) == (1280, 0)
    assert (l1.accesses, l1.misses, l1.hits) == (1280, 128, 1152)


def test_uniform_lookups_of_a_table_far_larger_than_the_caches_miss_the_last_level():
    kwargs = dict(num_embeddings=200_000, embedding_dim=64, lookups=20_000, warmup_lookups=5_000,
                  caches=caches(4 << 10, 64 << 10))  # 51 MB of rows against 64 KiB
    uniform = profiler().cache_analysis("uniform", **kwargs)
    zipf = profiler().cache_analysis("zipf", alpha=1.2, **kwargs)
    assert uniform.levels[-1].hit_rate < 0.01  # about 64 KiB / 51 MB
    assert uniform.levels[-1].misses / uniform.lookups > 3.9  # nearly every one of 4 lines goes to memory
    assert zipf.levels[-1].hit_rate > 10 * uniform.levels[-1].hit_rate  # hot rows stay cached
    assert zipf.pattern == "zipf-1.2"


def test_warm_up_ends_exactly_at_the_warm_up_lookups(drawn):
    # 48-byte rows straddle lines unevenly: the counted accesses are exactly the counted lookups' lines.
    a = profiler().cache_analysis("uniform", num_embeddings=1000, embedding_dim=12, itemsize=4, lookups=997,
                                  warmup_lookups=301, caches=caches(4 << 10))
    [(_, ids)] = drawn
    lines = lines_of_rows(ids, 48)
    assert ids.shape == (1298,)
    assert a.warmup_accesses == int(lines[:301].sum())
    assert a.line_accesses == a.levels[0].accesses == int(lines[301:].sum())


def test_cache_analysis_result_is_json():
    a = profiler().cache_analysis("zipf-1", num_embeddings=100, embedding_dim=8, lookups=100, warmup_lookups=10,
                                  caches=caches(4 << 10, 32 << 10))
    out = json.loads(json.dumps(a.to_dict(), allow_nan=False))
    assert [level["name"] for level in out["levels"]] == ["L1d", "L2"]
    assert out["perf"] is None and out["assumptions"]


# -- row caches ------------------------------------------------------------------------------------
def test_row_cache_analysis_is_row_cache_curves_of_the_ids():
    ids = np.random.default_rng(0).zipf(1.3, size=(20, 50)) % 500
    curves = profiler().row_cache_analysis(ids, capacities=[4, 16, 64])
    assert curves == rowcache.row_cache_curves(ids.reshape(-1), [4, 16, 64])
    truncated = profiler().row_cache_analysis(ids, capacities=[8], max_lookups=123)
    assert truncated == rowcache.row_cache_curves(ids.reshape(-1)[:123], [8])
    assert truncated.lookups == 123


def test_row_cache_analysis_defaults_to_the_text_stream():
    curves = profiler().row_cache_analysis(capacities=[10, 100], max_lookups=3000)
    assert curves == rowcache.row_cache_curves(text_stream()[:3000], [10, 100])


# -- bad input -------------------------------------------------------------------------------------
TABLE = make_table(50, 4)


@pytest.mark.parametrize("call,match", [
    (lambda p: p.measure_lookup_performance(TABLE, [4, 0], [8]), "batch_sizes must be a positive integer, got 0"),
    (lambda p: p.measure_lookup_performance(TABLE, [], [8]), "batch_sizes must not be empty"),
    (lambda p: p.measure_lookup_performance(TABLE, [2], [-8]), "seq_lengths must be a positive integer, got -8"),
    (lambda p: p.measure_lookup_performance(TABLE, [True], [8]), "got True"),
    (lambda p: p.measure_lookup_performance(TABLE, [2], [8], "zipfy"), "unknown access pattern 'zipfy'"),
    (lambda p: p.measure_lookup_performance(TABLE, [2], [8], "zipf", alpha=0), "alpha.*got 0"),
    (lambda p: p.measure_lookup_performance(TABLE, [2], [8], "zipf", alpha=-1.5), "got -1.5"),
    (lambda p: p.measure_lookup_performance(TABLE, [2], [8], "uniform", alpha=0.0), "got 0.0"),
    (lambda p: p.measure_lookup_performance(TABLE, [2], [8], "zipf-0"), "got 0.0"),
    (lambda p: p.measure_lookup_performance(np.zeros(5, np.float32), [2], [8]), "2-D.*shape \\(5,\\)"),
    (lambda p: p.lookup_scaling([100], [8], ["float8"]), "unknown storage type 'float8'"),
    (lambda p: p.lookup_scaling([0], [8]), "vocab_sizes must be a positive integer, got 0"),
    (lambda p: p.lookup_scaling([10], []), "dims must not be empty"),
    (lambda p: p.lookup_scaling([10], [8], pattern="sorted--2"), "got -2.0"),
    (lambda p: p.analyze_memory_scaling([1000], [0]), "dims must be a positive integer, got 0"),
    (lambda p: p.analyze_memory_scaling([], [8]), "vocab_sizes must not be empty"),
    (lambda p: p.analyze_memory_scaling([10], [8], ["float32", "fp64"]), "unknown storage type 'fp64'"),
    (lambda p: p.access_pattern_analysis(TABLE, ["uniform"], hot_set_ks=[10, 0]), "hot_set_ks.*got 0"),
    (lambda p: p.access_pattern_analysis(TABLE, ["uniform"], batches=0), "got 0"),
    (lambda p: p.access_pattern_analysis(TABLE, ["zipf-nan"]), "got nan"),
    (lambda p: p.cache_analysis("uniform", lookups=0, caches=caches(4096)),
     "lookups must be a positive integer, got 0"),
    (lambda p: p.cache_analysis("uniform", warmup_lookups=-1, caches=caches(4096)), "warmup_lookups.*got -1"),
    (lambda p: p.cache_analysis("uniform", num_embeddings=-3, caches=caches(4096)), "got -3"),
    (lambda p: p.cache_analysis("nope", caches=caches(4096)), "unknown access pattern 'nope'"),
    (lambda p: p.cache_analysis("zipf", alpha=-1, caches=caches(4096)), "got -1"),
    (lambda p: p.cache_analysis("uniform", caches=[]), "no caches to simulate"),
    (lambda p: p.row_cache_analysis([1, 2], capacities=[]), "capacities must not be empty"),
    (lambda p: p.row_cache_analysis([1, 2], capacities=[4, -1]), "capacities must be a positive integer, got -1"),
    (lambda p: p.row_cache_analysis([1, 2], max_lookups=0), "max_lookups must be a positive integer, got 0"),
])
def test_bad_input_is_a_value_error_naming_the_value(call, match):
    with pytest.raises(ValueError, match=match):
        call(profiler())


def test_make_table_refuses_unknown_dtypes_and_sizes():
    with pytest.raises(ValueError, match="unknown storage type 'int2'; known: float32, float16"):
        make_table(10, 4, "int2")
    with pytest.raises(ValueError, match="got 0"):
        make_table(0, 4)


def test_a_table_of_another_kind_is_a_type_error_naming_it():
    with pytest.raises(TypeError, match="got list"):
        profiler().measure_lookup_performance([[1.0, 2.0]], [1], [1])


@pytest.mark.parametrize("kwargs,match", [({"repeats": 0}, "repeats.*got 0"), ({"warmup": -1}, "warmup.*got -1"),
                                          ({"repeats": 2.0}, "got 2.0"), ({"warmup": True}, "got True")])
def test_profiler_settings_are_checked(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EmbeddingProfiler(**kwargs)


def test_the_profiler_times_fast_calls_in_samples_as_the_bench_does(monkeypatch):
    seen = []

    def interleaved(fns, repeats, warmup=1, min_sample_ms=0.0):
        seen.append(min_sample_ms)
        return {name: timing.Timing(list(TIMES_MS)) for name in fns}
    monkeypatch.setattr(timing, "interleaved", interleaved)
    EmbeddingProfiler(repeats=2).measure_lookup_performance(Embedding(50, 4), [2], [3])
    EmbeddingProfiler(repeats=2, min_sample_ms=0).measure_lookup_performance(Embedding(50, 4), [2], [3])
    assert seen == [5.0, 0.0]
    with pytest.raises(ValueError, match="min_sample_ms must be >= 0, got -1"):
        EmbeddingProfiler(min_sample_ms=-1)


def test_the_storage_types_of_one_shape_take_turns(monkeypatch):
    rounds = []

    def interleaved(fns, repeats, warmup=1, min_sample_ms=0.0):
        rounds.append(sorted(fns))
        for fn in fns.values():
            fn()
        return {name: timing.Timing(list(TIMES_MS)) for name in fns}
    monkeypatch.setattr(timing, "interleaved", interleaved)
    results = profiler().lookup_scaling([100], [8, 16], dtypes=("float32", "int8"), batch_size=2, seq_len=4)
    assert rounds == [["float32", "int8"], ["float32", "int8"]]
    assert [(m.embedding_dim, m.dtype) for m in results] == [(8, "float32"), (8, "int8"), (16, "float32"),
                                                             (16, "int8")]
