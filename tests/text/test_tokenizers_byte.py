"""tinyembed.text.tokenizers.byte: UTF-8 bytes as ids, exact round trips, and the documented
handling of text UTF-8 cannot encode and of ids that are not UTF-8.

References: Python's own UTF-8 codec, the Unicode Standard's worked example of
"substitution of maximal subparts", and Hugging Face's byte-level alphabet and decoder.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyembed.text.tokenizers import BYTE_TO_CHAR, ByteTokenizer, SpecialTokens

TEXTS = ["", "hello", "naïve café", "日本語のテキスト", "emoji 👩🏽‍💻 and 🤖",
         "e\u0301 (e + combining acute)", "tab\tnewline\ncr\r\nnul\x00end", "<eos> <pad> look like specials"]


@pytest.fixture(scope="module")
def tok():
    return ByteTokenizer()


# ---------------------------------------------------------------------------
# Layout and round trips
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("text", TEXTS)
def test_ids_are_the_utf8_bytes_after_the_specials(tok, text):
    ids = tok.encode(text)
    assert ids.dtype == np.int64 and ids.ndim == 1
    assert ids.tolist() == [4 + b for b in text.encode("utf-8")]
    assert tok.decode(ids) == text


@settings(max_examples=300, deadline=None)
@given(st.text())  # any str without lone surrogates (hypothesis leaves them out)
def test_decode_encode_round_trip_is_exact_for_any_text(text):
    tok = ByteTokenizer()
    assert tok.decode(tok.encode(text)) == text
    assert tok.decode(tok.encode(text, add_special_tokens=True), skip_special_tokens=True) == text


def test_layout_specials_first_then_256_bytes(tok):
    assert len(tok) == tok.vocab_size == 260
    assert (tok.pad_id, tok.unk_id, tok.bos_id, tok.eos_id) == (0, 1, 2, 3)
    assert [tok.id_to_token(i) for i in range(4)] == ["<pad>", "<unk>", "<bos>", "<eos>"]
    assert [tok.token_bytes(4 + b) for b in range(256)] == [bytes([b]) for b in range(256)]
    assert tok.token_bytes(0) == b""
    no_specials = ByteTokenizer(SpecialTokens.none())
    assert len(no_specials) == 256 and no_specials.encode("A").tolist() == [65]
    assert no_specials.pad_id is None and no_specials.special_ids == ()


def test_token_strings_are_huggingface_byte_level_alphabet(tok):
    tokenizers = pytest.importorskip("tokenizers")
    # HF's alphabet is GPT-2's byte -> char map, given as a set; ours must be the same map.
    assert set(BYTE_TO_CHAR) == set(tokenizers.pre_tokenizers.ByteLevel.alphabet())
    assert len(set(BYTE_TO_CHAR)) == 256
    # Printable Latin-1 bytes keep their character; space and newline move (GPT-2's "Ġ", "Ċ").
    assert BYTE_TO_CHAR[ord("A")] == "A" and BYTE_TO_CHAR[0xE9] == "é"
    assert (BYTE_TO_CHAR[ord(" ")], BYTE_TO_CHAR[ord("\n")], BYTE_TO_CHAR[0]) == ("Ġ", "Ċ", "Ā")
    # And HF's byte-level pre-tokenizer writes a text's bytes with exactly these characters.
    text = "Hi there,\nnaïve 🤖"
    hf = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    assert "".join(w for w, _ in hf.pre_tokenize_str(text)) == "".join(tok.tokenize(text))
    for i in range(4, 260):
        assert tok.token_to_id(tok.id_to_token(i)) == i


def test_plain_text_never_gives_special_ids_unless_asked(tok):
    text = "<pad><unk><bos><eos>"
    ids = tok.encode(text)
    assert not set(ids.tolist()) & set(tok.special_ids)
    assert tok.decode(ids) == text
    wrapped = tok.encode("hi", add_special_tokens=True)
    assert wrapped.tolist() == [tok.bos_id, 4 + ord("h"), 4 + ord("i"), tok.eos_id]
    assert tok.decode(wrapped) == "<bos>hi<eos>"
    assert tok.decode(wrapped, skip_special_tokens=True) == "hi"
    only_eos = ByteTokenizer({"eos": "</s>"})
    assert only_eos.encode("a", add_special_tokens=True).tolist() == [1 + 97, 0]


# ---------------------------------------------------------------------------
# Text UTF-8 cannot encode: lone surrogates are refused, naming the position
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("text, position, code", [("ab\ud800c", 2, "D800"), ("\udfff", 0, "DFFF"),
                                                   ("😀\udc80", 1, "DC80")])
def test_lone_surrogate_is_refused_with_its_position(tok, text, position, code):
    with pytest.raises(ValueError, match=f"lone surrogate U\\+{code} at position {position}"):
        tok.encode(text)


def test_surrogate_pair_written_as_one_character_is_fine(tok):
    # "\ud83d\ude00" typed as two escapes in Python source is two lone surrogates, not 😀.
    assert tok.decode(tok.encode("\U0001F600")) == "😀"
    with pytest.raises(ValueError, match="position 0"):
        tok.encode("\ud83d\ude00")


# ---------------------------------------------------------------------------
# Ids that are not UTF-8
# ---------------------------------------------------------------------------

def _byte_ids(data: bytes) -> list[int]:
    return [4 + b for b in data]


def test_invalid_utf8_replaced_by_maximal_subparts_as_the_unicode_standard(tok):
    # The Unicode Standard (ch. 3, "U+FFFD Substitution of Maximal Subparts") example:
    # 61 F1 80 80 E1 80 C2 62 80 63 80 BF 64 -> a FFFD FFFD FFFD b FFFD c FFFD FFFD d
    data = bytes.fromhex("61F18080E180C262806380BF64")
    assert tok.decode(_byte_ids(data)) == "a\ufffd\ufffd\ufffdb\ufffdc\ufffd\ufffdd"
    assert tok.decode(_byte_ids(b"\xe2\x82")) == "\ufffd"           # a cut-off euro sign
    assert tok.decode(_byte_ids(b"\xc0\xaf")) == "\ufffd\ufffd"     # overlong "/"
    assert tok.decode(_byte_ids(b"\xed\xa0\x80")) == "\ufffd" * 3   # an encoded surrogate


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=40))
def test_replace_decoding_matches_python_and_huggingface_byte_level(data):
    tok = ByteTokenizer()
    got = tok.decode(_byte_ids(data))
    assert got == data.decode("utf-8", "replace")
    tokenizers = pytest.importorskip("tokenizers")
    # HF's ByteLevel decoder is Rust's String::from_utf8_lossy: an independent implementation.
    assert got == tokenizers.decoders.ByteLevel().decode([BYTE_TO_CHAR[b] for b in data])


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=40))
def test_surrogateescape_decoding_keeps_any_bytes(data):
    tok = ByteTokenizer()
    text = tok.decode(_byte_ids(data), errors="surrogateescape")
    assert text.encode("utf-8", "surrogateescape") == data


def test_strict_decoding_names_the_token_position_and_byte(tok):
    ids = _byte_ids("ok é".encode()) + [tok.eos_id] + _byte_ids(b"x\xff")
    with pytest.raises(ValueError, match=r"byte 0xFF of the token at position 7 \(id 259\)"):
        tok.decode(ids, errors="strict")
    assert tok.decode(ids, errors="ignore") == "ok é<eos>x"
    assert tok.decode(ids, errors="backslashreplace") == "ok é<eos>x\\xff"
    with pytest.raises(ValueError, match="unknown error handler errors='lenient'"):
        tok.decode(ids, errors="lenient")


def test_special_token_between_the_bytes_of_a_character_splits_it(tok):
    # Runs of bytes decode separately around a special token (documented): é's two bytes
    # apart become two replacement characters.
    e1, e2 = "é".encode()
    assert tok.decode([4 + e1, tok.eos_id, 4 + e2]) == "\ufffd<eos>\ufffd"
    assert tok.decode([4 + e1, tok.eos_id, 4 + e2], skip_special_tokens=True) == "\ufffd\ufffd"


def test_bad_ids_are_refused_naming_them(tok):
    with pytest.raises(IndexError, match="id 260 at position 1 is out of range .* 260 tokens"):
        tok.decode([4, 260])
    with pytest.raises(IndexError, match="id -1 at position 0"):
        tok.decode(np.array([-1, 5]))
    with pytest.raises(TypeError, match="integers, got dtype float64"):
        tok.decode(np.array([1.0]))
    with pytest.raises(ValueError, match=r"1-D .* shape \(1, 2\)"):
        tok.decode([[4, 5]])
    with pytest.raises(IndexError, match="id 300"):
        tok.id_to_token(300)
    with pytest.raises(TypeError, match="must be a str"):
        tok.encode(b"bytes")
    assert tok.decode([]) == "" and tok.encode("").dtype == np.int64
    assert tok.token_to_id("not a token") is None
