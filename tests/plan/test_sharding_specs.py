import pytest

from tinyembed.plan.sharding import DeviceSpec, TableSpec, Workload


@pytest.mark.parametrize("make,value", [
    (lambda: Workload(batch_size=8, num_devices=0), "0"),
    (lambda: Workload(batch_size=8, num_devices=-2), "-2"),
    (lambda: Workload(batch_size=0, num_devices=2), "0"),
    (lambda: Workload(batch_size=8, num_devices=2, seed=-1), "-1"),
    (lambda: Workload(batch_size=8, num_devices=True), "True"),
    (lambda: Workload(batch_size=8, num_devices=2, training=1), "1"),
    (lambda: TableSpec("t", num_rows=0, dim=4), "0"),
    (lambda: TableSpec("t", num_rows=10, dim=-3), "-3"),
    (lambda: TableSpec("t", num_rows=10, dim=4, zipf_alpha=0.0), "0.0"),
    (lambda: TableSpec("t", num_rows=10, dim=4, zipf_alpha=-1.0), "-1.0"),
    (lambda: TableSpec("t", num_rows=10, dim=4, zipf_alpha=float("nan")), "nan"),
    (lambda: TableSpec("t", num_rows=10, dim=4, lookups_per_sample=0), "0"),
    (lambda: TableSpec("t", num_rows=10, dim=4, pooled="yes"), "'yes'"),
    (lambda: TableSpec("", num_rows=10, dim=4), "''"),
    (lambda: DeviceSpec(memory_bytes=0, memory_gb_per_s=1.0, network_gb_per_s=1.0), "0"),
    (lambda: DeviceSpec(memory_bytes=10, memory_gb_per_s=1.0, network_gb_per_s=-5.0), "-5.0"),
])
def test_bad_input_raises_value_error_naming_the_value(make, value):
    with pytest.raises(ValueError, match=value.replace("(", r"\(").replace(".", r"\.")):
        make()


def test_table_weight_bytes_is_rows_times_width_times_element_size():
    assert TableSpec("t", num_rows=1000, dim=64, bytes_per_element=2).weight_bytes == 128_000
    assert TableSpec("t", num_rows=10**9, dim=128).weight_bytes == 512 * 10**9
