"""tinyembed.text.tokenizers.base: the interface every tokenizer shares, special tokens,
the JSON files (round trips and every kind of corrupt file) and the registry."""

import json
import os

import numpy as np
import pytest

from tinyembed.nn import Embedding
from tinyembed.tensor import Tensor
from tinyembed.text.tokenizers import (
    FORMAT,
    TOKENIZERS,
    BPETokenizer,
    ByteTokenizer,
    CharTokenizer,
    HFTokenizer,
    SpecialTokens,
    Tokenizer,
    from_dict,
    load_tokenizer,
    tokenization_stats,
)

TEXT = "The Lee corpus: 300 stories, naïve café, 日本, 🤖 <eos>."


def _make(kind):
    if kind == "byte":
        return ByteTokenizer()
    if kind == "char":
        return CharTokenizer.train(TEXT + "abcdefghijklmnopqrstuvwxyz", specials={"pad": "<pad>", "unk": "<unk>"})
    if kind == "bpe":
        return BPETokenizer.train([TEXT] * 3 + ["the cat sat on the mat"] * 4, vocab_size=300)
    pytest.importorskip("tokenizers")
    return HFTokenizer.minilm()


@pytest.fixture(scope="module", params=["byte", "char", "bpe", "hf"])
def tok(request):
    return _make(request.param)


# ---------------------------------------------------------------------------
# The interface, for every type
# ---------------------------------------------------------------------------

def test_registry_names_every_type():
    assert TOKENIZERS == {"byte": ByteTokenizer, "char": CharTokenizer, "bpe": BPETokenizer,
                          "hf": HFTokenizer}


def test_ids_are_int64_rows_of_an_embedding_of_vocab_size(tok):
    ids = tok.encode(TEXT)
    assert ids.dtype == np.int64 and ids.ndim == 1 and len(ids) > 0
    assert ids.min() >= 0 and ids.max() < len(tok)
    emb = Embedding(len(tok), 5, seed=0)
    np.testing.assert_array_equal(emb(ids).data, emb.weight.data[ids])
    # The last id is a valid row too: vocab_size rows is exactly enough.
    np.testing.assert_array_equal(emb([len(tok) - 1]).data, emb.weight.data[-1:])


def test_decode_accepts_lists_arrays_and_tensors(tok):
    torch = pytest.importorskip("torch")
    ids = tok.encode(TEXT)
    expected = tok.decode(ids)
    assert tok.decode(ids.tolist()) == expected
    assert tok.decode(ids.astype(np.int32)) == expected
    assert tok.decode(ids.astype(np.uint16)) == expected
    assert tok.decode(Tensor(ids)) == expected
    assert tok.decode(torch.from_numpy(ids)) == expected
    with pytest.raises(IndexError, match=f"id {len(tok)} at position 2 is out of range"):
        tok.decode([ids[0], ids[1], len(tok)])
    with pytest.raises(TypeError, match="integers"):
        tok.decode([0.5])


def test_token_ids_and_tokens_are_inverse_over_the_vocabulary(tok):
    ids = range(len(tok)) if len(tok) < 1000 else range(0, len(tok), 37)
    for i in ids:
        assert tok.token_to_id(tok.id_to_token(i)) == i
    assert tok.special_ids == tuple(sorted(tok.token_to_id(t) for t in tok.specials.tokens()))


def test_plain_text_gives_no_special_id_but_unk(tok):
    text = " ".join(tok.specials.tokens()) + " " + TEXT
    ids = set(tok.encode(text).tolist())
    assert not ids & (set(tok.special_ids) - {tok.unk_id})
    wrapped = tok.encode(TEXT, add_special_tokens=True).tolist()
    if tok.bos_id is not None:
        assert wrapped[0] == tok.bos_id and wrapped[-1] == tok.eos_id
        assert wrapped[1:-1] == tok.encode(TEXT).tolist()


def test_encode_batch_is_encode_of_each(tok):
    texts = [TEXT, "", "the cat"]
    assert [a.tolist() for a in tok.encode_batch(texts)] == [tok.encode(t).tolist() for t in texts]
    with pytest.raises(TypeError, match="list of texts"):
        tok.encode_batch("one text")


