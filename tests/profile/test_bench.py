"""tinyembed bench: it runs every suite, reports every field, compares like with like. Timings are never asserted."""

import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from tinyembed import kernels
from tinyembed.cli import main
from tinyembed.profile import bench, bench_ops, timing
from tinyembed.profile.bench import OPS, SUITES, BenchConfig, Ratio, to_numpy, workload
from tinyembed.profile.bench_ops import Env
from tinyembed.profile.bench_peers import fbgemm_bag_table, fbgemm_int8_bound, load_peers
from tinyembed.profile.timing import Timing
from tinyembed.tables.quantized import QuantizedEmbedding

# One tiny shape per suite; int4 needs an even D (torch's 4-bit ops).
TINY_SHAPES = {"table": (100, 8), "storage": (100, 8), "qbag": (100, 8, 4, 8), "rope": (1, 2, 8, 8),
               "attend": (100, 8)}


def tiny_config(**overrides) -> BenchConfig:
    settings = dict(cases=(TINY_SHAPES["table"],), storage_cases=(TINY_SHAPES["storage"],),
                    qbag_cases=(TINY_SHAPES["qbag"],), rope_cases=(TINY_SHAPES["rope"],),
                    attend_cases=(TINY_SHAPES["attend"],), distributions=("uniform", "zipf"), ids_shape=(4, 32),
                    bag_size=8, repeats=2, warmup=0, retimes=0, copy_mib=1, progress=False, quick=True)
    return BenchConfig(**{**settings, **overrides})


@pytest.fixture(scope="module")
def tiny_report():
    return bench.run(tiny_config())


@pytest.fixture(scope="module")
def peers():
    return load_peers()


@pytest.fixture
def restore_threads():
    before = kernels.get_num_threads()
    yield
    kernels.set_num_threads(before)


ROW_FIELDS = ("suite", "case", "shape", "distribution", "op", "timings", "tinyembed_ms", "ratios", "missing",
              "agreement", "rows_per_second", "bytes_moved", "gbps", "pct_copy_bandwidth", "mem_extra_x_output",
              "background_cores", "attempts", "disturbed", "checks")


# -- it runs every suite and reports every field -------------------------------------------------
def test_tiny_run_has_one_row_per_suite_shape_op_and_distribution_with_every_field(tiny_report):
    rows = [row.to_dict() for row in tiny_report.rows]
    expected = [(suite, op, dist) for suite, spec in SUITES.items() for op in OPS if OPS[op][0] == suite
                for dist in (("uniform", "zipf") if spec.draws_ids else (None,))]
    assert [(r["suite"], r["op"], r["distribution"]) for r in rows] == expected
    has_torch = tiny_report.machine["torch"] is not None
    for r in rows:
        for name in ROW_FIELDS:
            assert name in r, name
        assert r["checks"] and all({"label", "target", "value", "met"} <= set(c) for c in r["checks"])
        if r["tinyembed_ms"] is None:  # an op that does not exist yet says so
            assert r["op"] == "attend_int8" and "not measured" in r["note"]
            assert all(c["met"] is None for c in r["checks"])
            continue
        assert r["tinyembed_ms"] > 0 and r["bytes_moved"] > 0 and r["gbps"] > 0 and r["mem_extra_x_output"] >= 0
        assert r["attempts"] == 1
        for peer, ratio in r["ratios"].items():
            assert ratio["low"] <= ratio["median"] <= ratio["high"], peer
        if has_torch:
            assert r["ratios"] and all(a["ok"] for a in r["agreement"].values()), r["agreement"]
    layer = next(r for r in rows if r["op"] == "layer_forward")
    assert layer["timings"]["lookup"]["median_ms"] > 0 and layer["layer_over_lookup"] > 0
    lookup = next(r for r in rows if r["op"] == "lookup_int8")
    assert lookup["rows_per_second"]["tinyembed"] > 0


