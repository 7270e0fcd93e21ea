from tinyembed.plan.sharding import DeviceSpec, TableSpec, Workload, format_plans, plan, recommend

BIG_DEVICE = DeviceSpec(memory_bytes=1 << 40, memory_gb_per_s=1.0, network_gb_per_s=1.0)


def test_format_plans_marks_the_recommendation_and_prints_every_assumption():
    table = TableSpec("z", num_rows=10_000, dim=8, lookups_per_sample=5.0, zipf_alpha=1.0)
    w = Workload(100, 4, training=True)
    plans = plan([table], w, BIG_DEVICE)
    text = format_plans(plans)
    marked = [line for line in text.splitlines() if line.startswith("* ") and "cheapest" not in line]
    assert len(marked) == 1 and marked[0].split()[1] == recommend([table], w, BIG_DEVICE).strategy
    flat = " ".join(text.split())
    for p in plans:
        assert p.strategy in text
        for assumption in p.assumptions:
            assert " ".join(assumption.split()) in flat
    # two workloads render as two tables
    both = format_plans(plans + plan([table], Workload(100, 2), BIG_DEVICE))
    assert both.count("Assumptions:") == 2
    assert format_plans([]) == "No plans."


def test_format_plans_says_when_no_strategy_fits():
    table = TableSpec("big", num_rows=1000, dim=64)  # 256,000 B: 128,000 B per device on 2
    device = DeviceSpec(memory_bytes=100_000, memory_gb_per_s=1.0, network_gb_per_s=1.0)
    text = format_plans(plan([table], Workload(64, 2), device))
    assert "No strategy fits" in text and "* " not in text
