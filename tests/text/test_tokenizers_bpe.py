"""tinyembed.text.tokenizers.bpe: the BPE trainer against a hand-worked example and a
brute-force trainer that recounts every pair at every step; the encoder against merges
applied one by one in rank order and against Hugging Face's BPE model given our merges."""

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyembed.text.corpus import corpus_text
from tinyembed.text.tokenizers import BPETokenizer, ByteTokenizer, SpecialTokens, learn_merges, pretokenize


@pytest.fixture(scope="module")
def lee_lines():
    return corpus_text("lee").splitlines()


@pytest.fixture(scope="module")
def lee_bpe(lee_lines):
    return BPETokenizer.train(lee_lines, vocab_size=1500)


# ---------------------------------------------------------------------------
# A brute-force reference: recount every pair of every word at every step
# ---------------------------------------------------------------------------

def _apply(segments: list[bytes], left: bytes, right: bytes) -> list[bytes]:
    out, i = [], 0
    while i < len(segments):
        if i + 1 < len(segments) and segments[i] == left and segments[i + 1] == right:
            out.append(left + right)
            i += 2
        else:
            out.append(segments[i])
            i += 1
    return out


def brute_force_merges(word_counts, num_merges, min_frequency):
    """The spec, step by step: count all adjacent pairs (weighted by word count); merge the
    most frequent pair that makes a new token, ties to the smallest (left, right) bytes."""
    segments = {w: [bytes([b]) for b in w] for w in word_counts}
    tokens = {bytes([b]) for b in range(256)}
    merges, counts = [], []
    for _ in range(num_merges):
        pairs = Counter()
        for word, segs in segments.items():
            for pair in zip(segs, segs[1:], strict=False):
                pairs[pair] += word_counts[word]
        eligible = {p: c for p, c in pairs.items() if p[0] + p[1] not in tokens}
        if not eligible or max(eligible.values()) < min_frequency:
            break
        top = max(eligible.values())
        pair = min(p for p, c in eligible.items() if c == top)
        merges.append(pair)
        counts.append(top)
        tokens.add(pair[0] + pair[1])
        segments = {w: _apply(s, *pair) for w, s in segments.items()}
    return merges, counts, segments


# ---------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------

def test_hand_worked_low_lower_newest_widest():
    # Sennrich et al.'s example, one word per text (no spaces): low x5, lower x2,
    # newest x6, widest x3. Pair counts at the start: e-s 9, s-t 9, w-e 8, l-o 7, o-w 7,
    # n-e 6, e-w 6, w-i 3, i-d 3, d-e 3, e-r 2.
    #  1. e-s and s-t tie at 9; (b"e", b"s") < (b"s", b"t")          -> "es"     (9)
    #  2. newest = n e w es t, widest = w i d es t: es-t 9 is the top  -> "est"    (9)
    #     (w-e fell to 2: newest's "w e" became "w es")
    #  3. l-o 7 and o-w 7 tie; b"l" < b"o"                            -> "lo"     (7)
    #  4. lo-w 7                                                      -> "low"    (7)
    #  5. n-e, e-w, w-est tie at 6; b"e" < b"n" < b"w"                -> "ew"     (6)
    #  6. newest = n ew est: n-ew 6, ew-est 6; b"ew" < b"n"           -> "ewest"  (6)
    #  7. n-ewest 6                                                   -> "newest" (6)
    words = ["low"] * 5 + ["lower"] * 2 + ["newest"] * 6 + ["widest"] * 3
    tok = BPETokenizer.train(words, vocab_size=4 + 256 + 7)
    assert tok.merges == [("e", "s"), ("es", "t"), ("l", "o"), ("lo", "w"), ("e", "w"),
                          ("ew", "est"), ("n", "ewest")]
    assert tok.merge_counts == [9, 9, 7, 7, 6, 6, 6]
    assert len(tok) == 267 and tok.id_to_token(266) == "newest"
    assert tok.tokenize("lowest") == ["low", "est"]
    assert tok.tokenize("newer") == ["n", "ew", "e", "r"]
    assert tok.tokenize("widest") == ["w", "i", "d", "est"]
    # The next merge (8) would be w-i, i-d or d-est at 3: (b"d", b"est") is smallest.
    assert BPETokenizer.train(words, vocab_size=268).merges[7] == ("d", "est")


