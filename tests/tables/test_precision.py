"""ReducedPrecisionEmbedding: float16, bfloat16 and float8_e4m3fn tables, checked bit for bit
against torch 2.13's conversions. The protocol every table offers (lookup, bag, save/load,
EmbeddingLayer, ...) is test_protocol.py."""

import re
import sys

import numpy as np
import pytest
from jit_paths import needs_numba, on_numpy_path
from table_files import rewrite

from tinyembed.io import safetensors as st
from tinyembed.io.assets import minilm_tensor
from tinyembed.kernels import rows
from tinyembed.nn import Embedding
from tinyembed.nn.table import load_table
from tinyembed.tables import precision
from tinyembed.tables.precision import FORMATS, ReducedPrecisionEmbedding

torch = pytest.importorskip("torch")

DTYPES = ["float16", "bfloat16", "float8_e4m3fn"]
TORCH = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float8_e4m3fn": torch.float8_e4m3fn}
TORCH_BITS = {"float16": torch.int16, "bfloat16": torch.int16, "float8_e4m3fn": torch.uint8}
BYTES = {"float16": 2, "bfloat16": 2, "float8_e4m3fn": 1}
FILE_DTYPE = {"float16": "F16", "bfloat16": "U16", "float8_e4m3fn": "U8"}
LARGEST = {"float16": 65504.0, "bfloat16": 3.3895313892515355e38, "float8_e4m3fn": 448.0}


def torch_round(weight, dtype):
    """(stored bits as torch has them, float32 values) of ``weight`` converted by torch."""
    t = torch.from_numpy(weight).to(TORCH[dtype])
    return t.view(TORCH_BITS[dtype]).numpy(), t.float().numpy()


def hard_table(rng, dtype, num=40, dim=24):
    """Random rows at many magnitudes, plus rounding ties, subnormals and values near the largest."""
    largest = LARGEST[dtype]
    w = rng.standard_normal((num, dim)) * 10.0 ** rng.uniform(-5, 1, (num, 1))
    ties = {"float16": 1 + 2.0 ** -11, "bfloat16": 1 + 2.0 ** -8, "float8_e4m3fn": 1 + 2.0 ** -4}[dtype]
    extra = np.array([
        np.full(dim, ties) * np.where(np.arange(dim) % 2, 1, -1),   # exactly halfway: ties to even
        np.full(dim, ties + 2 * (ties - 1)),                         # halfway, rounding up to even
        np.linspace(-largest, largest, dim),                         # the whole range, ends included
        np.geomspace(1e-9, 1e-2, dim),                               # subnormals and below
        np.zeros(dim),
    ])
    return np.concatenate([w, extra]).astype(np.float32)


# -- rounding and decoding against torch ----------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", range(3))
def test_stored_bits_and_rows_equal_torch_conversion(dtype, seed):
    weight = hard_table(np.random.default_rng(seed), dtype)
    table = ReducedPrecisionEmbedding(weight, dtype=dtype)
    bits, values = torch_round(weight, dtype)
    np.testing.assert_array_equal(table.weight.view(bits.dtype), bits)
    np.testing.assert_array_equal(table.to_dense(), values)


def test_float8_rounds_values_up_to_464_down_to_448_as_torch():
    # 464 is halfway from 448 to the next step, 480, which E4M3FN spends on NaN: ties to even give 448.
    weight = np.array([[448.0, 460.0, -464.0, 0.0]], np.float32)
    table = ReducedPrecisionEmbedding(weight, dtype="float8_e4m3fn")
    np.testing.assert_array_equal(table.to_dense(), torch_round(weight, "float8_e4m3fn")[1])
    np.testing.assert_array_equal(table.to_dense(), [[448, 448, -448, 0]])


@pytest.mark.parametrize("dtype, nbits", [("bfloat16", 16), ("float8_e4m3fn", 8)])
def test_every_stored_bit_pattern_decodes_as_torch_decodes_it(dtype, nbits):
    # The decoders read the stored bits without ml_dtypes; torch is the reference.
    patterns = np.arange(2 ** nbits, dtype=np.uint16 if nbits == 16 else np.uint8)
    ours = FORMATS[dtype].decode(patterns)
    theirs = torch.from_numpy(patterns.view(np.int16) if nbits == 16 else patterns) \
        .view(TORCH[dtype]).float().numpy()
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    np.testing.assert_array_equal(ours.view(np.uint32)[~np.isnan(ours)], theirs.view(np.uint32)[~np.isnan(theirs)])


# -- rows, bags and sizes ------------------------------------------------------------
@pytest.fixture(params=DTYPES)
def table(request):
    weight = np.random.default_rng(1).standard_normal((23, 10)).astype(np.float32)
    return ReducedPrecisionEmbedding(weight, dtype=request.param)


