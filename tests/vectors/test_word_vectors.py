import json
import math
import os

import numpy as np
import pytest

from tinyembed.io import assets, safetensors
from tinyembed.vectors import WordVectors, is_safetensors_file, load_vectors


def random_vectors(count=50, dim=8, seed=0, counts=True):
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(count)]
    table = rng.standard_normal((count, dim)).astype(np.float32)
    return WordVectors(words, table, np.arange(count, 0, -1) * 10 if counts else None)


def gensim_or_skip():
    return pytest.importorskip("gensim.models", reason="gensim is the optional reference")


# ---------------------------------------------------------------------------
# The container
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("words, vectors, counts, message", [
    (["a", "b", "a"], np.zeros((3, 2)), None, r"duplicate word 'a' at words\[0\] and words\[2\]"),
    (["a", ""], np.zeros((2, 2)), None, r"words\[1\] is the empty string"),
    (["a", "b c"], np.zeros((2, 2)), None, r"words\[1\] = 'b c' contains whitespace"),
    (["a", "b\u00a0c"], np.zeros((2, 2)), None, "contains whitespace"),
    (["a", "b"], np.zeros((3, 2)), None, r"2 words but vectors has 3 rows"),
    (["a"], np.zeros(2), None, r"must be 2-D \(V, D\), got shape \(2,\)"),
    (["a"], np.zeros((1, 0)), None, "at least one column"),
    (["a", "b"], np.array([[0, 1], [np.nan, 0]]), None, r"vectors\[1, 0\] = .*nan.*word 'b'"),
    (["a"], np.array([[1e39, 0]]), None, r"vectors\[0, 0\] .* not finite as float32"),
    (["a", "b"], np.zeros((2, 2)), [3], r"counts must have shape \(2,\)"),
    (["a", "b"], np.zeros((2, 2)), [3, -1], r"counts\[1\] = -1 \(word 'b'\) is negative"),
])
def test_constructor_refuses_bad_input_naming_the_value(words, vectors, counts, message):
    with pytest.raises(ValueError, match=message):
        WordVectors(words, vectors, counts)


@pytest.mark.parametrize("words, vectors, message", [
    ("abc", np.zeros((3, 2)), "a single str"),
    (["a", 7], np.zeros((2, 2)), r"words\[1\] must be a str, got int"),
    (["a"], np.array([["x", "y"]]), "real numbers"),
    (["a"], np.array([[True, False]]), "real numbers"),
])
def test_constructor_refuses_wrong_types(words, vectors, message):
    with pytest.raises(TypeError, match=message):
        WordVectors(words, vectors)


def test_lookup_by_word_and_missing_word_error_names_it():
    wv = random_vectors()
    assert len(wv) == 50 and wv.dim == 8 and "w3" in wv and "w50" not in wv and 3 not in wv
    assert wv.index("w7") == 7
    np.testing.assert_array_equal(wv["w7"], wv.vectors[7])
    with pytest.raises(KeyError, match="word 'nope' is not in the vocabulary of 50 words"):
        wv["nope"]
    assert wv.words == [f"w{i}" for i in range(50)]
    assert wv.counts.dtype == np.int64 and wv.counts[0] == 500


def test_stored_table_is_a_readonly_float32_copy_of_the_input():
    table = np.arange(6, dtype=np.float64).reshape(3, 2)
    wv = WordVectors(["a", "b", "c"], table)
    table[0, 0] = 99  # the caller's array is not shared
    assert wv.vectors.dtype == np.float32 and wv.vectors[0, 0] == 0
    with pytest.raises(ValueError):
        wv.vectors[0, 0] = 1


def test_normalized_rows_have_unit_length_and_zero_rows_stay_zero():
    table = np.array([[3, 4], [0, 0], [-1e-3, 0]], dtype=np.float32)
    wv = WordVectors(["a", "b", "c"], table)
    unit = wv.normalized()
    np.testing.assert_allclose(unit, [[0.6, 0.8], [0, 0], [-1, 0]], rtol=1e-6)
    assert unit is wv.normalized() and not unit.flags.writeable
    assert wv.similarity("a", "b") == 0.0


