"""tinyembed.io.safetensors against the format, the reference implementation and torch."""

import io
import json
import os
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st_
from hypothesis.extra import numpy as hnp

from tinyembed.io import safetensors as st


# The reference implementation (Hugging Face's `safetensors` package) and torch are
# test oracles only.
def _reference_numpy():
    return pytest.importorskip("safetensors.numpy")


def _reference_torch():
    pytest.importorskip("torch")
    return pytest.importorskip("safetensors.torch")


def _bits(array):
    """The bytes of an array (so NaNs and -0.0 compare exactly)."""
    return np.ascontiguousarray(array).tobytes()


def _random_array(dtype, shape, rng):
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return rng.integers(0, 2, size=shape).astype(bool)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)
    if dtype.kind == "c":
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)
    return (rng.standard_normal(shape) * 100).astype(dtype)


def _file(header, buffer=b"", length=None):
    """A safetensors file made by hand: header (a dict, or raw bytes) and buffer."""
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    n = len(raw) if length is None else length
    return n.to_bytes(8, "little") + raw + buffer


def _as_source(data, kind, tmp_path):
    if kind == "bytes":
        return data
    if kind == "stream":
        return io.BytesIO(data)
    path = tmp_path / "file.safetensors"
    path.write_bytes(data)
    return path


SOURCE_KINDS = ["bytes", "path", "stream"]


# ---------------------------------------------------------------------------
# Round trips
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype_name", sorted(st.NUMPY_DTYPES))
@pytest.mark.parametrize("shape", [(), (0,), (3, 0, 2), (7,), (2, 3, 4)], ids=str)
def test_round_trip_keeps_every_numpy_dtype_bit_for_bit(dtype_name, shape, tmp_path):
    rng = np.random.default_rng(0)
    array = _random_array(st.NUMPY_DTYPES[dtype_name], shape, rng)
    for source in (st.save_bytes({"t": array}), tmp_path / "t.safetensors"):
        if not isinstance(source, bytes):
            st.save({"t": array}, source)
        loaded = st.load(source)["t"]
        assert loaded.dtype == array.dtype and loaded.shape == shape
        assert _bits(loaded) == _bits(array)
        assert st.read_header(source)[0]["t"].dtype == dtype_name


def test_round_trip_of_a_large_array_through_a_memory_mapped_file(tmp_path):
    rng = np.random.default_rng(1)
    big = rng.standard_normal((30522, 96)).astype(np.float32)  # 11.7 MB
    ids = rng.integers(0, 30522, size=4096)
    path = tmp_path / "big.safetensors"
    st.save({"table": big, "ids": ids}, path)
    header_bytes = int.from_bytes(path.read_bytes()[:8], "little")
    assert path.stat().st_size == 8 + header_bytes + big.nbytes + ids.nbytes
    loaded = st.load(path)
    np.testing.assert_array_equal(loaded["table"], big)
    np.testing.assert_array_equal(loaded["ids"], ids)
    bases, base = [], loaded["table"]
    while base is not None:
        bases.append(base)
        base = getattr(base, "base", None)
    assert any(isinstance(b, np.memmap) for b in bases)  # a view of the file, not a copy


def test_loaded_arrays_are_read_only_views_unless_copied():
    blob = st.save_bytes({"w": np.ones((2, 2), np.float32)})
    view = st.load(bytearray(blob))["w"]  # even over a writable buffer
    assert not view.flags.writeable
    with pytest.raises(ValueError):
        view[0, 0] = 2.0
    owned = st.load(blob, copy=True)["w"]
    assert owned.flags.writeable and owned.flags.owndata
    owned[0, 0] = 2.0
    assert st.load(blob)["w"][0, 0] == 1.0


def test_any_byte_order_and_layout_is_written_little_endian_c_order():
    array = np.arange(12, dtype=">i4").reshape(3, 4).T  # big-endian, Fortran-ordered view
    blob = st.save_bytes({"a": array})
    header, _ = st.read_header(blob)
    assert header["a"].shape == (4, 3)
    assert blob[-48:] == np.ascontiguousarray(array, dtype="<i4").tobytes()
    np.testing.assert_array_equal(st.load(blob)["a"], array)