def test_lookup_and_bag_decode_only_the_rows_they_read_on_the_numpy_path(table, monkeypatch):
    decoded = []
    real = rows.decode_rows
    monkeypatch.setattr(rows, "decode_rows", lambda raw, storage, dim: decoded.append(raw.shape) or
                        real(raw, storage, dim))
    monkeypatch.setattr(ReducedPrecisionEmbedding, "to_dense", lambda self: pytest.fail("built the dense table"))
    on_numpy_path(table.lookup, [[4, 4, 9]])
    on_numpy_path(table.bag, [1, 2, 3, 0], [0, 1], include_last_offset=True)  # only the first id is in a bag
    assert decoded == [(3, table.embedding_dim), (1, table.embedding_dim)]


@needs_numba
def test_compiled_lookup_bag_and_attend_decode_inside_the_kernels(table, monkeypatch):
    expected = [table.to_dense()[[4, 4, 9]], table.to_dense()[[1]], np.ones((1, 10), np.float32) @ table.to_dense().T]
    monkeypatch.setattr(rows, "decode_rows", lambda *args: pytest.fail("decoded in NumPy"))
    monkeypatch.setattr(ReducedPrecisionEmbedding, "to_dense", lambda self: pytest.fail("built the dense table"))
    np.testing.assert_array_equal(table.lookup([4, 4, 9]), expected[0])
    np.testing.assert_array_equal(table.bag([1, 2, 3, 0], [0, 1], include_last_offset=True), expected[1])
    np.testing.assert_allclose(table.attend(np.ones((1, 10), np.float32)), expected[2], rtol=1e-5)


def test_bag_equals_torch_embedding_bag_on_the_rounded_table(table):
    rng = np.random.default_rng(9)
    ids, offsets = rng.integers(0, 23, 30), np.array([0, 3, 3, 17])
    weights = rng.standard_normal(30).astype(np.float32)
    ref = torch.nn.functional.embedding_bag(torch.from_numpy(ids), torch.from_numpy(table.to_dense()),
                                            torch.from_numpy(offsets), mode="sum",
                                            per_sample_weights=torch.from_numpy(weights)).numpy()
    np.testing.assert_allclose(table.bag(ids, offsets, per_sample_weights=weights), ref, rtol=1e-5, atol=1e-6)


def test_nbytes_is_the_dtypes_bytes_per_entry(table):
    num, dim = table.num_embeddings, table.embedding_dim
    expected = num * dim * BYTES[table.dtype]
    assert table.nbytes == expected == table.weight.nbytes
    assert table.num_parameters() == num * dim


# -- save / load ----------------------------------------------------------------------
def test_saved_file_stores_the_bits_in_the_dtypes_file_type(table, tmp_path):
    path = tmp_path / "t.safetensors"
    table.save(path)
    assert st.read_header(path)[0]["weight"].dtype == FILE_DTYPE[table.dtype]


def test_a_saved_table_loads_and_looks_up_without_ml_dtypes(tmp_path, monkeypatch):
    weight = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32)
    tables = {d: ReducedPrecisionEmbedding(weight, d) for d in DTYPES}
    for d, t in tables.items():
        t.save(tmp_path / f"{d}.safetensors")
    monkeypatch.setitem(sys.modules, "ml_dtypes", None)  # `import ml_dtypes` now raises ImportError
    for d, t in tables.items():
        np.testing.assert_array_equal(load_table(tmp_path / f"{d}.safetensors").lookup([5, 0]), t.lookup([5, 0]))
    ReducedPrecisionEmbedding(weight, "float16")  # float16 never needs it
    for d in ("bfloat16", "float8_e4m3fn"):
        with pytest.raises(ImportError, match=r"pip install 'tinyembed\[precision\]'"):
            ReducedPrecisionEmbedding(weight, d)


def test_load_refuses_the_decoded_float32_rows_or_an_unknown_dtype_in_place_of_the_bits(table, tmp_path):
    good = tmp_path / "good.safetensors"
    table.save(good)
    w = table.weight
    cases = {
        "float32": ({"weight": table.to_dense()}, {}, "tensor 'weight' is float32"),
        "unknown": ({"weight": w}, {"dtype": "float4"}, "dtype must be one of .* got 'float4'"),
    }
    for name, (arrays, config, message) in cases.items():
        path = tmp_path / f"{name}.safetensors"
        rewrite(good, path, arrays, **config)
        with pytest.raises(ValueError, match=message):
            ReducedPrecisionEmbedding.load(path)


