"""The table protocol (tinyembed.nn.table), checked once for every registered table type.

Every test runs on each entry of ``table_cases.CASES``, a representative table of each type
(some types have several: storage types, combiners, float64).
``test_every_registered_table_type_has_a_case`` fails when a type is registered without
one, so a new table type gets every test here as soon as it has a factory. What only one
type promises (its rounding, hashing, SVD, its formula for nbytes) is tested in its own file.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from bag_reference import assert_bags_equal_pooled_lookups, assert_weighted_bags_equal_pooled_lookups
from table_cases import CASES, Case
from table_files import rewrite

import tinyembed as te
from tinyembed.io import safetensors
from tinyembed.kernels import rows
from tinyembed.nn import TABLE_TYPES
from tinyembed.nn.table import EmbeddingTable, as_float_table, load_table
from tinyembed.positional import EmbeddingLayer

ID_SHAPES = [(), (0,), (5,), (3, 4), (2, 0, 3), (2, 3, 2)]
ROUNDING = dict(rtol=1e-6, atol=1e-6)  # one float32 rounding of rows of magnitude about 1


@pytest.fixture(params=sorted(CASES))
def case_name(request) -> str:
    return request.param


@pytest.fixture
def case(case_name) -> Case:
    return CASES[case_name]


@pytest.fixture
def table(case) -> EmbeddingTable:
    return case.make()


def _trainable(table) -> bool:
    return any(p.requires_grad for p in table.parameters())


def _perturb(table) -> None:
    """Give the trainable parameters trained-looking values, not the initializer's."""
    with te.no_grad():
        for p in table.parameters():
            p.data += np.random.default_rng(9).standard_normal(p.shape).astype(p.dtype)


# -- the case list ------------------------------------------------------------------------------
def test_every_registered_table_type_has_a_case():
    built = {type(case.make()) for case in CASES.values()}
    missing = sorted(name for name, cls in TABLE_TYPES.items() if cls not in built)
    assert not missing, f"registered table types without a case in CASES: {missing}"
    assert built <= set(TABLE_TYPES.values()), "a case builds a table type that is not registered"


def test_table_type_is_registered_under_its_class_name(table):
    assert TABLE_TYPES[type(table).__name__] is type(table)
    assert isinstance(table, EmbeddingTable)


# -- rows ------------------------------------------------------------------------------------------
def test_lookup_has_the_ids_shape_and_equals_to_dense_rows(table, case):
    dense = table.to_dense()
    assert dense.shape == (table.num_embeddings, table.embedding_dim) and dense.dtype == np.float32
    rng = np.random.default_rng(0)
    for shape in ID_SHAPES:
        ids = rng.integers(0, table.num_embeddings, size=shape)
        rows = table.lookup(ids)
        assert rows.shape == shape + (table.embedding_dim,) and rows.dtype == np.float32, shape
        if case.batch_rounding:
            np.testing.assert_allclose(rows, dense[ids], **ROUNDING, err_msg=f"ids of shape {shape}")
        else:
            np.testing.assert_array_equal(rows, dense[ids], err_msg=f"ids of shape {shape}")


def test_lookup_into_out_writes_the_lookup_rows_there_and_returns_it(table):
    rng = np.random.default_rng(3)
    for shape in ID_SHAPES:
        ids = rng.integers(0, table.num_embeddings, size=shape)
        out = np.full(shape + (table.embedding_dim,), np.nan, np.float32)
        assert table.lookup(ids, out=out) is out, shape
        np.testing.assert_array_equal(out, table.lookup(ids), err_msg=f"ids of shape {shape}")


def test_lookup_refuses_an_out_of_another_shape_dtype_or_layout(table):
    ids, dim = np.array([[1, 0, 1]]), table.embedding_dim
    for out in (np.zeros((3, dim), np.float32), np.zeros((1, 3, dim + 1), np.float32),
                np.zeros((1, 3, dim), np.float64), np.zeros((1, 3, 2 * dim), np.float32)[..., ::2], [[0.0]]):
        with pytest.raises(ValueError, match="out must be"):
            table.lookup(ids, out=out)