def test_similarity_is_the_cosine():
    wv = random_vectors()
    a, b = wv["w1"].astype(np.float64), wv["w2"].astype(np.float64)
    expected = a @ b / math.sqrt((a @ a) * (b @ b))
    assert wv.similarity("w1", "w2") == pytest.approx(expected, abs=1e-6)


def brute_force_most_similar(wv, positive, negative, topn, restrict_vocab=None):
    """gensim's definition, one word at a time in float64."""
    table = wv.vectors.astype(np.float64)
    unit = table / np.linalg.norm(table, axis=1, keepdims=True)
    query = sum(unit[wv.index(w)] for w in positive) - sum(
        (unit[wv.index(w)] for w in negative), np.zeros(wv.dim))
    query /= np.linalg.norm(query)
    limit = len(wv) if restrict_vocab is None else restrict_vocab
    scored = [(float(unit[i] @ query), wv.words[i]) for i in range(limit)
              if wv.words[i] not in set(positive) | set(negative)]
    scored.sort(key=lambda pair: -pair[0])
    return [(word, cosine) for cosine, word in scored[:topn]]


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("positive, negative, topn, restrict", [
    (["w0"], [], 5, None),
    (["w3", "w7"], ["w1"], 10, None),
    (["w40"], ["w2", "w9"], 3, 30),   # w40 itself is outside the candidates
    (["w5", "w5"], [], 60, None),     # topn beyond the vocabulary: everything else
])
def test_most_similar_matches_brute_force(seed, positive, negative, topn, restrict):
    wv = random_vectors(seed=seed)
    ours = wv.most_similar(positive, negative, topn=topn, restrict_vocab=restrict)
    theirs = brute_force_most_similar(wv, positive, negative, topn, restrict)
    assert [w for w, _ in ours] == [w for w, _ in theirs]
    np.testing.assert_allclose([c for _, c in ours], [c for _, c in theirs], atol=1e-5)


def test_most_similar_matches_gensim():
    models = gensim_or_skip()
    wv = random_vectors(count=200, dim=16, seed=3)
    kv = models.KeyedVectors(16)
    kv.add_vectors(wv.words, wv.vectors)
    for positive, negative in [(["w1"], []), (["w10", "w20"], ["w30"]), ([], ["w4"])]:
        ours = wv.most_similar(positive, negative, topn=7, restrict_vocab=150)
        theirs = kv.most_similar(positive=positive, negative=negative, topn=7, restrict_vocab=150)
        assert [w for w, _ in ours] == [w for w, _ in theirs]
        np.testing.assert_allclose([c for _, c in ours], [c for _, c in theirs], atol=1e-5)


def test_most_similar_refuses_bad_arguments():
    wv = random_vectors()
    with pytest.raises(KeyError, match="'zzz'"):
        wv.most_similar(["w1", "zzz"])
    with pytest.raises(ValueError, match="at least one"):
        wv.most_similar()
    with pytest.raises(ValueError, match="topn must be a positive integer, got 0"):
        wv.most_similar("w1", topn=0)
    with pytest.raises(ValueError, match="restrict_vocab must be a positive integer or None, got -1"):
        wv.most_similar("w1", restrict_vocab=-1)


# ---------------------------------------------------------------------------
# word2vec text format
# ---------------------------------------------------------------------------

AWKWARD_WORDS = ["the", "été", "東京", "naïve", "😀", "a.b-c_d", "<s>", "Ünïcödé"]


def awkward_vectors():
    rng = np.random.default_rng(7)
    table = rng.standard_normal((len(AWKWARD_WORDS), 6)).astype(np.float32)
    # Values whose decimal form is hard: extremes, subnormals, signed zero, 1/3.
    table[0] = [np.finfo(np.float32).max, -np.finfo(np.float32).max,
                np.finfo(np.float32).smallest_subnormal, -0.0, 1 / 3, 1e-30]
    return WordVectors(AWKWARD_WORDS, table)


def test_text_round_trip_is_bit_exact_with_utf8_words(tmp_path):
    wv = awkward_vectors()
    path = tmp_path / "v.txt"
    wv.save_word2vec_text(path)
    lines = path.read_bytes().decode("utf-8").splitlines()
    assert lines[0] == f"{len(AWKWARD_WORDS)} 6"
    assert [line.split(" ")[0] for line in lines[1:]] == AWKWARD_WORDS
    back = WordVectors.load_word2vec_text(path)
    assert back.words == AWKWARD_WORDS and back.counts is None
    assert back.vectors.tobytes() == wv.vectors.tobytes()  # bit for bit, -0.0 included
    assert os.listdir(tmp_path) == ["v.txt"]  # the temporary file was renamed, not left


