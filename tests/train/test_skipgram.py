"""Skip-gram with negative sampling: the loss, its gradient, the data of an epoch, training."""

import argparse
import io
import json

import numpy as np
import pytest

from tinyembed.gradcheck import gradcheck
from tinyembed.kernels import sgns
from tinyembed.nn import Embedding
from tinyembed.sparse import RowSparseGrad
from tinyembed.tensor import Tensor
from tinyembed.train import skipgram
from tinyembed.train.skipgram import (
    NoiseSampler,
    SkipGram,
    SkipGramConfig,
    negative_sampling_loss,
    skipgram_pairs,
    subsample,
    train_skipgram,
)
from tinyembed.train.vocab import Vocabulary

# ---------------------------------------------------------------------------
# The loss and its gradient
# ---------------------------------------------------------------------------

def _batch(rng, vocab=7, batch=6, negative=3):
    inputs = rng.integers(0, vocab, batch)
    targets = rng.integers(0, vocab, (batch, 1 + negative))
    targets[0, 1] = targets[0, 0]  # a noise word equal to the output word: masked out
    targets[1, :] = inputs[1]      # one row shared by both tables, repeated in the batch
    mask = targets != targets[:, :1]
    mask[:, 0] = True
    return inputs, targets, mask


def test_negative_sampling_loss_passes_finite_differences_in_float64():
    rng = np.random.default_rng(0)
    w_in = Tensor(rng.normal(0, 0.5, (7, 4)), requires_grad=True, dtype=np.float64)
    w_out = Tensor(rng.normal(0, 0.5, (7, 4)), requires_grad=True, dtype=np.float64)
    inputs, targets, mask = _batch(rng)
    assert gradcheck(lambda a, b: negative_sampling_loss(a, b, inputs, targets, mask), [w_in, w_out])
    assert gradcheck(lambda a, b: negative_sampling_loss(a, b, inputs, targets), [w_in, w_out])


def test_negative_sampling_loss_equals_the_loss_built_from_embedding_lookups():
    """The fused op against the same loss composed of autograd ops: lookups, products, log σ."""
    rng = np.random.default_rng(1)
    inputs, targets, mask = _batch(rng, vocab=9, batch=8, negative=4)
    w_in0, w_out0 = rng.normal(0, 1, (9, 5)), rng.normal(0, 1, (9, 5))

    fused_in = Tensor(w_in0, requires_grad=True, dtype=np.float64)
    fused_out = Tensor(w_out0, requires_grad=True, dtype=np.float64)
    fused = negative_sampling_loss(fused_in, fused_out, inputs, targets, mask)
    fused.backward()

    emb_in = Embedding.from_pretrained(w_in0.copy(), freeze=False)
    emb_out = Embedding.from_pretrained(w_out0.copy(), freeze=False)
    v, u = emb_in(inputs), emb_out(targets)                  # (B, D), (B, 1+K, D)
    scores = (u * v.unsqueeze(1)).sum(axis=-1)                # (B, 1+K)
    sign = np.where(np.arange(targets.shape[1]) == 0, 1.0, -1.0)
    log_sigmoid = (scores * Tensor(sign)).sigmoid().log()
    composed = -(log_sigmoid * Tensor(mask.astype(np.float64))).sum()
    composed.backward()

    assert float(fused.data) == pytest.approx(float(composed.data), rel=1e-12)
    assert isinstance(fused_in.grad, RowSparseGrad) and isinstance(fused_out.grad, RowSparseGrad)
    assert np.allclose(fused_in.grad.to_dense(), emb_in.weight.grad, atol=1e-12)
    assert np.allclose(fused_out.grad.to_dense(), emb_out.weight.grad, atol=1e-12)
    assert fused_in.grad.indices.tolist() == sorted(set(inputs.tolist()))


def test_one_pair_and_sgd_is_word2vec_c_update():
    """word2vec.c's inner loop for one pair, written out by hand, against loss + SGD."""
    from tinyembed.optim import SGD

    rng = np.random.default_rng(2)
    model = SkipGram(6, 4, seed=0, dtype=np.float64)
    model.output.weight.data[:] = rng.normal(0, 0.3, (6, 4))
    syn0, syn1neg = model.input.weight.data.copy(), model.output.weight.data.copy()
    word, context, noise, alpha = 2, 4, [1, 5, 3], 0.025

    neu1e = np.zeros(4)
    for target, label in [(word, 1)] + [(n, 0) for n in noise]:
        f = syn0[context] @ syn1neg[target]
        g = (label - 1 / (1 + np.exp(-f))) * alpha
        neu1e += g * syn1neg[target]
        syn1neg[target] += g * syn0[context]
    syn0[context] += neu1e

    opt = SGD(model.parameters(), lr=alpha)
    model([context], [[word] + noise]).backward()
    opt.step()
    assert np.allclose(model.input.weight.data, syn0, atol=1e-15)
    assert np.allclose(model.output.weight.data, syn1neg, atol=1e-15)