def test_table_shows_every_op_suite_peer_the_machine_and_the_copy_bandwidth(tiny_report):
    text = bench.format_table(tiny_report)
    for op in OPS:
        assert op in text
    for suite in SUITES:
        assert f"== {suite}:" in text
    assert "copy bandwidth" in text and "GB/s" in text and "peer/te" in text and "min-max" in text
    assert tiny_report.machine["cpu_model"] in text
    assert "targets met" in text and "targets by suite" in text
    if tiny_report.machine["torch"] is not None:
        assert "torch.quantized" in text and "float32" in text


def test_table_warns_about_rows_that_stayed_disturbed(tiny_report):
    quiet = replace(tiny_report, rows=[replace(tiny_report.rows[0], background=0.0, disturbed=False)])
    assert "WARNING" not in bench.format_table(quiet)
    busy = replace(tiny_report, rows=[replace(tiny_report.rows[0], background=0.9, disturbed=True)])
    text = bench.format_table(busy)
    assert "WARNING: 1 of 1 rows stayed disturbed" in text and "0.9*" in text


def test_run_restores_the_thread_counts(restore_threads):
    kernels.set_num_threads(1)
    report = bench.run(tiny_config(threads=2, ops=("forward",)))
    assert report.machine["threads"] == 2 and report.config["threads"] == 2
    assert kernels.get_num_threads() == 1


# -- JSON ------------------------------------------------------------------------------------
def test_json_round_trips_and_holds_the_machine_and_the_peers(tiny_report, tmp_path):
    path = tmp_path / "bench.json"
    bench.write_json(tiny_report, path)
    loaded = json.loads(path.read_text())
    assert loaded == json.loads(json.dumps(tiny_report.to_dict()))
    machine = loaded["machine"]
    for key in ("cores", "cpu_model", "numpy", "torch", "fbgemm_gpu", "threads"):
        assert key in machine
    assert machine["numpy"] == np.__version__
    assert loaded["copy_bandwidth"]["all_threads_gbps"] > 0 and loaded["copy_bandwidth"]["one_thread_gbps"] > 0
    assert {"met", "missed", "missed_disturbed", "not_measured", "by_suite"} <= set(loaded["targets"])
    assert set(loaded["retimed"]) == {"rows", "seconds", "budget_spent"}
    assert [p.name for p in tmp_path.iterdir()] == ["bench.json"]  # the temporary file is gone


# -- like with like: every contender returns tinyembed's numbers ----------------------------------------
@pytest.fixture(scope="module")
def workloads(peers):
    if peers.torch is None:
        pytest.skip("torch is the peer")
    # The benchmark's own ids shape and bag size on tiny tables: many repeated ids.
    env = Env(peers, ids_shape=(32, 512), bag_size=16)
    return {suite: workload(suite, shape, "zipf", env) for suite, shape in TINY_SHAPES.items()}


def _tolerance(theirs: np.ndarray) -> dict:
    """Sums of up to thousands of rows (Zipf ids) added in different orders: float32 rounding."""
    return dict(rtol=1e-5, atol=1e-5 * max(1.0, float(np.abs(theirs).max())))


@pytest.mark.parametrize("op", list(OPS))
def test_each_tinyembed_op_gives_the_same_numbers_as_each_of_its_peers(workloads, op):
    suite, build = OPS[op]
    spec = build(workloads[suite])
    ours = to_numpy(spec.tinyembed()).copy()
    others = {**spec.peers, **({"numpy": spec.numpy} if spec.numpy else {})}
    assert others, "an op with no peer measures nothing"
    for name, fn in others.items():
        theirs = to_numpy(fn())
        assert ours.shape == theirs.shape and ours.dtype == theirs.dtype == np.float32, name
        if suite == "storage":  # the float32 peer holds the very rows the compressed table decodes to
            np.testing.assert_array_equal(ours, theirs)
        elif name == "fbgemm" and op.startswith("int8"):  # float16 scale and bias: see the next test
            assert np.all(np.abs(ours - theirs) <= spec.compare["fbgemm"](ours, theirs))
        else:
            np.testing.assert_allclose(ours, theirs, **_tolerance(theirs), err_msg=name)
    for extra in spec.extra.values():  # the layer's token lookup alone is torch's lookup
        t = workloads["table"].table
        np.testing.assert_array_equal(to_numpy(extra()), to_numpy(t.emb_t(workloads["table"].ids_t)))


