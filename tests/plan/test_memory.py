"""Tests for tinyembed.plan.memory against independent arithmetic and simulation."""

import itertools
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyembed.plan.memory import (
    embedding_memory,
    expected_unique_rows,
    expected_unique_rows_uniform,
    format_bytes,
    format_params,
    format_table,
)
from tinyembed.plan.models import MODELS, ModelConfig
from tinyembed.plan.zipf import zipf_expected_distinct

# ---------------------------------------------------------------------------
# Parameter counts
# ---------------------------------------------------------------------------


def test_gpt2_token_and_position_params_and_share():
    report = embedding_memory(MODELS["gpt2"])
    assert report.input_embedding_params == 50257 * 768 == 38_597_376
    assert report.position_params == 1024 * 768
    assert report.embedding_params == 50257 * 768 + 1024 * 768
    assert report.embedding_share == pytest.approx((38_597_376 + 786_432) / 124_439_808)


def test_tied_output_head_is_counted_once():
    gpt2 = embedding_memory(MODELS["gpt2"])
    assert gpt2.output_embedding_params == 0
    llama = embedding_memory(MODELS["llama2-7b"])
    assert llama.output_embedding_params == 32000 * 4096
    assert llama.embedding_params == 2 * 32000 * 4096  # RoPE has no table
    assert llama.embedding_share == pytest.approx(262_144_000 / 6_738_415_616)


def test_position_params_per_kind():
    # BERT: 512 learned positions + 2 token-type rows, all 768 wide.
    assert MODELS["bert-base"].position_params == 512 * 768 + 2 * 768
    # T5: 32 buckets x 12 heads, in the encoder and in the decoder.
    assert MODELS["t5-base"].position_params == 2 * 32 * 12
    for name in ("llama2-7b", "llama3-8b", "mistral-7b", "gemma-7b"):
        assert MODELS[name].position_params == 0, name


def _gpt2_total(vocab, ctx, dim, layers):
    # wte + wpe + per block (attn qkv+proj, mlp fc+proj with biases, 2 LayerNorms) + final LN
    per_block = (3 * dim * dim + 3 * dim) + (dim * dim + dim) + (8 * dim * dim + 5 * dim) + 4 * dim
    return vocab * dim + ctx * dim + layers * per_block + 2 * dim


def _bert_total(vocab, ctx, dim, layers, ffn):
    embeddings = vocab * dim + ctx * dim + 2 * dim + 2 * dim  # word, position, type, LayerNorm
    per_layer = 4 * (dim * dim + dim) + 2 * dim + (dim * ffn + ffn) + (ffn * dim + dim) + 2 * dim
    pooler = dim * dim + dim
    return embeddings + layers * per_layer + pooler


def _t5_total(vocab, dim, layers, ffn, heads, buckets):
    # No biases; RMSNorm weight per sublayer; relative bias in each stack's first layer.
    encoder = layers * (4 * dim * dim + dim + 2 * dim * ffn + dim) + buckets * heads + dim
    decoder = layers * (8 * dim * dim + 2 * dim + 2 * dim * ffn + dim) + buckets * heads + dim
    return vocab * dim + encoder + decoder


def _decoder_only_total(vocab, dim, layers, ffn, q_dim, kv_dim, tied):
    # q, k, v, o projections; gated MLP (3 matrices); 2 RMSNorms per layer; final norm.
    per_layer = dim * q_dim + 2 * dim * kv_dim + q_dim * dim + 3 * dim * ffn + 2 * dim
    heads = 1 if tied else 2
    return heads * vocab * dim + layers * per_layer + dim


