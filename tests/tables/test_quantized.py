"""QuantizedEmbedding: FBGEMM's fused row-wise 8-bit and 4-bit layout, checked byte for byte
against torch 2.13's prepack ops, and its lookups against torch's quantized embedding bags.
The protocol every table offers (lookup, bag, save/load, EmbeddingLayer, ...) is test_protocol.py."""

import numpy as np
import pytest
from jit_paths import needs_numba, on_numpy_path
from table_files import rewrite

from tinyembed.io.assets import minilm_tensor
from tinyembed.kernels import bags, jit, rows
from tinyembed.nn import Embedding
from tinyembed.tables.quantized import QuantizedEmbedding

torch = pytest.importorskip("torch")

PREPACK = {8: torch.ops.quantized.embedding_bag_byte_prepack, 4: torch.ops.quantized.embedding_bag_4bit_prepack}
UNPACK = {8: torch.ops.quantized.embedding_bag_byte_unpack, 4: torch.ops.quantized.embedding_bag_4bit_unpack}
BAG = {8: torch.ops.quantized.embedding_bag_byte_rowwise_offsets,
       4: torch.ops.quantized.embedding_bag_4bit_rowwise_offsets}


def hard_table(rng, num, dim):
    """Random rows at a random magnitude, plus the rows that break naive quantizers."""
    w = rng.standard_normal((num, dim)) * 10.0 ** rng.uniform(-6, 6)
    w = np.concatenate([w, [
        np.full(dim, 0.0),                              # constant zero row: zero span
        np.full(dim, -2.7182817),                       # constant row off the float16 grid
        np.linspace(-1e5, 1e5, dim),                    # minimum below float16's -65504: bias -inf
        np.linspace(-1.0, 7e4, dim),                    # span / 15 above float16's max: scale inf
        np.where(np.arange(dim) % 2, 3e38, -3e38),      # the span overflows float32
        1.0 + np.arange(dim) * 1e-7,                    # a span of a few float32 steps
        np.arange(dim) * 1e-12,                         # a span below the 8-bit epsilon 1e-8
        np.arange(dim) % 16 * 0.5 + 0.25,               # every code landing on a .5 tie
        np.full(dim, 1000.3),                           # constant, its float16 minimum above its maximum
        1000.3 + np.arange(dim) % 3 * 0.05,             # the same with a span: a negative 4-bit scale
    ]])
    return rng.permutation(w).astype(np.float32)


def torch_prepack(weight, bits):
    return PREPACK[bits](torch.from_numpy(weight)).numpy()


def torch_bag(table, ids, offsets, per_sample_weights=None, include_last_offset=False, mode=0):
    """torch.ops.quantized.embedding_bag_*_rowwise_offsets(weight, indices, offsets, scale_grad_by_freq,
    mode, pruned_weights, per_sample_weights, compressed_indices_mapping, include_last_offset)."""
    psw = None if per_sample_weights is None else torch.from_numpy(per_sample_weights)
    return BAG[table.bits](torch.from_numpy(table.fused), torch.from_numpy(ids), torch.from_numpy(offsets),
                           False, mode, False, psw, None, include_last_offset).numpy()


def random_bags(rng, num, count, num_bags):
    ids = rng.integers(0, num, count)
    offsets = np.sort(rng.integers(0, count + 1, num_bags))
    offsets[0] = 0
    return ids, offsets


def assert_pooled_close(ours, ref, contributions):
    """1e-6 relative: each bag's error against the sum of |weight| * max|row| of its entries
    (rows are code * scale + bias, so single elements may cancel to near zero)."""
    tol = 1e-6 * contributions + 1e-30
    np.testing.assert_array_less(np.abs(ours - ref).max(axis=1, initial=0.0), tol)


def bag_magnitudes(table, ids, bounds, weights=None):
    size = np.abs(table.lookup(ids)).max(axis=1) * (1 if weights is None else np.abs(weights))
    return np.array([size[a:b].sum() for a, b in zip(bounds[:-1], bounds[1:], strict=True)])