def test_sparse_backward_compares_coalesced_rows_with_coalesced_rows(workloads):
    spec = OPS["sparse_backward"][1](workloads["table"])
    ours, theirs = spec.tinyembed(), spec.peers["torch"]()
    np.testing.assert_array_equal(ours.indices, theirs.indices().numpy()[0])
    scale = float(np.abs(ours.values).max())
    np.testing.assert_allclose(ours.values, theirs.values().numpy(), rtol=1e-5, atol=1e-5 * scale)


@pytest.mark.parametrize("bits", [8, 4])
def test_quantized_bags_read_the_same_fused_bytes_as_torchs_prepack(workloads, bits):
    data = workloads["qbag"].data
    np.testing.assert_array_equal(data.quantized[bits].fused, data.packed_t[bits].numpy())


def test_torchs_quantized_bag_ignores_its_mode_so_the_mean_peer_divides(workloads):
    """Why the torch.quantized mean peer divides the sums: mode=1 returns the sums (torch 2.13)."""
    w = workloads["qbag"]
    torch = w.torch
    ids_t, offsets_t, _, _ = w.torch_args
    op = torch.ops.quantized.embedding_bag_byte_rowwise_offsets
    packed = w.data.packed_t[8]
    sums, means = (op(packed, ids_t, offsets_t, False, mode, False, None, None, False) for mode in (0, 1))
    assert torch.equal(sums, means)
    spec = OPS["int8_bag_mean"][1](w)
    np.testing.assert_allclose(to_numpy(spec.peers["torch.quantized"]()), sums.numpy() / w.data.bag_size,
                               rtol=1e-6)


# -- FBGEMM: its table holds our rows, and returns our bags ----------------------------------------------------
@pytest.fixture(scope="module")
def fb(peers):
    if peers.fbgemm is None:
        pytest.skip(peers.note("fbgemm"))
    return peers.fbgemm


@pytest.mark.parametrize("bits", [8, 4])
def test_fbgemm_table_holds_our_codes_and_our_scale_and_bias_in_its_layout(fb, bits):
    weight = np.random.default_rng(0).standard_normal((50, 6), dtype=np.float32)
    fused = QuantizedEmbedding.from_float(weight, bits=bits).fused
    ((codes, scale_bias),) = fbgemm_bag_table(fb, fused, 6, bits, "sum").split_embedding_weights()
    width = 6 if bits == 8 else 3
    np.testing.assert_array_equal(codes.numpy(), fused[:, :width])
    ours = fused[:, width:].view("<f4" if bits == 8 else "<f2")              # (50, 2): scale, bias
    np.testing.assert_array_equal(scale_bias.numpy().view("<f2"), ours.astype("<f2"))  # 4-bit: bit for bit


@pytest.mark.parametrize("mode", ["sum", "mean", "weighted"])
def test_fbgemm_int8_bags_differ_from_ours_only_within_the_float16_bound(fb, mode):
    rng = np.random.default_rng(1)
    weight = rng.standard_normal((300, 16), dtype=np.float32) * 3
    table = QuantizedEmbedding.from_float(weight, bits=8)
    ids, offsets = rng.integers(0, 300, 96), np.array([0, 10, 10, 40, 95])  # an empty bag too
    weights = rng.random(96, dtype=np.float32) if mode == "weighted" else None
    pool = "sum" if mode == "weighted" else mode
    ours = table.bag(ids, offsets, mode=pool, per_sample_weights=weights)
    torch = fb.torch
    theirs = fbgemm_bag_table(fb, table.fused, 16, 8, pool)(
        torch.from_numpy(ids), torch.from_numpy(np.append(offsets, 96)),
        None if weights is None else torch.from_numpy(weights)).numpy()
    bound = fbgemm_int8_bound(table.fused, 16, ids, offsets, pool, weights)
    assert bound.shape == ours.shape
    assert np.all(np.abs(ours - theirs) <= bound + 1e-5 * np.abs(ours).max())
    assert bound.max() < 0.01 * np.abs(ours).max()  # a bound that still says something
    assert np.all(theirs[1] == 0) and np.all(bound[1] == 0)  # the empty bag


# -- what the bench does with what it finds ---------------------------------------------------------------
def test_a_peer_that_returns_other_numbers_is_not_timed_and_the_row_says_why(monkeypatch):
    wrong = bench_ops.Op(tinyembed=lambda: np.ones(3, np.float32), peers={"liar": lambda: np.zeros(3, np.float32),
                                                                          "honest": lambda: np.ones(3, np.float32)})
    monkeypatch.setitem(OPS, "forward", ("table", lambda w: wrong))
    report = bench.run(tiny_config(ops=("forward",), distributions=("uniform",)))
    (row,) = report.rows
    assert set(row.timings) == {"tinyembed", "honest"} and row.peers == ("honest",)
    assert "returned other numbers" in row.missing["liar"] and row.agreement["liar"]["ok"] is False
    assert report.summary()["mismatches"] == 1
    text = bench.format_table(report)
    assert "liar" in text and "not timed" in text and "WARNING: 1 peers returned other numbers" in text


def _busy(monkeypatch, cores: float) -> list:
    calls = []

    def background(before, after, seconds):
        calls.append(seconds)
        return cores
    monkeypatch.setattr(bench, "background_cores", background)
    return calls


def test_a_disturbed_row_is_timed_again_a_bounded_number_of_times_then_marked(monkeypatch):
    _busy(monkeypatch, 1.5)
    report = bench.run(tiny_config(ops=("forward",), distributions=("uniform",), retimes=2, retime_pause=0))
    (row,) = report.rows
    assert row.attempts == 3 and row.disturbed and row.background == 1.5
    assert report.retimed["rows"] == 1
    assert "1 of 1 rows stayed disturbed" in bench.format_table(report)


def test_a_quiet_row_is_timed_once_and_retiming_stops_when_its_budget_is_spent(monkeypatch):
    _busy(monkeypatch, 0.0)
    (row,) = bench.run(tiny_config(ops=("forward",), distributions=("uniform",), retimes=2)).rows
    assert row.attempts == 1 and not row.disturbed
    _busy(monkeypatch, 1.5)
    report = bench.run(tiny_config(ops=("forward", "forward_out"), distributions=("uniform",), retimes=2,
                                   retime_seconds=1e-9, retime_pause=0))
    assert [row.attempts for row in report.rows] == [2, 1]  # the first re-time spends the budget
    assert report.retimed["budget_spent"] and all(row.disturbed for row in report.rows)


def test_misses_on_disturbed_rows_are_counted_apart():
    timings = {"tinyembed": Timing([2.0, 2.0]), "torch": Timing([1.0, 1.0])}
    row = bench.Row("table", (10, 4), "uniform", "bag_sum", timings, ("torch",), disturbed=True)
    report = bench.BenchReport({}, {}, {}, [row, replace(row, disturbed=False)], 1.0)
    summary = report.summary()
    assert summary["missed"] == 2 and summary["missed_disturbed"] == 1 and summary["disturbed_rows"] == 1


def test_ratio_is_the_median_of_the_per_round_ratios_with_their_range():
    ratio = Ratio.paired(Timing([2.0, 3.0, 8.0]), Timing([1.0, 1.0, 2.0]))  # 2, 3, 4
    assert (ratio.median, ratio.low, ratio.high) == (3.0, 2.0, 4.0)
    assert ratio.q1 == 2.5 and ratio.q3 == 3.5