@pytest.mark.parametrize(
    "name, rebuilt",
    [
        ("gpt2", _gpt2_total(50257, 1024, 768, 12)),
        ("gpt2-xl", _gpt2_total(50257, 1024, 1600, 48)),
        ("bert-base", _bert_total(30522, 512, 768, 12, 3072)),
        ("t5-base", _t5_total(32128, 768, 12, 3072, 12, 32)),
        ("llama2-7b", _decoder_only_total(32000, 4096, 32, 11008, 4096, 4096, tied=False)),
        ("llama3-8b", _decoder_only_total(128256, 4096, 32, 14336, 4096, 1024, tied=False)),
        ("mistral-7b", _decoder_only_total(32000, 4096, 32, 14336, 4096, 1024, tied=False)),
        ("gemma-7b", _decoder_only_total(256000, 3072, 28, 24576, 16 * 256, 16 * 256, tied=True)),
    ],
)
def test_published_total_matches_architecture_count(name, rebuilt):
    # Catches a typo in a typed-in total, and a tied flag that disagrees with the count.
    assert MODELS[name].total_params == rebuilt


def test_every_registered_model_is_consistent():
    for key, config in MODELS.items():
        assert config.name == key
        assert config.source, f"{key} must name its source"
        report = embedding_memory(config)
        assert 0 < report.embedding_share < 1


# ---------------------------------------------------------------------------
# Storage bytes
# ---------------------------------------------------------------------------


