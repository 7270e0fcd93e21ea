"""The window language model: it learns (validation loss falls), its checkpoint reloads exactly."""

import numpy as np
import pytest

from tinyembed.gradcheck import gradcheck
from tinyembed.nn import functional as F
from tinyembed.tensor import Tensor
from tinyembed.text.tokenizers import BPETokenizer, ByteTokenizer
from tinyembed.train.lm import (
    Examples,
    LMConfig,
    WindowLM,
    best_epoch,
    evaluate_loss,
    load_checkpoint,
    save_checkpoint,
    train_lm,
    windows,
)

# A corpus with structure a window model can learn: repeated phrases with variations.
_LINES = [f"the {a} sat on the {b} and the {b} was {c}."
          for a in ("cat", "dog", "bird", "fox") for b in ("mat", "log", "rug") for c in ("red", "warm", "old")]


def test_windows_pair_each_token_with_the_tokens_before_it():
    inputs, targets = windows(np.array([5, 6, 7]), context=2, pad_id=0)
    np.testing.assert_array_equal(inputs, [[0, 0], [0, 5], [5, 6]])
    np.testing.assert_array_equal(targets, [5, 6, 7])


def test_output_projection_is_the_token_table():
    model = WindowLM(LMConfig(vocab_size=50, context=3, dim=8, hidden=16))
    table = model.embed.tokens.weight
    assert sum(p is table for p in model.parameters()) == 1  # one matrix, counted once
    h = Tensor(np.ones((1, 8), np.float32))
    np.testing.assert_allclose(model.embed.tokens.attend(h).data, h.data @ table.data.T)


def test_logits_are_attends_product_of_the_features_with_the_token_table_to_the_bit():
    model = WindowLM(LMConfig(vocab_size=50, context=3, dim=8, hidden=16))
    ids = np.array([[1, 2, 3], [4, 0, 49]])
    x = model.embed(ids)
    h = model.norm(model.project(F.gelu(model.hidden(x.reshape(2, -1)), approximate="tanh"))) * (1 / np.sqrt(8))
    np.testing.assert_array_equal(model(ids).data, model.embed.tokens.attend(h).data)


def test_logits_start_near_unit_scale_so_the_first_loss_is_near_log_v():
    model = WindowLM(LMConfig(vocab_size=1000, context=4, dim=256, hidden=64))
    ids = np.random.default_rng(0).integers(0, 1000, (64, 4))
    logits = model(ids).data
    assert 0.5 < logits.std() < 2  # unscaled, the rows' N(0, 1) entries would give sqrt(256) = 16
    assert F.cross_entropy(model(ids), np.zeros(64, np.int64)).item() < 2 * np.log(1000)


def test_a_config_saved_before_logits_were_scaled_loads_as_unscaled():
    old = {k: v for k, v in LMConfig(vocab_size=10).__dict__.items() if k not in ("scale_logits", "tied")}
    assert LMConfig.from_dict(old).scale_logits is False and LMConfig.from_dict(old).tied is True
    assert LMConfig.from_dict({**old, "scale_logits": True}).scale_logits is True


def test_an_untied_model_scores_with_a_second_table_and_counts_it():
    tied = WindowLM(LMConfig(vocab_size=50, context=3, dim=8, hidden=16))
    untied = WindowLM(LMConfig(vocab_size=50, context=3, dim=8, hidden=16, tied=False))
    assert untied.output_table is not untied.embed.tokens and tied.output_table is tied.embed.tokens
    assert untied.num_parameters() - tied.num_parameters() == 50 * 8
    assert untied.matrix_shapes() == tied.matrix_shapes() == [(16, 24), (8, 16), (50, 8)]
    ids = np.array([[1, 2, 3]])
    F.cross_entropy(untied(ids), np.array([7])).backward()
    assert untied.output.weight.grad is not None and untied.embed.tokens.weight.grad is not None


def test_validation_loss_falls_and_beats_the_uniform_guess():
    tok = ByteTokenizer()
    config = LMConfig(vocab_size=tok.vocab_size, context=8, dim=16, hidden=32, epochs=4, batch_size=64,
                      lr=1e-2, val_fraction=0.25, seed=0)
    _, history = train_lm(_LINES * 2, tok, config, show_progress=False)
    val = [h.val_loss for h in history]
    assert val[-1] < val[0] < np.log(tok.vocab_size)  # learns, and starts below log(V) after one epoch
    assert history[-1].val_perplexity < 6  # the phrases are predictable byte by byte


def test_training_is_deterministic_with_a_seed():
    tok = ByteTokenizer()
    config = LMConfig(vocab_size=tok.vocab_size, context=4, dim=8, hidden=16, epochs=1, batch_size=32, seed=3)
    a, _ = train_lm(_LINES, tok, config, show_progress=False)
    b, _ = train_lm(_LINES, tok, config, show_progress=False)
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        np.testing.assert_array_equal(x, y, err_msg=name)