def test_calling_the_table_gives_a_tensor_of_the_lookup_rows(table, case):
    # Trainable tables compute in their parameters' dtype and track gradients; frozen ones give float32.
    dtypes = {p.dtype for p in table.parameters()} or {np.dtype(np.float32)}
    rng = np.random.default_rng(1)
    for shape in ID_SHAPES:
        ids = rng.integers(0, table.num_embeddings, size=shape)
        out = table(ids)
        assert isinstance(out, te.Tensor) and out.shape == shape + (table.embedding_dim,), shape
        assert {out.dtype} == dtypes, shape
        if ids.size:  # no ids: test_calling_the_table_on_no_ids_tracks_gradients_as_on_some
            assert out.requires_grad == _trainable(table), shape
        rows = table.lookup(ids)
        if case.forward_rounding:
            np.testing.assert_allclose(out.data, rows, **ROUNDING, err_msg=f"ids of shape {shape}")
        else:
            np.testing.assert_array_equal(out.data.astype(np.float32), rows, err_msg=f"ids of shape {shape}")


def test_calling_the_table_on_no_ids_tracks_gradients_as_on_some(table):
    for shape in [(0,), (2, 0, 3)]:
        assert table(np.zeros(shape, np.int64)).requires_grad == _trainable(table), shape


def test_as_float_table_of_a_table_is_its_dense_rows(table):
    np.testing.assert_array_equal(as_float_table(table), table.to_dense())


@pytest.mark.parametrize("method", ["lookup", "__call__", "bag"])
def test_ids_out_of_range_are_refused_naming_the_id_and_its_position(table, method):
    call, num = getattr(table, method), table.num_embeddings
    for ids, where in [([0, num], r"id {num} at position \(1,\)"), ([[3, -1]], r"id -1 at position \(0, 1\)"),
                       ([[1], [num]], r"id {num} at position \(1, 0\)")]:
        with pytest.raises(IndexError, match=where.format(num=num)):
            call(np.array(ids))


def test_bag_refuses_a_bad_id_after_its_last_bag_and_before_its_other_arguments(table):
    num = table.num_embeddings
    with pytest.raises(IndexError, match=rf"id {num} at position \(3,\)"):  # ids the bags leave out
        table.bag(np.array([0, 1, 2, num]), np.array([0, 2]), include_last_offset=True)
    with pytest.raises(IndexError, match=rf"id {num} at position \(1,\)"):  # not the missing offsets
        table.bag(np.array([0, num]))
    with pytest.raises(IndexError, match=r"id -2 at position \(0, 1\)"):  # not the weights' size
        table.bag(np.array([[0, -2]]), per_sample_weights=np.ones(3, np.float32))


@pytest.mark.parametrize("method", ["lookup", "__call__", "bag"])
def test_float_ids_are_refused(table, method):
    with pytest.raises(TypeError, match="must hold integer ids, got dtype float64"):
        getattr(table, method)(np.array([[0.0, 1.0]]))


# -- bags ------------------------------------------------------------------------------------------
def _bags(table):
    """20 ids in 6 bags: empty bags first, in the middle and last."""
    ids = np.random.default_rng(5).integers(0, table.num_embeddings, 20)
    return ids, np.array([0, 0, 4, 4, 11, 20])


def test_bag_sum_and_mean_equal_pooled_lookups_with_empty_bags(table):
    assert_bags_equal_pooled_lookups(table, *_bags(table))


def test_weighted_bag_sum_equals_pooled_weighted_lookups(table):
    ids, offsets = _bags(table)
    weights = np.random.default_rng(6).standard_normal(len(ids)).astype(np.float32)
    assert_weighted_bags_equal_pooled_lookups(table, ids, offsets, weights)


def test_bag_with_include_last_offset_pools_only_the_ids_up_to_the_last_offset(table):
    ids = np.random.default_rng(6).integers(0, table.num_embeddings, 12)
    offsets = np.array([0, 3, 3, 7])
    for mode in ("sum", "mean"):
        np.testing.assert_array_equal(table.bag(ids, np.append(offsets, 9), mode=mode, include_last_offset=True),
                                      table.bag(ids[:9], offsets, mode=mode))


def test_bag_refuses_other_modes_and_weights_with_mean(table):
    with pytest.raises(ValueError, match="mode must be 'sum' or 'mean', got 'max'"):
        table.bag([[0, 1]], mode="max")
    with pytest.raises(ValueError, match="per_sample_weights is only supported with mode='sum'"):
        table.bag([[0, 1]], mode="mean", per_sample_weights=[1.0, 2.0])