def test_training_equals_brute_force_recount_on_lee_lines(lee_lines):
    text = lee_lines[:12]
    tok = BPETokenizer.train(text, vocab_size=260 + 150)
    word_counts = Counter(w.encode() for line in text for w in pretokenize(line))
    merges, counts, segments = brute_force_merges(word_counts, 150, 2)
    assert [tuple(tok.token_bytes(tok.token_to_id(s)) for s in m) for m in tok.merges] == merges
    assert tok.merge_counts == counts
    # Encoding a training word gives exactly the segmentation training left it in.
    for word, segs in segments.items():
        assert [tok.token_bytes(i) for i in tok.encode(word.decode())] == segs


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.text(alphabet="abc ", min_size=1, max_size=8), st.integers(1, 6),
                       min_size=1, max_size=6),
       st.integers(1, 3))
def test_training_equals_brute_force_on_many_ties(words, min_frequency):
    # A three-letter alphabet makes equal counts common, so tie-breaking is exercised.
    word_counts = Counter({w.encode(): n for w, n in words.items()})
    ours = learn_merges(word_counts, 30, min_frequency)
    reference = brute_force_merges(word_counts, 30, min_frequency)
    assert ours == reference[:2]


def test_merge_counts_never_increase_and_vocab_is_reached(lee_bpe):
    counts = lee_bpe.merge_counts
    assert len(lee_bpe) == 1500 and len(counts) == 1500 - 260
    assert all(a >= b for a, b in zip(counts, counts[1:], strict=False))
    assert counts[-1] >= 2  # min_frequency


def test_training_stops_when_no_pair_is_frequent_enough():
    tok = BPETokenizer.train("abcd abcd", vocab_size=1000)  # words "abcd" x1, " abcd" x1
    assert len(tok) < 1000 and tok.merges[:3] == [("a", "b"), ("ab", "c"), ("abc", "d")]
    assert all(c >= 2 for c in tok.merge_counts)


def test_zero_merges_is_the_byte_tokenizer():
    tok = BPETokenizer.train("some text", vocab_size=260)
    assert tok.merges == []
    text = "any text, even 日本 and 🤖"
    assert tok.encode(text).tolist() == ByteTokenizer().encode(text).tolist()


def test_vocab_too_small_for_bytes_and_specials_names_both_numbers():
    with pytest.raises(ValueError, match=r"vocab_size 259 is too small: the 256 byte tokens and "
                                         r"the 4 special tokens .* need 260 ids"):
        BPETokenizer.train("abc", vocab_size=259)
    with pytest.raises(ValueError, match="vocab_size 300 is too small: .* 50 special tokens .* 306"):
        BPETokenizer.train("abc", vocab_size=300,
                           specials=SpecialTokens(extra=tuple(f"<x{i}>" for i in range(46))))
    assert len(BPETokenizer.train("abc", vocab_size=256, specials=SpecialTokens.none())) == 256


def test_bad_training_input_is_refused():
    with pytest.raises(ValueError, match="corpus text 1: .* lone surrogate U\\+D800 at position 1"):
        BPETokenizer.train(["fine", "a\ud800"], vocab_size=300)
    with pytest.raises(ValueError, match="min_frequency must be a positive integer, got 0"):
        BPETokenizer.train("abc", vocab_size=300, min_frequency=0)
    with pytest.raises(ValueError, match="unknown pretokenizer 'llama'"):
        BPETokenizer.train("abc", vocab_size=300, pretokenizer="llama")
    with pytest.raises(TypeError, match="str texts, got int at item 1"):
        BPETokenizer.train(["abc", 3], vocab_size=300)