def test_a_missing_peer_leaves_its_target_not_measured_and_says_why():
    timings = {"tinyembed": Timing([1.0]), "torch.quantized": Timing([2.0])}
    row = bench.Row("qbag", (10, 4, 2, 2), "uniform", "int8_bag_sum", timings, ("torch.quantized",),
                    missing={"fbgemm": "fbgemm-gpu-cpu not installed"})
    checks = {c["label"]: c for c in row.checks()}
    assert checks["vs torch.quantized"]["met"] is True and checks["vs torch.quantized"]["value"] == 2.0
    assert checks["vs fbgemm"]["met"] is None and checks["vs fbgemm"]["why"] == "fbgemm-gpu-cpu not installed"


def test_attend_int8_scores_the_quantized_table_as_the_float32_attend_of_its_decoded_rows():
    w = workload("attend", (100, 8), env=Env())
    spec = OPS["attend_int8"][1](w)
    ours, theirs = to_numpy(spec.tinyembed()), to_numpy(spec.peers["float32"]())
    assert ours.shape == (1, 100)
    assert np.all(np.abs(ours - theirs) <= spec.compare["float32"](ours, theirs))


def test_compressed_lookups_write_into_one_preallocated_output():
    w = workload("storage", (100, 8), env=Env())
    spec = OPS["lookup_int8"][1](w)
    first = spec.tinyembed()
    assert spec.tinyembed() is first  # the same buffer every call
    np.testing.assert_array_equal(first, to_numpy(spec.peers["float32"]()))


def test_runs_without_torch_and_says_so():
    report = bench.run(tiny_config(use_torch=False, distributions=("uniform",), numpy_apart=False))
    assert all(row.ratio(peer) is None for row in report.rows for peer in ("torch", "fbgemm", "torch.quantized"))
    assert report.machine["torch"] is None
    text = bench.format_table(report)
    assert "torch not used" in text and "torch MISSING" in text
    assert report.to_dict()["targets"]["not_measured"] > 0
    qbag = next(row for row in report.rows if row.op == "int8_bag_sum")
    assert "torch not used" in qbag.missing["torch.quantized"] and "FBGEMM needs torch" in qbag.missing["fbgemm"]