# -- the fused bytes ------------------------------------------------------------------
@pytest.mark.parametrize("bits", [8, 4])
@pytest.mark.parametrize("seed", range(12))
def test_fused_rows_equal_torch_prepack_byte_for_byte(bits, seed):
    rng = np.random.default_rng(seed)
    dim = int(rng.integers(1, 70)) * 2 - (seed % 2 if bits == 8 else 0)  # odd widths too for 8-bit
    weight = hard_table(rng, int(rng.integers(1, 40)), dim)
    table = QuantizedEmbedding.from_float(weight, bits=bits)
    np.testing.assert_array_equal(table.fused, torch_prepack(weight, bits))


@pytest.mark.parametrize("dim", [1, 3, 7, 33, 129])
def test_4bit_odd_width_matches_torch_on_the_row_padded_with_its_own_first_value(dim):
    # torch's 4-bit prepack refuses odd widths. Padding each row with a copy of its first
    # value changes neither its min nor its max, so torch's codes for the first `dim`
    # columns, scale and bias must be ours; our pad nibble (the last high nibble) is 0.
    rng = np.random.default_rng(dim)
    weight = hard_table(rng, 30, dim)
    ours = QuantizedEmbedding.from_float(weight, bits=4).fused
    theirs = torch_prepack(np.concatenate([weight, weight[:, :1]], axis=1), 4)
    assert ours.shape == theirs.shape == (len(weight), (dim + 1) // 2 + 4)
    last = (dim - 1) // 2
    np.testing.assert_array_equal(np.delete(ours, last, axis=1), np.delete(theirs, last, axis=1))
    np.testing.assert_array_equal(ours[:, last], theirs[:, last] & 0x0F)
    assert not (ours[:, last] >> 4).any()


def test_8bit_layout_is_codes_then_float32_scale_then_float32_bias():
    table = QuantizedEmbedding.from_float(np.array([[0.0, 1.0, 2.0, 3.0, 4.0]], np.float32), bits=8)
    row = table.fused[0]
    # scale 4/255, codes rint(x * 255 / 4): 63.75 -> 64, 127.5 -> 128 (tie to even), 191.25 -> 191
    np.testing.assert_array_equal(row[:5], [0, 64, 128, 191, 255])
    assert row[5:9].view("<f4")[0] == np.float32(4.0) / np.float32(255.0)
    assert row[9:13].view("<f4")[0] == 0.0


def test_4bit_layout_puts_the_even_column_in_the_low_nibble_then_float16_scale_and_bias():
    weight = np.array([[0.0, 15.0, 3.0, 12.0, 1.0]], np.float32)  # scale 1, bias 0: codes are the values
    row = QuantizedEmbedding.from_float(weight, bits=4).fused[0]
    np.testing.assert_array_equal(row[:3], [0xF0, 0xC3, 0x01])
    np.testing.assert_array_equal(row[3:7].view("<f2"), [1.0, 0.0])


def test_4bit_rounds_the_minimum_to_float16_before_deriving_the_scale():
    # float16 steps are 0.5 near 1000: the minimum 1000.3 is stored as 1000.5, and the
    # scale spans 1000.5..1001.3, not 1000.3..1001.3.
    weight = np.array([[1000.3, 1000.45, 1000.9, 1001.3]], np.float32)
    row = QuantizedEmbedding.from_float(weight, bits=4).fused[0]
    bias16 = np.float16(weight[0, 0])
    assert bias16 == 1000.5
    scale = np.float16((weight[0, 3] - np.float32(bias16)) / np.float32(15))
    assert row[2:4].view("<f2")[0] == scale and row[4:6].view("<f2")[0] == bias16
    assert scale != np.float16((weight[0, 3] - weight[0, 0]) / np.float32(15))  # the order matters
    # codes clip at 0 below the rounded minimum: 1000.3 and 1000.45 decode to 1000.5
    np.testing.assert_array_equal(row[:2], [0x00, (15 << 4) | 7])


# -- lookups against torch ----------------------------------------------------------------
@pytest.mark.parametrize("bits", [8, 4])
def test_to_dense_equals_torch_unpack(bits):
    rng = np.random.default_rng(bits)
    weight = rng.standard_normal((200, 48)).astype(np.float32) * 3
    table = QuantizedEmbedding.from_float(weight, bits=bits)
    ours, ref = table.to_dense(), UNPACK[bits](torch.from_numpy(table.fused)).numpy()
    np.testing.assert_array_less(np.abs(ours - ref).max(axis=1), 1e-6 * np.abs(ref).max(axis=1))


@pytest.fixture(params=[True, False], ids=["compiled", "numpy"])
def path(request):
    """Run the test on the compiled kernels, then on the NumPy path."""
    if request.param and not jit.available():
        pytest.skip("the compiled kernels are off")
    old = jit.set_enabled(request.param)
    yield request.param
    jit.set_enabled(old)


@pytest.mark.parametrize("bits", [8, 4])
@pytest.mark.parametrize("seed", range(10))
def test_bag_sum_equals_torch_quantized_embedding_bag(bits, seed, path):
    rng = np.random.default_rng(100 + seed)
    # torch's 4-bit bags need an even width; its 8-bit ones take any
    num, dim = int(rng.integers(1, 40)), int(rng.integers(1, 40)) * 2 - (seed % 2 if bits == 8 else 0)
    table = QuantizedEmbedding.from_float(rng.standard_normal((num, dim)) * 10.0 ** rng.uniform(-3, 3), bits)
    ids, offsets = random_bags(rng, num, int(rng.integers(0, 50)), int(rng.integers(1, 8)))
    bounds = np.append(offsets, len(ids))
    weights = rng.standard_normal(len(ids)).astype(np.float32)
    for psw in (None, weights):
        ours = table.bag(ids, offsets, mode="sum", per_sample_weights=psw)
        assert_pooled_close(ours, torch_bag(table, ids, offsets, psw), bag_magnitudes(table, ids, bounds, psw))
    # include_last_offset: the last offset ends the last bag. Ours ignores ids after it;
    # torch insists there are none, so it gets the ids up to there.
    last = np.append(offsets, int(rng.integers(offsets[-1], len(ids) + 1)))
    ours = table.bag(ids, last, mode="sum", include_last_offset=True)
    assert_pooled_close(ours, torch_bag(table, ids[:last[-1]], last, include_last_offset=True),
                        bag_magnitudes(table, ids, last))


@pytest.mark.parametrize("bits", [8, 4])
def test_bag_mean_equals_torch_sum_divided_by_bag_size(bits, path):
    # torch 2.13's quantized bags ignore `mode` (the C++ signature leaves it unnamed):
    # mode=1 returns the sum. The mean is that sum over the bag's size.
    rng = np.random.default_rng(7)
    table = QuantizedEmbedding.from_float(rng.standard_normal((30, 16)), bits)
    ids, offsets = random_bags(rng, 30, 60, 9)
    offsets[3] = offsets[4]  # an empty bag
    bounds = np.append(offsets, len(ids))
    torch_sum = torch_bag(table, ids, offsets, mode=0)
    np.testing.assert_array_equal(torch_bag(table, ids, offsets, mode=1), torch_sum)
    sizes = np.maximum(np.diff(bounds), 1)[:, None].astype(np.float32)
    assert_pooled_close(table.bag(ids, offsets, mode="mean"), torch_sum / sizes,
                        bag_magnitudes(table, ids, bounds) / sizes[:, 0])


@pytest.mark.parametrize("bits", [8, 4])
@pytest.mark.parametrize("dim", [64, 130])
def test_many_bags_on_every_thread_equal_torch(bits, dim, path):
    # Enough bags for the parallel loops and the prefetching (a table larger than a chunk of bags).
    rng = np.random.default_rng(dim)
    table = QuantizedEmbedding.from_float(rng.standard_normal((5000, dim)).astype(np.float32), bits)
    ids = rng.integers(0, 5000, 512 * 24)
    offsets = np.arange(0, ids.size, 24)
    bounds = np.append(offsets, ids.size)
    weights = rng.standard_normal(ids.size).astype(np.float32)
    for psw in (None, weights):
        assert_pooled_close(table.bag(ids, offsets, per_sample_weights=psw), torch_bag(table, ids, offsets, psw),
                            bag_magnitudes(table, ids, bounds, psw))
    assert_pooled_close(table.bag(ids, offsets, mode="mean"), torch_bag(table, ids, offsets) / np.float32(24),
                        bag_magnitudes(table, ids, bounds) / 24)


# -- decoding, bags and sizes --------------------------------------------------------
@pytest.fixture(params=[(8, 10), (4, 10), (4, 7)], ids=["int8", "int4", "int4-odd"])
def table(request):
    bits, dim = request.param
    weight = np.random.default_rng(dim).standard_normal((23, dim)).astype(np.float32)
    return QuantizedEmbedding.from_float(weight, bits=bits)


def brute_force_dequantize(table):
    """Row by row, element by element from the fused bytes: code * scale + bias in float32."""
    dim, out = table.embedding_dim, np.empty((table.num_embeddings, table.embedding_dim), np.float32)
    for r, row in enumerate(table.fused):
        if table.bits == 8:
            codes, (scale, bias) = row[:dim], row[dim:].view("<f4")
        else:
            codes = [(row[c // 2] >> (4 * (c % 2))) & 0xF for c in range(dim)]
            scale, bias = row[(dim + 1) // 2:].view("<f2").astype(np.float32)
        for c in range(dim):
            out[r, c] = np.float32(codes[c]) * scale + bias
    return out


def test_to_dense_equals_brute_force_decoding_of_the_bytes(table):
    np.testing.assert_array_equal(table.to_dense(), brute_force_dequantize(table))


def test_bag_decodes_only_the_rows_in_its_bags_and_never_the_dense_table_on_the_numpy_path(table, monkeypatch):
    decoded = []
    real = rows.split_rows  # a quantized bag splits its rows into codes, scales and biases (kernels.bags)
    monkeypatch.setattr(bags, "split_rows", lambda fused, dim, bits: decoded.append(len(fused)) or
                        real(fused, dim, bits))
    monkeypatch.setattr(QuantizedEmbedding, "to_dense", lambda self: pytest.fail("bag built the dense table"))
    ids = np.array([3, 3, 5, 1, 0, 2])
    on_numpy_path(table.bag, ids, np.array([0, 2]), include_last_offset=True, mode="mean")  # only ids[:2] in a bag
    assert decoded == [2]


@needs_numba
def test_compiled_lookup_bag_and_attend_decode_inside_the_kernels(table, monkeypatch):
    dense, h = table.to_dense(), np.ones((1, table.embedding_dim), np.float32)
    monkeypatch.setattr(rows, "decode_rows", lambda *args: pytest.fail("decoded in NumPy"))
    monkeypatch.setattr(bags, "split_rows", lambda *args: pytest.fail("split in NumPy"))
    monkeypatch.setattr(QuantizedEmbedding, "to_dense", lambda self: pytest.fail("built the dense table"))
    np.testing.assert_array_equal(table.lookup([4, 4, 9]), dense[[4, 4, 9]])
    np.testing.assert_array_equal(table.bag([1, 2, 3, 0], [0, 1], include_last_offset=True), dense[[1]])
    np.testing.assert_allclose(table.attend(h), h @ dense.T, rtol=1e-5)


def test_nbytes_is_the_fused_row_bytes_and_num_parameters_codes_scales_and_biases(table):
    num, dim = table.num_embeddings, table.embedding_dim
    expected = num * (dim + 8) if table.bits == 8 else num * ((dim + 1) // 2 + 4)
    assert table.nbytes == expected == table.fused.nbytes
    assert table.num_parameters() == num * (dim + 2)  # codes, and a scale and a bias per row


def test_nbytes_of_the_minilm_sized_table_formulas():
    weight = np.zeros((5, 384), np.float32)
    assert QuantizedEmbedding.from_float(weight, 8).nbytes == 5 * (384 + 8)
    assert QuantizedEmbedding.from_float(weight, 4).nbytes == 5 * (192 + 4)


# -- save / load ----------------------------------------------------------------------
def test_a_table_prepacked_by_torch_loads_as_fused_rows():
    weight = np.random.default_rng(0).standard_normal((9, 6)).astype(np.float32)
    table = QuantizedEmbedding(torch_prepack(weight, 4), embedding_dim=6, bits=4)
    np.testing.assert_array_equal(table.to_dense(), QuantizedEmbedding.from_float(weight, 4).to_dense())


def test_load_refuses_a_config_with_bits_other_than_4_or_8(table, tmp_path):
    good, bad = tmp_path / "good.safetensors", tmp_path / "bits.safetensors"
    table.save(good)
    rewrite(good, bad, {"fused": table.fused}, bits=2)
    with pytest.raises(ValueError, match="bits must be 4 or 8, got 2"):
        QuantizedEmbedding.load(bad)


# -- building and validation --------------------------------------------------------------
def test_from_float_takes_any_table_through_to_dense():
    dense = Embedding(12, 6, seed=3)
    np.testing.assert_array_equal(QuantizedEmbedding.from_float(dense, 4).fused,
                                  QuantizedEmbedding.from_float(dense.weight.data, 4).fused)
    again = QuantizedEmbedding.from_float(QuantizedEmbedding.from_float(dense, 8), 8)
    assert again.fused.shape == (12, 14)


def test_float64_input_is_quantized_as_its_float32_rounding():
    weight = np.random.default_rng(2).standard_normal((5, 8))
    np.testing.assert_array_equal(QuantizedEmbedding.from_float(weight, 8).fused,
                                  torch_prepack(weight.astype(np.float32), 8))


@pytest.mark.parametrize("bits", [2, 3, 16, 0, True, "8", 8.0, None])
def test_bits_other_than_4_and_8_are_refused_naming_the_value(bits):
    with pytest.raises(ValueError, match=f"bits must be 4 or 8, got {bits!r}"):
        QuantizedEmbedding.from_float(np.ones((2, 2), np.float32), bits=bits)


@pytest.mark.parametrize("weight, error, message", [
    (np.ones(4, np.float32), ValueError, r"2-D .* got shape \(4,\)"),
    (np.ones((0, 4), np.float32), ValueError, r"non-empty .* got shape \(0, 4\)"),
    (np.ones((3, 4), np.int64), TypeError, "floating point, got int64"),
    (np.array([[1.0, np.nan], [0.0, 0.0]]), ValueError, "non-finite value nan at row 0, column 1"),
    (np.array([[1.0, 0.0], [1e39, 0.0]]), ValueError, "non-finite value inf at row 1, column 0"),
])
def test_from_float_refuses_bad_tables(weight, error, message):
    with pytest.raises(error, match=message):
        QuantizedEmbedding.from_float(weight, bits=8)


def test_constructor_refuses_fused_rows_of_the_wrong_shape_or_dtype():
    fused = np.zeros((3, 12), np.uint8)
    QuantizedEmbedding(fused, 4, bits=8)
    for bad, dim, bits in [(fused, 5, 8), (fused, 4, 4), (fused.astype(np.int8), 4, 8), (fused[:0], 4, 8),
                           (fused[0], 4, 8)]:
        with pytest.raises(ValueError, match="fused must be a"):
            QuantizedEmbedding(bad, dim, bits=bits)
    with pytest.raises(ValueError, match="embedding_dim must be a positive integer, got 0"):
        QuantizedEmbedding(fused, 0, bits=8)


def test_repr_shows_the_bits():
    assert repr(QuantizedEmbedding.from_float(np.ones((3, 5)), 4)) == "QuantizedEmbedding(3, 5, bits=4)"


# -- quality on the real MiniLM word table ------------------------------------------------
@pytest.fixture(scope="module")
def minilm():
    return minilm_tensor("embeddings.word_embeddings.weight")


def row_cosines(a, b):
    a, b = a.astype(np.float64), b.astype(np.float64)
    return np.einsum("ij,ij->i", a, b) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.mark.parametrize("bits, mean_at_least", [(8, 0.9999), (4, 0.99)])
def test_minilm_rows_keep_their_direction(minilm, bits, mean_at_least):
    table = QuantizedEmbedding.from_float(minilm, bits=bits)
    cosines = row_cosines(minilm, table.to_dense())
    print(f"\nMiniLM int{bits}: mean row cosine {cosines.mean():.7f}, min {cosines.min():.7f}, "
          f"{table.nbytes} bytes, compression {table.compression_ratio:.3f}x")
    assert cosines.mean() >= mean_at_least
    num, dim = minilm.shape
    assert table.nbytes == (num * (dim + 8) if bits == 8 else num * (dim // 2 + 4))


def test_minilm_int8_error_is_at_most_half_a_step_per_entry(minilm):
    # The published bound of rounding to a grid of step `scale` (here with FBGEMM's 1e-8
    # epsilon in the step the codes use, and float32 arithmetic on top).
    table = QuantizedEmbedding.from_float(minilm, bits=8)
    scale = np.ascontiguousarray(table.fused[:, -8:-4]).view("<f4")
    error = np.abs(table.to_dense() - minilm)
    assert (error <= scale * 0.5 * (1 + 1e-5) + 1e-7).all()
