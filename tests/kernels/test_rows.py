"""kernels.rows and the decoding bags: every storage type read by the compiled loops gives the bits the
NumPy path gives (lookups and bags), and attend equals the product with the decoded table."""

import importlib.util
import os

import ml_dtypes
import numpy as np
import pytest

from tinyembed import kernels
from tinyembed.io.dtypes import DECODED_DTYPES
from tinyembed.kernels import bags, jit, rows, threads
from tinyembed.kernels.rows import STORAGE_TYPES, STORED_DTYPES, decode_rows, gather_decoded, quantize_rows

needs_numba = pytest.mark.skipif(
    (importlib.util.find_spec("numba") is None and not os.environ.get("CI"))
    or os.environ.get("TINYEMBED_JIT") == "0",
    reason="numba not installed, or the compiled kernels switched off with TINYEMBED_JIT=0")

STORED = [s for s in STORAGE_TYPES if s != "float32"]
DIMS = [1, 2, 3, 7, 16, 33, 64, 100]
ID_SHAPES = [(), (0,), (1,), (9,), (3, 4), (2, 0, 3)]


def store(weight: np.ndarray, storage: str) -> np.ndarray:
    """A (V, D) float32 table as ``storage`` keeps it (STORED_DTYPES)."""
    if storage in ("int8", "int4"):
        return quantize_rows(weight, 8 if storage == "int8" else 4)
    kind = {"float32": np.float32, "float16": np.float16, "bfloat16": ml_dtypes.bfloat16,
            "float8_e4m3fn": ml_dtypes.float8_e4m3fn}[storage]
    return weight.astype(kind).view(STORED_DTYPES[storage])