# ---------------------------------------------------------------------------
# Pre-tokenization and encoding
# ---------------------------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(st.text())
def test_pretokenized_words_join_back_to_the_text(text):
    assert "".join(pretokenize(text)) == text


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.sampled_from("abcXYZ019 ',.!?-_\t\n"), max_size=40))
def test_pretokenizer_matches_gpt2_pattern_in_huggingface_on_ascii(text):
    # HF's ByteLevel pre-tokenizer runs GPT-2's \p{L}/\p{N} pattern; on ASCII our stdlib
    # rendering of it must split identically (HF then writes bytes in GPT-2's alphabet).
    tokenizers = pytest.importorskip("tokenizers")
    hf = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    expected = [w for w, _ in hf.pre_tokenize_str(text)]
    assert [w.replace(" ", "Ġ").replace("\t", "ĉ").replace("\n", "Ċ") for w in pretokenize(text)] == expected


def _sequential_encode(tok: BPETokenizer, text: str) -> list[bytes]:
    """Reference: each word as bytes, then every merge applied in rank order, once."""
    out = []
    for word in pretokenize(text):
        segs = [bytes([b]) for b in word.encode()]
        for left, right in tok.merges:
            segs = _apply(segs, tok.token_bytes(tok.token_to_id(left)), tok.token_bytes(tok.token_to_id(right)))
        out.extend(segs)
    return out


@settings(max_examples=50, deadline=None)
@given(text=st.text(max_size=60))
def test_encode_applies_merges_in_rank_order_and_round_trips(lee_bpe, text):
    ids = lee_bpe.encode(text)
    assert ids.dtype == np.int64
    assert [lee_bpe.token_bytes(i) for i in ids.tolist()] == _sequential_encode(lee_bpe, text)
    assert lee_bpe.decode(ids) == text
    assert not set(ids.tolist()) & set(lee_bpe.special_ids)


@settings(max_examples=15, deadline=None)
@given(word=st.text(alphabet="etaoinsh", min_size=100, max_size=400))
def test_long_words_get_the_same_rank_order_segmentation(lee_bpe, word):
    # One long word (no spaces) makes many merges apply, often overlapping.
    assert [lee_bpe.token_bytes(i) for i in lee_bpe.encode(word).tolist()] == _sequential_encode(lee_bpe, word)


def test_round_trip_on_every_lee_line_and_compression(lee_bpe, lee_lines):
    ids = lee_bpe.encode_batch(lee_lines)
    assert [lee_bpe.decode(i) for i in ids] == lee_lines
    n_tokens, n_bytes = sum(map(len, ids)), sum(len(line.encode()) for line in lee_lines)
    assert n_tokens < n_bytes / 3  # 1240 merges of the corpus itself compress it well


def test_encoder_matches_huggingface_bpe_model_given_our_merges(lee_bpe, lee_lines):
    tokenizers = pytest.importorskip("tokenizers")
    vocab = {lee_bpe.id_to_token(i): i for i in range(len(lee_bpe))}
    hf = tokenizers.Tokenizer(tokenizers.models.BPE(vocab=vocab, merges=lee_bpe.merges))
    # Words split by our pre-tokenizer; HF maps each to GPT-2's byte alphabet and merges it.
    hf.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    texts = lee_lines[:60] + ["Unseen words: zygomorphic, überqualifiziert, 東京, 🤖🤖!"]
    for text in texts:
        expected = hf.encode(pretokenize(text), is_pretokenized=True, add_special_tokens=False).ids
        assert lee_bpe.encode(text).tolist() == expected


def test_special_tokens_and_invalid_utf8(lee_bpe):
    tok = lee_bpe
    ids = tok.encode("the <eos>", add_special_tokens=True)
    assert ids[0] == tok.bos_id and ids[-1] == tok.eos_id
    assert tok.eos_id not in ids[1:-1].tolist()
    assert tok.decode(ids) == "<bos>the <eos><eos>"
    assert tok.decode(ids, skip_special_tokens=True) == "the <eos>"
    cut = tok.encode("€")[:-1]  # "€" is 3 bytes; dropping its last token leaves a prefix
    assert tok.decode(cut) == "\ufffd"
    bad = tok.encode("ab") .tolist() + [4 + 0xFF]
    with pytest.raises(ValueError, match=r"byte 0xFF of the token at position 1 \(id 259\)"):
        tok.decode(bad, errors="strict")
    with pytest.raises(ValueError, match="lone surrogate U\\+DC00 at position 3"):
        tok.encode("abc\udc00")
