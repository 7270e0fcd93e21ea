"""The command line under misuse: a bad argument exits 2 and a failure while running exits 1, each
with one line on stderr and no traceback; destinations are checked before any work; Ctrl-C
exits 130 and leaves every destination as it was."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tinyembed.cli import main
from tinyembed.report import Report
from tinyembed.report.run import write_report

WORDS = "the cat sat on the mat and a dog ran to the park while birds sang in old green trees".split()


@pytest.fixture
def corpus(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(" ".join(rng.choice(WORDS, 12)) for _ in range(300)) + "\n")
    return path


@pytest.fixture
def places(tmp_path, corpus):
    """Paths the table below names: a file, a directory with something in it, a previous report."""
    file = tmp_path / "taken.txt"
    file.write_text("precious")
    full = tmp_path / "full"
    full.mkdir()
    (full / "thesis.tex").write_text("precious")
    report = write_report(Report("previous"), tmp_path / "previous-report")
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("3 2\na 1 0\nb 0 1\nc 1 1\n")
    return {"FILE": str(file), "FULL": str(full), "REPORT": str(report), "CORPUS": str(corpus),
            "NEW": str(tmp_path / "new"), "MISSING": str(tmp_path / "missing.txt"), "VECTORS": str(vectors),
            "RO": "/proc/tinyembed-out"}


# (argv, exit code, words the one line on stderr must hold)
CASES = [
    ("report --quick --out FILE", 2, "exists and is a file"),
    ("report --quick --out FULL", 2, "holds something else"),
    ("report --quick --out REPORT", 2, "already holds a report; replace it with --force"),
    ("report --quick --out RO", 2, "/proc/tinyembed-out"),
    ("bench --repeats 0", 2, "--repeats: must be a positive integer, got 0"),
    ("bench --quick --out FILE", 2, "already exists; pass --force"),
    ("bench --quick --out RO", 2, "cannot write"),
    ("memory --vocab -5 --dim 8", 2, "got -5"),
    ("memory --zipf-alpha 0", 2, "--zipf-alpha: must be a finite number > 0, got 0.0"),
    ("memory --context 5", 2, "--context describe a custom config"),
    ("compress --methods zip", 2, "unknown methods ['zip']"),
    ("compress --file MISSING", 2, "cannot read --file"),
    ("compress --file FILE --methods int8", 2, "cannot read --file"),
    ("plot nothing", 2, "invalid choice: 'nothing'"),
    ("plot positional --out FULL", 2, "already exists; pass --force"),
    ("data prepare nosuch", 2, "unknown corpus 'nosuch'"),
    ("tokenize train bpe --corpus CORPUS --vocab-size 10", 2, "vocab_size 10 is too small"),
    ("tokenize train bpe --corpus CORPUS --save FILE", 2, "--save"),
    ("tokenize encode hi --tokenizer MISSING", 2, "no such file"),
    ("tokenize decode 99999999 --tokenizer byte", 2, "99999999"),
    ("train skipgram --corpus MISSING --out NEW", 2, "missing.txt"),
    ("train skipgram --corpus CORPUS --out FILE", 2, "exists and is a file"),
    ("train skipgram --corpus CORPUS --out FULL", 2, "already exists; pass --force"),
    ("train skipgram --corpus CORPUS --out NEW --epochs 0", 2, "--epochs: must be a positive integer, got 0"),
    ("train skipgram --corpus CORPUS --out NEW --min-alpha 1 --alpha 0.1", 2, "--min-alpha"),
    ("train lm --corpus CORPUS --out FILE", 2, "exists and is a file"),
    ("train lm --corpus CORPUS --out NEW --vocab-size 10", 2, "--vocab-size 10"),
    ("train lm --corpus CORPUS --out NEW --context 100000", 1, "GiB, but this machine has"),
    ("train lm --corpus MISSING --out NEW", 2, "missing.txt"),
    ("evaluate MISSING", 2, "cannot read word vectors"),
    ("evaluate VECTORS --topn 0", 2, "--topn: must be a positive integer, got 0"),
    ("nosuchcommand", 2, "invalid choice"),
    # an unwritable destination fails before any work, for every command that writes
    ("train skipgram --corpus CORPUS --out RO", 2, "/proc/tinyembed-out"),
    ("train lm --corpus CORPUS --out RO", 2, "/proc/tinyembed-out"),
    ("plot positional --out RO", 2, "/proc/tinyembed-out"),
    ("tokenize train bpe --corpus CORPUS --save RO", 2, "/proc/tinyembed-out"),
    ("study capacity --corpus CORPUS --out RO", 2, "/proc/tinyembed-out"),
    ("study capacity --out FULL", 2, "already exists; pass --force"),
    ("study capacity --threads 0", 2, "--threads: must be a positive integer, got 0"),
    ("study nosuch", 2, "invalid choice: 'nosuch'"),
    ("tutorial --html FILE", 2, "exists and is a file"),
    ("tutorial --html RO", 2, "/proc/tinyembed-out"),
]


@pytest.fixture
def no_work(monkeypatch):
    """Every command's long work fails the test if it starts: bad input must be refused first."""
    import tinyembed.profile.bench as bench
    import tinyembed.report.run as run
    import tinyembed.train.lm as lm
    import tinyembed.train.skipgram as skipgram

    def refuse(*args, **kwargs):
        raise AssertionError("the work started before the bad input was refused")

    import tinyembed.study as study

    for module, name in ((bench, "run"), (run, "build_report"), (skipgram, "train_skipgram"),
                         (lm, "train_lm"), (study, "run_capacity_study")):
        monkeypatch.setattr(module, name, refuse)