def test_checkpoint_round_trip_gives_identical_outputs(tmp_path):
    tok = BPETokenizer.train(" ".join(_LINES), vocab_size=300)
    config = LMConfig(vocab_size=tok.vocab_size, context=4, dim=8, hidden=16, epochs=1, batch_size=32)
    model, _ = train_lm(_LINES, tok, config, show_progress=False)
    save_checkpoint(model, tok, tmp_path / "lm.safetensors")
    loaded, loaded_tok = load_checkpoint(tmp_path / "lm.safetensors")
    ids = windows(tok.encode(_LINES[0]), 4, 0)[0]
    np.testing.assert_array_equal(loaded(ids).data, model(ids).data)
    np.testing.assert_array_equal(loaded_tok.encode(_LINES[1]), tok.encode(_LINES[1]))


def test_whole_model_gradient_matches_finite_differences():
    model = WindowLM(LMConfig(vocab_size=12, context=3, dim=4, hidden=5))
    for p in model.parameters():
        p.data = p.data.astype(np.float64)
    ids = np.array([[1, 2, 3], [0, 11, 4]])
    params = list(model.parameters())

    def loss(*_):
        return F.cross_entropy(model(ids), np.array([5, 7]))

    assert gradcheck(loss, params)


def test_a_damaged_checkpoint_is_refused_by_name(tmp_path):
    bad = tmp_path / "lm.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}      ")
    with pytest.raises(ValueError, match="lm.safetensors"):
        load_checkpoint(bad)
    from tinyembed.io import safetensors
    safetensors.save({"w": np.zeros(2, np.float32)}, tmp_path / "other.safetensors")
    with pytest.raises(ValueError, match="not a tinyembed language-model checkpoint"):
        load_checkpoint(tmp_path / "other.safetensors")


@pytest.mark.parametrize("lines, message", [([], "0 non-empty lines"), (["only one"], "1 non-empty lines")])
def test_too_small_a_corpus_is_refused(lines, message):
    tok = ByteTokenizer()
    with pytest.raises(ValueError, match=message):
        train_lm(lines, tok, LMConfig(vocab_size=tok.vocab_size), show_progress=False)


def test_config_and_tokenizer_must_agree():
    with pytest.raises(ValueError, match="vocab_size is 10, the tokenizer has"):
        train_lm(_LINES, ByteTokenizer(), LMConfig(vocab_size=10), show_progress=False)
    with pytest.raises(ValueError, match="context must be a positive integer"):
        LMConfig(vocab_size=10, context=0)


def test_the_model_kept_is_the_epoch_with_the_lowest_validation_loss():
    # A learning rate this high overshoots after the first epochs: the last epoch is not the best one.
    tok = ByteTokenizer()
    config = LMConfig(vocab_size=tok.vocab_size, context=4, dim=8, hidden=16, epochs=6, batch_size=16,
                      lr=1.0, val_fraction=0.25, seed=2)
    model, history = train_lm(_LINES, tok, config, show_progress=False)
    best = best_epoch(history)
    assert best.val_loss == min(h.val_loss for h in history)
    assert best.epoch != history[-1].epoch, "the case must make the last epoch worse than the best"
    lines = [line for line in _LINES if line.strip()]
    split = min(len(lines) - 1, max(1, int(round(len(lines) * (1 - config.val_fraction)))))
    val = Examples.of_lines(tok.encode_batch(lines[split:]), config.context, tok.pad_id or 0)
    assert evaluate_loss(model, val) == pytest.approx(best.val_loss, rel=1e-6)


def test_examples_gather_the_windows_of_the_stream_without_materializing_them():
    rng = np.random.default_rng(0)
    lines = [rng.integers(1, 50, n) for n in (5, 1, 9, 3)]
    context = 7
    examples = Examples.of_lines(lines, context, pad_id=0)
    assert examples.stream.size == sum(len(line) for line in lines) + context * len(lines)  # O(tokens)
    expected = [windows(line, context, 0) for line in lines]
    inputs, targets = np.concatenate([e[0] for e in expected]), np.concatenate([e[1] for e in expected])
    index = rng.permutation(len(examples))[:10]
    got_inputs, got_targets = examples.batch(index)
    np.testing.assert_array_equal(got_inputs, inputs[index])
    np.testing.assert_array_equal(got_targets, targets[index])


def test_training_too_large_a_model_for_the_memory_is_refused_before_allocating():
    tok = ByteTokenizer()
    config = LMConfig(vocab_size=tok.vocab_size, context=200_000, dim=64, hidden=512)
    with pytest.raises(MemoryError, match=r"needs about \d+\.\d GiB, but this machine has \d+\.\d GiB available"):
        train_lm(_LINES, tok, config, show_progress=False)
