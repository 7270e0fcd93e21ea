import math

import numpy as np
import pytest

from tinyembed.plan.zipf import zipf_probabilities
from tinyembed.profile.patterns import DEFAULT_PATTERNS, PATTERNS, AccessPattern, text_stream

ALL = [AccessPattern("uniform"), AccessPattern("zipf", 0.8), AccessPattern("zipf", 1.3),
       AccessPattern("sequential"), AccessPattern("sorted", 1.0), AccessPattern("text")]
TEXT_VOCAB = 30522  # the MiniLM vocabulary: the text stream's ids all fit


def rng(seed=0):
    return np.random.default_rng(seed)


# -- every pattern ---------------------------------------------------------------------------------
@pytest.mark.parametrize("access", ALL, ids=lambda a: a.label)
@pytest.mark.parametrize("shape", [(1,), (3, 7), (2, 4, 5)])
def test_ids_are_int64_of_the_shape_and_in_range(access, shape):
    vocab = TEXT_VOCAB if access.name == "text" else 97
    ids = access.ids(vocab, shape, rng(1))
    assert ids.shape == shape and ids.dtype == np.int64
    assert ids.min() >= 0 and ids.max() < vocab


@pytest.mark.parametrize("access", ALL, ids=lambda a: a.label)
def test_same_generator_state_gives_the_same_ids(access):
    vocab = TEXT_VOCAB if access.name == "text" else 1000
    np.testing.assert_array_equal(access.ids(vocab, (4, 64), rng(5)), access.ids(vocab, (4, 64), rng(5)))


def test_registry_and_defaults_cover_every_pattern():
    assert set(PATTERNS) == {"uniform", "zipf", "sequential", "sorted", "text"}
    assert {p.name for p in DEFAULT_PATTERNS} == set(PATTERNS)
    assert len({p.label for p in DEFAULT_PATTERNS}) == len(DEFAULT_PATTERNS)  # labels tell them apart


# -- each pattern against its definition ---------------------------------------------------------
@pytest.mark.parametrize("vocab,shape", [(10, (3, 7)), (1000, (2, 5)), (1, (4,)), (7, (7,))])
def test_sequential_is_arange_mod_vocab(vocab, shape):
    ids = AccessPattern("sequential").ids(vocab, shape, rng())
    np.testing.assert_array_equal(ids, np.arange(math.prod(shape)).reshape(shape) % vocab)


@pytest.mark.parametrize("alpha", [0.7, 1.0, 1.5])
def test_sorted_is_the_zipf_draw_in_address_order(alpha):
    shape = (8, 33)
    zipf = AccessPattern("zipf", alpha).ids(500, shape, rng(3))
    ordered = AccessPattern("sorted", alpha).ids(500, shape, rng(3))
    assert ordered.shape == shape
    flat = ordered.reshape(-1)
    assert np.all(np.diff(flat) >= 0)  # sorted in C order: rows read in address order
    np.testing.assert_array_equal(np.bincount(flat, minlength=500), np.bincount(zipf.reshape(-1), minlength=500))
    assert not np.array_equal(np.sort(zipf, axis=None), zipf.reshape(-1))  # the zipf draw itself is not sorted


@pytest.mark.parametrize("alpha", [0.8, 1.0, 1.5])
def test_zipf_frequencies_match_the_zipf_probabilities(alpha):
    vocab, n = 40, 400_000
    counts = np.bincount(AccessPattern("zipf", alpha).ids(vocab, (n,), rng(11)), minlength=vocab)
    expected = n * zipf_probabilities(vocab, alpha)
    sigma = np.sqrt(expected * (1 - expected / n))
    assert np.all(np.abs(counts - expected) < 5 * sigma), np.max(np.abs(counts - expected) / sigma)
    # Hotter ranks are drawn more often: the first ten ranks' gaps are many sigmas wide.
    assert np.all(np.diff(counts[:10]) < 0)


def test_uniform_frequencies_are_flat():
    vocab, n = 50, 200_000
    counts = np.bincount(AccessPattern("uniform").ids(vocab, (n,), rng(2)), minlength=vocab)
    expected = n / vocab
    assert np.all(np.abs(counts - expected) < 5 * np.sqrt(expected * (1 - 1 / vocab)))


def test_larger_alpha_concentrates_lookups_on_fewer_rows():
    unique = [np.unique(AccessPattern("zipf", a).ids(10_000, (4096,), rng(4))).size for a in (0.5, 1.0, 1.5, 2.5)]
    assert unique == sorted(unique, reverse=True) and unique[0] > 2 * unique[-1]