# -- attend ----------------------------------------------------------------------------------------
ATTEND_SHAPES = [(), (1,), (3,), (2, 3)]  # the leading shape of h: one vector, a batch of one, batches


def _scores(result) -> np.ndarray:
    return result.data if isinstance(result, te.Tensor) else result


def assert_scores_close(scores, h, dense):
    """1e-5 relative: each score's error against sum_d |h_d| |row_d| (a dot product may cancel to near 0)."""
    h64, dense64 = h.astype(np.float64), dense.astype(np.float64)
    error = np.abs(scores - h64 @ dense64.T)
    np.testing.assert_array_less(error, 1e-5 * (np.abs(h64) @ np.abs(dense64).T) + 1e-30)


def test_attend_equals_h_times_the_dense_table_for_one_vector_and_batches(table):
    dense, rng = table.to_dense(), np.random.default_rng(4)
    for lead in ATTEND_SHAPES:
        h = rng.standard_normal(lead + (table.embedding_dim,)).astype(np.float32)
        result = table.attend(h)
        scores = _scores(result)
        assert scores.shape == lead + (table.num_embeddings,), lead
        assert_scores_close(scores, h, dense)
        if _trainable(table):  # differentiable, in the parameters' dtype
            assert isinstance(result, te.Tensor) and result.requires_grad, lead
            assert scores.dtype == next(iter(table.parameters())).dtype
        else:
            assert isinstance(result, np.ndarray) and scores.dtype == np.float32, lead


def test_attend_takes_lists_float64_and_tensors(table):
    h = np.random.default_rng(5).standard_normal((2, table.embedding_dim))
    expected = _scores(table.attend(h.astype(np.float32)))
    for given in (h.astype(np.float32).tolist(), te.Tensor(h.astype(np.float32))):
        np.testing.assert_allclose(_scores(table.attend(given)), expected, rtol=1e-6, atol=1e-6)
    assert_scores_close(_scores(table.attend(h)), h, table.to_dense())


def test_attend_refuses_input_of_another_width(table):
    dim = table.embedding_dim
    for h in (np.ones(dim + 1, np.float32), np.ones((2, dim - 1), np.float32), np.float32(1.0)):
        with pytest.raises(ValueError, match=rf"attend needs \(\.\.\., {dim}\) input, got shape"):
            table.attend(h)


def test_attend_of_a_trainable_table_has_the_gradients_of_h_times_its_rows(table):
    if not _trainable(table):
        pytest.skip("a frozen table's attend is a plain array")
    _perturb(table)
    params = list(table.parameters())
    dtype = params[0].dtype
    rng = np.random.default_rng(6)
    h = te.Tensor(rng.standard_normal((3, table.embedding_dim)).astype(dtype), requires_grad=True)
    upstream = rng.standard_normal((3, table.num_embeddings)).astype(dtype)

    def gradients(scores):
        for p in params:
            p.grad = None
        h.grad = None
        (scores * te.Tensor(upstream)).sum().backward()
        dense_grads = [p.grad.to_dense() if hasattr(p.grad, "to_dense") else p.grad for p in params]
        return [np.zeros(p.shape) if g is None else g for p, g in zip(params, dense_grads, strict=True)] + [h.grad]

    ours = gradients(table.attend(h))
    reference = gradients(h @ table(np.arange(table.num_embeddings)).T)  # through the forward's rows
    scale = 1e-5 if dtype == np.float32 else 1e-10
    for name, a, b in zip([n for n, _ in table.named_parameters()] + ["h"], ours, reference, strict=True):
        np.testing.assert_allclose(a, b, rtol=scale, atol=scale * np.abs(b).max(), err_msg=name)
    if dtype == np.float64:  # finite differences need float64
        te.gradcheck(lambda *args: table.attend(h), params)


class _RowsOfIds(EmbeddingTable):
    """A frozen table of the protocol's defaults only: row i is (i, 2i, 3i); it records each _rows call."""

    def __init__(self, num):
        self.num_embeddings, self.embedding_dim, self.calls = num, 3, []

    def _rows(self, ids):
        self.calls.append(ids.size)
        return ids[..., None].astype(np.float32) * np.float32([1, 2, 3])