def test_loss_refuses_mismatched_batches_and_tables():
    w = Tensor(np.zeros((5, 3), np.float32), requires_grad=True)
    with pytest.raises(ValueError, match="targets"):
        negative_sampling_loss(w, w, [0, 1], [[0, 1]])
    with pytest.raises(IndexError, match="targets id 5"):
        negative_sampling_loss(w, w, [0], [[5]])
    with pytest.raises(ValueError, match="mask"):
        negative_sampling_loss(w, w, [0], [[1, 2]], mask=np.ones((1, 3), bool))
    with pytest.raises(TypeError, match="dtype"):
        negative_sampling_loss(w, Tensor(np.zeros((5, 3)), dtype=np.float64), [0], [[1]])


def test_skipgram_initializes_as_word2vec():
    model = SkipGram(50, 10, seed=3)
    w_in, w_out = model.input.weight.data, model.output.weight.data
    assert w_in.dtype == np.float32 and np.abs(w_in).max() <= 0.05 and np.abs(w_in).max() > 0.04
    assert not w_out.any()
    assert model.input.sparse and model.output.sparse


# ---------------------------------------------------------------------------
# The data of an epoch
# ---------------------------------------------------------------------------

def _brute_force_pairs(ids, sentence, reduced):
    pairs = []
    for t in range(len(ids)):
        for s in range(len(ids)):
            if s != t and abs(s - t) <= reduced[t] and sentence[s] == sentence[t]:
                pairs.append((ids[s], ids[t]))
    return pairs


@pytest.mark.parametrize("seed", range(3))
def test_pairs_match_a_loop_over_reduced_windows_in_corpus_order(seed):
    rng = np.random.default_rng(seed)
    n, window = 60, 4
    ids = rng.integers(0, 100, n).astype(np.int32)
    sentence = np.sort(rng.integers(0, 6, n))
    reduced = rng.integers(1, window + 1, n)
    inputs, outputs = skipgram_pairs(ids, sentence, window, reduced=reduced)
    assert list(zip(inputs.tolist(), outputs.tolist(), strict=True)) == _brute_force_pairs(ids, sentence, reduced)


def test_drawn_windows_are_uniform_in_one_to_window():
    rng = np.random.default_rng(0)
    n, window = 20_000, 5
    inputs, _ = skipgram_pairs(np.zeros(n, np.int32), np.zeros(n, np.int64), window, rng)
    # away from the ends a position gives 2 b pairs, E[b] = (window + 1) / 2
    assert len(inputs) / n == pytest.approx(window + 1, rel=0.02)


def test_noise_sampler_tables_give_exactly_the_distribution():
    rng = np.random.default_rng(0)
    p = rng.random(500) ** 4
    p /= p.sum()
    sampler = NoiseSampler(p)
    assert np.allclose(sampler.probabilities(), p, rtol=1e-10, atol=1e-15)
    draws = sampler.draw(400_000, np.random.default_rng(1))
    frequency = np.bincount(draws, minlength=500) / len(draws)
    top = np.argsort(p)[-20:]  # where counts are large: within 5 standard errors
    assert np.all(np.abs(frequency[top] - p[top]) < 5 * np.sqrt(p[top] / len(draws)))


def test_subsampling_keeps_words_at_their_keep_probability():
    vocab = Vocabulary(["a", "b", "c"], [90_000, 9_000, 1_000])
    encoded = vocab.encode([["a"] * 90_000 + ["b"] * 9_000 + ["c"] * 1_000])
    keep = vocab.keep_probabilities(1e-3)
    ids, sentence = subsample(encoded, keep, np.random.default_rng(0))
    kept = np.bincount(ids, minlength=3) / vocab.counts
    assert np.all(np.abs(kept - keep) < 5 * np.sqrt(keep * (1 - keep) / vocab.counts) + 1e-12)
    assert np.all(sentence == 0)


