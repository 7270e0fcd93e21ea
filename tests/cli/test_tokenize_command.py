"""tinyembed.cli.tokenize: the command only parses, calls the library and prints."""

import argparse
import json
import re

import pytest

from tinyembed.cli import tokenize
from tinyembed.text.tokenizers import BPETokenizer, ByteTokenizer, load_tokenizer


def _run(argv, capsys):
    parser = argparse.ArgumentParser(prog="tinyembed tokenize")
    tokenize.add_arguments(parser)
    code = tokenize.run(parser.parse_args(argv), parser)
    return code, capsys.readouterr().out


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("the cat sat on the mat\nthe dog sat on the log\n" * 5, encoding="utf-8")
    return path


def test_train_saves_what_the_library_trains(corpus, tmp_path, capsys):
    out_path = tmp_path / "bpe.json"
    code, out = _run(["train", "bpe", "--corpus", str(corpus), "--vocab-size", "280",
                      "--save", str(out_path), "--json"], capsys)
    assert code == 0
    report = json.loads(out)
    lines = corpus.read_text().splitlines()
    expected = BPETokenizer.train(lines, vocab_size=280)
    assert load_tokenizer(out_path).merges == expected.merges
    assert report["tokens"] == sum(len(expected.encode(line)) for line in lines)
    assert report["vocab_size"] == len(expected) and report["saved"] == str(out_path)


def test_encode_and_decode_print_ids_tokens_and_text(corpus, tmp_path, capsys):
    code, out = _run(["encode", "hé <eos>", "--special", "--json"], capsys)
    tok = ByteTokenizer()
    ids = tok.encode("hé <eos>", add_special_tokens=True).tolist()
    assert code == 0 and json.loads(out) == [{"text": "hé <eos>", "ids": ids,
                                             "tokens": [tok.id_to_token(i) for i in ids]}]
    code, out = _run(["decode", *map(str, ids), "--skip-special"], capsys)
    assert out == "hé <eos>\n"


@pytest.mark.parametrize("argv, message", [
    (["train", "bpe", "--vocab-size", "100"], "vocab_size 100 is too small"),
    (["encode", "x", "--tokenizer", "no-such.json"], "no such file; built-in tokenizers are byte, minilm"),
    (["decode", "5", "900"], "id 900 at position 1 is out of range"),
    (["encode", "a\ud800"], "lone surrogate U\\+D800 at position 1"),
])
def test_bad_input_exits_2_with_the_reason(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        _run(argv, capsys)
    assert info.value.code == 2
    assert re.search(message, capsys.readouterr().err)


def test_corrupt_tokenizer_file_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "tok.json"
    bad.write_text('{"format": "tinyembed.tokenizer", "version": 1, "type": "bpe"')
    with pytest.raises(SystemExit):
        _run(["encode", "x", "--tokenizer", str(bad)], capsys)
    assert "truncated?" in capsys.readouterr().err