def test_metadata_and_unicode_names_round_trip():
    tensors = {"plongement.poids": np.zeros(2, np.float32), "名前": np.ones(1, np.int8)}
    blob = st.save_bytes(tensors, metadata={"format": "np", "note": "ünïcode"})
    header, metadata = st.read_header(blob)
    assert metadata == {"format": "np", "note": "ünïcode"}
    assert set(header) == set(tensors)
    assert st.read_header(st.save_bytes(tensors))[1] == {}


def test_an_empty_dict_makes_the_reference_writers_bytes():
    # Bytes from the reference implementation's own tests (tensor.rs, test_empty).
    assert st.save_bytes({}) == bytes([8, 0, 0, 0, 0, 0, 0, 0]) + b"{}" + b" " * 6
    assert st.load(st.save_bytes({})) == {}


def test_header_is_padded_so_every_tensor_starts_aligned_to_its_item_size():
    tensors = {"a": np.zeros(3, np.int8), "b": np.zeros(5, np.float64), "c": np.zeros(1, np.float16),
               "d": np.zeros(3, np.int32)}
    blob = st.save_bytes(tensors, metadata={"x": "y" * 5})
    n = int.from_bytes(blob[:8], "little")
    assert n % 8 == 0
    header, _ = st.read_header(blob)
    for name, info in header.items():
        assert (8 + n + info.data_offsets[0]) % tensors[name].itemsize == 0


@settings(max_examples=60, deadline=None)
@given(st_.dictionaries(
    st_.text(min_size=0, max_size=8).filter(lambda s: s != "__metadata__"),
    st_.sampled_from(sorted(st.NUMPY_DTYPES)).flatmap(lambda name: hnp.arrays(
        st.NUMPY_DTYPES[name], hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))),
    max_size=5))
def test_round_trip_property_any_dict_of_arrays(tensors):
    loaded = st.load(st.save_bytes(tensors))
    assert set(loaded) == set(tensors)
    for name, array in tensors.items():
        assert loaded[name].shape == array.shape and loaded[name].dtype == array.dtype.newbyteorder("=")
        assert _bits(loaded[name]) == _bits(array.astype(array.dtype.newbyteorder("<")))


# ---------------------------------------------------------------------------
# Sources and selection
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["bytes", "bytearray", "memoryview", "stream", "path", "str",
                                  "zip member"])
