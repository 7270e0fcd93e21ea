"""tinyembed study capacity: the issue's --json keys, --out written whole, a copy saved for the report, and bad
arguments refused in one line with exit status 2 before any training. The grid is the tests' tiny one."""

import json

import pytest

from tinyembed.cli import main
from tinyembed.study import CapacityConfig, last_study

ISSUE_POINT_KEYS = {"tokenizer", "vocab_size", "embedding_dim", "embedding_parameters", "total_parameters", "flops",
                    "bits_per_byte", "tokens_per_byte", "train_seconds"}


@pytest.fixture
def tiny(tmp_path, monkeypatch, tiny_corpus, tiny_capacity_config):
    """--quick runs the tiny grid; the cache (where the study is saved) is a temporary folder."""
    monkeypatch.setattr(CapacityConfig, "quick_run", classmethod(lambda cls: tiny_capacity_config()))
    monkeypatch.setenv("TINYEMBED_CACHE", str(tmp_path / "cache"))
    corpus = tmp_path / "tiny.txt"
    corpus.write_text(tiny_corpus())
    return corpus


def test_json_prints_the_points_with_the_issues_keys_and_saves_the_study_for_the_report(tiny, capsys):
    assert main(["study", "capacity", "--quick", "--json", "--quiet", "--threads", "1", "--corpus", str(tiny)]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["study"] == "capacity" and document["date"]
    assert document["command"] == f"tinyembed study capacity --quick --corpus {tiny} --threads 1"
    assert document["points"] and all(ISSUE_POINT_KEYS <= set(p) for p in document["points"])
    assert last_study("capacity") == document


def test_out_holds_the_json_the_tables_and_three_plots(tiny, tmp_path, capsys):
    out = tmp_path / "study"
    assert main(["study", "capacity", "--quick", "--quiet", "--threads", "1", "--corpus", str(tiny),
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == [
        "bits-per-byte-vs-parameters.png", "bits-per-byte-vs-table-bytes.png", "bits-per-byte-vs-vocabulary.png",
        "capacity.json", "table.md", "table.txt"]
    document = json.loads((out / "capacity.json").read_text())
    assert (out / "table.txt").read_text() in printed and "Best vocabulary by budget" in printed
    assert (out / "table.md").read_text().startswith("| budget (FLOPs) | tokenizer |")
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in out.glob("*.png"))
    assert document["points"] == last_study("capacity")["points"]


def test_without_threads_it_says_how_many_it_takes(tiny, capsys):
    assert main(["study", "capacity", "--quick", "--quiet", "--corpus", str(tiny)]) == 0
    assert "note: using " in capsys.readouterr().err


@pytest.mark.parametrize("argv, words", [
    (["study"], "required: STUDY"),
    (["study", "capacities"], "invalid choice: 'capacities'"),
    (["study", "capacity", "--threads", "0"], "--threads: must be a positive integer"),
    (["study", "capacity", "--bogus"], "unrecognized arguments: --bogus"),
    (["study", "capacity", "--corpus", "no-such-corpus"], "--corpus 'no-such-corpus'"),
])
def test_a_bad_argument_is_one_line_and_exit_2(argv, words, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("TINYEMBED_CACHE", str(tmp_path / "cache"))
    with pytest.raises(SystemExit) as e:  # argparse's exit, as main documents
        main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and words in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "cache").exists()  # nothing trained, nothing saved


def test_an_existing_out_is_refused_before_training_unless_forced(tiny, tmp_path, capsys):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    assert main(["study", "capacity", "--quick", "--quiet", "--corpus", str(tiny), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "already exists; pass --force" in err and len(err.strip().splitlines()) == 1
    assert last_study("capacity") is None and (out / "thesis.tex").read_text() == "precious"
    assert main(["study", "capacity", "--quick", "--quiet", "--threads", "1", "--corpus", str(tiny), "--out",
                 str(out), "--force"]) == 0
    assert not (out / "thesis.tex").exists() and (out / "capacity.json").exists()