def test_default_attend_takes_a_chunk_of_rows_at_a_time_never_the_dense_table(monkeypatch):
    monkeypatch.setattr(rows, "_ATTEND_CHUNK_BYTES", 8 * 3 * 4)  # 8 rows of 3 float32
    table = _RowsOfIds(20)
    h = np.array([[1.0, 0.0, 0.0], [0.5, 0.25, -1.0]], np.float32)
    np.testing.assert_array_equal(table.attend(h), h @ table.to_dense().T)
    assert table.calls[:3] == [8, 8, 4] and table.calls[3] == 20  # then to_dense, for the reference
    np.testing.assert_array_equal(table.attend(h[0]), table.attend(h)[0])


def test_default_lookup_into_out_copies_the_rows():
    table, out = _RowsOfIds(5), np.empty((2, 3), np.float32)
    assert table.lookup([4, 1], out=out) is out
    np.testing.assert_array_equal(out, [[4, 8, 12], [1, 2, 3]])


def test_attend_of_no_vectors_is_empty(table):
    scores = _scores(table.attend(np.zeros((0, table.embedding_dim), np.float32)))
    assert scores.shape == (0, table.num_embeddings)


# -- sizes -----------------------------------------------------------------------------------------
def test_nbytes_is_the_stored_bytes_and_compression_ratio_is_dense_over_stored(table):
    assert table.nbytes == sum(a.nbytes for a in table.state_arrays().values())
    assert table.dense_nbytes == table.num_embeddings * table.embedding_dim * 4
    assert table.compression_ratio == table.num_embeddings * table.embedding_dim * 4 / table.nbytes


# -- save / load -----------------------------------------------------------------------------------
def test_save_then_load_gives_identical_arrays_config_and_rows(table, tmp_path):
    _perturb(table)
    path = tmp_path / "table.safetensors"
    table.save(path)
    for loaded in (type(table).load(path), load_table(path)):
        assert type(loaded) is type(table)
        assert loaded.config() == table.config() and repr(loaded) == repr(table)
        arrays = loaded.state_arrays()
        assert list(arrays) == list(table.state_arrays())
        for name, array in table.state_arrays().items():
            assert arrays[name].dtype == array.dtype, name
            np.testing.assert_array_equal(arrays[name], array, err_msg=name)
        np.testing.assert_array_equal(loaded.to_dense(), table.to_dense())
        assert loaded.nbytes == table.nbytes and loaded.num_parameters() == table.num_parameters()


def test_load_as_another_table_type_is_refused_naming_both(table, tmp_path):
    path = tmp_path / "table.safetensors"
    table.save(path)
    kind = type(table).__name__
    for name, other in TABLE_TYPES.items():
        if other is not type(table):
            with pytest.raises(ValueError, match=f"holds a {kind}, not a {name}"):
                other.load(path)


def test_a_file_without_table_metadata_is_refused_as_not_a_table(table, tmp_path):
    path = tmp_path / "plain.safetensors"
    safetensors.save(table.state_arrays(), path)
    for load in (load_table, type(table).load):
        with pytest.raises(ValueError, match="is not a tinyembed table"):
            load(path)


@pytest.fixture
def good(table, tmp_path):
    """The path ``table`` was saved to."""
    path = tmp_path / "good.safetensors"
    table.save(path)
    return path


def _assert_refused(table, good, arrays, match):
    """A file of ``arrays`` with the good file's metadata is refused by load_table and the type's load."""
    bad = good.with_name("bad.safetensors")
    rewrite(good, bad, arrays)
    for load in (load_table, type(table).load):
        with pytest.raises(ValueError, match=match):
            load(bad)


def _describe(array) -> str:
    return f"{array.dtype}{list(array.shape)}"


def test_load_refuses_a_file_missing_any_tensor(table, good):
    for name in table.state_arrays():
        rest = {k: v for k, v in table.state_arrays().items() if k != name}
        _assert_refused(table, good, rest, re.escape(f"needs a tensor {name!r}; the file has {sorted(rest)}"))


def _other_shapes(array):
    """The array with one row fewer and one more, and (2-D and up) one column fewer and one more."""
    yield array[:-1]
    yield np.concatenate([array, array[:1]])
    if array.ndim >= 2:
        yield array[..., :-1]
        yield np.concatenate([array, array[..., :1]], axis=-1)