def test_every_kind_of_source_reads_the_same_tensors(kind, tmp_path):
    tensors = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "i": np.arange(4)}
    blob = st.save_bytes(tensors, metadata={"k": "v"})
    path = tmp_path / "m.safetensors"
    path.write_bytes(blob)
    with zipfile.ZipFile(tmp_path / "pkg.whl", "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("pkg/model/m.safetensors", blob)

    def source():
        return {"bytes": lambda: blob, "bytearray": lambda: bytearray(blob),
                "memoryview": lambda: memoryview(blob), "stream": lambda: io.BytesIO(blob),
                "path": lambda: path, "str": lambda: str(path),
                "zip member": lambda: zipfile.ZipFile(tmp_path / "pkg.whl").open(
                    "pkg/model/m.safetensors")}[kind]()

    loaded = st.load(source())
    assert list(loaded) == ["i", "w"]  # buffer order: widest items first
    for name in tensors:
        np.testing.assert_array_equal(loaded[name], tensors[name])
    assert st.read_header(source())[1] == {"k": "v"}
    np.testing.assert_array_equal(st.load_tensor(source(), "w", expected_shape=(2, 3)), tensors["w"])


def test_load_returns_the_names_asked_for_in_their_order():
    blob = st.save_bytes({"a": np.zeros(1), "b": np.ones(1), "c": np.full(1, 2.0)})
    assert list(st.load(blob, names=["c", "a"])) == ["c", "a"]
    with pytest.raises(TypeError, match="list of tensor names"):
        st.load(blob, names="a")


def test_a_missing_tensor_names_close_matches_and_what_is_there():
    blob = st.save_bytes({"embeddings.word_embeddings.weight": np.zeros((2, 2), np.float32),
                          "embeddings.position_embeddings.weight": np.zeros((2, 2), np.float32)})
    with pytest.raises(KeyError, match=r"no tensor named 'embeddings\.word_embedding\.weight'.*"
                                       r"close matches: embeddings\.word_embeddings\.weight.*"
                                       r"has 2 tensors"):
        st.load_tensor(blob, "embeddings.word_embedding.weight")
    with pytest.raises(KeyError, match="'nope'"):
        st.load(blob, names=["nope"])


def test_load_tensor_checks_shape_and_dtype_naming_both():
    blob = st.save_bytes({"w": np.zeros((512, 384), np.float32)})
    with pytest.raises(ValueError, match=r"'w' has shape \(512, 384\), expected \(30522, 384\)"):
        st.load_tensor(blob, "w", expected_shape=(30522, 384))
    with pytest.raises(ValueError, match=r"shape \(512, 384\), expected \(512,\)"):
        st.load_tensor(blob, "w", expected_shape=(512,))
    with pytest.raises(ValueError, match=r"'w' has dtype F32 \(loads as float32\), expected float16"):
        st.load_tensor(blob, "w", expected_dtype=np.float16)
    with pytest.raises(ValueError, match=r"dtype F32 .*expected BF16"):
        st.load_tensor(blob, "w", expected_dtype="BF16")
    assert st.load_tensor(blob, "w", expected_shape=(None, 384), expected_dtype="F32").shape == (512, 384)
    assert st.load_tensor(blob, "w", expected_dtype="float32").dtype == np.float32


def test_bf16_tensor_loads_as_float32_and_checks_against_either_name():
    blob = st.save_bytes({"w": np.array([1.5, -2.0], np.float32)}, store_as={"w": "BF16"})
    assert st.read_header(blob)[0]["w"].dtype == "BF16"
    w = st.load_tensor(blob, "w", expected_dtype="BF16")
    assert w.dtype == np.float32 and not w.flags.writeable
    np.testing.assert_array_equal(w, [1.5, -2.0])
    st.load_tensor(blob, "w", expected_dtype=np.float32)


# ---------------------------------------------------------------------------
# BF16 and 8-bit floats against torch
# ---------------------------------------------------------------------------

def test_bf16_decoding_is_exact_for_all_65536_bit_patterns():
    torch = pytest.importorskip("torch")
    patterns = np.arange(1 << 16, dtype=np.uint32).astype("<u2")
    ours = st.DECODED_DTYPES["BF16"](patterns.view(np.uint8))
    theirs = torch.from_numpy(patterns.view(np.int16)).view(torch.bfloat16).float().numpy()
    assert _bits(ours) == _bits(theirs)  # NaN payloads and -0.0 included


def _float32_edge_cases():
    rng = np.random.default_rng(2)
    random_bits = rng.integers(0, 1 << 32, size=200_000, dtype=np.uint64).astype(np.uint32)
    ties = (rng.integers(0, 1 << 16, size=2000, dtype=np.uint32) << 16) | 0x8000  # exactly halfway
    specials = np.array([0.0, -0.0, np.inf, -np.inf, np.finfo(np.float32).max,
                         -np.finfo(np.float32).max, np.finfo(np.float32).tiny,
                         np.finfo(np.float32).smallest_subnormal, 1.0, 1.00390625, 1.01171875,
                         3.3895314e38], dtype=np.float32)
    return np.concatenate([random_bits.view(np.float32), ties.view(np.float32), specials])


def test_bf16_encoding_rounds_like_torch():
    torch = pytest.importorskip("torch")
    x = _float32_edge_cases()
    ours = st.load(st.save_bytes({"x": x}, store_as={"x": "BF16"}))["x"]
    theirs = torch.from_numpy(x).bfloat16().float().numpy()
    nan = np.isnan(x)
    assert np.isnan(ours[nan]).all()
    assert _bits(ours[~nan]) == _bits(theirs[~nan])  # ties to even, overflow to inf, -0.0


@pytest.mark.parametrize("name, torch_dtype", [
    ("F8_E4M3", "float8_e4m3fn"), ("F8_E5M2", "float8_e5m2"),
    ("F8_E4M3FNUZ", "float8_e4m3fnuz"), ("F8_E5M2FNUZ", "float8_e5m2fnuz"),
    ("F8_E8M0", "float8_e8m0fnu"),
])
def test_float8_decoding_matches_torch_for_all_256_bytes(name, torch_dtype):
    torch = pytest.importorskip("torch")
    codes = np.arange(256, dtype=np.uint8)
    ours = st.DECODED_DTYPES[name](codes)
    theirs = torch.from_numpy(codes).view(getattr(torch, torch_dtype)).float().numpy()
    np.testing.assert_array_equal(ours, theirs)  # NaN where torch has NaN (payloads differ)
    assert (np.signbit(ours) == np.signbit(theirs))[~np.isnan(theirs)].all()


def test_sub_byte_types_are_described_but_refused_when_loaded():
    blob = _file({"q": {"dtype": "F4", "shape": [2, 4], "data_offsets": [0, 4]},
                  "w": {"dtype": "U8", "shape": [4], "data_offsets": [4, 8]}}, bytes(8))
    assert st.read_header(blob)[0]["q"].dtype == "F4"
    np.testing.assert_array_equal(st.load(blob, names=["w"])["w"], np.zeros(4, np.uint8))
    with pytest.raises(ValueError, match="sub-byte dtype F4"):
        st.load(blob)


# ---------------------------------------------------------------------------
# Against the reference implementation
# ---------------------------------------------------------------------------

# Every dtype the reference's NumPy API has (it has no BF16 or 8-bit floats).
REFERENCE_NUMPY_DTYPES = ["F64", "F32", "F16", "C64", "I64", "I32", "I16", "I8",
                          "U64", "U32", "U16", "U8", "BOOL"]


def _one_of_each(rng):
    tensors = {f"t.{name}": _random_array(st.NUMPY_DTYPES[name], (3, 5), rng)
               for name in REFERENCE_NUMPY_DTYPES}
    tensors["scalar"] = np.array(3.5, dtype=np.float32)  # 0-d
    tensors["empty"] = np.zeros((0, 384), np.float32)
    return tensors


def test_our_bytes_are_the_reference_writers_bytes():
    ref = _reference_numpy()
    tensors = _one_of_each(np.random.default_rng(3))
    assert st.save_bytes(tensors) == ref.save(tensors)
    assert st.save_bytes(tensors, metadata={"format": "np"}) == ref.save(tensors, metadata={"format": "np"})


def test_reference_reads_what_we_write(tmp_path):
    ref = _reference_numpy()
    tensors = _one_of_each(np.random.default_rng(4))
    st.save(tensors, tmp_path / "ours.safetensors", metadata={"by": "tinyembed"})
    for loaded in (ref.load_file(tmp_path / "ours.safetensors"), ref.load(st.save_bytes(tensors))):
        assert set(loaded) == set(tensors)
        for name, array in tensors.items():
            assert loaded[name].dtype == array.dtype and _bits(loaded[name]) == _bits(array)
    safe_open = pytest.importorskip("safetensors").safe_open
    with safe_open(tmp_path / "ours.safetensors", framework="np") as f:
        assert f.metadata() == {"by": "tinyembed"}


def test_we_read_what_the_reference_writes(tmp_path):
    ref = _reference_numpy()
    tensors = _one_of_each(np.random.default_rng(5))
    ref.save_file(tensors, tmp_path / "theirs.safetensors", metadata={"by": "reference"})
    for source in (tmp_path / "theirs.safetensors", ref.save(tensors)):
        loaded = st.load(source)
        assert set(loaded) == set(tensors)
        for name, array in tensors.items():
            assert loaded[name].dtype == array.dtype and _bits(loaded[name]) == _bits(array)
    assert st.read_header(tmp_path / "theirs.safetensors")[1] == {"by": "reference"}


def test_we_decode_bf16_and_float8_files_the_reference_writes_from_torch():
    ref_torch = _reference_torch()
    import torch

    x = torch.from_numpy(_float32_edge_cases()[:5000].copy())
    x = x[torch.isfinite(x)].clamp(-400, 400)  # within float8 range
    tensors = {"bf16": x.bfloat16(), "e4m3": x.to(torch.float8_e4m3fn), "e5m2": x.to(torch.float8_e5m2),
               "scalar": torch.tensor(1.25, dtype=torch.bfloat16), "empty": torch.zeros(0, 4).bfloat16()}
    loaded = st.load(ref_torch.save(tensors))
    for name, tensor in tensors.items():
        assert loaded[name].dtype == np.float32 and loaded[name].shape == tuple(tensor.shape)
        assert _bits(loaded[name]) == _bits(tensor.float().numpy())


def test_reference_reads_our_bf16_as_torch_rounds_it():
    ref_torch = _reference_torch()
    import torch

    x = _float32_edge_cases()
    x = x[~np.isnan(x)]
    theirs = ref_torch.load(st.save_bytes({"x": x}, store_as={"x": "BF16"}))["x"]
    assert theirs.dtype == torch.bfloat16
    assert torch.equal(theirs.view(torch.int16), torch.from_numpy(x).bfloat16().view(torch.int16))
    # Mixed with other types, the whole file is the reference writer's, byte for byte.
    half = np.linspace(-2, 2, 7, dtype=np.float16)
    ours = st.save_bytes({"x": x, "h": half, "i": np.arange(3, dtype=np.int16)}, store_as={"x": "BF16"})
    assert ours == ref_torch.save({"x": torch.from_numpy(x).bfloat16(), "h": torch.from_numpy(half),
                                   "i": torch.arange(3, dtype=torch.int16)})


# ---------------------------------------------------------------------------
# Corrupt and truncated files
# ---------------------------------------------------------------------------

GOOD_ENTRY = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}

