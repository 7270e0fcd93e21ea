"""EmbeddingLayer: token table, scale, positions and dropout composed correctly."""

import math

import numpy as np
import pytest

import tinyembed as te
from tinyembed.nn import Embedding
from tinyembed.positional import EmbeddingLayer, sinusoidal_table

IDS = np.array([[3, 1, 4, 1], [5, 9, 2, 0]])


@pytest.mark.parametrize("positional", ["sinusoidal", "learned", "none"])
@pytest.mark.parametrize("scale", [False, True, 0.5])
def test_output_is_scaled_tokens_plus_positions(positional, scale):
    layer = EmbeddingLayer(10, 6, max_len=16, positional=positional, scale=scale, seed=0)
    out = layer(IDS, start=2).data
    factor = {False: 1.0, True: math.sqrt(6), 0.5: 0.5}[scale]
    expected = layer.tokens.weight.data[IDS] * factor
    if positional == "sinusoidal":
        expected = expected + sinusoidal_table(np.arange(2, 6), 6)
    elif positional == "learned":
        expected = expected + layer.positions.weight.data[2:6]
    np.testing.assert_allclose(out, expected, atol=1e-6)


@pytest.mark.parametrize("positional", ["sinusoidal", "learned"])
def test_whole_layer_gradient_matches_finite_differences(positional):
    tokens = Embedding.from_pretrained(np.random.default_rng(0).standard_normal((10, 4)), freeze=False)
    layer = EmbeddingLayer(10, 4, max_len=8, positional=positional, scale=True, token_table=tokens, seed=0)
    if positional == "learned":
        layer.positions.weight = te.nn.Parameter(np.random.default_rng(1).standard_normal((8, 4)))
    params = list(layer.parameters())
    te.gradcheck(lambda *ps: layer(IDS), params)


def test_dropout_only_in_training_and_seeded():
    a = EmbeddingLayer(10, 8, dropout=0.5, seed=3)
    b = EmbeddingLayer(10, 8, dropout=0.5, seed=3)
    np.testing.assert_array_equal(a(IDS).data, b(IDS).data)
    dropped = a(IDS).data
    assert 0.2 < np.mean(dropped == 0) < 0.8
    a.eval()
    kept = a(IDS).data
    assert not np.any(kept == 0)


def test_padding_mask_marks_padding_ids():
    layer = EmbeddingLayer(10, 4, padding_idx=0)
    np.testing.assert_array_equal(layer.padding_mask(IDS), IDS == 0)
    assert not EmbeddingLayer(10, 4).padding_mask(IDS).any()
    assert EmbeddingLayer(10, 4, padding_idx=-1).padding_idx == 9


def test_any_table_with_the_lookup_protocol_serves_as_token_table():
    class PlainRows:
        """A table that returns plain arrays, as a compressed table may."""
        num_embeddings, embedding_dim = 10, 4

        def __call__(self, ids):
            return np.full(np.shape(ids) + (4,), 2.0, np.float32)

    layer = EmbeddingLayer(10, 4, positional="none", token_table=PlainRows())
    np.testing.assert_array_equal(layer(IDS).data, np.full((2, 4, 4), 2.0))


def test_learned_positions_cannot_exceed_max_len_but_sinusoidal_can():
    ids = np.zeros((1, 20), dtype=np.int64)
    with pytest.raises(ValueError, match="max_len=16"):
        EmbeddingLayer(10, 4, max_len=16, positional="learned")(ids)
    assert EmbeddingLayer(10, 4, max_len=16, positional="sinusoidal")(ids).shape == (1, 20, 4)


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(positional="rotary"), ValueError, "rotary"),
    (dict(scale="big"), ValueError, "big"),
    (dict(dropout=1.0), ValueError, "dropout"),
    (dict(token_table=Embedding(5, 4)), ValueError, "5 x 4"),
    (dict(token_table=42), TypeError, "int"),
])
def test_bad_configuration_raises(kwargs, error, message):
    with pytest.raises(error, match=message):
        EmbeddingLayer(10, 4, **kwargs)