def test_save_load_round_trip_gives_identical_encodings(tok, tmp_path):
    path = tmp_path / "tok.json"
    tok.save(path)
    assert os.listdir(tmp_path) == ["tok.json"]  # written under a temporary name, renamed
    loaded = load_tokenizer(path)
    assert type(loaded) is type(tok) and repr(loaded) == repr(tok)
    assert loaded.to_dict() == tok.to_dict()
    assert type(tok).load(path).encode(TEXT).tolist() == tok.encode(TEXT).tolist()
    ids = tok.encode(TEXT, add_special_tokens=True)
    assert loaded.decode(ids) == tok.decode(ids)
    data = json.loads(path.read_text())
    assert (data["format"], data["version"], data["type"]) == (FORMAT, 1, tok.type_name)
    tok.save(path)  # overwriting is fine
    assert load_tokenizer(path).to_dict() == tok.to_dict()


@pytest.mark.parametrize("kind", ["byte", "char", "bpe"])  # MiniLM normalizes: see test_tokenizers_hf
def test_exact_round_trip_for_own_tokenizers(kind):
    tok = _make(kind)
    assert tok.decode(tok.encode(TEXT)) == TEXT


def test_stats_count_tokens_bytes_and_unknowns():
    tok = CharTokenizer.train("abc")
    texts = ["abc", "abz€", ""]
    stats = tokenization_stats(tok, texts)
    assert (stats.texts, stats.characters, stats.utf8_bytes, stats.tokens) == (3, 7, 9, 7)
    assert stats.unknown == 2 and stats.distinct_ids == 4  # a, b, c and unk
    assert stats.bytes_per_token == 9 / 7 and stats.type == "char"
    assert json.loads(json.dumps(stats.to_dict())) == stats.to_dict()


def test_repr_shows_the_configuration():
    assert repr(ByteTokenizer()) == "ByteTokenizer(vocab_size=260, specials=['<pad>', '<unk>', '<bos>', '<eos>'])"
    bpe = BPETokenizer.train("ab ab ab", vocab_size=262, specials=SpecialTokens.none())
    assert repr(bpe) == "BPETokenizer(vocab_size=258, specials=[], merges=2, pretokenizer='gpt2')"


# ---------------------------------------------------------------------------
# Special tokens
# ---------------------------------------------------------------------------

def test_special_tokens_roles_order_and_sharing():
    specials = SpecialTokens(pad="<|endoftext|>", unk=None, bos="<|endoftext|>", eos="<|endoftext|>",
                             extra=("<mask>",))
    assert specials.tokens() == ["<|endoftext|>", "<mask>"]
    tok = ByteTokenizer(specials)
    assert tok.pad_id == tok.bos_id == tok.eos_id == 0 and tok.unk_id is None and len(tok) == 258
    assert SpecialTokens.coerce(specials.to_dict()) == specials


@pytest.mark.parametrize("bad, message", [
    (dict(pad=""), "pad must be a non-empty str"),
    (dict(eos=3), "eos must be a non-empty str"),
    (dict(extra=("<pad>",)), "'<pad>' appears twice"),
    (dict(extra=("<m>", "<m>")), "'<m>' appears twice"),
    (dict(extra="<m>"), "tuple of str"),
])
def test_bad_special_tokens_are_refused(bad, message):
    with pytest.raises((ValueError, TypeError), match=message):
        SpecialTokens(**bad)


def test_special_token_that_is_also_a_byte_token_is_refused():
    with pytest.raises(ValueError, match="token '!' appears twice, as ids 0 and 34"):  # 1 special + byte 33
        ByteTokenizer(SpecialTokens(pad="!", unk=None, bos=None, eos=None))
    with pytest.raises(ValueError, match="unknown special token roles \\['cls'\\]"):
        ByteTokenizer({"cls": "<cls>"})


# ---------------------------------------------------------------------------
# Corrupt files: each refused with a ValueError naming the file and the problem
# ---------------------------------------------------------------------------

@pytest.fixture
def saved(tmp_path):
    """(path, data) of a saved small BPE tokenizer, to break in a test."""
    path = tmp_path / "bpe.json"
    BPETokenizer.train(["low lower newest widest"] * 3, vocab_size=270).save(path)
    return path, json.loads(path.read_text())


def _rewrite(path, data):
    path.write_text(json.dumps(data))
    return path