def table(storage: str, num: int, dim: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    weight = rng.standard_normal((num, dim)) * 10.0 ** rng.uniform(-3, 2, (num, 1))  # magnitudes apart
    return store(np.clip(weight, -400, 400).astype(np.float32), storage)  # within float8's range


def numpy_path(fn, *args, **kwargs):
    old = jit.set_enabled(False)
    try:
        return fn(*args, **kwargs)
    finally:
        jit.set_enabled(old)


def assert_same_bits(a: np.ndarray, b: np.ndarray, msg: str = "") -> None:
    assert a.shape == b.shape and a.dtype == b.dtype == np.float32, msg
    np.testing.assert_array_equal(a.view(np.uint32), b.view(np.uint32), err_msg=msg)


@pytest.fixture(params=["serial", "parallel"])
def launch(request, monkeypatch):
    """Small work runs serially, large in parallel: force each, on two threads."""
    threshold = 1 << 62 if request.param == "serial" else 1
    monkeypatch.setattr(threads, "PARALLEL_MIN_BYTES", threshold)  # the NumPy path's pool
    monkeypatch.setattr(threads, "LAUNCH_MIN_BYTES", threshold)    # the compiled kernels
    before = kernels.get_num_threads()
    kernels.set_num_threads(2)
    yield request.param
    kernels.set_num_threads(before)


# -- the lookup ------------------------------------------------------------------------------------
@needs_numba
@pytest.mark.parametrize("storage", STORED)
@pytest.mark.parametrize("dim", DIMS)
def test_compiled_lookup_gives_the_bits_of_the_numpy_path(storage, dim, launch):
    stored = table(storage, 40, dim, seed=dim)
    rng = np.random.default_rng(dim)
    for shape in ID_SHAPES:
        ids = rng.integers(0, 40, size=shape)
        ids.reshape(-1)[:2] = 5  # a repeated id
        compiled = gather_decoded(stored, storage, dim, ids)
        plain = numpy_path(gather_decoded, stored, storage, dim, ids)
        assert compiled.shape == shape + (dim,), shape
        assert_same_bits(compiled, plain, f"{storage} D={dim} ids {shape}")
        assert_same_bits(plain, decode_rows(stored[ids.reshape(-1)], storage, dim).reshape(plain.shape))


@needs_numba
def test_int4_lookup_into_an_out_not_8_byte_aligned_gives_the_same_bits(launch):
    # An even D's int4 rows are stored two columns at a time through an 8-byte view of `out`; an `out`
    # that starts 4 bytes past an 8-byte boundary takes the column-at-a-time kernel instead.
    stored, ids = table("int4", 40, 16, seed=3), np.random.default_rng(3).integers(0, 40, (5, 7))
    buffer = np.full(5 * 7 * 16 + 2, np.nan, np.float32)
    start = 1 if buffer.ctypes.data % 8 == 0 else 0
    out = buffer[start:start + 5 * 7 * 16].reshape(5, 7, 16)
    assert out.ctypes.data % 8 == 4
    assert gather_decoded(stored, "int4", 16, ids, out=out) is out
    assert_same_bits(out, decode_rows(stored[ids.reshape(-1)], "int4", 16).reshape(out.shape))


@pytest.mark.parametrize("storage", STORED)
def test_lookup_into_out_writes_there_on_both_paths(storage):
    stored, ids = table(storage, 30, 5), np.array([[3, 3, 0], [29, 1, 7]])
    expected = decode_rows(stored[ids.reshape(-1)], storage, 5).reshape(2, 3, 5)
    for enabled in (True, False):
        old = jit.set_enabled(enabled)
        try:
            out = np.full((2, 3, 5), np.nan, np.float32)
            assert gather_decoded(stored, storage, 5, ids, out=out) is out
            assert_same_bits(out, expected, f"compiled={enabled}")
            with pytest.raises(ValueError, match="out must be"):
                gather_decoded(stored, storage, 5, ids, out=np.empty((2, 3, 5), np.float64))
        finally:
            jit.set_enabled(old)


def _every_pattern(storage: str) -> np.ndarray:
    bits = 16 if storage in ("float16", "bfloat16") else 8
    patterns = np.arange(1 << bits, dtype=np.uint16 if bits == 16 else np.uint8)
    return patterns.reshape(-1, 16).view(STORED_DTYPES[storage])


@pytest.mark.parametrize("storage", ["float16", "bfloat16", "float8_e4m3fn"])
def test_every_bit_pattern_decodes_alike_on_both_paths_and_as_the_type_defines_it(storage):
    stored = _every_pattern(storage)
    ids = np.arange(len(stored))
    plain = numpy_path(gather_decoded, stored, storage, 16, ids)
    if jit.available():
        assert_same_bits(gather_decoded(stored, storage, 16, ids), plain, storage)
    flat, raw = plain.reshape(-1), stored.reshape(-1)
    if storage == "float16":  # IEEE widening; a NaN keeps its payload and comes out quiet, as the CPU's
        expected = raw.astype(np.float32)
        finite = ~np.isnan(expected)
        assert_same_bits(flat[finite], expected[finite])
        nan_bits = expected.view(np.uint32)[~finite] | np.uint32(0x00400000)
        np.testing.assert_array_equal(flat.view(np.uint32)[~finite], nan_bits)
    else:
        decoder = DECODED_DTYPES["BF16" if storage == "bfloat16" else "F8_E4M3"]
        assert_same_bits(flat, decoder(raw))


@pytest.mark.parametrize("storage", ["int8", "int4"])
@pytest.mark.parametrize("dim", [1, 4, 5, 8, 13])
def test_any_fused_bytes_decode_alike_on_both_paths(storage, dim):
    # Random bytes are valid fused rows: scales and biases of every magnitude, inf and NaN included.
    width = rows.row_bytes(dim, 8 if storage == "int8" else 4)
    stored = np.random.default_rng(dim).integers(0, 256, (300, width), dtype=np.uint8)
    ids = np.arange(300)
    plain = numpy_path(gather_decoded, stored, storage, dim, ids)
    np.testing.assert_array_equal(plain, decode_rows(stored, storage, dim))
    if jit.available():
        with np.errstate(invalid="ignore", over="ignore"):
            np.testing.assert_array_equal(gather_decoded(stored, storage, dim, ids), plain)  # NaN where NaN


def test_float32_storage_is_the_plain_gather():
    weight = np.random.default_rng(0).standard_normal((20, 6)).astype(np.float32)
    ids = np.array([[4, 19], [0, 4]])
    np.testing.assert_array_equal(gather_decoded(weight, "float32", 6, ids), weight[ids])
    np.testing.assert_array_equal(decode_rows(weight, "float32", 6), weight)


def test_stored_dtypes_name_every_storage_type_and_their_row_bytes():
    assert set(STORED_DTYPES) == set(STORAGE_TYPES)
    for storage in STORAGE_TYPES:
        stored = table(storage, 3, 10)
        assert stored.dtype == STORED_DTYPES[storage]
        assert stored.shape[1] * stored.itemsize == rows.storage_row_bytes(storage, 10), storage


# -- bags ------------------------------------------------------------------------------------------
def _bags(rng, num_bags, max_len, vocab):
    lengths = rng.integers(0, max_len + 1, num_bags)
    lengths[num_bags // 2] = 0  # an empty bag
    bounds = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return rng.integers(0, vocab, bounds[-1]), bounds


def _brute_force(dense, ids, bounds, mode, weights):
    """Left to right in float32, each row times its weight first: what both paths promise for the float types."""
    out = np.zeros((len(bounds) - 1, dense.shape[1]), np.float32)
    for b in range(len(bounds) - 1):
        for j in range(bounds[b], bounds[b + 1]):
            out[b] += dense[ids[j]] if weights is None else dense[ids[j]] * weights[j]
        if mode == "mean" and bounds[b + 1] > bounds[b]:
            out[b] /= np.float32(bounds[b + 1] - bounds[b])
    return out


def _brute_force_quantized(fused, storage, dim, ids, bounds, mode, weights):
    """A quantized bag, from the fused bytes: left to right in float32, code * (scale * weight) into the sum,
    bias * weight into a sum of its own, the two added at the end: what both paths promise (FBGEMM's order)."""
    if storage == "int8":
        codes = fused[:, :dim].astype(np.float32)
        scales, biases = fused[:, dim:dim + 8].copy().view(np.float32).T
    else:
        half = (dim + 1) // 2
        codes = np.stack([fused[:, :half] & 15, fused[:, :half] >> 4], axis=2).reshape(len(fused), -1)[:, :dim]
        codes = codes.astype(np.float32)
        scales, biases = fused[:, half:half + 4].copy().view(np.float16).astype(np.float32).T
    out = np.zeros((len(bounds) - 1, dim), np.float32)
    for b in range(len(bounds) - 1):
        bias_sum = np.float32(0)
        for j in range(bounds[b], bounds[b + 1]):
            w = np.float32(1) if weights is None else weights[j]
            out[b] += codes[ids[j]] * (scales[ids[j]] * w)
            bias_sum += biases[ids[j]] * w
        out[b] += bias_sum
        if mode == "mean" and bounds[b + 1] > bounds[b]:
            out[b] /= np.float32(bounds[b + 1] - bounds[b])
    return out


def _reference_bags(stored, storage, dim, ids, bounds, mode, weights):
    if storage in ("int8", "int4"):
        return _brute_force_quantized(stored, storage, dim, ids, bounds, mode, weights)
    return _brute_force(decode_rows(stored, storage, dim), ids, bounds, mode, weights)


@needs_numba
@pytest.mark.parametrize("storage", STORED)
@pytest.mark.parametrize("dim", [1, 3, 16, 33, 64, 65, 100, 128, 129, 200])  # walks of 64 columns to 128, `out` beyond
@pytest.mark.parametrize("mode, weighted", [("sum", False), ("mean", False), ("sum", True)])
def test_compiled_bags_give_the_bits_of_the_numpy_path(storage, dim, mode, weighted, launch):
    stored = table(storage, 50, dim, seed=dim)
    rng = np.random.default_rng(dim)
    ids, bounds = _bags(rng, 25, 9, 50)
    weights = rng.standard_normal(ids.size).astype(np.float32) if weighted else None
    compiled = kernels.bag_pool_decoded(stored, storage, dim, ids, bounds, mode, weights)
    plain = numpy_path(kernels.bag_pool_decoded, stored, storage, dim, ids, bounds, mode, weights)
    assert_same_bits(compiled, plain, f"{storage} D={dim} {mode} weighted={weighted}")
    assert_same_bits(plain, _reference_bags(stored, storage, dim, ids, bounds, mode, weights))


def test_bags_of_no_ids_and_no_bags():
    stored = table("int4", 10, 6)
    for ids, bounds in ((np.zeros(0, np.int64), np.array([0, 0, 0])), (np.zeros(0, np.int64), np.array([0]))):
        for enabled in (True, False):
            old = jit.set_enabled(enabled)
            try:
                out = kernels.bag_pool_decoded(stored, "int4", 6, ids, bounds, "mean")
            finally:
                jit.set_enabled(old)
            assert out.shape == (len(bounds) - 1, 6) and not out.any()


@needs_numba
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_bags_are_alike_serial_and_parallel(dtype, monkeypatch):
    rng = np.random.default_rng(1)
    weight = rng.standard_normal((60, 9)).astype(dtype)
    ids, bounds = _bags(rng, 40, 7, 60)
    results = []
    for threshold in (1 << 62, 1):
        monkeypatch.setattr(threads, "LAUNCH_MIN_BYTES", threshold)
        results.append(kernels.bag_pool(weight, ids, bounds, "mean")[0])
    np.testing.assert_array_equal(results[0], results[1])


@needs_numba
@pytest.mark.parametrize("dim", [1, 2, 17])
@pytest.mark.parametrize("lengths", ["one size", "apart"])
def test_long_float_bags_give_the_bits_of_the_numpy_path(dim, lengths):
    # Bags longer than NumPy's pairwise blocks (8), pooled in one reduction (all of one size) or one by one
    # (longer than segment_reduce's _LONG_SEGMENT): both must add left to right, a single column too.
    rng = np.random.default_rng(dim)
    weight = (rng.standard_normal((50, dim)) * 10.0 ** rng.uniform(-3, 2, (50, 1))).astype(np.float32)
    sizes = np.full(40, 30) if lengths == "one size" else rng.integers(17, 40, 40)
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    ids = rng.integers(0, 50, bounds[-1])
    compiled = kernels.bag_pool(weight, ids, bounds, "sum")[0]
    plain = numpy_path(kernels.bag_pool, weight, ids, bounds, "sum")[0]
    assert_same_bits(compiled, plain)
    assert_same_bits(plain, _brute_force(weight, ids, bounds, "sum", None))


@pytest.mark.parametrize("storage", STORED)
@pytest.mark.parametrize("enabled", [True, False])  # checked inside the compiled loop, or before the NumPy one
def test_lookup_decoded_checks_ids_naming_the_first_bad_one(storage, enabled, launch):
    stored = table(storage, 40, 20)
    ids = np.random.default_rng(2).integers(0, 40, size=(30, 50))
    old = jit.set_enabled(enabled)
    try:
        assert_same_bits(rows.lookup_decoded(stored, storage, 20, ids), gather_decoded(stored, storage, 20, ids))
        for bad in (40, -1):
            wrong = ids.copy()
            wrong[7, 3], wrong[20, 0] = bad, -5
            with pytest.raises(IndexError, match=rf"id {bad} at position \(7, 3\)"):
                rows.lookup_decoded(stored, storage, 20, wrong)
    finally:
        jit.set_enabled(old)


@pytest.mark.parametrize("storage", STORED)
@pytest.mark.parametrize("enabled", [True, False])  # checked inside the compiled loop, or before the NumPy one
@pytest.mark.parametrize("dim", [20, 100, 130])  # one vector, walked per 64 columns, added into `out`
def test_bags_check_their_ids_naming_the_first_bad_one(storage, enabled, dim, launch):
    stored = table(storage, 40, dim)
    rng = np.random.default_rng(4)
    ids, bounds = _bags(rng, 300, 9, 40)
    old = jit.set_enabled(enabled)
    try:
        for bad in (40, -1):
            wrong = ids.copy()
            wrong[len(ids) // 3], wrong[-2] = bad, -5
            with pytest.raises(IndexError, match=rf"id {bad} at position \({len(ids) // 3},\)"):
                kernels.bag_pool_decoded(stored, storage, dim, wrong, bounds, "sum")
    finally:
        jit.set_enabled(old)


@pytest.mark.parametrize("storage", ["float16", "float8_e4m3fn", "int4"])  # int4: its float16 scale and bias
def test_without_the_cpus_half_conversion_half_tables_take_the_numpy_path(storage, monkeypatch):
    # A portable build (NUMBA_CPU_NAME) cannot assume F16C: the lanes' float16 decoding is not compiled.
    monkeypatch.setattr(rows, "half_in_hardware", lambda: False)
    stored = table(storage, 30, 20)
    rng = np.random.default_rng(5)
    ids, bounds = _bags(rng, 10, 6, 30)
    compiled_kernels = []
    for module in (rows, bags):
        monkeypatch.setattr(module, "_run", lambda *args: compiled_kernels.append(args))
    decoded = decode_rows(stored, storage, 20)
    assert_same_bits(rows.lookup_decoded(stored, storage, 20, ids), decoded[ids])
    assert_same_bits(kernels.bag_pool_decoded(stored, storage, 20, ids, bounds, "sum"),
                     _reference_bags(stored, storage, 20, ids, bounds, "sum", None))
    assert not compiled_kernels


# -- attend ----------------------------------------------------------------------------------------
def assert_scores_close(scores, h, dense):
    h64, dense64 = h.astype(np.float64), dense.astype(np.float64)
    np.testing.assert_array_less(np.abs(scores - h64 @ dense64.T), 1e-5 * (np.abs(h64) @ np.abs(dense64).T) + 1e-30)


@pytest.mark.parametrize("storage", STORED)
@pytest.mark.parametrize("dim", [1, 7, 64])
@pytest.mark.parametrize("batch", [1, 3, 70])  # the compiled loop takes up to 64 vectors, BLAS more
def test_attend_equals_h_times_the_decoded_table(storage, dim, batch):
    stored = table(storage, 300, dim, seed=dim)
    h = np.random.default_rng(batch).standard_normal((batch, dim)).astype(np.float32)
    dense = decode_rows(stored, storage, dim)
    scores = kernels.attend_decoded(stored, storage, dim, h)
    assert scores.shape == (batch, 300) and scores.dtype == np.float32
    assert_scores_close(scores, h, dense)
    assert_scores_close(numpy_path(kernels.attend_decoded, stored, storage, dim, h), h, dense)


def test_attend_decodes_a_chunk_of_rows_at_a_time_beyond_the_loop(monkeypatch):
    monkeypatch.setattr(rows, "_ATTEND_CHUNK_BYTES", 4 * 5 * 16)  # 16 rows of D=5
    monkeypatch.setattr(rows, "ATTEND_LOOP_MAX", 0)
    calls = []
    real = rows.gather_decoded
    monkeypatch.setattr(rows, "gather_decoded", lambda *a, **k: calls.append(a[3].size) or real(*a, **k))
    stored = table("int8", 40, 5)
    h = np.ones((2, 5), np.float32)
    assert_scores_close(kernels.attend_decoded(stored, "int8", 5, h), h, decode_rows(stored, "int8", 5))
    assert calls == [16, 16, 8]


def test_each_lookup_kernel_has_a_serial_twin_of_the_same_loop():
    # jit gives the serial build its own cache name (tests/kernels/test_jit.py shows numba's cache keeps both).
    for parallel, serial in rows._GATHERS.values():
        assert parallel.parallel and not serial.parallel
        assert serial.fn is parallel.fn and serial.fastmath == parallel.fastmath


@needs_numba
@pytest.mark.parametrize("storage", ["int8", "int4", "float16"])
@pytest.mark.parametrize("dim", [1, 2, 17])
def test_long_bags_of_one_size_give_the_bits_of_the_numpy_path(storage, dim):
    # All bags of one size: the NumPy path pools them in one reduction, which must still add left to right.
    stored = table(storage, 50, dim, seed=3)
    rng = np.random.default_rng(dim)
    ids, bounds = rng.integers(0, 50, 40 * 30), np.arange(0, 40 * 30 + 1, 30)
    for weights in (None, rng.standard_normal(ids.size).astype(np.float32)):
        compiled = kernels.bag_pool_decoded(stored, storage, dim, ids, bounds, "sum", weights)
        plain = numpy_path(kernels.bag_pool_decoded, stored, storage, dim, ids, bounds, "sum", weights)
        assert_same_bits(compiled, plain)
        assert_same_bits(plain, _reference_bags(stored, storage, dim, ids, bounds, "sum", weights))