def test_load_refuses_a_tensor_of_another_shape_naming_both_shapes(table, good):
    for name, array in table.state_arrays().items():
        for wrong in _other_shapes(array):
            _assert_refused(table, good, {**table.state_arrays(), name: wrong},
                            re.escape(f"tensor {name!r} is {_describe(wrong)}, expected {_describe(array)}"))


def _other_dtypes(dtype):
    """The dtype's width with another kind (float16 bits as int16, say), and its kind at every other width."""
    other_kind = {"f": "i", "i": "u", "u": "i"}[dtype.kind]
    widths = (2, 4, 8) if dtype.kind == "f" else (1, 2, 4, 8)
    return [np.dtype(f"{other_kind}{dtype.itemsize}")] + [np.dtype(f"{dtype.kind}{w}") for w in widths
                                                           if w != dtype.itemsize]


def test_load_refuses_a_tensor_of_another_dtype_naming_both(table, good):
    for name, array in table.state_arrays().items():
        for dtype in _other_dtypes(array.dtype):
            wrong = array.astype(dtype)
            _assert_refused(table, good, {**table.state_arrays(), name: wrong},
                            re.escape(f"tensor {name!r} is {_describe(wrong)}, expected {_describe(array)}"))


def test_load_refuses_a_tensor_the_table_does_not_store(table, good):
    arrays = {**table.state_arrays(), "extra": np.zeros(2, np.float32)}
    _assert_refused(table, good, arrays, re.escape(
        f"{type(table).__name__} stores {sorted(table.state_arrays())}, the file has {sorted(arrays)}"))


def test_load_refuses_a_truncated_file(table, good):
    data, bad = good.read_bytes(), good.with_name("cut.safetensors")
    for cut in (1, 3, 5, 9):
        bad.write_bytes(data[:-cut])
        for load in (load_table, type(table).load):
            with pytest.raises(ValueError, match="truncated"):
                load(bad)


# -- as a module -----------------------------------------------------------------------------------
def test_state_dict_names_the_stored_arrays_and_loads_into_another_table(table, case):
    # The file (state_arrays) and the module (state_dict) name the same live arrays alike.
    assert set(table.state_dict()) == set(table.state_arrays())
    assert all(table.state_dict()[k] is v for k, v in table.state_arrays().items())
    _perturb(table)
    other = case.make()
    for array in other.state_arrays().values():
        if array.dtype.kind in "fu":  # rows, codes and bits; index maps and hash parameters stay valid
            array[...] = 0
    assert not np.array_equal(other.to_dense(), table.to_dense())
    other.load_state_dict(table.state_dict())
    np.testing.assert_array_equal(other.to_dense(), table.to_dense())


def test_embedding_layer_serves_the_tables_rows_and_trains_its_parameters(table, case):
    num, dim = table.num_embeddings, table.embedding_dim
    layer = EmbeddingLayer(num, dim, positional="none", token_table=table, scale=2.0)
    ids = np.stack([np.arange(num), np.random.default_rng(2).permutation(num)])  # every id, twice
    out = layer(ids)
    if case.forward_rounding:  # both compute the same batch: a relative difference only
        np.testing.assert_allclose(out.data, 2.0 * table.lookup(ids), rtol=1e-6, atol=0)
    else:
        np.testing.assert_array_equal(out.data.astype(np.float32), 2.0 * table.lookup(ids))
    assert {id(p) for p in layer.parameters()} == {id(p) for p in table.parameters()}
    assert len(list(layer.parameters())) == len(list(table.parameters()))  # none for a frozen table
    if not _trainable(table):
        return
    out.sum().backward()
    for name, p in table.named_parameters():
        assert p.grad is not None and np.abs(p.grad).sum() > 0, name
    if all(p.dtype == np.float64 for p in table.parameters()):  # finite differences need float64
        te.gradcheck(lambda *p: layer(ids), list(layer.parameters()))


def test_embedding_layer_refuses_a_table_of_another_size(table):
    num, dim = table.num_embeddings, table.embedding_dim
    for vocab, width in ((num + 3, dim), (num, dim + 1)):
        with pytest.raises(ValueError, match=f"token_table is {num} x {dim}, the layer is {vocab} x {width}"):
            EmbeddingLayer(vocab, width, positional="none", token_table=table)