def test_neither_torch_nor_fbgemm_is_imported_by_the_library_or_the_command_line():
    code = ("import sys, tinyembed, tinyembed.profile.bench, tinyembed.cli; "
            "print(sorted(m for m in ('torch', 'fbgemm_gpu') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "[]", result.stderr


# -- bytes moved, memory, ids ------------------------------------------------------------------
def test_each_op_moves_the_bytes_of_its_workload():
    w = workload("table", (50, 6), "zipf", Env(ids_shape=(2, 8), bag_size=4))
    k = len(set(w.flat.tolist()))
    assert OPS["sparse_backward"][1](w).bytes_moved == 16 * 8 + 16 * 24 + k * (8 + 24)
    assert OPS["bag_sum"][1](w).bytes_moved == 16 * 8 + 4 * 8 + 16 * 24 + 4 * 24
    assert OPS["bag_weighted"][1](w).bytes_moved == 16 * 8 + 4 * 8 + 16 * 24 + 4 * 24 + 16 * 4
    assert OPS["layer_forward"][1](w).bytes_moved == 16 * 8 + 2 * 16 * 24 + 8 * 24
    s = workload("storage", (50, 6), "uniform", Env(ids_shape=(2, 8)))
    assert OPS["lookup_int8"][1](s).bytes_moved == 16 * 8 + 16 * (6 + 8) + 16 * 24   # fused rows of D + 8 bytes
    assert OPS["lookup_float16"][1](s).bytes_moved == 16 * 8 + 16 * 12 + 16 * 24


def test_the_memory_check_is_for_the_largest_case_of_the_run(monkeypatch):
    asked = []
    monkeypatch.setattr(bench, "check_memory", lambda needed, what: asked.append((needed, what)))
    bench._check_memory(BenchConfig())
    ((needed, what),) = asked
    assert "storage 50257x4096" in what and needed == 5 * 50257 * 4096 * 4 + 2 * 16384 * 4096 * 4
    monkeypatch.setattr(bench, "check_memory", lambda needed, what: (_ for _ in ()).throw(MemoryError(what)))
    with pytest.raises(MemoryError, match="table 1000x16"):
        bench.run(tiny_config(cases=((1000, 16),), ops=("forward",)))


def test_extra_allocation_counts_temporaries_but_not_the_output():
    def doubled():
        temporary = np.ones(250_000, np.float32)   # 1 MB, freed on return
        return temporary * 2                       # the 1 MB output
    assert 0.9e6 < timing.extra_allocation(doubled) < 1.1e6
    assert timing.extra_allocation(lambda: np.ones(250_000, np.float32)) < 0.1e6


def test_background_cores_is_other_processes_busy_time_over_wall_time():
    # All cores busy 3 s more, 1 s of it ours, over 4 s: others kept 0.5 cores busy.
    assert timing.background_cores((10.0, 2.0), (13.0, 3.0), 4.0) == pytest.approx(0.5)
    assert timing.background_cores((10.0, 2.0), (10.5, 3.0), 1.0) == 0.0  # tick rounding never goes negative
    assert timing.background_cores(None, (1.0, 1.0), 1.0) is None


def test_zipf_ids_are_seeded_in_range_and_favour_low_ids():
    draw = lambda: bench.draw_ids(np.random.default_rng(3), 1000, (64, 64), "zipf")  # noqa: E731
    ids = draw()
    np.testing.assert_array_equal(ids, draw())
    assert ids.dtype == np.int64 and ids.min() >= 0 and ids.max() < 1000
    counts = np.bincount(ids.reshape(-1), minlength=1000)
    assert counts[0] > counts[1] > counts[10] and counts[0] > 10 * counts[500:].mean()


def test_config_refuses_unknown_ops_and_bags_that_do_not_divide_the_ids():
    with pytest.raises(ValueError, match="unknown ops"):
        BenchConfig(ops=("forwrd",))
    with pytest.raises(ValueError, match="must divide"):
        BenchConfig(ids_shape=(3, 5), bag_size=4)


def test_the_full_run_has_the_shapes_issue_13_names():
    full = BenchConfig()
    assert {dim for _, dim in full.storage_cases} == {16, 64, 384, 768, 4096}
    assert {vocab for vocab, _ in full.storage_cases} == {50257}
    assert set(full.qbag_cases) == {(1_000_000, 128, 2048, 32), (100_000, 64, 4096, 16), (50257, 768, 512, 32)}
    assert set(full.rope_cases) == {(8, 6, 512, 64), (1, 32, 2048, 128)}
    assert full.attend_cases == ((50257, 768),)
    assert {16, 64} <= {dim for _, dim in full.cases} and full.repeats >= 5 and full.retimes >= 1


def test_quick_run_keeps_every_op_on_fewer_and_smaller_shapes():
    quick, full = BenchConfig.quick_run(), BenchConfig()
    assert (32000, 4096) not in quick.cases and quick.distributions == ("uniform",) and quick.repeats == 3
    assert {op for _, _, op, _ in quick.tasks()} == set(OPS)
    assert len(quick.tasks()) < len(full.tasks()) / 2
    assert max(dim for _, dim in quick.storage_cases) < 4096 and quick.retime_seconds < full.retime_seconds


# -- the command line -------------------------------------------------------------------------
def test_bench_help_lists_its_options(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["bench", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--quick", "--json", "--out", "--force", "--repeats", "--threads"):
        assert flag in out


def test_bench_command_passes_its_flags_to_the_library_and_writes_json(capsys, monkeypatch, tmp_path,
                                                                      restore_threads):
    def tiny_quick_run(**overrides):
        return tiny_config(ops=("forward", "layer_forward"), distributions=("uniform",), **overrides)

    monkeypatch.setattr(BenchConfig, "quick_run", staticmethod(tiny_quick_run))
    out = tmp_path / "report.json"
    assert main(["bench", "--quick", "--json", "--out", str(out), "--repeats", "2", "--threads", "1"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["config"]["repeats"] == 2 and printed["machine"]["threads"] == 1
    assert json.loads(out.read_text())["rows"][0]["op"] == "forward"


def test_bench_command_refuses_a_non_positive_repeat_count(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["bench", "--repeats", "0"])
    assert exc.value.code == 2
    assert "positive integer" in capsys.readouterr().err


def test_a_fast_call_is_repeated_within_a_sample_and_timed_per_call(monkeypatch):
    clock = iter(np.arange(0, 10_000, 0.001))        # every clock read advances 1 ms
    monkeypatch.setattr(timing.time, "perf_counter", lambda: next(clock))
    counts = {"fast": 0, "slow": 0}

    def call(name):
        return lambda: counts.__setitem__(name, counts[name] + 1)

    result = timing.interleaved({"fast": call("fast"), "slow": call("slow")}, repeats=3, warmup=1, min_sample_ms=4.0)
    # calibration: one call between two clock reads takes 1 ms, so 4 calls fill a 4 ms sample
    assert result["fast"].calls == result["slow"].calls == 4
    assert counts["fast"] == 1 + 1 + 3 * 4                 # warm-up, calibration, 3 samples of 4 calls
    assert result["fast"].times_ms == pytest.approx([0.25] * 3)  # 1 ms between the sample's two reads / 4 calls
    assert timing.interleaved({"fast": call("fast")}, repeats=2)["fast"].calls == 1  # the default: one call a sample


def test_each_sample_follows_untimed_calls_that_let_the_previous_contenders_threads_settle(monkeypatch):
    clock = iter(np.arange(0, 10_000, 0.001))        # every clock read advances 1 ms
    monkeypatch.setattr(timing.time, "perf_counter", lambda: next(clock))
    order = []
    fns = {name: (lambda name=name: order.append(name)) for name in ("ours", "peer")}

    result = timing.interleaved(fns, repeats=2, warmup=0, settle_ms=2.5)
    # settling: the end read, then calls until a read reaches it (3 calls: 1, 2, 3 ms later); then the timed call
    assert order == ["ours"] * 4 + ["peer"] * 4 + ["ours"] * 4 + ["peer"] * 4
    assert result["ours"].times_ms == pytest.approx([1.0, 1.0])  # the settling calls are not timed
    order.clear()
    timing.interleaved(fns, repeats=2, warmup=0)
    assert order == ["ours", "peer", "ours", "peer"]  # the default: no settling


def test_config_refuses_a_negative_settle_time():
    with pytest.raises(ValueError, match="settle_ms"):
        BenchConfig(settle_ms=-1.0)


def test_config_refuses_a_negative_sample_time():
    with pytest.raises(ValueError, match="min_sample_ms"):
        BenchConfig(min_sample_ms=-1)


def test_the_summary_gives_each_target_its_range_over_the_id_distributions():
    rows = []
    for dist, torch_ms in (("uniform", 1.0), ("zipf", 4.0)):  # ratios 0.5 and 2.0
        row = bench.Row("table", (100, 8), dist, "bag_sum", {}, ("torch",), 0, 0, 0, 1.0)
        row.timings = {"tinyembed": Timing([2.0]), "torch": Timing([torch_ms])}
        rows.append(row)
    report = bench.BenchReport({}, {}, {}, rows, 1.0)
    [target] = report.summary()["by_target"]
    assert target == {"case": "100x8", "op": "bag_sum", "label": "vs torch", "low": 0.5, "high": 2.0, "met": 1,
                      "missed": 1}
