import json

from tinyembed.plan.models import MODELS
from tinyembed.plan.sharding import Scenario, llama3_8b_vocab_scenario, plan, recommendation_scenario


def by_strategy(plans):
    return {p.strategy: p for p in plans}


def table_memory(table, workload):
    return (table.num_rows * table.dim * (table.bytes_per_element + workload.optimizer_bytes_per_element)
            + table.num_rows * workload.optimizer_bytes_per_row)


def test_llama3_scenario_is_the_published_vocabulary():
    sc = llama3_8b_vocab_scenario()
    (table,) = sc.tables
    cfg = MODELS["llama3-8b"]
    assert (table.num_rows, table.dim, table.bytes_per_element) == (128256, 4096, 2) == (
        cfg.vocab_size, cfg.hidden_size, 2)
    assert table.weight_bytes == 128256 * 4096 * 2
    assert [w.num_devices for w in sc.workloads] == [2, 4, 8]
    assert sc.device.memory_bytes == 24 * (1 << 30)
    plans = by_strategy(plan(sc.tables, sc.workloads[-1], sc.device))
    assert all(p.fits for p in plans.values())
    assert plans["row_wise"].expected_load_imbalance > plans["row_wise_hashed"].expected_load_imbalance
    json.dumps(sc.to_dict())
    assert isinstance(sc, Scenario)


def test_recommendation_scenario_billion_row_table_needs_sharding():
    sc = recommendation_scenario(num_devices=(8,))
    item = sc.tables[0]
    assert item.num_rows == 10**9 and item.weight_bytes == 512 * 10**9
    plans = by_strategy(sc.plans(["table_wise", "row_wise", "column_wise"]))
    assert not plans["table_wise"].fits  # 512 GB on one 80 GiB device
    assert plans["row_wise"].fits and plans["column_wise"].fits
    assert sum(plans["row_wise"].memory_bytes) == sum(table_memory(t, sc.workloads[0]) for t in sc.tables)