def test_a_too_long_sequence_fails_before_max_norm_touches_the_table():
    tokens = Embedding(10, 4, max_norm=0.5, seed=0)
    layer = EmbeddingLayer(10, 4, max_len=4, positional="learned", token_table=tokens)
    before = tokens.weight.data.copy()
    with pytest.raises(ValueError, match="max_len=4"):
        layer(np.arange(5)[None])
    np.testing.assert_array_equal(tokens.weight.data, before)


def test_frozen_compressed_tables_are_saved_with_the_layer():
    from tinyembed.tables import QuantizedEmbedding

    table = QuantizedEmbedding.from_float(np.random.default_rng(0).standard_normal((10, 4)), bits=8)
    layer = EmbeddingLayer(10, 4, positional="none", token_table=table)
    state = layer.state_dict()
    assert list(state) == ["tokens.fused"] and state["tokens.fused"] is table.fused
    assert layer.num_parameters(trainable_only=True) == 0 and "(tokens): QuantizedEmbedding" in repr(layer)


def test_numpy_scalars_are_accepted_and_bad_kinds_named():
    assert EmbeddingLayer(10, 4, scale=np.float32(2.0)).scale == 2.0
    with pytest.raises(ValueError, match="dropout"):
        EmbeddingLayer(10, 4, dropout="0.1")
    with pytest.raises(TypeError, match="int"):
        EmbeddingLayer(10, 4, positional=42)


# -- the fused token + position path -------------------------------------------------------------
def _unfused(layer, ids, start=0):
    """The same layer's ops one by one: lookup, scale, positions."""
    x = layer.tokens(ids)
    if layer.scale != 1.0:
        x = x * layer.scale
    return layer.positions(x, start=start)