def test_text_values_are_nine_significant_digits(tmp_path):
    WordVectors(["x"], np.array([[0.1, 1 / 3]], dtype=np.float32)).save_word2vec_text(tmp_path / "v")
    assert (tmp_path / "v").read_text().splitlines()[1] == "x 0.100000001 0.333333343"


def test_limit_reads_the_first_vectors_only(tmp_path):
    wv = random_vectors()
    wv.save_word2vec_text(tmp_path / "v.txt")
    first = WordVectors.load_word2vec_text(tmp_path / "v.txt", limit=5)
    assert first.words == wv.words[:5]
    np.testing.assert_array_equal(first.vectors, wv.vectors[:5])
    assert len(WordVectors.load_word2vec_text(tmp_path / "v.txt", limit=500)) == 50
    with pytest.raises(ValueError, match="limit must be a positive integer"):
        WordVectors.load_word2vec_text(tmp_path / "v.txt", limit=0)


def test_reads_the_c_tool_layout_trailing_spaces_and_crlf(tmp_path):
    path = tmp_path / "v.txt"
    path.write_bytes(b"2 3\r\nthe 0.5 -1 2e-3 \r\nof 1 2 3 \r\n\r\n")
    wv = WordVectors.load_word2vec_text(path)
    assert wv.words == ["the", "of"]
    np.testing.assert_array_equal(wv.vectors, np.array([[0.5, -1, 2e-3], [1, 2, 3]], np.float32))


@pytest.mark.parametrize("content, message", [
    (b"", r"line 1: the header must be two integers 'V D'"),
    (b"3\n", r"line 1: the header must be two integers"),
    (b"2 x\n", r"line 1: the header must be two integers"),
    (b"2 0\n", r"line 1: the header must be two integers 'V D' \(vectors, dimension >= 1\)"),
    (b"the 0.1 0.2\nof 0.3 0.4\n", "GloVe's format lacks the header"),
    (b"2 2\na 1 2\nb 1\n", r"line 3: expected a word and 2 values .* got 2 fields"),
    (b"2 2\na 1 2\nb 1 2 3\n", r"line 3: expected a word and 2 values .* got 4 fields"),
    (b"2 2\na 1 2\n\nb 1 2\n", r"line 3: expected a word and 2 values .* got 0 fields"),
    (b"2 2\na 1 2\nb 1 x2\n", r"line 3: value 'x2' \(word 'b'\) is not a number"),
    (b"2 2\na 1 2\nb 1 nan\n", r"line 3: value nan \(word 'b', column 2\) is not a finite float32"),
    (b"2 2\na 1 2\nb 1e39 0\n", r"line 3: value 1e\+39 \(word 'b', column 1\)"),
    (b"3 2\na 1 2\nb 1 2\n", r"ends after line 3 but the header \(line 1\) promises 3 vectors; got 2"),
    (b"1 2\na 1 2\nb 1 2\n", r"line 3: more vector lines than the 1 the header"),
    (b"3 2\na 1 2\nb 1 2\na 3 4\n", r"line 4: duplicate word 'a', first on line 2"),
    (b"1 2\n\xff\xfe 1 2\n", r"line 2: the word .* is not valid UTF-8"),
    (b"1 2\na\xc2\xa0b 1 2\n", r"line 2: the word 'a\\xa0b' contains whitespace"),
])
def test_corrupt_text_file_error_names_the_line(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message) as error:
        WordVectors.load_word2vec_text(path)
    assert str(path) in str(error.value)


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        WordVectors.load_word2vec_text(tmp_path / "nope.txt")


