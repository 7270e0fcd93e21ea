"""The sharded-traffic measurement counts what the shards really received, beside the planner's
prediction, and names the cost model's wrong assumption (counts only: no timings are checked)."""

from tinyembed.profile.sharded import format_throughput, format_traffic, measure_throughput, measure_traffic
from tinyembed.report.sections import Context, ReportConfig, sharding_section


def test_measured_traffic_counts_distinct_ids_per_shard_and_the_planner_predicts_every_lookup(ray_local):
    comparisons = measure_traffic(patterns=("zipf-1", "uniform"), plans=("row", "column"), num_shards=2, vocab=500,
                                  dim=8, batch_shape=(4, 64), batches=2)
    assert [(c.pattern, c.plan) for c in comparisons] == [("zipf-1", "row"), ("zipf-1", "column"),
                                                           ("uniform", "row"), ("uniform", "column")]
    for c in comparisons:
        width = 2 if c.plan == "column" else 1  # a column slice looks up every id
        assert sum(s.lookups for s in c.shards) == 256 * width
        assert sum(s.predicted_lookups for s in c.shards) == 256 * width
        for s in c.shards:
            cols = 4 if c.plan == "column" else 8
            assert s.rows_received == s.rows_sent == s.grad_rows_received <= s.lookups
            assert s.bytes_sent == s.rows_sent * cols * 4
            assert s.bytes_received == s.rows_received * 8 + s.grad_rows_received * (8 + cols * 4)
    zipf_row = comparisons[0]
    assert zipf_row.predicted_imbalance > 1.3 and zipf_row.lookup_imbalance > 1.3
    assert any(n.startswith("repeated ids") for n in zipf_row.notes)
    text = format_traffic(comparisons)
    assert "imbalance: predicted" in text and "Per shard, per batch" in text and "repeated ids" in text


def test_throughput_rows_cover_every_setup_and_operation(ray_local):
    rows = measure_throughput(shard_counts=(1, 2), vocab=300, dim=8, batch_shape=(2, 16), repeats=2)
    assert [(r.op, r.setup) for r in rows] == [(op, s) for op in ("lookup", "train step")
                                               for s in ("in-process", "1 shards", "2 shards")]
    sharded = [r for r in rows if r.setup != "in-process"]
    assert all(r.round_trip_ms is not None and r.round_trip_ms > 0 for r in sharded)
    assert "Ray round trip" in format_throughput(rows)


def test_the_report_shows_measured_beside_predicted_or_says_it_was_not_measured(ray_local, monkeypatch):
    ctx = Context(profiler=None, machine=None, config=ReportConfig.quick_run())
    section, data, lines = sharding_section(ctx)
    measured = section.tables[-1]
    assert measured.caption.startswith("Measured on Ray, 4 local actors")
    assert measured.columns[2:5] == ["imbalance predicted", "measured: lookups", "measured: rows"]
    assert {r[0] for r in measured.rows} == {"zipf-1", "text"}
    assert data["sharding_measured"]["measured"] and any("Measured on Ray" in line for line in lines)

    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    section, data, lines = sharding_section(ctx)
    assert "Not measured on Ray: Ray is not installed" in section.text
    assert data["sharding_measured"] == {"measured": None, "not_measured": "Ray is not installed "
                                         "(pip install 'tinyembed[distributed]')"}
    assert not any(t.caption.startswith("Measured") for t in section.tables)


def test_the_readme_tables_are_the_benchmarks_output_not_typed_in():
    import re
    from pathlib import Path

    from tinyembed.profile.sharded import ShardTraffic, ThroughputRow, TrafficComparison

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = re.search(r"<!-- sharded-benchmark -->\n```\n(.*?)```", readme, flags=re.S).group(1)
    shard = ShardTraffic(0, 1, 1, 1, 1, 1, 1, 1, 1, 1)
    traffic = format_traffic([TrafficComparison("zipf-1", "row", 1, 10, 4, 8, 1, [shard], 1.0, 1.0, 1.0, "x")])
    throughput = format_throughput([ThroughputRow("in-process", "lookup", 8, 1.0, 8e3)])
    produced = (traffic + "\n" + throughput).splitlines()
    headers = [line for line, below in zip(produced, produced[1:], strict=False) if below and set(below) == {"-"}]
    assert len(headers) == 3
    for header in headers:  # each table's header, exactly as the formatters write it
        assert header in block.splitlines(), header
    assert block.startswith("benchmarks/sharded.py: ")
    assert "Where they disagree, the assumption of the cost model that was wrong:" in block