@pytest.mark.parametrize("positional", ["sinusoidal", "learned"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("scale", [False, True])
@pytest.mark.parametrize("start", [0, 3])
def test_fused_tokens_plus_positions_are_bit_identical_to_separate_ops(monkeypatch, positional, dtype,
                                                                        scale, start):
    from tinyembed import kernels
    # Chunks of 5 rows and threads even for tiny inputs: chunks start mid-sequence and span several.
    monkeypatch.setattr(kernels.threads, "CHUNK_BYTES", 5 * 6 * np.dtype(dtype).itemsize)
    monkeypatch.setattr(kernels.threads, "PARALLEL_MIN_BYTES", 1)
    monkeypatch.setattr(kernels.threads, "LAUNCH_MIN_BYTES", 1)
    layer = EmbeddingLayer(40, 6, max_len=16, positional=positional, scale=scale, seed=1)
    layer.tokens.weight.data = layer.tokens.weight.data.astype(dtype)
    if positional == "learned":
        layer.positions.weight.data = layer.positions.weight.data.astype(dtype)
    ids = np.random.default_rng(2).integers(0, 40, (3, 7))
    fused = layer(ids, start=start)
    assert fused._op == "embedding_add"
    np.testing.assert_array_equal(fused.data, _unfused(layer, ids, start).data)


@pytest.mark.parametrize("positional", ["sinusoidal", "learned"])
def test_fused_path_gradients_equal_separate_ops(positional):
    layer = EmbeddingLayer(30, 5, max_len=8, positional=positional, scale=True, padding_idx=0, seed=3)
    ids = np.array([[1, 0, 4, 4], [2, 2, 0, 9]])
    g = np.random.default_rng(4).standard_normal((2, 4, 5)).astype(np.float32)
    grads = []
    for out in (layer(ids), _unfused(layer, ids)):
        layer.zero_grad()
        out.backward(g)
        grads.append([np.array(p.grad) for p in layer.parameters()])
    for fused, separate in zip(*grads, strict=True):
        np.testing.assert_allclose(fused, separate, rtol=1e-6, atol=1e-6)


def test_embedding_add_gradients_match_finite_differences():
    from tinyembed.gradcheck import gradcheck
    from tinyembed.nn.functional import embedding_add
    rng = np.random.default_rng(5)
    weight = te.Tensor(rng.standard_normal((9, 3)), requires_grad=True)
    addend = te.Tensor(rng.standard_normal((4, 3)), requires_grad=True)
    ids = np.array([[1, 1, 8, 0], [3, 1, 2, 8]])
    assert gradcheck(lambda w, a: embedding_add(ids, w, a, scale=1.7), [weight, addend])


def test_embedding_add_refuses_a_mismatched_addend_and_changes_nothing():
    from tinyembed.nn.functional import embedding_add
    weight = te.Tensor(np.ones((5, 3), np.float32) * 10)
    with pytest.raises(ValueError, match=r"addend must be float32 of shape \(4, 3\)"):
        embedding_add(np.zeros((2, 4), np.int64), weight, np.zeros((3, 3), np.float32), max_norm=1.0)
    assert (weight.data == 10).all()  # the renorm did not run


@pytest.mark.parametrize("path", ["numpy", "serial", "parallel"])
@pytest.mark.parametrize("records", [False, True])
@pytest.mark.parametrize("dim", [16, 20])  # whole vectors only, and a masked last vector
def test_a_bad_id_in_the_layer_is_named_at_its_place(path, records, dim, monkeypatch):
    # The fused loop checks each id as it adds its row (no pass before it): a bad one is still named.
    from tinyembed.kernels import jit
    from tinyembed.kernels import threads as pool_threads
    monkeypatch.setattr(pool_threads, "LAUNCH_MIN_BYTES", 1 << 62 if path == "serial" else 1)
    monkeypatch.setattr(jit, "_enabled", path != "numpy")
    layer = EmbeddingLayer(50, dim, max_len=8, seed=0)
    layer.tokens.weight.requires_grad = records
    ids = np.random.default_rng(dim).integers(0, 50, (300, 8))
    for bad, where, dtype in ((50, (123, 5), np.int64), (-3, (299, 7), np.int64), (2**64 - 1, (7, 0), np.uint64),
                              (50, (0, 0), np.int32)):
        wrong = ids.astype(dtype)
        wrong[where] = bad
        with pytest.raises(IndexError, match=rf"id {bad} at position \({where[0]}, {where[1]}\)"):
            layer(wrong)
    expected = layer.tokens.weight.data[ids] + sinusoidal_table(np.arange(8), dim)
    np.testing.assert_allclose(layer(ids.astype(np.int32)).data, expected, atol=1e-6)


def test_the_layer_keeps_its_own_ids_for_the_backward():
    # The fused loop reads the caller's ids in place; a recorded backward keeps a copy of them.
    layer = EmbeddingLayer(10, 4, max_len=8, seed=0)
    ids = np.array([[1, 2, 3]])
    out = layer(ids)
    ids[0, 0] = 9  # the caller reuses its array before the backward
    out.backward(np.ones((1, 3, 4), np.float32))
    grad = np.asarray(layer.tokens.weight.grad)
    assert (grad[[1, 2, 3]] == 1).all() and (grad[9] == 0).all()


def test_layers_that_cannot_fuse_still_add_positions():
    # A float64 table with float32 sinusoidal rows asked for float64: fused; learned float32
    # positions with a float64 table: separate ops (they promote), still correct.
    layer = EmbeddingLayer(20, 4, max_len=8, positional="learned", seed=0)
    layer.tokens.weight.data = layer.tokens.weight.data.astype(np.float64)
    ids = np.array([[1, 2, 3]])
    out = layer(ids)
    assert out._op != "embedding_add"
    expected = layer.tokens.weight.data[ids] + layer.positions.weight.data[:3]
    np.testing.assert_allclose(out.data, expected)