@pytest.mark.parametrize("command, code, words", CASES, ids=[c[0] for c in CASES])
def test_a_bad_argument_gets_one_line_on_stderr_and_its_exit_code(command, code, words, places, no_work,
                                                                    capsys):
    argv = [places.get(word, word) for word in command.split()]
    before = {p: Path(p).read_bytes() if Path(p).is_file() else sorted(os.listdir(p))
              for p in (places["FILE"], places["FULL"], places["REPORT"])}
    try:
        got = main(argv)
    except SystemExit as e:
        got = e.code
    err = capsys.readouterr().err
    assert got == code, err
    lines = [line for line in err.splitlines() if not line.startswith("note:")]
    assert len(lines) == 1 and words in lines[0], err
    assert "Traceback" not in err
    assert {p: Path(p).read_bytes() if Path(p).is_file() else sorted(os.listdir(p)) for p in before} == before
    assert not Path(places["NEW"]).exists()


def test_threads_beyond_the_cores_are_clamped_with_a_note(capsys, corpus, tmp_path):
    from tinyembed.cli.args import clamp_threads

    cores = len(os.sched_getaffinity(0))
    assert clamp_threads(cores + 5) == cores
    assert f"--threads {cores + 5} is more than the {cores} cores here; using {cores}" in capsys.readouterr().err
    assert clamp_threads(1) == 1 and clamp_threads(None) is None
    # and through a command
    assert main(["train", "skipgram", "--corpus", str(corpus), "--out", str(tmp_path / "v"), "--epochs", "1",
                 "--min-count", "1", "--dim", "8", "--quiet", "--threads", str(cores + 5)]) == 0
    assert f"--threads {cores + 5} is more than the {cores} cores here; using {cores}" in capsys.readouterr().err


def test_an_existing_output_is_replaced_with_force(places, capsys, corpus):
    out = Path(places["FULL"])
    assert main(["train", "skipgram", "--corpus", str(corpus), "--out", str(out), "--epochs", "1",
                 "--min-count", "1", "--dim", "8", "--quiet", "--force"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["train.json", "vectors.safetensors", "vectors.txt", "vocab.json"]


# -- Ctrl-C ---------------------------------------------------------------------------------------
def _interrupt_after(argv, ready: str, cwd) -> subprocess.CompletedProcess:
    """Run ``python -m tinyembed argv``; send SIGINT once stderr shows ``ready``; return the result."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "tinyembed", *argv], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen = []
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen.append(line)
        if ready in line:
            proc.send_signal(signal.SIGINT)
            break
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, "".join(seen) + err)


def test_ctrl_c_during_training_exits_130_with_one_line_and_the_previous_output_untouched(tmp_path):
    rng = np.random.default_rng(1)
    vocab = ["".join(rng.choice(list("abcdefghij"), 6)) for _ in range(2000)]
    corpus = tmp_path / "big.txt"
    corpus.write_text("\n".join(" ".join(rng.choice(vocab, 20)) for _ in range(2000)) + "\n")
    out = tmp_path / "w2v"
    out.mkdir()
    (out / "old.txt").write_text("the previous run")
    result = _interrupt_after(["train", "skipgram", "--corpus", str(corpus), "--out", str(out), "--epochs", "50",
                               "--min-count", "1", "--force"], ready="epoch ", cwd=tmp_path)
    assert result.returncode == 130, result.stderr
    assert result.stderr.splitlines()[-1] == "interrupted" and "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.txt", "w2v"]  # no temporary left beside it
    assert [p.name for p in out.iterdir()] == ["old.txt"]


def test_ctrl_c_during_the_report_exits_130_and_writes_nothing(tmp_path):
    result = _interrupt_after(["report", "--quick", "--out", str(tmp_path / "report")], ready="report [",
                              cwd=tmp_path)
    assert result.returncode == 130, result.stderr
    assert result.stderr.splitlines()[-1] == "interrupted" and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []
