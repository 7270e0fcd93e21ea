"""The optional compiled bag kernels give bit-identical results to the NumPy path."""

import importlib.util
import os

import numpy as np
import pytest

from tinyembed import kernels
from tinyembed.kernels import jit
from tinyembed.tables import QuantizedEmbedding

# numba is optional (pip install tinyembed[fast]); CI installs it, so there these cannot skip.
# TINYEMBED_JIT=0 runs the whole suite on the NumPy path, where there is nothing to compare.
needs_numba = pytest.mark.skipif(
    (importlib.util.find_spec("numba") is None and not os.environ.get("CI"))
    or os.environ.get("TINYEMBED_JIT") == "0",
    reason="numba not installed, or the compiled kernels switched off with TINYEMBED_JIT=0")


@pytest.fixture
def numpy_path():
    """Run the body with the compiled kernels off, then restore the setting."""
    old = jit.set_enabled(False)
    yield
    jit.set_enabled(old)


def _random_bags(rng, n_bags, max_len, vocab):
    lengths = rng.integers(0, max_len + 1, n_bags)
    lengths[rng.integers(0, n_bags)] = 0  # always at least one empty bag
    bounds = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    ids = rng.integers(0, vocab, bounds[-1]).astype(np.int64)
    return ids, bounds


def _brute_force(weight, ids, bounds, mode, psw):
    out = np.zeros((len(bounds) - 1, weight.shape[1]), dtype=weight.dtype)
    for b in range(len(bounds) - 1):
        for j in range(bounds[b], bounds[b + 1]):  # left to right, in the table's dtype
            row = weight[ids[j]] if psw is None else weight[ids[j]] * psw[j]
            out[b] += row
        if mode == "mean" and bounds[b + 1] > bounds[b]:
            out[b] /= weight.dtype.type(bounds[b + 1] - bounds[b])
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mode", ["sum", "mean"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("max_len", [1, 5, 40])  # 40: long bags take segment_reduce's long path
def test_numpy_pool_matches_brute_force_bit_for_bit(numpy_path, dtype, mode, weighted, max_len):
    rng = np.random.default_rng(max_len)
    weight = rng.standard_normal((50, 7)).astype(dtype)
    ids, bounds = _random_bags(rng, 30, max_len, 50)
    psw = rng.standard_normal(ids.size).astype(dtype) if weighted else None
    got, _ = kernels.bag_pool(weight, ids, bounds, mode, psw)
    np.testing.assert_array_equal(got, _brute_force(weight, ids, bounds, mode, psw))


def test_numpy_pool_splits_bags_across_chunks_and_threads(numpy_path, monkeypatch):
    # Tiny chunks and a tiny parallel threshold: many steps, several threads, same sums.
    monkeypatch.setattr(kernels.threads, "CHUNK_BYTES", 64)
    monkeypatch.setattr(kernels.threads, "PARALLEL_MIN_BYTES", 1)
    rng = np.random.default_rng(3)
    weight = rng.standard_normal((20, 4)).astype(np.float32)
    for max_len in (0, 3, 12):
        ids, bounds = _random_bags(rng, 17, max_len, 20)
        got, _ = kernels.bag_pool(weight, ids, bounds, "sum")
        np.testing.assert_array_equal(got, _brute_force(weight, ids, bounds, "sum", None))


@needs_numba
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mode", ["sum", "mean"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dim", [2, 24, 64, 70])  # sums in registers up to 64 columns, in `out` beyond
def test_compiled_bag_equals_numpy_bag_bit_for_bit(dtype, mode, weighted, dim):
    assert jit.available()
    rng = np.random.default_rng(7)
    weight = rng.standard_normal((300, dim)).astype(dtype)
    ids, bounds = _random_bags(rng, 64, 30, 300)
    psw = rng.standard_normal(ids.size).astype(dtype) if weighted else None
    compiled, _ = kernels.bag_pool(weight, ids, bounds, mode, psw)
    old = jit.set_enabled(False)
    try:
        plain, _ = kernels.bag_pool(weight, ids, bounds, mode, psw)
    finally:
        jit.set_enabled(old)
    np.testing.assert_array_equal(compiled, plain)


