"""tinyembed bench: it runs, reports every field, compares like with like. Timings are never asserted."""

import json
from dataclasses import replace

import numpy as np
import pytest

from tinyembed import kernels
from tinyembed.cli import main
from tinyembed.profile import bench, timing
from tinyembed.profile.bench import OPS, BenchConfig, Workload, to_numpy


def tiny_config(**overrides) -> BenchConfig:
    settings = dict(cases=((100, 8),), distributions=("uniform", "zipf"), ids_shape=(4, 32), bag_size=8,
                    repeats=1, warmup=0, copy_mib=1, progress=False, quick=True)
    return BenchConfig(**{**settings, **overrides})


@pytest.fixture(scope="module")
def tiny_report():
    return bench.run(tiny_config())


@pytest.fixture
def restore_threads():
    before = kernels.get_num_threads()
    yield
    kernels.set_num_threads(before)


ROW_FIELDS = ("case", "op", "tinyembed_ms", "torch_ms", "numpy_ms", "ratio_torch_over_tinyembed",
              "bytes_moved", "gbps", "pct_copy_bandwidth", "mem_extra_x_output", "background_cores", "checks")


# -- it runs and reports every field ----------------------------------------------------------
def test_tiny_run_returns_one_row_per_case_distribution_and_op_with_every_field(tiny_report):
    rows = [row.to_dict() for row in tiny_report.rows]
    assert [(r["distribution"], r["op"]) for r in rows] == [(d, op) for d in ("uniform", "zipf") for op in OPS]
    has_torch = tiny_report.machine["torch"] is not None
    for r in rows:
        for name in ROW_FIELDS:
            assert name in r, name
        assert r["case"].startswith("100x8 ")
        assert r["tinyembed_ms"] > 0 and r["bytes_moved"] > 0 and r["gbps"] > 0 and r["pct_copy_bandwidth"] > 0
        assert r["mem_extra_x_output"] >= 0
        assert (r["torch_ms"] is not None) == has_torch
        assert (r["ratio_torch_over_tinyembed"] is not None) == has_torch
        assert (r["numpy_ms"] is None) == (r["op"] in ("sparse_backward", "int8_bag"))
        assert r["checks"] and all({"label", "target", "value", "met"} <= set(c) for c in r["checks"])
    layer = next(r for r in rows if r["op"] == "layer_forward")
    assert layer["lookup"]["median_ms"] > 0 and layer["layer_over_lookup"] > 0


def test_table_shows_every_op_the_machine_and_the_copy_bandwidth(tiny_report):
    text = bench.format_table(tiny_report)
    for op in OPS:
        assert op in text
    assert "copy bandwidth" in text and "GB/s" in text and "torch/te" in text
    assert tiny_report.machine["cpu_model"] in text


def test_table_warns_about_rows_timed_while_other_processes_were_busy(tiny_report):
    quiet = replace(tiny_report, rows=[replace(tiny_report.rows[0], background=0.0)])
    assert "WARNING" not in bench.format_table(quiet)
    text = bench.format_table(replace(tiny_report, rows=[replace(tiny_report.rows[0], background=0.9)]))
    assert "WARNING: 1 of 1 rows" in text


def test_run_restores_the_thread_counts(restore_threads):
    kernels.set_num_threads(1)
    report = bench.run(tiny_config(threads=2, ops=("forward",)))
    assert report.machine["threads"] == 2 and report.config["threads"] == 2
    assert kernels.get_num_threads() == 1


# -- JSON ------------------------------------------------------------------------------------
def test_json_round_trips_and_holds_the_machine(tiny_report, tmp_path):
    path = tmp_path / "bench.json"
    bench.write_json(tiny_report, path)
    loaded = json.loads(path.read_text())
    assert loaded == json.loads(json.dumps(tiny_report.to_dict()))
    machine = loaded["machine"]
    for key in ("cores", "cpu_model", "numpy", "torch", "threads"):
        assert key in machine
    assert machine["numpy"] == np.__version__
    assert loaded["copy_bandwidth"]["all_threads_gbps"] > 0 and loaded["copy_bandwidth"]["one_thread_gbps"] > 0
    assert [p.name for p in tmp_path.iterdir()] == ["bench.json"]  # the temporary file is gone


# -- like with like: every tinyembed op gives torch's (and numpy's) numbers ---------------------
@pytest.fixture(scope="module")
def workload():
    pytest.importorskip("torch")
    # The benchmark's own ids shape and bag size on a tiny table: many repeated ids.
    return Workload.build(100, 8, "zipf", ids_shape=(32, 512), bag_size=16)


@pytest.mark.parametrize("op", list(OPS))
def test_each_tinyembed_op_gives_the_same_result_as_its_torch_and_numpy_counterparts(workload, op):
    spec = OPS[op](workload)
    ours = to_numpy(spec.tinyembed())
    theirs = to_numpy(spec.torch())
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    # Sums of up to thousands of rows (Zipf ids) are added in different orders: float32 rounding.
    tolerance = dict(rtol=1e-5, atol=1e-5 * max(1.0, float(np.abs(theirs).max())))
    np.testing.assert_allclose(ours, theirs, **tolerance)
    if spec.numpy is not None:
        np.testing.assert_allclose(ours, to_numpy(spec.numpy()), **tolerance)
    for extra in spec.extra.values():  # the layer's token lookup alone is torch's lookup
        np.testing.assert_array_equal(to_numpy(extra()), to_numpy(workload.table.emb_t(workload.ids_t)))


def test_sparse_backward_compares_coalesced_rows_with_coalesced_rows(workload):
    spec = OPS["sparse_backward"](workload)
    ours, theirs = spec.tinyembed(), spec.torch()
    np.testing.assert_array_equal(ours.indices, theirs.indices().numpy()[0])
    scale = float(np.abs(ours.values).max())
    np.testing.assert_allclose(ours.values, theirs.values().numpy(), rtol=1e-5, atol=1e-5 * scale)


def test_int8_bag_reads_the_same_fused_bytes_as_torch(workload):
    np.testing.assert_array_equal(workload.table.quantized.fused, workload.table.packed_t.numpy())


def test_runs_without_torch_and_says_so():
    report = bench.run(tiny_config(use_torch=False, distributions=("uniform",), numpy_apart=False))
    assert all(row.torch is None and row.ratio is None for row in report.rows)
    assert report.machine["torch"] is None
    text = bench.format_table(report)
    assert "torch not used" in text and "MISSING" in text
    assert report.to_dict()["targets"]["not_measured"] > 0


# -- bytes moved, memory, ids ------------------------------------------------------------------
def test_each_op_moves_the_bytes_of_its_workload():
    w = Workload.build(50, 6, "zipf", ids_shape=(2, 8), bag_size=4, use_torch=False)
    k = len(set(w.flat.tolist()))
    assert OPS["sparse_backward"](w).bytes_moved == 16 * 8 + 16 * 24 + k * (8 + 24)
    assert OPS["bag_sum"](w).bytes_moved == 16 * 8 + 4 * 8 + 16 * 24 + 4 * 24
    assert OPS["layer_forward"](w).bytes_moved == 16 * 8 + 2 * 16 * 24 + 8 * 24


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


def test_quick_run_drops_the_largest_table_and_zipf():
    quick = BenchConfig.quick_run()
    assert (32000, 4096) not in quick.cases and quick.distributions == ("uniform",) and quick.repeats == 3
    assert BenchConfig().repeats >= 5 and len(BenchConfig().cases) == 4


# -- the command line -------------------------------------------------------------------------
def test_bench_help_lists_its_options(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["bench", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--quick", "--json", "--out", "--repeats", "--threads"):
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