CORRUPT_FILES = {
    "shorter than the length field": (b"\x08\x00\x00", "too short"),
    "header length beyond the file": (_file(b'{"a":1}', length=1000), "header length 1000 is larger than the file"),
    "header length over the limit": (_file(b"{}", length=10**12), "exceeds the 100000000-byte limit"),
    "header not UTF-8": (_file(b'{"\xff":1}'), "not valid UTF-8"),
    "header not an object": (_file(b"[1, 2]   "), "must be a JSON object"),
    "header not JSON": (_file(b'{"a": {"dtype": "F32",'), "not valid JSON"),
    "duplicate tensor name": (_file(b'{"a":' + json.dumps(GOOD_ENTRY).encode() + b',"a":'
                                    + json.dumps(GOOD_ENTRY).encode() + b"}", bytes(8)),
                              "duplicate key 'a'"),
    "metadata not strings": (_file({"__metadata__": {"n": 1}}), "__metadata__ must map strings"),
    "entry lacks offsets": (_file({"a": {"dtype": "F32", "shape": [2]}}, bytes(8)), "lacks data_offsets"),
    "entry not an object": (_file({"a": [1, 2]}), "must be an object"),
    "unknown dtype": (_file({"a": {"dtype": "F128", "shape": [1], "data_offsets": [0, 16]}}, bytes(16)),
                      "unknown dtype 'F128'"),
    "negative shape": (_file({"a": {"dtype": "U8", "shape": [-1], "data_offsets": [0, 0]}}),
                       "shape must be a list of non-negative integers"),
    "float in shape": (_file({"a": {"dtype": "U8", "shape": [2.0], "data_offsets": [0, 2]}}, bytes(2)),
                       "shape must be a list"),
    "offsets not a pair": (_file({"a": {"dtype": "U8", "shape": [2], "data_offsets": [0]}}, bytes(2)),
                           r"data_offsets must be \[begin, end\]"),
    "offsets backwards": (_file({"a": {"dtype": "U8", "shape": [0], "data_offsets": [4, 0]}}, bytes(4)),
                          "end before they begin"),
    "offsets not shape times item size": (
        _file({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, bytes(8)),
        r"span 8 bytes, but shape \[3\] of F32 needs 12"),
    "overlapping tensors": (
        _file({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
               "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, bytes(12)),
        "tensor 'b' at bytes \\[4, 12\\] overlaps tensor 'a'"),
    "gap between tensors": (
        _file({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
               "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}}, bytes(12)),
        "gap of 4 bytes in the buffer before tensor 'b'"),
    "gap before the first tensor": (
        _file({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, bytes(8)), "gap of 4 bytes"),
    "truncated buffer": (_file({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, bytes(10)),
                         "truncated: the header needs a 16-byte buffer, the file has 10"),
    "bytes after the last tensor": (_file({"a": GOOD_ENTRY}, bytes(12)), "4 bytes after the last tensor"),
    "BOOL byte other than 0 or 1": (_file({"a": {"dtype": "BOOL", "shape": [2], "data_offsets": [0, 2]}},
                                          b"\x01\x02"), "BOOL but holds bytes other than 0 and 1"),
}


@pytest.mark.parametrize("kind", SOURCE_KINDS)
@pytest.mark.parametrize("case", sorted(CORRUPT_FILES))
def test_corrupt_file_raises_a_value_error_saying_what_is_wrong(case, kind, tmp_path):
    data, message = CORRUPT_FILES[case]
    with pytest.raises(ValueError, match=message):
        st.load(_as_source(data, kind, tmp_path))


def test_every_truncation_of_a_valid_file_is_refused(tmp_path):
    blob = st.save_bytes({"a": np.arange(3, dtype=np.float32), "b": np.arange(2, dtype=np.int8)},
                         metadata={"k": "v"})
    for cut in range(len(blob)):
        for kind in SOURCE_KINDS:
            with pytest.raises(ValueError):
                st.load(_as_source(blob[:cut], kind, tmp_path))


def test_errors_name_the_file(tmp_path):
    path = tmp_path / "broken.safetensors"
    path.write_bytes(_file(b"not json"))
    with pytest.raises(ValueError, match="broken.safetensors"):
        st.read_header(path)


def test_a_stream_header_is_read_without_reading_the_tensors():
    blob = st.save_bytes({"a": np.zeros(1000, np.float32)})
    stream = io.BytesIO(blob)
    header, _ = st.read_header(stream)
    assert header["a"].shape == (1000,)
    assert stream.tell() == 8 + int.from_bytes(blob[:8], "little")


def test_text_mode_files_and_other_objects_are_refused(tmp_path):
    with pytest.raises(TypeError, match="binary mode"):
        st.load(io.StringIO("{}"))
    with pytest.raises(TypeError, match="expected a path, bytes or a binary file object"):
        st.load(42)


# ---------------------------------------------------------------------------
# Saving: validation first, then an atomic write
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("tensors, metadata, store_as, error, message", [
    ({"a": np.zeros(2, np.complex128)}, None, None, TypeError, "has no safetensors type"),
    ({"a": np.array(["x"], dtype=object)}, None, None, TypeError, "has no safetensors type"),
    ({"a": np.zeros(2, "datetime64[s]")}, None, None, TypeError, "has no safetensors type"),
    ({1: np.zeros(2)}, None, None, TypeError, "names must be str"),
    ({"__metadata__": np.zeros(2)}, None, None, ValueError, "reserved"),
    ({"a": np.zeros(2)}, {"k": 1}, None, TypeError, "metadata must map str to str"),
    ({"a": np.zeros(2)}, None, {"b": "BF16"}, KeyError, "not being saved"),
    ({"a": np.zeros(2, np.float32)}, None, {"a": "F16"}, ValueError, "only 'BF16'"),
    ({"a": np.zeros(2, np.float64)}, None, {"a": "BF16"}, TypeError, "cast it first"),
    ([np.zeros(2)], None, None, TypeError, "must be a mapping"),
], ids=["complex128", "object", "datetime", "int name", "reserved name", "metadata value",
        "store_as unknown name", "store_as F16", "BF16 from float64", "not a mapping"])
def test_save_refuses_bad_input_before_touching_the_disk(tensors, metadata, store_as, error, message,
                                                         tmp_path):
    with pytest.raises(error, match=message):
        st.save(tensors, tmp_path / "out.safetensors", metadata=metadata, store_as=store_as)
    assert list(tmp_path.iterdir()) == []


def test_save_failing_midway_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "model.safetensors"
    st.save({"old": np.arange(4, dtype=np.float32)}, path)
    before = path.read_bytes()

    real = st._tensor_bytes
    calls = []

    def fail_on_second_tensor(planned):
        calls.append(planned.name)
        if len(calls) == 2:
            raise OSError("disk full (simulated)")
        return real(planned)

    monkeypatch.setattr(st, "_tensor_bytes", fail_on_second_tensor)
    new = {"a": np.zeros(100_000, np.float32), "b": np.ones(100_000, np.float32)}
    with pytest.raises(OSError, match="disk full"):
        st.save(new, path)
    assert calls == ["a", "b"]  # it really failed part way through
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]

    monkeypatch.setattr(st, "_tensor_bytes", real)
    st.save(new, path)
    assert set(st.load(path)) == {"a", "b"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]


def test_saved_file_gets_the_usual_permissions(tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    path = tmp_path / "m.safetensors"
    st.save({"a": np.zeros(1)}, path)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