def test_text_windows_are_contiguous_slices_of_the_real_stream():
    stream = text_stream()
    assert stream.dtype == np.int64 and stream.ndim == 1 and len(stream) > 100_000
    from tinyembed.text import minilm_token_ids
    np.testing.assert_array_equal(stream, minilm_token_ids("wikipedia").ids)
    starts = set()
    for seed in range(5):
        ids = AccessPattern("text").ids(TEXT_VOCAB, (4, 128), rng(seed))
        flat = ids.reshape(-1)
        candidates = np.flatnonzero(stream[: len(stream) - flat.size + 1] == flat[0])
        found = [int(s) for s in candidates if np.array_equal(stream[s:s + flat.size], flat)]
        assert found, f"seed {seed}: the window is not a slice of the stream"
        starts.add(found[0])
    assert len(starts) == 5  # the generator chooses where the window starts


def test_text_ids_are_the_whole_stream_when_the_batch_is_as_long():
    stream = text_stream()
    np.testing.assert_array_equal(AccessPattern("text").ids(TEXT_VOCAB, (len(stream),), rng()), stream)


# -- labels ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("access", [*DEFAULT_PATTERNS, AccessPattern("zipf", 0.25), AccessPattern("sorted", 2),
                                    AccessPattern("zipf", 1.23456789), AccessPattern("sorted", 1e-3),
                                    AccessPattern("zipf", 12.5)], ids=lambda a: a.label)
def test_parse_of_label_gives_the_pattern_back(access):
    assert AccessPattern.parse(access.label) == access
    assert AccessPattern.parse(access.label).label == access.label


def test_labels_name_the_alpha_only_where_it_is_used():
    assert AccessPattern("zipf", 1.2).label == "zipf-1.2"
    assert AccessPattern("sorted", 1.0).label == "sorted-1"
    assert AccessPattern("uniform").label == "uniform"
    assert AccessPattern.parse("zipf") == AccessPattern("zipf", 1.0)
    assert AccessPattern.parse("sequential") == AccessPattern("sequential")
    # different alphas never share a label (results are keyed by it)
    assert AccessPattern("zipf", 1.0000001).label != AccessPattern("zipf", 1.0).label


# -- bad input -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["zipfy", "Uniform", "", "text "])
def test_unknown_pattern_is_named_with_the_known_ones(name):
    with pytest.raises(ValueError, match=f"unknown access pattern {name!r}.*uniform, zipf"):
        AccessPattern(name)


@pytest.mark.parametrize("name", ["zipf", "sorted", "uniform"])
@pytest.mark.parametrize("alpha", [0, -1.0, float("nan"), float("inf"), True, "1.0", None])
def test_bad_alpha_is_refused_naming_it(name, alpha):
    with pytest.raises(ValueError, match=f"alpha.*got {alpha!r}".replace("(", r"\(").replace(")", r"\)")):
        AccessPattern(name, alpha)


@pytest.mark.parametrize("text,expected", [
    ("zipf-abc", "'zipf-abc': 'abc' is not a number"),
    ("uniform-1.2", "'uniform' takes no alpha"),
    ("text-1", "'text' takes no alpha"),
    ("zipf-0", "got 0.0"),
    ("sorted--1", "got -1.0"),
    ("zipf-nan", "got nan"),
    ("nothing-1", "unknown access pattern 'nothing'"),
])
def test_parse_errors_name_the_text(text, expected):
    with pytest.raises(ValueError, match=expected.replace("(", r"\(")):
        AccessPattern.parse(text)


@pytest.mark.parametrize("vocab", [0, -5, True, 2.0, "10", None])
def test_bad_vocab_is_refused_naming_it(vocab):
    with pytest.raises(ValueError, match=f"vocabulary size must be a positive integer, got {vocab!r}"):
        AccessPattern("uniform").ids(vocab, (2, 3), rng())


def test_text_on_a_table_too_small_names_the_rows_it_needs():
    top = int(text_stream().max())
    with pytest.raises(ValueError, match=f"ids up to {top}: it needs a table of at least {top + 1} rows, got 1000"):
        AccessPattern("text").ids(1000, (2, 3), rng())
    assert AccessPattern("text").ids(top + 1, (2, 3), rng()).max() <= top  # the smallest table that fits works


def test_text_batch_longer_than_the_stream_is_refused():
    n = len(text_stream()) + 1
    with pytest.raises(ValueError, match=f"a batch of {n} ids is longer than the text stream"):
        AccessPattern("text").ids(TEXT_VOCAB, (n,), rng())
