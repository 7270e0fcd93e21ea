import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyembed.plan.sharding import (
    ID_BYTES,
    STRATEGIES,
    DeviceSpec,
    TableSpec,
    Workload,
    cheapest_fit,
    plan,
    recommend,
    simulated_batch,
    zipf_mass,
)

BIG_DEVICE = DeviceSpec(memory_bytes=1 << 40, memory_gb_per_s=1.0, network_gb_per_s=1.0)


def brute_zipf_probs(num_rows, alpha):
    w = np.arange(1, num_rows + 1, dtype=np.float64) ** -alpha
    return w / w.sum()


def by_strategy(plans):
    return {p.strategy: p for p in plans}


def owner_device(plan_, table_name, row, col=0):
    """Brute force: the device whose shard of ``table_name`` holds (row, col), from the plan's shards."""
    holders = [s.device for s in plan_.shards if s.table == table_name
               and row in range(s.row_start, s.row_stop, s.row_step) and s.col_start <= col < s.col_stop]
    assert len(holders) == 1, holders
    return holders[0]


# ---------------------------------------------------------------------------
# Conservation, for every strategy
# ---------------------------------------------------------------------------

table_specs = st.builds(
    TableSpec,
    name=st.just("x"),
    num_rows=st.integers(1, 200),
    dim=st.integers(1, 9),
    bytes_per_element=st.sampled_from([1, 2, 4]),
    lookups_per_sample=st.sampled_from([0.5, 1.0, 3.0]),
    zipf_alpha=st.one_of(st.none(), st.floats(0.3, 2.0)),
    pooled=st.booleans(),
)


@settings(max_examples=40, deadline=None)
@given(tables=st.lists(table_specs, min_size=1, max_size=3), num_devices=st.integers(1, 6),
       batch_size=st.integers(1, 40), training=st.booleans(), opt_elem=st.sampled_from([0, 8]),
       opt_row=st.sampled_from([0, 4]))
def test_plans_conserve_memory_lookups_and_bytes(tables, num_devices, batch_size, training, opt_elem, opt_row):
    tables = [TableSpec(f"t{i}", t.num_rows, t.dim, t.bytes_per_element, t.lookups_per_sample, t.zipf_alpha,
                        t.pooled) for i, t in enumerate(tables)]
    w = Workload(batch_size, num_devices, opt_elem, opt_row, training)
    n_ids = [round(batch_size * t.lookups_per_sample) for t in tables]
    slices = [min(t.dim, num_devices) for t in tables]  # column slices that exist
    for p in plan(tables, w, BIG_DEVICE):
        n = num_devices
        assert len(p.memory_bytes) == len(p.lookups) == len(p.sent_bytes) == n
        copies = {"data_parallel": [n] * len(tables)}.get(p.strategy, [1] * len(tables))
        weights = sum(c * t.weight_bytes for c, t in zip(copies, tables, strict=True))
        assert sum(p.weight_bytes) == weights
        row_state_copies = slices if p.strategy == "column_wise" else copies
        assert sum(p.optimizer_bytes) == sum(
            c * t.num_rows * t.dim * opt_elem + rc * t.num_rows * opt_row
            for c, rc, t in zip(copies, row_state_copies, tables, strict=True))
        assert p.memory_bytes == tuple(a + b for a, b in zip(p.weight_bytes, p.optimizer_bytes, strict=True))
        # every id is looked up once, on every column slice for column_wise
        per_id = slices if p.strategy == "column_wise" else [1] * len(tables)
        assert sum(p.lookups) == sum(k * m for k, m in zip(per_id, n_ids, strict=True))
        assert sum(p.expected_lookups) == pytest.approx(sum(p.lookups))
        if not training:  # forward reads each id's D values exactly once in total
            assert sum(p.memory_traffic_bytes) == sum(m * t.dim * t.bytes_per_element
                                                      for m, t in zip(n_ids, tables, strict=True))
        assert sum(p.sent_bytes) == sum(p.received_bytes) == p.network_bytes
        assert p.network_bytes == p.input_ids_bytes + p.output_bytes + p.backward_bytes
        if n == 1:
            assert p.network_bytes == 0
        if not training:
            assert p.backward_bytes == 0
        assert p.time_s == pytest.approx(p.memory_time_s + p.network_time_s)
        assert p.memory_time_s == pytest.approx(max(p.memory_traffic_bytes) / 1e9)
        assert p.network_time_s == pytest.approx(max(max(p.sent_bytes), max(p.received_bytes)) / 1e9)
        assert 1.0 <= p.load_imbalance <= n + 1e-12


# ---------------------------------------------------------------------------
# Load balance
# ---------------------------------------------------------------------------


