"""tinyembed.text.tokenizers.char: a character vocabulary learned from a corpus, exact round
trips over it, and unknown characters."""

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyembed.text.corpus import corpus_text
from tinyembed.text.tokenizers import CharTokenizer, SpecialTokens, load_tokenizer


@pytest.fixture(scope="module")
def lee():
    return corpus_text("lee")


def test_vocabulary_is_corpus_characters_by_count_then_code_point(lee):
    tok = CharTokenizer.train(lee)
    counts = Counter(lee)  # brute-force reference
    expected = sorted(counts, key=lambda c: (-counts[c], c))
    assert list(tok.chars) == expected
    assert tok.id_to_token(4) == " "  # the most frequent character of English text
    assert len(tok) == 4 + len(counts)
    assert [tok.token_to_id(c) for c in expected] == list(range(4, len(tok)))


def test_round_trip_on_the_lee_corpus_is_exact(lee):
    tok = CharTokenizer.train(lee)
    ids = tok.encode(lee)
    assert ids.dtype == np.int64 and ids.shape == (len(lee),)
    assert tok.unk_id not in set(ids.tolist())
    assert tok.decode(ids) == lee
    lines = lee.splitlines()[:20]
    assert [tok.decode(i) for i in tok.encode_batch(lines)] == lines


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=1), st.text())
def test_round_trip_exact_when_every_character_is_known(corpus, text):
    tok = CharTokenizer.train(corpus, specials=SpecialTokens(pad="\x00<pad>", unk="\x00<unk>",
                                                              bos=None, eos=None))
    known = "".join(c for c in text if c in set(corpus))
    assert tok.decode(tok.encode(known)) == known
    ids = tok.encode(text)
    # Unknown characters, and only those, become unk.
    assert [i == tok.unk_id for i in ids.tolist()] == [c not in set(corpus) for c in text]


def test_code_points_not_graphemes():
    text = "e\u0301 👍🏽 日本"
    tok = CharTokenizer.train(text)
    assert len(tok.encode(text)) == len(text) == 8  # e, U+0301, ' ', 👍, U+1F3FD, ' ', 日, 本
    assert tok.decode(tok.encode(text)) == text


def test_unknown_characters_become_unk_and_decode_as_its_text():
    tok = CharTokenizer.train("abracadabra")
    ids = tok.encode("cab!?")
    assert ids.tolist() == [tok.token_to_id("c"), tok.token_to_id("a"), tok.token_to_id("b"),
                            tok.unk_id, tok.unk_id]
    assert tok.decode(ids) == "cab<unk><unk>"
    assert tok.decode(ids, skip_special_tokens=True) == "cab"
    # A special token's text is plain text: its characters, unknown here.
    assert tok.tokenize("<bad>") == ["<unk>", "b", "a", "d", "<unk>"]


def test_without_unk_an_unknown_character_is_refused_naming_it():
    tok = CharTokenizer.train("abc", specials=SpecialTokens(unk=None))
    with pytest.raises(ValueError, match=r"'z' \(U\+007A\) at position 2 .* no unk token"):
        tok.encode("abz")


def test_min_count_and_vocab_size_keep_the_most_frequent():
    tok = CharTokenizer.train(["aaaa", "bbb", "cc", "d"], min_count=2)
    assert tok.chars == ("a", "b", "c")
    capped = CharTokenizer.train("aaaabbbccd", vocab_size=6)
    assert len(capped) == 6 and capped.chars == ("a", "b")


def test_vocab_too_small_for_the_special_tokens_names_both_numbers():
    with pytest.raises(ValueError, match="vocab_size 4 is too small: the 4 special tokens"):
        CharTokenizer.train("abc", vocab_size=4)
    with pytest.raises(ValueError, match="vocab_size 2 is too small: the 2 special"):
        CharTokenizer.train("abc", vocab_size=2, specials={"pad": "<p>", "unk": "<u>"})


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="also special tokens"):
        CharTokenizer.train("a|b", specials=SpecialTokens(extra=("|",)))
    with pytest.raises(ValueError, match="min_count must be a positive integer, got 0"):
        CharTokenizer.train("abc", min_count=0)
    with pytest.raises(ValueError, match="no character occurs 5 times"):
        CharTokenizer.train("abc", min_count=5)
    with pytest.raises(ValueError, match=r"chars\[1\] must be one character, got 'bc'"):
        CharTokenizer(["a", "bc"])
    with pytest.raises(ValueError, match="token 'a' appears twice, as ids 4 and 6"):
        CharTokenizer(["a", "b", "a"])
    with pytest.raises(TypeError, match="got bytes"):
        CharTokenizer.train(b"abc")


def test_lone_surrogates_are_characters_and_survive_a_file(tmp_path):
    # Code points, so a lone surrogate is a character like any other; the file is ASCII JSON.
    text = "a\ud800b"
    tok = CharTokenizer.train(text)
    assert tok.decode(tok.encode(text)) == text
    tok.save(tmp_path / "chars.json")
    (tmp_path / "chars.json").read_bytes().decode("ascii")
    loaded = load_tokenizer(tmp_path / "chars.json")
    assert loaded.chars == tok.chars and loaded.decode(loaded.encode(text)) == text
