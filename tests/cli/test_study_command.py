"""tinyembed study capacity and decode: the issue's --json keys, --out written whole, a copy saved for the report,
and bad arguments refused in one line with exit status 2 before any training or timing. The grids are the tests'
tiny ones."""

import json
import os

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
    (["study", "decode", "--threads", "0"], "--threads: must be a positive integer"),
    (["study", "decode", "--corpus", "lee"], "unrecognized arguments: --corpus lee"),
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


# -- tinyembed study decode ----------------------------------------------------------------------------
DECODE_POINT_KEYS = {"vocab_size", "embedding_dim", "storage", "seconds_per_token", "gb_per_s"}


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYEMBED_CACHE", str(tmp_path / "cache"))


def test_decode_json_prints_the_points_with_the_issues_keys_and_saves_the_study(tiny_decode, cache, capsys):
    assert main(["study", "decode", "--quick", "--json", "--quiet", "--threads", "1"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["study"] == "decode" and document["date"] and document["quick"]
    assert document["command"] == "tinyembed study decode --quick --threads 1" and document["threads"] == 1
    grid = tiny_decode.QUICK
    assert [(p["vocab_size"], p["embedding_dim"], p["storage"]) for p in document["points"]] == [
        (v, d, s) for v, d in grid.shapes() for s in grid.storages]
    assert all(DECODE_POINT_KEYS <= set(p) and p["seconds_per_token"] > 0 for p in document["points"])
    assert document["models"] and document["coverage"] and 0 < document["rows_ever_predicted"] < 1
    assert last_study("decode") == document


def test_decode_out_holds_the_json_the_tables_and_two_plots_written_whole(tiny_decode, cache, tmp_path, capsys):
    out = tmp_path / "decode"
    assert main(["study", "decode", "--quick", "--quiet", "--threads", "1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == [
        "bandwidth-vs-copy.png", "decode.json", "seconds-per-token-vs-vocabulary.png", "table.md", "table.txt"]
    assert sorted(os.listdir(tmp_path)) == ["cache", "decode"]  # no staging directory left beside it
    assert (out / "table.txt").read_text() in printed and "ms/token" in printed
    assert (out / "table.md").read_text().startswith("One token's output projection")
    assert "| V | D | storage | table | ms/token | GB/s | of copy | spread |" in (out / "table.md").read_text()
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in out.glob("*.png"))
    assert json.loads((out / "decode.json").read_text()) == last_study("decode")


def test_decode_refuses_an_existing_or_unwritable_out_before_timing_unless_forced(tiny_decode, cache, tmp_path, capsys,
                                                                    monkeypatch):
    timed = []
    measure = tiny_decode.measure_decode
    monkeypatch.setattr(tiny_decode, "measure_decode", lambda *a, **k: timed.append(1) or measure(*a, **k))
    out = tmp_path / "taken"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    assert main(["study", "decode", "--quick", "--quiet", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "already exists; pass --force" in err and len(err.strip().splitlines()) == 1
    assert main(["study", "decode", "--quick", "--quiet", "--out", "/proc/tinyembed-out"]) == 2  # unwritable
    err = capsys.readouterr().err
    assert "/proc/tinyembed-out" in err and len(err.strip().splitlines()) == 1
    assert not timed and last_study("decode") is None and (out / "thesis.tex").read_text() == "precious"
    assert main(["study", "decode", "--quick", "--quiet", "--threads", "1", "--out", str(out), "--force"]) == 0
    assert timed and not (out / "thesis.tex").exists() and (out / "decode.json").exists()


def test_decode_out_is_all_or_nothing_when_writing_fails(tiny_decode, cache, tmp_path, monkeypatch, capsys):
    from tinyembed.study import summary

    def broken(document):
        raise OSError("disk full")
    monkeypatch.setattr(summary, "format_decode_markdown", broken)  # after decode.json and before the rest
    out = tmp_path / "previous"
    out.mkdir()
    (out / "decode.json").write_text("the last run")
    for argv in (["--out", str(out), "--force"], ["--out", str(tmp_path / "new")]):
        assert main(["study", "decode", "--quick", "--quiet", "--threads", "1", *argv]) != 0
        err = capsys.readouterr().err
        assert "cannot write" in err and "disk full" in err and len(err.strip().splitlines()) == 1
    assert sorted(os.listdir(tmp_path)) == ["cache", "previous"]  # no staging directory, no half-written "new"
    assert os.listdir(out) == ["decode.json"] and (out / "decode.json").read_text() == "the last run"