# ---------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------

TOPICS = [["cat", "dog", "pet", "fur", "paw", "tail"],
          ["car", "road", "wheel", "engine", "drive", "fuel"],
          ["sea", "wave", "boat", "sail", "fish", "tide"]]


def _topic_corpus(seed=0, sentences=600):
    """Sentences of 8 words, each drawn from one topic: co-occurrence only within a topic."""
    rng = np.random.default_rng(seed)
    return [[TOPICS[t][i] for i in rng.integers(0, 6, 8)] for t in rng.integers(0, 3, sentences)]


@pytest.mark.parametrize("per_pair, epochs, fall", [(True, 4, 0.85), (False, 4, 0.8)])
def test_training_recovers_topics_and_the_loss_falls(per_pair, epochs, fall, monkeypatch):
    # The per-pair loop (word2vec) learns most of this tiny corpus within its first epoch, whose
    # mean loss is therefore already lower than the batched path's: its later epochs fall less.
    if per_pair and not sgns.available():
        pytest.skip("the per-pair loop needs numba")
    monkeypatch.setattr(skipgram, "uses_kernel", lambda config: per_pair)
    config = SkipGramConfig(dim=16, epochs=epochs, min_count=1, sample=0, batch_size=256, seed=0, threads=1)
    result = train_skipgram(_topic_corpus(), config, show_progress=False)
    assert result.losses[-1] < fall * result.losses[0]
    vectors = result.vectors
    unit = vectors.normalized()
    topic = {w: t for t, words in enumerate(TOPICS) for w in words}
    same = np.array([[topic[a] == topic[b] for b in vectors.words] for a in vectors.words])
    cos = unit @ unit.T
    off_diagonal = ~np.eye(len(cos), dtype=bool)
    assert cos[same & off_diagonal].mean() > cos[~same].mean() + 0.5
    for word in vectors.words:  # every word's nearest neighbour shares its topic
        assert topic[vectors.most_similar(word, topn=1)[0][0]] == topic[word]


def test_loss_falls_on_the_lee_corpus():
    from tinyembed.text.corpus import corpus_text

    config = SkipGramConfig(dim=24, epochs=3, min_count=5, seed=1, threads=1)
    result = train_skipgram(corpus_text("lee"), config, show_progress=False)
    losses = result.losses
    assert losses[0] > losses[1] > losses[2] and losses[2] < 0.85 * losses[0]
    assert len(result.vocab) > 1000 and result.epochs[0].pairs > 100_000


def test_the_batched_path_gives_identical_vectors_for_any_thread_count(monkeypatch):
    monkeypatch.setattr(skipgram, "uses_kernel", lambda config: False)  # batches through autograd
    text = "\n".join(" ".join(s) for s in _topic_corpus(seed=1, sentences=200))
    runs = [train_skipgram(text, SkipGramConfig(dim=8, epochs=2, min_count=1, seed=seed, threads=threads,
                                                 batch_size=64), show_progress=False)
            for seed, threads in [(5, 1), (5, 2), (6, 1)]]
    first, again, other = (r.model.input.weight.data for r in runs)
    assert np.array_equal(first, again)
    assert np.array_equal(runs[0].model.output.weight.data, runs[1].model.output.weight.data)
    assert not np.allclose(first, other)


def test_the_per_pair_loop_on_one_thread_is_a_function_of_the_seed():
    if not sgns.available():
        pytest.skip("the per-pair loop needs numba")
    text = "\n".join(" ".join(s) for s in _topic_corpus(seed=1, sentences=200))
    runs = [train_skipgram(text, SkipGramConfig(dim=8, epochs=2, min_count=1, seed=seed, threads=1),
                           show_progress=False) for seed in (5, 5, 6)]
    assert all(skipgram.uses_kernel(r.config) for r in runs)
    first, again, other = (r.model.input.weight.data for r in runs)
    assert np.array_equal(first, again) and not np.allclose(first, other)


