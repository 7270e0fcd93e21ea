"""Bits per byte: the total negative log-likelihood of a text in bits, over its UTF-8 bytes, whatever the tokenizer."""

import math

import numpy as np
import pytest

from tinyembed.study.flops import bits_per_byte, held_out_bits_per_byte
from tinyembed.text.tokenizers import BPETokenizer, ByteTokenizer

PAD = {"pad": "<pad>"}


def unigram_model(probabilities: dict[int, float], vocab_size: int):
    """A model that ignores its context: every row of logits is log p (float64, -inf where p = 0)."""
    logits = np.full(vocab_size, -np.inf)
    for token, p in probabilities.items():
        logits[token] = math.log(p)
    return lambda ids: np.tile(logits, (len(ids), 1))


def test_a_unigram_byte_model_scores_abracadabra_as_counted_by_hand():
    tok = ByteTokenizer(specials=PAD)
    text = "abracadabra"  # a 5, b 2, r 2, c 1, d 1: 11 bytes
    counts = {"a": 5, "b": 2, "r": 2, "c": 1, "d": 1}
    model = unigram_model({tok.token_to_id(c): n / 11 for c, n in counts.items()}, tok.vocab_size)
    by_hand = -(5 * math.log2(5 / 11) + 2 * math.log2(2 / 11) + 2 * math.log2(2 / 11)
                + math.log2(1 / 11) + math.log2(1 / 11)) / 11
    got = held_out_bits_per_byte(model, tok.encode(text), context=3, pad_id=tok.pad_id, n_bytes=11)
    assert got == pytest.approx(by_hand, rel=1e-12)
    assert by_hand == pytest.approx(2.0404, abs=1e-4)


def test_a_unigram_bpe_model_divides_the_bits_of_its_tokens_by_the_texts_bytes():
    tok = BPETokenizer([("a", "b")], specials=PAD)
    text = "abab c"  # words 'abab' and ' c': tokens ab ab Ġ c, 4 tokens for 6 bytes
    assert tok.tokenize(text) == ["ab", "ab", "Ġ", "c"]
    ids = {t: tok.token_to_id(t) for t in ("ab", "Ġ", "c")}
    model = unigram_model({ids["ab"]: 1 / 2, ids["Ġ"]: 1 / 4, ids["c"]: 1 / 4}, tok.vocab_size)
    # By hand: -log2(1/2) twice + -log2(1/4) twice = 1 + 1 + 2 + 2 = 6 bits over 6 bytes.
    assert held_out_bits_per_byte(model, tok.encode(text), context=2, pad_id=tok.pad_id, n_bytes=6) == \
        pytest.approx(1.0, rel=1e-12)


def test_a_byte_model_that_predicts_uniformly_scores_exactly_8_bits_per_byte():
    tok = ByteTokenizer(specials=PAD)
    text = "Zürich, 東京 and naïve café\n"  # multi-byte characters: bytes, not characters, are counted
    ids = tok.encode(text)
    byte_ids = [i for i in range(tok.vocab_size) if i != tok.pad_id]
    assert len(byte_ids) == 256
    model = unigram_model({i: 1 / 256 for i in byte_ids}, tok.vocab_size)  # the padding is never predicted
    assert len(ids) == len(text.encode("utf-8")) > len(text)
    assert held_out_bits_per_byte(model, ids, context=4, pad_id=tok.pad_id, n_bytes=len(ids)) == \
        pytest.approx(8.0, abs=1e-12)


def test_every_token_of_the_stream_is_scored_the_first_from_padding():
    seen = []

    def model(ids):
        seen.append(np.array(ids))
        return np.zeros((len(ids), 10))

    bpb = held_out_bits_per_byte(model, np.array([3, 4, 5, 6, 7]), context=2, pad_id=0, n_bytes=5, batch_size=2)
    windows = np.concatenate(seen)
    np.testing.assert_array_equal(windows, [[0, 0], [0, 3], [3, 4], [4, 5], [5, 6]])
    assert bpb == pytest.approx(math.log2(10))  # five tokens, log2(10) bits each, over five bytes


def test_bits_per_byte_refuses_a_text_of_no_bytes():
    with pytest.raises(ValueError, match="n_bytes"):
        bits_per_byte(1.0, 0)
