"""tinyembed.text.tokenizers.hf: Hugging Face tokenizer.json files behind our interface,
checked against the ``tokenizers`` package run directly."""

import json

import numpy as np
import pytest

from tinyembed.io import assets
from tinyembed.text.corpus import corpus_text
from tinyembed.text.tokenizers import HFTokenizer, SpecialTokens, load_tokenizer

tokenizers = pytest.importorskip("tokenizers")


@pytest.fixture(scope="module")
def minilm_json():
    return assets.minilm_tokenizer_json().decode("utf-8")


@pytest.fixture(scope="module")
def minilm(minilm_json):
    return HFTokenizer.from_str(minilm_json)


def _reference(minilm_json, parse_specials=True):
    """The tokenizers package on its own, truncation and padding off."""
    tok = tokenizers.Tokenizer.from_str(minilm_json)
    tok.no_truncation()
    tok.no_padding()
    tok.encode_special_tokens = not parse_specials
    return tok


def test_minilm_ids_equal_tokenizers_directly_on_the_lee_corpus(minilm, minilm_json):
    lines = corpus_text("lee").splitlines()
    reference = _reference(minilm_json)
    expected = [e.ids for e in reference.encode_batch(lines, add_special_tokens=False)]
    ours = minilm.encode_batch(lines)
    assert all(a.dtype == np.int64 for a in ours)
    assert [a.tolist() for a in ours] == expected
    assert sum(map(len, expected)) > 70_000  # the whole corpus, no truncation at 128
    assert minilm.encode(lines[0]).tolist() == expected[0]
    with_specials = minilm.encode(lines[0], add_special_tokens=True)
    assert with_specials.tolist() == reference.encode(lines[0]).ids
    assert with_specials[0] == 101 and with_specials[-1] == 102


def test_minilm_specials_are_read_from_the_file(minilm):
    assert minilm.specials == SpecialTokens(pad="[PAD]", unk="[UNK]", bos="[CLS]", eos="[SEP]",
                                            extra=("[MASK]",))
    assert (minilm.pad_id, minilm.unk_id, minilm.bos_id, minilm.eos_id) == (0, 100, 101, 102)
    assert minilm.special_ids == (0, 100, 101, 102, 103)
    assert len(minilm) == minilm.vocab_size == 30522
    assert minilm.token_to_id("hello") == 7592 and minilm.id_to_token(7592) == "hello"
    assert minilm.token_to_id("no-such-token-here") is None
    with pytest.raises(IndexError, match="id 30522"):
        minilm.id_to_token(30522)


def test_unknown_characters_are_unk(minilm):
    # No WordPiece in MiniLM's vocabulary spells these, so the whole word is [UNK].
    assert minilm.encode("hello 🤖 ☃").tolist() == [7592, 100, 100]
    assert minilm.tokenize("hello 🤖") == ["hello", "[UNK]"]
    assert minilm.decode([7592, 100]) == "hello [UNK]"
    assert minilm.decode([7592, 100], skip_special_tokens=True) == "hello"


def test_special_token_text_is_plain_text_unless_asked(minilm, minilm_json):
    text = "a [CLS] b"
    assert 101 not in minilm.encode(text).tolist()
    assert minilm.encode(text).tolist() == _reference(minilm_json, parse_specials=False).encode(
        text, add_special_tokens=False).ids
    parsing = HFTokenizer.from_str(minilm_json, split_special_tokens=False)
    assert parsing.encode(text).tolist() == _reference(minilm_json).encode(text, add_special_tokens=False).ids
    assert 101 in parsing.encode(text).tolist()


def test_decode_is_the_files_decoder_not_an_exact_inverse(minilm):
    ids = minilm.encode("Héllo, Wörld!")
    assert minilm.decode(ids) == "hello, world!"  # uncased, accents stripped (documented)
    assert minilm.decode(np.asarray(ids, dtype=np.int32)) == "hello, world!"


def test_lone_surrogate_is_refused_naming_its_position(minilm):
    with pytest.raises(ValueError, match="lone surrogate U\\+D800 at position 1"):
        minilm.encode("a\ud800")


def _wordpiece_json(post_processor: dict) -> str:
    model = tokenizers.models.WordPiece({"[UNK]": 0, "<s>": 1, "</s>": 2, "hi": 3, "there": 4},
                                        unk_token="[UNK]")
    tok = tokenizers.Tokenizer(model)
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    tok.add_special_tokens(["[UNK]", "<s>", "</s>"])
    data = json.loads(tok.to_str())
    data["post_processor"] = post_processor
    return json.dumps(data)


def test_specials_inferred_from_roberta_processing_and_overridable():
    text = _wordpiece_json({"type": "RobertaProcessing", "sep": ["</s>", 2], "cls": ["<s>", 1],
                            "trim_offsets": True, "add_prefix_space": False})
    tok = HFTokenizer.from_str(text)
    assert tok.specials == SpecialTokens(pad=None, unk="[UNK]", bos="<s>", eos="</s>")
    assert tok.encode("hi there", add_special_tokens=True).tolist() == [1, 3, 4, 2]
    assert tok.encode("hi you").tolist() == [3, 0]
    custom = HFTokenizer.from_str(text, specials=SpecialTokens(pad=None, unk="[UNK]", bos=None, eos="</s>"))
    assert custom.bos_id is None and custom.eos_id == 2
    with pytest.raises(ValueError, match=r"special tokens \['<pad>'\] are not in the tokenizer's vocabulary"):
        HFTokenizer.from_str(text, specials=SpecialTokens(pad="<pad>", unk="[UNK]", bos=None, eos=None))


def test_save_load_keeps_the_tokenizer_and_its_settings(tmp_path, minilm):
    path = tmp_path / "minilm.json"
    minilm.save(path)
    loaded = HFTokenizer.load(path)
    assert isinstance(loaded, HFTokenizer) and loaded.specials == minilm.specials
    text = "The quick brown fox [SEP] 🤖"
    assert loaded.encode(text).tolist() == minilm.encode(text).tolist()
    assert loaded.to_dict() == minilm.to_dict()
    assert repr(loaded) == repr(minilm)


def test_corrupt_tokenizer_json_is_refused_clearly(tmp_path, minilm_json):
    bad = tmp_path / "tokenizer.json"
    bad.write_text(minilm_json[: len(minilm_json) // 2])
    with pytest.raises(ValueError, match="tokenizer.json.*not a tokenizer.json: invalid JSON"):
        HFTokenizer.from_file(bad)
    bad.write_text(json.dumps({"model": {"type": "WordPiece", "vocab": "not a dict"}}))
    with pytest.raises(ValueError, match="tokenizers cannot read this tokenizer.json"):
        HFTokenizer.from_file(bad)
    bad.write_text("[1, 2]")
    with pytest.raises(ValueError, match="expected a JSON object with a 'model'"):
        HFTokenizer.from_file(bad)
    bad.write_bytes(b"\xff\xfe{}")
    with pytest.raises(ValueError, match="not UTF-8"):
        HFTokenizer.from_file(bad)
    # Our own file around a broken tokenizer.json names the field.
    saved = tmp_path / "saved.json"
    HFTokenizer.from_str(minilm_json).save(saved)
    data = json.loads(saved.read_text())
    data["tokenizer_json"] = data["tokenizer_json"][:1000]
    saved.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="saved.json.*hf tokenizer data: not a tokenizer.json"):
        load_tokenizer(saved)