@needs_numba
@pytest.mark.parametrize("mode, weighted", [("sum", False), ("mean", False), ("sum", True)])
def test_compiled_int8_bag_equals_the_numpy_path_and_decode_then_pool_closely(mode, weighted):
    # Its biases are summed apart from its codes (kernels.bag_pool_decoded), so only close to decode then pool.
    assert jit.available()
    rng = np.random.default_rng(11)
    table = QuantizedEmbedding.from_float(rng.standard_normal((200, 32)).astype(np.float32), bits=8)
    ids, bounds = _random_bags(rng, 40, 20, 200)
    psw = rng.standard_normal(ids.size).astype(np.float32) if weighted else None
    offsets = bounds[:-1]
    compiled = table.bag(ids, offsets, mode=mode, per_sample_weights=psw)
    old = jit.set_enabled(False)
    try:
        plain = table.bag(ids, offsets, mode=mode, per_sample_weights=psw)
    finally:
        jit.set_enabled(old)
    np.testing.assert_array_equal(compiled, plain)
    decoded = table.to_dense()
    # each bag's error against the sum of |weight| * max|row| of its entries (values cancel to near zero)
    row_sizes = np.repeat(np.abs(decoded).max(axis=1, keepdims=True), decoded.shape[1], axis=1)
    magnitude = _brute_force(row_sizes, ids, bounds, mode, None if psw is None else np.abs(psw))
    error = np.abs(plain - _brute_force(decoded, ids, bounds, mode, psw))
    np.testing.assert_array_less(error, 1e-6 * magnitude + 1e-30)


def test_jit_can_be_switched_off_and_reports_it():
    old = jit.set_enabled(False)
    try:
        assert jit.available() is False
    finally:
        jit.set_enabled(old)


@needs_numba
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("dim", [1, 16, 100])  # one column block, several, a ragged last one
def test_compiled_scatter_add_equals_add_at_and_the_numpy_path(dtype, dim):
    assert jit.available()
    rng = np.random.default_rng(dim)
    rows = rng.zipf(1.3, 3000).astype(np.int64) % 50  # heavy repeats, long segments included
    values = rng.standard_normal((3000, dim)).astype(dtype)
    compiled = kernels.scatter_add_rows(rows, values, 60)
    in_order = np.zeros((60, dim), dtype)
    np.add.at(in_order, rows, values)  # adds in input order, as the compiled loop does
    np.testing.assert_array_equal(compiled, in_order)
    old = jit.set_enabled(False)
    try:
        plain = kernels.scatter_add_rows(rows, values, 60)
    finally:
        jit.set_enabled(old)
    # The NumPy path sums long segments block-wise: the same sums up to rounding.
    np.testing.assert_allclose(compiled, plain, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-4)


@needs_numba
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("scale", [1.0, 2.5])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dim", [12, 64, 70])  # a masked vector only, whole vectors only, both
def test_compiled_gathers_equal_the_numpy_path_bit_for_bit(dtype, scale, threads, dim):
    assert jit.available()
    before = kernels.get_num_threads()
    kernels.set_num_threads(threads)
    try:
        rng = np.random.default_rng(13)
        weight = rng.standard_normal((97, dim)).astype(dtype)
        ids = rng.integers(0, 97, (5, 7))
        addend = rng.standard_normal((7, dim)).astype(dtype)
        compiled = kernels.gather_rows(weight, ids), kernels.gather_add_rows(weight, ids, addend, scale)
        old = jit.set_enabled(False)
        try:
            plain = kernels.gather_rows(weight, ids), kernels.gather_add_rows(weight, ids, addend, scale)
        finally:
            jit.set_enabled(old)
    finally:
        kernels.set_num_threads(before)
    np.testing.assert_array_equal(compiled[0], weight[ids])
    np.testing.assert_array_equal(compiled[0], plain[0])
    np.testing.assert_array_equal(compiled[1], plain[1])
    expected = (weight[ids] * dtype(scale) if scale != 1.0 else weight[ids]) + addend
    np.testing.assert_array_equal(compiled[1], expected)


def test_scatter_add_refuses_a_row_out_of_range_on_either_path():
    values = np.ones((2, 4), np.float32)
    for enabled in (True, False):
        old = jit.set_enabled(enabled)
        try:
            for rows in (np.array([0, 3]), np.array([-1, 0])):
                with pytest.raises(IndexError, match="out of range for 2 rows"):
                    kernels.scatter_add_rows(rows, values, 2)
        finally:
            jit.set_enabled(old)