def test_bfloat16_bits_cannot_pass_as_float16(tmp_path):
    # Same shape and width: only the config's dtype tells them apart, and the file type checks it.
    weight = np.ones((3, 2), np.float32)
    good = tmp_path / "bf16.safetensors"
    ReducedPrecisionEmbedding(weight, "bfloat16").save(good)
    rewrite(good, tmp_path / "as16.safetensors", {"weight": np.ones((3, 2), np.float16)})
    with pytest.raises(ValueError, match="tensor 'weight' is float16"):
        ReducedPrecisionEmbedding.load(tmp_path / "as16.safetensors")


# -- building and validation --------------------------------------------------------------
def test_from_float_and_any_table_as_input():
    dense = Embedding(12, 6, seed=3)
    a = ReducedPrecisionEmbedding.from_float(dense, "bfloat16")
    b = ReducedPrecisionEmbedding(dense.weight.data, dtype="bfloat16")
    np.testing.assert_array_equal(a.weight, b.weight)
    c = ReducedPrecisionEmbedding(a, "float16")  # bfloat16 values all fit float16's precision here
    np.testing.assert_array_equal(c.to_dense(), a.to_dense())


def test_dtype_may_be_given_as_a_numpy_or_ml_dtypes_type():
    import ml_dtypes

    weight = np.ones((2, 2))
    assert ReducedPrecisionEmbedding(weight, np.float16).dtype == "float16"
    assert ReducedPrecisionEmbedding(weight, ml_dtypes.bfloat16).dtype == "bfloat16"
    assert ReducedPrecisionEmbedding(weight, np.dtype(ml_dtypes.float8_e4m3fn)).dtype == "float8_e4m3fn"


@pytest.mark.parametrize("dtype", ["float32", "int8", "float8_e5m2", None, "bf16"])
def test_other_dtypes_are_refused_naming_the_value(dtype):
    with pytest.raises(ValueError, match=f"dtype must be one of .* got {dtype!r}"):
        ReducedPrecisionEmbedding(np.ones((2, 2)), dtype)


@pytest.mark.parametrize("dtype, value", [("float16", 65520.0), ("bfloat16", 3.4e38),
                                          ("float8_e4m3fn", 464.5), ("float8_e4m3fn", -1e4)])
def test_values_beyond_the_range_are_refused_naming_them(dtype, value):
    weight = np.zeros((3, 4), np.float32)
    weight[2, 1] = value
    message = f"value {np.float32(value)} at row 2, column 1 is outside the range of {dtype}"
    with pytest.raises(ValueError, match=re.escape(message)):
        ReducedPrecisionEmbedding(weight, dtype)


@pytest.mark.parametrize("weight, error, message", [
    (np.ones(4, np.float32), ValueError, r"2-D .* got shape \(4,\)"),
    (np.ones((3, 0), np.float32), ValueError, r"non-empty .* got shape \(3, 0\)"),
    (np.ones((3, 4), np.int32), TypeError, "floating point, got int32"),
    (np.array([[1.0, -np.inf]]), ValueError, "non-finite value -inf at row 0, column 1"),
])
def test_bad_tables_are_refused(weight, error, message):
    with pytest.raises(error, match=message):
        ReducedPrecisionEmbedding(weight, "float16")


def test_repr_shows_the_dtype_and_the_module_exports_the_table_and_its_formats():
    assert repr(ReducedPrecisionEmbedding(np.ones((3, 5)), "bfloat16")) == \
        "ReducedPrecisionEmbedding(3, 5, dtype='bfloat16')"
    assert precision.__all__ == ["ReducedPrecisionEmbedding", "FORMATS"]


# -- quality on the real MiniLM word table ------------------------------------------------
@pytest.fixture(scope="module")
def minilm():
    return minilm_tensor("embeddings.word_embeddings.weight")


@pytest.mark.parametrize("dtype, mean_at_least", [("float16", 0.99999), ("bfloat16", 0.9999),
                                                  ("float8_e4m3fn", 0.99)])
def test_minilm_rows_keep_their_direction(minilm, dtype, mean_at_least):
    table = ReducedPrecisionEmbedding(minilm, dtype=dtype)
    a, b = minilm.astype(np.float64), table.to_dense().astype(np.float64)
    cosines = np.einsum("ij,ij->i", a, b) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    print(f"\nMiniLM {dtype}: mean row cosine {cosines.mean():.9f}, min {cosines.min():.9f}, "
          f"{table.nbytes} bytes, compression {table.compression_ratio:.3f}x")
    assert cosines.mean() >= mean_at_least
    assert table.nbytes == minilm.size * BYTES[dtype]
