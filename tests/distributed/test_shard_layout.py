"""Layouts route every id to exactly the shards the planner placed it on (no Ray needed)."""

import numpy as np
import pytest

from tinyembed.distributed import TableLayout, layouts_from_plan, plan_table, plan_tables
from tinyembed.plan.sharding import DeviceSpec, Shard, TableSpec, Workload, format_plans, plan


def _holds(layout, shard, row, col):
    s = layout.shards[shard]
    return row in range(s.row_start, s.row_stop, s.row_step) and s.col_start <= col < s.col_stop


@pytest.mark.parametrize("plan_name", ["row", "hashed-row", "column"])
@pytest.mark.parametrize("num_shards", [1, 3, 7])
def test_lookup_routes_cover_every_id_and_column_once_on_a_shard_that_holds_it(plan_name, num_shards):
    layout = plan_table("t", 50, 9, num_shards, plan_name)
    ids = np.unique(np.random.default_rng(0).integers(0, 50, 40))
    covered = np.zeros((len(ids), 9), dtype=int)
    for route in layout.lookup_routes(ids):
        s = layout.shards[route.shard]
        np.testing.assert_array_equal(layout.global_rows(route.shard)[route.local_rows], ids[route.positions])
        covered[route.positions, s.col_start:s.col_stop] += 1
        assert all(_holds(layout, route.shard, int(r), s.col_start) for r in ids[route.positions])
    assert (covered == 1).all()


def test_hashed_row_puts_row_r_on_shard_r_mod_n_at_local_row_r_div_n():
    layout = plan_table("t", 20, 4, 3, "hashed-row")
    ids = np.arange(20)
    np.testing.assert_array_equal(layout.owners(ids), ids % 3)
    for route in layout.lookup_routes(ids):
        np.testing.assert_array_equal(route.local_rows, ids[route.positions] // 3)


def test_row_plan_is_the_planners_contiguous_ranges_larger_first():
    layout = plan_table("t", 10, 2, 3, "row")
    assert [(s.row_start, s.row_stop) for s in layout.shards] == [(0, 4), (4, 7), (7, 10)]
    assert layout.strategy == "row_wise"


def test_update_routes_reach_every_replica_and_name_every_shard():
    sharding = plan_tables({"a": (12, 3), "b": (5, 2)}, 3, "data-parallel")
    layout = layouts_from_plan(sharding)["a"]
    assert layout.replicated
    routes = layout.update_routes(np.array([1, 4, 11]))
    assert [r.shard for r in routes] == [0, 1, 2]
    assert all(list(r.positions) == [0, 1, 2] for r in routes)
    lookups = layout.lookup_routes(np.arange(12))  # replicas share the lookups in blocks
    assert sorted(len(r.positions) for r in lookups) == [4, 4, 4]


def test_a_collection_runs_the_plan_the_planner_prints():
    tables = [TableSpec("user", 1000, 16, zipf_alpha=1.0), TableSpec("item", 300, 8)]
    device = DeviceSpec(1 << 30, 100.0, 10.0)
    for p in plan(tables, Workload(batch_size=64, num_devices=4), device):
        layouts = layouts_from_plan(p)
        assert [s for layout in layouts.values() for s in layout.shards] == list(p.shards)
        assert "user" in format_plans([p])


@pytest.mark.parametrize("plan_name, shards, message", [
    ("row", 11, "more than the table's 10 rows"),
    ("hashed-row", 11, "more than the table's 10 rows"),
    ("column", 5, "more than the table's 4 columns"),
    ("row", 0, "num_shards must be a positive integer, got 0"),
    ("diagonal", 2, "plan must be one of"),
])
def test_impossible_shard_counts_and_unknown_plans_are_refused_naming_the_value(plan_name, shards, message):
    with pytest.raises(ValueError, match=message):
        plan_table("t", 10, 4, shards, plan_name)


def test_shards_that_miss_or_overlap_rows_are_refused():
    with pytest.raises(ValueError, match="do not partition"):
        TableLayout("t", 10, 2, [Shard("t", 0, 0, 4, 1, 0, 2), Shard("t", 1, 5, 10, 1, 0, 2)], "row_wise")
    with pytest.raises(ValueError, match="do not tile"):
        TableLayout("t", 10, 4, [Shard("t", 0, 0, 10, 1, 0, 2), Shard("t", 1, 0, 10, 1, 1, 4)], "column_wise")