def test_truncated_file_is_refused_as_truncated(saved):
    path, _ = saved
    path.write_bytes(path.read_bytes()[:150])
    with pytest.raises(ValueError, match=r"bpe.json.*invalid JSON \(the file ends early: truncated\?\)"):
        load_tokenizer(path)
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="invalid JSON"):
        load_tokenizer(path)
    path.write_bytes(b'{"format": \xff}')
    with pytest.raises(ValueError, match="not UTF-8"):
        load_tokenizer(path)
    with pytest.raises(FileNotFoundError):
        load_tokenizer(path.with_name("missing.json"))


@pytest.mark.parametrize("change, message", [
    (lambda d: d.update(type="wordpiece"), "unknown tokenizer type 'wordpiece'; known: bpe, byte, char, hf"),
    (lambda d: d.update(format="something.else"), "not a tinyembed tokenizer: 'format' is 'something.else'"),
    (lambda d: d.update(version=2), "format version 2 is newer than this tinyembed reads"),
    (lambda d: d.update(version="1"), "'version' must be a positive integer"),
    (lambda d: d.pop("merges"), "bpe tokenizer data has no 'merges' field"),
    (lambda d: d.update(merges="e s"), "'merges' must be a list, got str"),
    (lambda d: d["merges"].append(["e", "s"]), "gives 'es', which is already token 260: a token appears twice"),
    (lambda d: d["merges"].insert(0, ["zz", "q"]), "merge 0 \\['zz', 'q'\\] uses 'zz', which is not a token"),
    (lambda d: d["merges"].insert(0, ["e"]), "merge 0 must be a pair of token strings"),
    (lambda d: d.update(vocab_size=300), "'vocab_size' says 300 but its contents give 270 tokens"),
    (lambda d: d.pop("vocab_size"), "has no 'vocab_size' field"),
    (lambda d: d.update(specials={"pad": "<pad>", "mask": "<m>"}), "bad 'specials': unknown special token roles"),
    (lambda d: d.update(specials={"pad": "Ġ"}), "token 'Ġ' appears twice"),
    (lambda d: d.update(pretokenizer="llama3"), "unknown pretokenizer 'llama3'"),
    (lambda d: d.update(merge_counts=[1, 2]), "merge_counts must be 10 integers"),
])
def test_corrupt_bpe_file_is_refused_naming_the_problem(saved, change, message):
    path, data = saved
    change(data)
    with pytest.raises(ValueError, match=message) as info:
        load_tokenizer(_rewrite(path, data))
    assert "bpe.json" in str(info.value)


def test_wrong_kind_of_json_is_refused(saved):
    path, _ = saved
    with pytest.raises(ValueError, match="expected a JSON object, got a JSON list"):
        load_tokenizer(_rewrite(path, [1, 2]))
    with pytest.raises(ValueError, match="'format' is None"):
        load_tokenizer(_rewrite(path, {"model": {}}))  # a Hugging Face tokenizer.json, say


def test_load_of_another_type_is_refused(saved):
    path, _ = saved
    with pytest.raises(ValueError, match="holds a 'bpe' tokenizer, not a 'char' one"):
        CharTokenizer.load(path)
    assert isinstance(Tokenizer.load(path), BPETokenizer)


def test_corrupt_char_and_byte_files(tmp_path):
    path = tmp_path / "char.json"
    CharTokenizer.train("abc").save(path)
    data = json.loads(path.read_text())
    data["chars"] = ["a", "b", "a"]
    with pytest.raises(ValueError, match="token 'a' appears twice, as ids 4 and 6"):
        load_tokenizer(_rewrite(path, data))
    data["chars"] = ["a", "bc"]
    with pytest.raises(ValueError, match="must be one character, got 'bc'"):
        load_tokenizer(_rewrite(path, data))
    data.pop("chars")
    with pytest.raises(ValueError, match="no 'chars' field"):
        load_tokenizer(_rewrite(path, data))
    byte = ByteTokenizer().to_dict()
    byte["vocab_size"] = 256
    with pytest.raises(ValueError, match="'vocab_size' says 256 but its contents give 260"):
        from_dict(byte)
    byte["type"] = "char"
    with pytest.raises(ValueError, match="no 'chars' field"):
        from_dict(byte)