def test_uniform_row_wise_is_balanced():
    table = TableSpec("u", num_rows=10_000, dim=16, lookups_per_sample=50.0)
    p = by_strategy(plan([table], Workload(4096, 4), BIG_DEVICE, ["row_wise", "row_wise_hashed"]))
    for s in ("row_wise", "row_wise_hashed"):
        assert p[s].expected_load_imbalance == pytest.approx(1.0)
        assert p[s].load_imbalance < 1.01  # 204,800 ids: 4 sigma of a quarter is ~0.4%


def test_zipf_row_wise_puts_hot_rows_on_device_0_and_hashing_spreads_them():
    v, n_dev, alpha = 100_000, 4, 1.0
    table = TableSpec("z", num_rows=v, dim=16, lookups_per_sample=50.0, zipf_alpha=alpha)
    p = by_strategy(plan([table], Workload(4096, n_dev), BIG_DEVICE))
    rw, hashed = p["row_wise"], p["row_wise_hashed"]
    # contiguous: device 0 holds rows [0, V/4), which carry H(V/4)/H(V) of the mass
    head_share = zipf_mass(v, alpha, 0, v // n_dev)
    assert rw.expected_load_imbalance == pytest.approx(n_dev * head_share)
    assert rw.load_imbalance > 3.0 and int(np.argmax(rw.lookups)) == 0
    # modulo: each device's mass is at most the least one's plus the hottest row's probability
    p0 = zipf_mass(v, alpha, 0, 1)
    assert 1.0 <= hashed.expected_load_imbalance <= 1 + n_dev * p0
    assert hashed.load_imbalance < 1 + n_dev * p0 + 0.05
    assert hashed.load_imbalance < rw.load_imbalance / 2


def test_simulated_lookups_approach_the_analytic_expectation():
    table = TableSpec("z", num_rows=5000, dim=4, lookups_per_sample=100.0, zipf_alpha=1.1)
    n_ids = 2000 * 100
    for p in plan([table], Workload(2000, 5, seed=7), BIG_DEVICE, ["row_wise", "row_wise_hashed"]):
        expected = np.array(p.expected_lookups)
        frac = expected / n_ids
        sigma = np.sqrt(n_ids * frac * (1 - frac))
        assert np.all(np.abs(np.array(p.lookups) - expected) < 5 * sigma), p.strategy
        assert p.load_imbalance == pytest.approx(p.expected_load_imbalance, abs=0.02)


def test_expected_row_wise_lookups_are_the_zipf_mass_of_each_range():
    table = TableSpec("z", num_rows=10, dim=1, lookups_per_sample=1.0, zipf_alpha=1.0)
    rw = plan([table], Workload(1000, 3), BIG_DEVICE, ["row_wise"])[0]
    probs = brute_zipf_probs(10, 1.0)
    # 10 rows on 3 devices: [0, 4), [4, 7), [7, 10)
    assert [(s.row_start, s.row_stop) for s in rw.shards] == [(0, 4), (4, 7), (7, 10)]
    np.testing.assert_allclose(rw.expected_lookups, 1000 * np.array([probs[:4].sum(), probs[4:7].sum(),
                                                                      probs[7:].sum()]), rtol=1e-12)


def test_table_wise_one_table_leaves_the_other_devices_idle():
    table = TableSpec("t", num_rows=1000, dim=8, zipf_alpha=1.0)
    for n in (1, 2, 5):
        tw = plan([table], Workload(64, n), BIG_DEVICE, ["table_wise"])[0]
        assert tw.load_imbalance == tw.expected_load_imbalance == n
        assert tw.memory_bytes == (1000 * 8 * 4,) + (0,) * (n - 1)
        assert tw.lookups == (64,) + (0,) * (n - 1)


def test_table_wise_spreads_equal_tables_one_per_device():
    tables = [TableSpec(f"t{i}", 100, 8) for i in range(4)]
    tw = plan(tables, Workload(64, 4), BIG_DEVICE, ["table_wise"])[0]
    assert sorted(s.device for s in tw.shards) == [0, 1, 2, 3]
    assert tw.memory_bytes == (3200,) * 4 and tw.load_imbalance == 1.0


def test_column_wise_memory_is_split_by_dim_slices():
    # D=10 on 4 devices: slices of 3, 3, 2, 2 columns, the wider first, slice k on device k
    table = TableSpec("c", num_rows=7, dim=10, bytes_per_element=2)
    cw = plan([table], Workload(8, 4, optimizer_bytes_per_element=8), BIG_DEVICE, ["column_wise"])[0]
    assert [(s.device, s.col_start, s.col_stop) for s in cw.shards] == [(0, 0, 3), (1, 3, 6), (2, 6, 8), (3, 8, 10)]
    assert cw.memory_bytes == tuple(7 * c * (2 + 8) for c in (3, 3, 2, 2))
    assert cw.lookups == (8,) * 4  # every slice looks up every id
    assert cw.memory_traffic_bytes == tuple(8 * c * 2 for c in (3, 3, 2, 2))
    # D < N: devices without a slice hold and do nothing
    narrow = plan([TableSpec("n", 7, 2)], Workload(8, 4), BIG_DEVICE, ["column_wise"])[0]
    assert narrow.memory_bytes == (28, 28, 0, 0) and narrow.lookups == (8, 8, 0, 0)


def test_column_wise_rotates_slices_of_successive_tables():
    tables = [TableSpec("a", 10, 5), TableSpec("b", 10, 5)]
    cw = plan(tables, Workload(4, 2), BIG_DEVICE, ["column_wise"])[0]
    # 5 columns on 2 devices: 3 then 2; table b's wider slice goes to device 1
    assert cw.memory_bytes == (10 * (3 + 2) * 4, 10 * (2 + 3) * 4)


# ---------------------------------------------------------------------------
# Network bytes by hand
# ---------------------------------------------------------------------------

TINY = Workload(batch_size=4, num_devices=2)  # samples 0, 1 on device 0; 2, 3 on device 1


def test_network_bytes_by_hand_table_wise_and_column_wise():
    # 8 ids (2 per sample), D=4 float32; device 1's 4 ids cross to device 0 and back come rows.
    pooled = TableSpec("p", num_rows=8, dim=4, lookups_per_sample=2.0)
    tw = plan([pooled], TINY, BIG_DEVICE, ["table_wise"])[0]
    assert tw.input_ids_bytes == 4 * ID_BYTES  # 32
    assert tw.output_bytes == 2 * 4 * 4  # device 1's 2 samples, one pooled D-row each: 32
    assert tw.sent_bytes == (32, 32) and tw.received_bytes == (32, 32)
    assert tw.backward_bytes == 0
    unpooled = TableSpec("u", num_rows=8, dim=4, lookups_per_sample=2.0, pooled=False)
    tw_u = plan([unpooled], TINY, BIG_DEVICE, ["table_wise"])[0]
    assert tw_u.output_bytes == 4 * 4 * 4  # each of device 1's 4 looked-up rows: 64
    # column-wise: slices of 2 columns; each device sends its 4 ids to the other, each slice
    # returns its 2 columns for the other device's 2 samples
    cw = plan([pooled], TINY, BIG_DEVICE, ["column_wise"])[0]
    assert cw.input_ids_bytes == 2 * 4 * ID_BYTES  # 64
    assert cw.output_bytes == 2 * (2 * 2 * 4)  # 32
    # training: output gradients come back the same way
    train = plan([pooled], Workload(4, 2, training=True), BIG_DEVICE, ["table_wise", "column_wise"])
    assert [p.backward_bytes for p in train] == [32, 32]


def test_network_bytes_by_hand_row_wise_reduce_scatter_and_data_parallel():
    table = TableSpec("p", num_rows=8, dim=4, lookups_per_sample=2.0, zipf_alpha=1.0)
    rw = plan([table], TINY, BIG_DEVICE, ["row_wise"])[0]
    # Dense reduce-scatter: each device sends the other its partial sums for the other's 2 samples.
    assert rw.output_bytes == 2 * (2 * 4 * 4)  # 64
    # ids: brute force over the simulated batch, with owners read from the plan's shards
    (ids, src), = simulated_batch([table], TINY)
    crossing = sum(owner_device(rw, "p", int(r)) != s for r, s in zip(ids, src, strict=True))
    assert rw.input_ids_bytes == crossing * ID_BYTES
    # Data parallel: nothing in inference; in training a ring all-reduce of the 128 B gradient,
    # 2 (N - 1) / N of it sent by each device.
    dp = plan([table], TINY, BIG_DEVICE, ["data_parallel"])[0]
    assert dp.network_bytes == 0
    dp_train = plan([table], Workload(4, 2, training=True), BIG_DEVICE, ["data_parallel"])[0]
    assert dp_train.backward_bytes == 2 * 128 and dp_train.sent_bytes == (128, 128)


@pytest.mark.parametrize("strategy", ["row_wise", "row_wise_hashed", "table_wise"])
def test_unpooled_network_bytes_match_brute_force_routing(strategy):
    table = TableSpec("u", num_rows=97, dim=3, bytes_per_element=2, lookups_per_sample=3.0, zipf_alpha=0.9,
                      pooled=False)
    w = Workload(batch_size=20, num_devices=3, training=True, seed=5)
    p = plan([table], w, BIG_DEVICE, [strategy])[0]
    (ids, src), = simulated_batch([table], w)
    sent = np.zeros(3, dtype=np.int64)
    for r, s in zip(ids, src, strict=True):
        o = owner_device(p, "u", int(r))
        if o != s:
            sent[s] += ID_BYTES + 3 * 2  # the id out (forward), its output-row gradient out (backward)
            sent[o] += 3 * 2  # the row back
    assert p.sent_bytes == tuple(sent)


def test_training_memory_traffic_by_hand():
    # Table-wise, one device does all 6 lookups: forward reads D*s, the update reads and writes
    # the row and its state: D*(2s + 2*opt_elem) + 2*opt_row.
    table = TableSpec("t", num_rows=10, dim=4, bytes_per_element=2, lookups_per_sample=3.0)
    w = Workload(2, 2, optimizer_bytes_per_element=8, optimizer_bytes_per_row=4, training=True)
    tw = plan([table], w, BIG_DEVICE, ["table_wise"])[0]
    assert tw.memory_traffic_bytes == (6 * (4 * 2 + 4 * (2 * 2 + 2 * 8) + 2 * 4), 0)
    # Data parallel updates the whole replica on every device.
    dp = plan([table], w, BIG_DEVICE, ["data_parallel"])[0]
    assert dp.memory_traffic_bytes == (3 * 4 * 2 + 10 * (4 * (2 * 2 + 2 * 8) + 2 * 4),) * 2


# ---------------------------------------------------------------------------
# Fitting and recommending
# ---------------------------------------------------------------------------


def test_table_larger_than_device_memory_does_not_fit_table_wise():
    table = TableSpec("big", num_rows=1000, dim=64)  # 256,000 B
    device = DeviceSpec(memory_bytes=100_000, memory_gb_per_s=1.0, network_gb_per_s=1.0)
    p = by_strategy(plan([table], Workload(64, 4), device))
    assert not p["table_wise"].fits and not p["data_parallel"].fits
    assert p["row_wise"].fits and p["column_wise"].fits  # 64,000 B per device
    best = recommend([table], Workload(64, 4), device)
    assert best is not None and best.fits
    assert best.time_s == min(q.time_s for q in p.values() if q.fits)
    assert recommend([table], Workload(64, 2), device) is None  # 128,000 B per device


def test_cheapest_fit_prefers_least_time_among_fitting_plans():
    table = TableSpec("t", num_rows=1000, dim=16, zipf_alpha=1.0, lookups_per_sample=10.0)
    plans = plan([table], Workload(256, 4), BIG_DEVICE)
    best = cheapest_fit(plans)
    assert best.time_s == min(p.time_s for p in plans)
    assert cheapest_fit([]) is None


# ---------------------------------------------------------------------------
# Determinism, serialization, bad input
# ---------------------------------------------------------------------------


def test_plans_are_deterministic_for_a_seed():
    table = TableSpec("z", num_rows=10_000, dim=8, lookups_per_sample=5.0, zipf_alpha=1.0)
    a = plan([table], Workload(100, 4, seed=3), BIG_DEVICE)
    b = plan([table], Workload(100, 4, seed=3), BIG_DEVICE)
    assert a == b
    c = by_strategy(plan([table], Workload(100, 4, seed=4), BIG_DEVICE))
    assert c["row_wise"].lookups != by_strategy(a)["row_wise"].lookups


def test_plan_to_dict_is_json_serializable():
    table = TableSpec("z", num_rows=100, dim=8, zipf_alpha=1.0)
    for p in plan([table], Workload(16, 3, training=True), BIG_DEVICE):
        d = json.loads(json.dumps(p.to_dict()))
        assert d["strategy"] == p.strategy and d["memory_bytes"] == list(p.memory_bytes)
        assert d["workload"]["num_devices"] == 3 and d["shards"][0]["table"] == "z"


@pytest.mark.parametrize("make,value", [
    (lambda: plan([TableSpec("t", 10, 4)], Workload(8, 2), BIG_DEVICE, ["diagonal_wise"]), "diagonal_wise"),
    (lambda: plan([TableSpec("t", 10, 4), TableSpec("t", 5, 4)], Workload(8, 2), BIG_DEVICE), "'t'"),
    (lambda: plan([], Workload(8, 2), BIG_DEVICE), "empty"),
])
def test_bad_plan_arguments_raise_value_error_naming_the_value(make, value):
    with pytest.raises(ValueError, match=value):
        make()


def test_plan_refuses_arguments_of_the_wrong_type():
    table = TableSpec("t", 10, 4)
    with pytest.raises(TypeError, match="dict"):
        plan([{"name": "t"}], Workload(8, 2), BIG_DEVICE)
    with pytest.raises(TypeError, match="DeviceSpec"):
        plan([table], BIG_DEVICE, Workload(8, 2))


def test_strategy_registry_names_match_plan_names():
    table = TableSpec("t", 10, 4)
    assert [p.strategy for p in plan([table], Workload(8, 2), BIG_DEVICE)] == list(STRATEGIES)
    assert [p.strategy for p in plan([table], Workload(8, 2), BIG_DEVICE, "row_wise")] == ["row_wise"]