def test_token_table_bytes_per_format():
    report = embedding_memory(MODELS["gpt2"])
    v, d = 50257, 768
    assert report.token_table_bytes["float32"] == v * d * 4
    assert report.token_table_bytes["bfloat16"] == report.token_table_bytes["float16"] == v * d * 2
    assert report.token_table_bytes["float8_e4m3fn"] == v * d
    assert report.token_table_bytes["int8"] == v * (d + 4 + 4)  # float32 scale + bias per row
    assert report.token_table_bytes["int4"] == v * (d // 2 + 2 + 2)  # float16 scale + bias per row


@pytest.mark.parametrize("dim, packed_bytes", [(1, 1), (7, 4), (8, 4), (9, 5)])
def test_int4_odd_width_rounds_up_to_whole_bytes(dim, packed_bytes):
    config = ModelConfig("odd", 10, dim, None, True, "none", None)
    assert embedding_memory(config).token_table_bytes["int4"] == 10 * (packed_bytes + 4)


# ---------------------------------------------------------------------------
# Optimizer memory
# ---------------------------------------------------------------------------


def test_dense_and_sparse_optimizer_bytes():
    v, d = 32000, 4096
    report = embedding_memory(MODELS["llama2-7b"], batch_tokens=4096, distribution="uniform")
    assert report.dense_grad_bytes == v * d * 4
    assert report.dense_adam_state_bytes == 2 * v * d * 4
    assert report.dense_adam_bytes == 3 * v * d * 4
    assert report.sparse_adam_state_bytes == 2 * v * d * 4  # torch SparseAdam keeps dense moments
    assert report.rowwise_adagrad_state_bytes == v * 4
    assert report.step_dense_adam_touched_bytes == 4 * v * d * 4
    u = v * (1 - (1 - 1 / v) ** 4096)
    assert report.expected_unique_rows == pytest.approx(u, rel=1e-9)
    assert report.sparse_grad_bytes == pytest.approx(u * (d * 4 + 8), abs=1)
    assert report.step_sparse_adam_touched_bytes == pytest.approx(u * (4 * d * 4 + 8), abs=1)
    # the point of sparse updates: a step touches far fewer bytes
    assert report.step_sparse_adam_touched_bytes < report.step_dense_adam_touched_bytes / 5


def test_sparse_grad_bytes_for_a_tiny_exact_case():
    # V=2, n=2 uniform: unique rows is 1 w.p. 1/2, 2 w.p. 1/2 -> 1.5 expected.
    config = ModelConfig("tiny", 2, 3, None, True, "none", None)
    report = embedding_memory(config, batch_tokens=2, distribution="uniform")
    assert report.expected_unique_rows == pytest.approx(1.5)
    assert report.sparse_grad_bytes == 30  # 1.5 rows * (3 fp32 values + int64 index)


# ---------------------------------------------------------------------------
# Expected unique rows
# ---------------------------------------------------------------------------


def _exact_unique_rows(probabilities, n_tokens):
    """E[distinct rows] by enumerating every sequence of n_tokens draws."""
    total = 0.0
    for sequence in itertools.product(range(len(probabilities)), repeat=n_tokens):
        total += math.prod(probabilities[i] for i in sequence) * len(set(sequence))
    return total


@pytest.mark.parametrize("vocab, n_tokens", [(1, 3), (2, 2), (3, 4), (5, 3)])
def test_uniform_unique_rows_match_enumeration(vocab, n_tokens):
    exact = _exact_unique_rows([1 / vocab] * vocab, n_tokens)
    assert expected_unique_rows_uniform(vocab, n_tokens) == pytest.approx(exact, rel=1e-12)


@pytest.mark.parametrize("vocab, n_tokens, alpha", [(4, 3, 1.0), (5, 4, 1.5), (3, 5, 0.7)])
def test_zipf_unique_rows_match_enumeration(vocab, n_tokens, alpha):
    weights = [1 / (i**alpha) for i in range(1, vocab + 1)]
    probabilities = [w / sum(weights) for w in weights]
    exact = _exact_unique_rows(probabilities, n_tokens)
    assert zipf_expected_distinct(vocab, alpha, n_tokens) == pytest.approx(exact, rel=1e-12)


def test_uniform_unique_rows_match_simulation():
    rng = np.random.default_rng(0)
    vocab, n_tokens, trials = 1000, 1500, 400
    simulated = np.mean(
        [np.unique(rng.integers(0, vocab, n_tokens)).size for _ in range(trials)]
    )
    assert expected_unique_rows_uniform(vocab, n_tokens) == pytest.approx(simulated, rel=0.02)


@pytest.mark.parametrize("alpha", [0.8, 1.0, 1.3])
def test_zipf_unique_rows_match_simulation(alpha):
    rng = np.random.default_rng(1)
    vocab, n_tokens, trials = 20000, 16384, 60
    p = 1.0 / np.arange(1, vocab + 1) ** alpha
    p /= p.sum()
    simulated = np.mean(
        [np.unique(rng.choice(vocab, size=n_tokens, p=p)).size for _ in range(trials)]
    )
    assert zipf_expected_distinct(vocab, alpha, n_tokens) == pytest.approx(simulated, rel=0.02)


def test_zipf_chunking_does_not_change_the_result():
    whole = zipf_expected_distinct(50000, 1.1, 10000)
    chunked = zipf_expected_distinct(50000, 1.1, 10000, chunk_rows=777)
    assert chunked == pytest.approx(whole, rel=1e-12)


def test_uniform_unique_rows_stay_accurate_for_huge_vocabularies():
    # Two draws from 1e12 rows collide w.p. 1e-12: expected 2 - 1e-12. The naive
    # V*(1-(1-1/V)**n) is off by ~1e-4 here because 1 - 1/V rounds.
    assert expected_unique_rows_uniform(10**12, 2) == pytest.approx(2 - 1e-12, abs=1e-9)
    assert expected_unique_rows_uniform(10**12, 1) == pytest.approx(1.0, abs=1e-12)


def test_zipf_alpha_zero_is_refused_everywhere_uniform_is_its_own_distribution():
    # One Zipf, one rule: alpha > 0 (tinyembed.plan.zipf); alpha 0 is asked for as "uniform".
    with pytest.raises(ValueError, match="zipf alpha must be a finite number > 0, got 0.0"):
        expected_unique_rows(5000, 3000, "zipf", 0.0)
    with pytest.raises(ValueError, match="zipf alpha must be a finite number > 0"):
        embedding_memory(MODELS["gpt2"], zipf_alpha=0.0)


def test_skewed_tokens_touch_fewer_rows_than_uniform():
    uniform = expected_unique_rows(32000, 16384, "uniform")
    mild = expected_unique_rows(32000, 16384, "zipf", 0.8)
    steep = expected_unique_rows(32000, 16384, "zipf", 1.2)
    assert steep < mild < uniform


@settings(max_examples=60, deadline=None)
@given(
    vocab=st.integers(1, 5000),
    n_tokens=st.integers(0, 20000),
    alpha=st.floats(0.01, 3.0),
    distribution=st.sampled_from(["uniform", "zipf"]),
)
def test_unique_rows_never_exceed_vocab_or_batch(vocab, n_tokens, alpha, distribution):
    rows = expected_unique_rows(vocab, n_tokens, distribution, alpha)
    assert rows <= min(vocab, n_tokens) + 1e-9
    assert rows >= min(1, n_tokens) - 1e-9  # a non-empty batch touches at least one row
    assert rows <= expected_unique_rows(vocab, n_tokens + 1, distribution, alpha) + 1e-9


# ---------------------------------------------------------------------------
# Unknown totals, validation, output
# ---------------------------------------------------------------------------


def test_custom_config_without_total_has_unknown_share():
    config = ModelConfig("mine", 1000, 64, 128, False, "learned", None)
    report = embedding_memory(config)
    assert report.total_params is None
    assert report.embedding_share is None
    assert report.embedding_params == 2 * 1000 * 64 + 128 * 64
    assert "unknown" in format_table([report])


@pytest.mark.parametrize(
    "kwargs, bad",
    [
        (dict(vocab_size=-5), "got -5"),
        (dict(hidden_size=0), "got 0"),
        (dict(positional="sinusoid"), "'sinusoid'"),
        (dict(total_params=10), "total_params=10"),
    ],
)
def test_bad_config_is_rejected_naming_the_value(kwargs, bad):
    fields = dict(
        name="x", vocab_size=100, hidden_size=8, context_length=16, tied=True,
        positional="learned", total_params=None,
    )
    fields.update(kwargs)
    with pytest.raises(ValueError, match=bad):
        ModelConfig(**fields)


def test_learned_positions_need_a_context_length():
    with pytest.raises(ValueError, match="context_length"):
        ModelConfig("x", 100, 8, None, True, "learned", None)


def test_bad_memory_arguments_are_rejected():
    with pytest.raises(ValueError, match="poisson"):
        embedding_memory(MODELS["gpt2"], distribution="poisson")
    with pytest.raises(ValueError, match="-1"):
        embedding_memory(MODELS["gpt2"], batch_tokens=-1)
    with pytest.raises(ValueError, match="-0.5"):
        embedding_memory(MODELS["gpt2"], zipf_alpha=-0.5)


def test_report_dict_is_json_and_carries_the_assumptions():
    report = embedding_memory(MODELS["t5-base"], batch_tokens=1234, distribution="uniform")
    data = json.loads(json.dumps(report.to_dict()))
    assert data["name"] == "t5-base"
    assert data["batch_tokens"] == 1234
    assert data["distribution"] == "uniform"
    assert data["zipf_alpha"] is None
    assert data["input_embedding_params"] == 32128 * 768


@pytest.mark.parametrize(
    "count, text", [(124_439_808, "124.4M"), (175e9, "175.0B"), (768, "768"), (1536, "1.5K")]
)
def test_format_params_uses_decimal_units(count, text):
    assert format_params(count) == text


@pytest.mark.parametrize(
    "n_bytes, text",
    [(512, "512 B"), (1536, "1.5 KiB"), (50257 * 768 * 4, "147.2 MiB"), (3 << 30, "3.0 GiB")],
)
def test_format_bytes_uses_binary_units(n_bytes, text):
    assert format_bytes(n_bytes) == text


def test_table_has_one_row_per_model_and_states_assumptions():
    reports = [embedding_memory(c, batch_tokens=4096) for c in MODELS.values()]
    table = format_table(reports)
    for name in MODELS:
        # one row per model in each of the three sections
        assert sum(line.split()[0] == name for line in table.splitlines() if line.strip()) == 3
    assert "4,096 tokens" in table and "zipf(alpha=1)" in table
    assert "124.4M" in table  # GPT-2's total, in human units
    assert "31.6%" in table  # GPT-2's embedding share