def test_pool_workers_may_launch_compiled_kernels_concurrently(monkeypatch):
    # A table whose rows come through gather_rows, pooled by several kernel threads at once.
    from tinyembed.tables import FactorizedEmbedding
    monkeypatch.setattr(kernels.threads, "PARALLEL_MIN_BYTES", 1)
    monkeypatch.setattr(kernels.threads, "LAUNCH_MIN_BYTES", 1)
    monkeypatch.setattr(kernels.threads, "CHUNK_BYTES", 256)
    table = FactorizedEmbedding(500, 16, 4, seed=0)
    ids = np.random.default_rng(0).integers(0, 500, 4000)
    pooled = table.bag(ids.reshape(-1, 4))
    np.testing.assert_allclose(pooled, table.to_dense()[ids.reshape(-1, 4)].sum(axis=1), rtol=1e-5, atol=1e-5)


def _compiled_then_loaded(tmp_path, name: str, source: str, timeout: int) -> list[tuple[str, list[str]]]:
    """Import ``source`` as module ``name`` in two fresh processes sharing a numba cache in ``tmp_path``:
    the first compiles its kernels, the second loads them. Returns (run, the words it printed) for each."""
    import subprocess
    import sys

    (tmp_path / f"{name}.py").write_text(source)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache"), "NUMBA_NUM_THREADS": "2",
           "PYTHONPATH": str(tmp_path)}
    printed = []
    for run in ("compiles", "loads from the cache"):
        done = subprocess.run([sys.executable, "-c", f"import {name}"], env=env, capture_output=True, text=True,
                              timeout=timeout)
        assert done.returncode == 0, done.stderr
        printed.append((run, done.stdout.split()))
    return printed


_TWO_WAYS = '''
import numba
import numpy as np
from tinyembed.kernels import jit, set_num_threads
from tinyembed.kernels.jit import prange


def thread_ids(out):
    for i in prange(out.shape[0]):
        out[i] = numba.get_thread_id()


set_num_threads(2)
serial, parallel = jit.Kernel(thread_ids, parallel=False), jit.Kernel(thread_ids, parallel=True)
for name, kernel in (("serial", serial), ("parallel", parallel)):
    out = np.full(100_000, -1, np.int64)
    kernel(out)
    print(name, len(set(out.tolist())))
'''


@needs_numba
def test_a_loop_compiled_serial_and_parallel_keeps_both_in_numbas_cache(tmp_path):
    # numba's disk cache keys a function by name and code, not by `parallel`: the second process once
    # loaded the serial machine code for both, and the parallel gather ran on one thread.
    for run, printed in _compiled_then_loaded(tmp_path, "two_ways", _TWO_WAYS, timeout=300):
        assert printed == ["serial", "1", "parallel", "2"], run
    assert any((tmp_path / "cache").rglob("*.nbi"))  # the second run had a cache to load


_OVER_PARTS = '''
import numpy as np
from tinyembed.kernels import jit, set_num_threads
from tinyembed.kernels.jit import prange


def _fill(first, out, value):
    for i in range(out.shape[0]):
        out[i] = value * (first + i)
    return out.shape[0]


def _over(out, value):
    done = 0
    for p in prange(4):
        lo, hi = out.shape[0] * p // 4, out.shape[0] * (p + 1) // 4
        done += loop(lo, out[lo:hi], value)
    return done


def _fill_negated(first, out, value):
    for i in range(out.shape[0]):
        out[i] = -value * (first + i)
    return out.shape[0]


set_num_threads(2)
fill, negated = jit.Kernel(_fill, parallel=False), jit.Kernel(_fill_negated, parallel=False)
for kernel, sign in ((jit.over_parts(fill, _over), 1), (jit.over_parts(negated, _over), -1)):
    out = np.zeros(1001, np.int64)
    print(kernel(out, 3) == 1001 and (out == sign * 3 * np.arange(1001)).all())
'''


@needs_numba
def test_over_parts_runs_the_serial_loop_on_each_range_compiling_it_first(tmp_path):
    # The parallel kernel compiles the loop it calls (once hung on the compile lock, not re-entrant), and
    # two kernels from one template are two kernels in numba's cache, each with its own loop.
    for run, printed in _compiled_then_loaded(tmp_path, "over_parts", _OVER_PARTS, timeout=120):
        assert printed == ["True", "True"], run
