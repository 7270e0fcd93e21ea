"""tinyembed train lm: trains on a text file, writes a checkpoint that reloads, refuses bad input by name."""

import argparse
import json

import numpy as np
import pytest

from tinyembed.cli import main
from tinyembed.cli.train_lm import add_lm_arguments, run_lm
from tinyembed.train.lm import load_checkpoint, windows


def _run(argv):
    parser = argparse.ArgumentParser(prog="tinyembed train lm")
    add_lm_arguments(parser)
    return run_lm(parser.parse_args(argv), parser)


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(f"line {i} says the cat sat on the mat" for i in range(40)) + "\n")
    return path


@pytest.mark.parametrize("tokenizer", ["byte", "bpe"])
def test_train_lm_writes_a_checkpoint_and_history(corpus, tmp_path, capsys, tokenizer):
    out = tmp_path / "lm"
    assert _run(["--corpus", str(corpus), "--tokenizer", tokenizer, "--vocab-size", "300", "--epochs", "2",
                 "--context", "4", "--dim", "8", "--hidden", "16", "--out", str(out), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((out / "train.json").read_text())
    assert [h["epoch"] for h in printed["history"]] == [1, 2]
    model, tok = load_checkpoint(out / "checkpoint.safetensors")
    ids = windows(tok.encode("the cat sat"), 4, tok.pad_id)[0]
    assert model(ids).shape == (len(ids), tok.vocab_size)
    assert np.isfinite(model(ids).data).all()


def test_train_lm_refuses_an_empty_corpus_by_name(tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(SystemExit) as e:
        _run(["--corpus", str(empty), "--tokenizer", "byte", "--out", str(tmp_path / "o")])
    assert e.value.code == 2 and "empty.txt" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_train_lm_refuses_an_out_path_that_is_a_file(corpus, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["train", "lm", "--corpus", str(corpus), "--tokenizer", "byte", "--out", str(blocker)]) == 2
    assert "exists and is a file, not a directory" in capsys.readouterr().err


def test_train_lm_refuses_an_unreadable_tokenizer_file(corpus, tmp_path, capsys):
    bad = tmp_path / "tok.json"
    bad.write_text("{broken")
    with pytest.raises(SystemExit) as e:
        _run(["--corpus", str(corpus), "--tokenizer", str(bad), "--out", str(tmp_path / "o")])
    assert e.value.code == 2 and "tok.json" in capsys.readouterr().err


def test_a_vocabulary_larger_than_the_corpus_supports_is_said_and_quiet_prints_nothing(corpus, tmp_path, capsys):
    out = tmp_path / "lm"
    assert main(["train", "lm", "--corpus", str(corpus), "--tokenizer", "bpe", "--vocab-size", "100000",
                 "--epochs", "1", "--context", "2", "--dim", "4", "--hidden", "8", "--out", str(out), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    got = json.loads((out / "train.json").read_text())["vocab_size"]
    assert got < 100000
    assert (f"note: --vocab-size 100000 asked for more ids than this corpus supports: no pair of tokens occurs "
            f"often enough for another merge after {got} ids; training with {got}") in captured.err
