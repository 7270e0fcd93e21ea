"""The vocabulary of skip-gram training: tokenization, counts, subsampling, noise."""

import math
from collections import Counter

import numpy as np
import pytest

from tinyembed.train.vocab import Vocabulary, tokenize, tokenize_lines

# ---------------------------------------------------------------------------
# Tokenization
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("text, words", [
    ("The Cat sat.", ["the", "cat", "sat"]),
    ("a I x", []),                                       # one-letter words are dropped
    ("don't H2O e-mail", ["don", "mail"]),               # apostrophes, digits, hyphens split
    ("naïve Über café", ["naïve", "über", "café"]),      # Unicode letters stay in the word
    ("snake_case 1999 ...", ["snake", "case"]),          # underscores split, numbers go
    ("x" * 15 + " " + "y" * 16, ["x" * 15]),             # longer than 15 letters is dropped
])
def test_tokenize_keeps_lowercased_letter_runs_of_2_to_15(text, words):
    assert tokenize(text) == words


def test_tokenize_lines_is_one_sentence_per_nonempty_line():
    text = "First line here.\n\n  \n123 456\nSecond one\n"
    assert tokenize_lines(text) == [["first", "line", "here"], ["second", "one"]]


def test_tokenize_refuses_bytes():
    with pytest.raises(TypeError, match="str"):
        tokenize(b"bytes")


# ---------------------------------------------------------------------------
# Counting and ordering
# ---------------------------------------------------------------------------

SENTENCES = [["b", "a", "c", "a"], ["d", "a", "b"], ["c", "b", "e"], ["e", "a"]]


def test_vocabulary_keeps_words_seen_min_count_times_most_frequent_first():
    vocab = Vocabulary.from_sentences(SENTENCES, min_count=2)
    counts = Counter(w for s in SENTENCES for w in s)  # a4 b3 c2 e2 d1
    assert vocab.words == ["a", "b", "c", "e"]  # ties (c, e) in alphabetical order
    assert vocab.counts.tolist() == [counts[w] for w in vocab.words]
    assert vocab.total_words == 12 and vocab.kept_words == 11 and vocab.min_count == 2
    assert all(vocab.index[w] == i for i, w in enumerate(vocab.words))


def test_encode_drops_rare_words_and_sentences_left_empty():
    vocab = Vocabulary.from_sentences(SENTENCES + [["d"]], min_count=3)  # a4 b3; d2 dropped
    encoded = vocab.encode([["a", "d", "b"], ["d", "d"], ["b"]])
    assert encoded.ids.tolist() == [0, 1, 1] and encoded.ids.dtype == np.int32
    assert encoded.bounds.tolist() == [0, 2, 3]
    assert encoded.sentence_ids().tolist() == [0, 0, 1]
    assert encoded.raw_words == 6


@pytest.mark.parametrize("sentences", [[], [[]], [[], []]])
def test_an_empty_corpus_is_refused_naming_it_and_min_count(sentences):
    with pytest.raises(ValueError, match=r"corpus 'empty.txt' has no words.*min_count=5"):
        Vocabulary.from_sentences(sentences, 5, source="corpus 'empty.txt'")


def test_a_corpus_with_no_word_reaching_min_count_is_refused_with_the_counts():
    with pytest.raises(ValueError, match=r"no word of tiny occurs min_count=5 times \(5 distinct words, "
                                         r"the most frequent 4 times\)"):
        Vocabulary.from_sentences(SENTENCES, 5, source="tiny")


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_min_count_must_be_a_positive_int(bad):
    with pytest.raises(ValueError, match="min_count"):
        Vocabulary.from_sentences(SENTENCES, bad)


def test_vocabulary_json_round_trip(tmp_path):
    vocab = Vocabulary.from_sentences(SENTENCES + [["naïve"] * 2], min_count=2)
    loaded = Vocabulary.load(vocab.save(tmp_path / "vocab.json"))
    assert loaded.words == vocab.words and loaded.counts.tolist() == vocab.counts.tolist()
    assert (loaded.min_count, loaded.total_words) == (2, vocab.total_words)
    assert not list(tmp_path.glob(".*tmp"))  # the temporary file was renamed


# ---------------------------------------------------------------------------
# Subsampling and noise: word2vec.c's formulas, computed here by hand
# ---------------------------------------------------------------------------

def test_keep_probabilities_follow_word2vec_c():
    counts = [90_000, 9_000, 900, 90, 10]
    vocab = Vocabulary([f"w{i}" for i in range(5)], counts)
    sample, train_words = 1e-3, sum(counts)
    for count, keep in zip(counts, vocab.keep_probabilities(sample), strict=True):
        # word2vec.c: ran = (sqrt(cn / (sample * train_words)) + 1) * (sample * train_words) / cn
        ran = (math.sqrt(count / (sample * train_words)) + 1) * (sample * train_words) / count
        assert keep == pytest.approx(min(1.0, ran), rel=1e-12)
    keep = vocab.keep_probabilities(sample)
    # threshold t = 1e-3 * 100_000 = 100: keep = (sqrt(c / 100) + 1) * 100 / c
    assert keep[0] == pytest.approx(31 / 900, rel=1e-12)
    assert keep[2] == pytest.approx(4 / 9, rel=1e-12)
    assert keep[3:].tolist() == [1.0, 1.0]  # (sqrt(0.9) + 1) * 100 / 90 > 1
    assert np.all(vocab.keep_probabilities(0) == 1)


def test_noise_distribution_is_unigram_to_the_three_quarters():
    vocab = Vocabulary(["a", "b", "c"], [16, 1, 81])
    # 16^.75 = 8, 1^.75 = 1, 81^.75 = 27
    assert vocab.noise_distribution().tolist() == pytest.approx([8 / 36, 1 / 36, 27 / 36], rel=1e-12)
    assert vocab.noise_distribution(1.0).tolist() == pytest.approx([16 / 98, 1 / 98, 81 / 98])


@pytest.mark.parametrize("bad", [-0.1, 1.0])
def test_sample_outside_unit_interval_is_refused(bad):
    with pytest.raises(ValueError, match="sample"):
        Vocabulary(["a"], [3]).keep_probabilities(bad)


def test_vocabulary_refuses_mismatched_or_repeated_entries():
    with pytest.raises(ValueError, match="counts"):
        Vocabulary(["a", "b"], [1])
    with pytest.raises(ValueError, match="repeats"):
        Vocabulary(["a", "a"], [1, 1])