def test_the_per_pair_loop_is_word2vec_c_for_known_noise_words():
    """Pairs trained by the compiled loop against word2vec.c's loop written out by hand, with
    the same σ table and a noise table that always draws word 3."""
    if not sgns.available():
        pytest.skip("the per-pair loop needs numba")
    rng = np.random.default_rng(3)
    w_in = rng.uniform(-0.5, 0.5, (6, 8)).astype(np.float32)
    w_out = rng.normal(0, 0.4, (6, 8)).astype(np.float32)
    inputs, outputs = np.array([2, 4, 2, 0], np.int32), np.array([4, 1, 3, 5], np.int32)
    prob, alias = np.zeros(6), np.full(6, 3, np.int32)  # every column gives way to word 3
    sigmoid, _ = sgns.sigmoid_tables()
    syn0, syn1 = w_in.astype(np.float64), w_out.astype(np.float64)
    for j, (context, word) in enumerate(zip(inputs, outputs, strict=True)):
        alpha = 0.025 + (0.02 - 0.025) * j / len(inputs)
        neu1e = np.zeros(8)
        for target, label in [(word, 1)] + [(3, 0)] * 2:
            if label == 0 and target == word:
                continue  # word2vec.c skips a noise word equal to the word
            f = syn0[context] @ syn1[target]
            s = 1.0 if f >= 6 else 0.0 if f <= -6 else sigmoid[int((f + 6) * (1000 / 12))]
            g = (label - s) * alpha
            neu1e += g * syn1[target]
            syn1[target] += g * syn0[context]
        syn0[context] += neu1e
    sgns.sgd_pairs(w_in, w_out, inputs, outputs, 2, prob, alias, 0.025, 0.02, np.array([7], np.uint64))
    np.testing.assert_allclose(w_in, syn0, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(w_out, syn1, rtol=1e-5, atol=1e-6)


def test_sparse_adam_trains_too():
    config = SkipGramConfig(dim=16, epochs=3, min_count=1, sample=0, batch_size=256, seed=0,
                            optimizer="sparse_adam", alpha=0.01, min_alpha=0.001)
    result = train_skipgram(_topic_corpus(), config, show_progress=False)
    assert result.losses[-1] < 0.8 * result.losses[0]


def test_progress_bar_shows_loss_and_words_per_second():
    stream = io.StringIO()
    train_skipgram(_topic_corpus(sentences=50), SkipGramConfig(dim=4, epochs=2, min_count=1, seed=0),
                   stream=stream)
    lines = stream.getvalue().splitlines()
    assert 2 <= len(lines) <= 20  # not a terminal: a line per step of the bar, at most 20
    assert any(line.startswith("epoch 1/2 [##########..........] 400/800 ") for line in lines)
    assert lines[-1].startswith("epoch 2/2 [####################] 800/800 ")  # words: 2 x 50 x 8
    assert " loss " in lines[-1] and lines[-1].endswith(" words/s")


@pytest.mark.parametrize("text, match", [
    ("", "has no words to train on.*min_count=5"),
    ("123 456 ...\n\n", "has no words to train on.*min_count=5"),
    ("one two three two", "no word of corpus 'tiny.txt' occurs min_count=5 times"),
])
def test_bad_corpora_are_refused_naming_the_corpus(text, match):
    with pytest.raises(ValueError, match=match):
        train_skipgram(text, SkipGramConfig(min_count=5), source="corpus 'tiny.txt'", show_progress=False)


@pytest.mark.parametrize("text", ["hello", "hello\nworld\nhello\n"])
def test_a_corpus_without_two_words_on_a_line_has_no_pairs(text):
    with pytest.raises(ValueError, match="no sentence .* with two words.*needs pairs"):
        train_skipgram(text, SkipGramConfig(min_count=1), show_progress=False)


def test_training_restores_the_kernel_thread_count():
    from tinyembed import kernels

    before = kernels.get_num_threads()
    result = train_skipgram(_topic_corpus(sentences=20), SkipGramConfig(dim=4, epochs=1, min_count=1, threads=1),
                            show_progress=False)
    assert result.threads == 1 and kernels.get_num_threads() == before


@pytest.mark.parametrize("field, value", [("dim", 0), ("window", -1), ("negative", 0), ("epochs", 1.5),
                                          ("sample", 1.0), ("alpha", 0.0), ("min_alpha", 1.0),
                                          ("optimizer", "adam"), ("seed", -1), ("threads", 0)])
def test_config_refuses_bad_values_by_name(field, value):
    with pytest.raises(ValueError, match=field):
        SkipGramConfig(**{field: value})


# ---------------------------------------------------------------------------
# tinyembed train skipgram
# ---------------------------------------------------------------------------

def _cli(argv):
    from tinyembed.cli import train

    parser = argparse.ArgumentParser(prog="tinyembed train")
    train.add_arguments(parser)
    args = parser.parse_args(argv)
    return train.run(args, parser)


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "topics.txt"
    path.write_text("\n".join(" ".join(s) for s in _topic_corpus(sentences=150)) + "\n", encoding="utf-8")
    return path


def test_cli_writes_vectors_vocabulary_and_log(corpus_file, tmp_path, capsys):
    from tinyembed.vectors import WordVectors

    out = tmp_path / "run"
    code = _cli(["skipgram", "--corpus", str(corpus_file), "--dim", "8", "--epochs", "2", "--min-count", "1",
                 "--window", "3", "--negative", "4", "--seed", "7", "--threads", "1", "--out", str(out), "--quiet"])
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["train.json", "vectors.safetensors", "vectors.txt", "vocab.json"]
    binary, text = WordVectors.load(out / "vectors.safetensors"), WordVectors.load_word2vec_text(out / "vectors.txt")
    vocab = json.loads((out / "vocab.json").read_text(encoding="utf-8"))
    assert binary.words == text.words == vocab["words"] and len(vocab["words"]) == 18
    assert np.array_equal(binary.vectors, text.vectors) and binary.vectors.shape == (18, 8)
    log = json.loads((out / "train.json").read_text(encoding="utf-8"))
    assert log["config"] | {} == log["config"] and log["config"]["window"] == 3 and log["config"]["seed"] == 7
    assert len(log["losses"]) == 2 and log["words_per_second"] > 0 and log["seconds"] > 0
    assert "trained 18 words x 8" in capsys.readouterr().out


def test_cli_help_lists_the_flags(capsys):
    with pytest.raises(SystemExit) as exit_:
        _cli(["skipgram", "--help"])
    assert exit_.value.code == 0
    help_ = capsys.readouterr().out
    for flag in ("--corpus", "--dim", "--window", "--negative", "--epochs", "--min-count", "--seed",
                 "--threads", "--out"):
        assert flag in help_


@pytest.mark.parametrize("content, match", [("", "is empty"), ("42 17\n", "has no words to train on"),
                                            ("just four words here\n", "min_count=5")])
def test_cli_refuses_an_empty_corpus_by_name(tmp_path, capsys, content, match):
    path = tmp_path / "empty.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(SystemExit) as exit_:
        _cli(["skipgram", "--corpus", str(path), "--out", str(tmp_path / "out"), "--quiet"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "empty.txt" in err and match in err
    assert not (tmp_path / "out").exists()


def test_cli_refuses_a_missing_file_and_an_out_that_is_a_file(tmp_path, corpus_file, capsys):
    with pytest.raises(SystemExit):
        _cli(["skipgram", "--corpus", str(tmp_path / "nope.txt"), "--out", str(tmp_path / "o")])
    assert "nope.txt" in capsys.readouterr().err
    taken = tmp_path / "taken"
    taken.write_text("x")
    from tinyembed.cli import main

    assert main(["train", "skipgram", "--corpus", str(corpus_file), "--out", str(taken)]) == 2
    assert "is a file" in capsys.readouterr().err


@pytest.mark.parametrize("num_rows", [50, 1 << 16, 300_000])
def test_grouping_ids_is_a_stable_sort(num_rows):
    from tinyembed.train.skipgram import _group

    ids = np.random.default_rng(num_rows).integers(0, num_rows, 5000)
    rows, positions, bounds = _group(ids, num_rows)
    assert positions.tolist() == np.argsort(ids, kind="stable").tolist()
    assert rows.tolist() == sorted(set(ids.tolist()))
    assert all((ids[positions[a:b]] == r).all() for r, a, b in zip(rows, bounds[:-1], bounds[1:], strict=True))


def test_cli_json_reports_training_files_and_evaluation(corpus_file, tmp_path, capsys):
    out = tmp_path / "run"
    assert _cli(["skipgram", "--corpus", str(corpus_file), "--dim", "8", "--epochs", "1", "--min-count", "1",
                 "--out", str(out), "--quiet", "--json", "--evaluate"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["vocab_size"] == 18 and payload["config"]["epochs"] == 1
    assert set(payload["files"]) == {"vectors", "vectors_text", "vocab", "train"}
    names = [p["name"] for p in payload["evaluation"]["word_pairs"]]
    assert names == ["WordSim-353", "SimLex-999"]
    wordsim = payload["evaluation"]["word_pairs"][0]
    assert wordsim["pairs_total"] == 353 and wordsim["oov_pairs"] + wordsim["pairs_used"] == 353