@pytest.mark.parametrize("name, count, dim, first_word, first_values", [
    # Files in gensim's test data, written by word2vec's C tool, gensim and fastText.
    ("toy-model.vec", 22, 5, "the", [0.068811, 0.26619, 0.026622, -0.2588, -0.00044401]),
    ("lee_fasttext.vec", 1762, 10, "the", [-0.65992, 0.20966, 0.47362]),
    ("crime-and-punishment.vec", 291, 5, "и", [-0.11189, 0.12135, -0.11379]),
    ("high_precision.kv.txt", 2, 2, "kangaroo.n.01", [-0.0007369244245224787]),
])
def test_reads_word2vec_text_files_from_gensims_test_data(tmp_path, name, count, dim,
                                                           first_word, first_values):
    path = tmp_path / name
    path.write_bytes(assets.gensim_test_data(name))
    wv = WordVectors.load_word2vec_text(path)
    assert (len(wv), wv.dim, wv.words[0]) == (count, dim, first_word)
    np.testing.assert_array_equal(wv.vectors[0, :len(first_values)],
                                  np.array(first_values, dtype=np.float32))


def test_a_truncated_file_in_gensims_test_data_is_refused(tmp_path):
    path = tmp_path / "pretrained.vec"  # says 3 vectors, holds 1
    path.write_bytes(assets.gensim_test_data("pretrained.vec"))
    with pytest.raises(ValueError, match="promises 3 vectors; got 1"):
        WordVectors.load_word2vec_text(path)


def test_reads_what_gensim_writes_and_gensim_reads_what_we_write(tmp_path):
    models = gensim_or_skip()
    wv = awkward_vectors()
    kv = models.KeyedVectors(wv.dim)
    kv.add_vectors(wv.words, wv.vectors)
    kv.save_word2vec_format(str(tmp_path / "gensim.txt"), binary=False)
    ours = WordVectors.load_word2vec_text(tmp_path / "gensim.txt")
    assert ours.words == wv.words
    assert ours.vectors.tobytes() == wv.vectors.tobytes()

    wv.save_word2vec_text(tmp_path / "ours.txt")
    theirs = models.KeyedVectors.load_word2vec_format(str(tmp_path / "ours.txt"), binary=False)
    assert theirs.index_to_key == wv.words
    assert theirs.vectors.tobytes() == wv.vectors.tobytes()


# ---------------------------------------------------------------------------
# safetensors
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("with_counts", [True, False])
def test_safetensors_round_trip_is_exact(tmp_path, with_counts):
    wv = awkward_vectors()
    if with_counts:
        wv = WordVectors(wv.words, wv.vectors, np.arange(len(wv))[::-1] * 3)
    path = tmp_path / "v.safetensors"
    wv.save(path)
    infos, metadata = safetensors.read_header(path)
    assert json.loads(metadata["words"]) == AWKWARD_WORDS
    assert infos["vectors"].dtype == "F32" and infos["vectors"].shape == (len(wv), 6)
    back = WordVectors.load(path)
    assert back.words == wv.words and back.vectors.tobytes() == wv.vectors.tobytes()
    if with_counts:
        assert infos["counts"].dtype == "I64"
        np.testing.assert_array_equal(back.counts, wv.counts)
    else:
        assert "counts" not in infos and back.counts is None
    assert os.listdir(tmp_path) == ["v.safetensors"]


def test_safetensors_of_something_else_is_refused(tmp_path):
    path = tmp_path / "table.safetensors"
    safetensors.save({"vectors": np.zeros((2, 3), np.float32)}, path)
    with pytest.raises(ValueError, match="not tinyembed word vectors"):
        WordVectors.load(path)
    safetensors.save({"vectors": np.zeros((2, 3), np.float32)}, path,
                     metadata={"format": "tinyembed.WordVectors", "words": '["a", "a"]'})
    with pytest.raises(ValueError, match="duplicate word 'a'"):
        WordVectors.load(path)


def test_load_vectors_tells_the_formats_apart_by_content(tmp_path):
    wv = random_vectors()
    wv.save(tmp_path / "a.bin")        # extensions deliberately misleading
    wv.save_word2vec_text(tmp_path / "b.safetensors")
    assert is_safetensors_file(tmp_path / "a.bin") and not is_safetensors_file(tmp_path / "b.safetensors")
    from_st, from_text = load_vectors(tmp_path / "a.bin"), load_vectors(tmp_path / "b.safetensors")
    assert from_st.words == from_text.words == wv.words
    np.testing.assert_array_equal(from_st.vectors, from_text.vectors)
    assert from_st.counts is not None and from_text.counts is None
    assert load_vectors(tmp_path / "a.bin", limit=3).words == wv.words[:3]
