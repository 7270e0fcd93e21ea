import importlib.util
import os

import pytest
from hypothesis import settings

# CI replays the same examples every run (a red CI is then always reproducible);
# local runs keep exploring new ones.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


def pytest_configure(config):
    # Parity tests skip where torch is missing on a laptop; CI must run them, not skip them.
    if os.environ.get("CI") and importlib.util.find_spec("torch") is None:
        raise pytest.UsageError("CI needs torch==2.13.0 (the test oracle): pip install -e '.[test]'")


# -- a capacity study small enough for a test (tinyembed.study): shared by tests/study, tests/cli, tests/report ----
# (fixtures, not imports: every conftest.py is a module named "conftest", so importing from one is a lottery)
def _tiny_corpus(articles: int = 24, lines: int = 6, seed: int = 0) -> str:
    """Articles apart by an empty line, each line unique (it names its article and line) and English-like."""
    import numpy as np

    rng = np.random.default_rng(seed)
    words = ["the", "cat", "sat", "on", "a", "mat", "and", "then", "dog", "ran", "to", "red", "house", "with",
             "green", "door", "old", "tree", "near", "river", "bank", "small", "bird", "sang"]
    out = []
    for a in range(articles):
        out.append("\n".join(f"article {a} line {i}: " + " ".join(rng.choice(words, size=12)) + "."
                             for i in range(lines)))
    return "\n\n".join(out) + "\n"


def _tiny_capacity_config(**changes):
    """Two tokenizers x one width x two budgets on :func:`tiny_corpus`, one untied run: seconds, not minutes."""
    from tinyembed.study import CapacityConfig

    settings = dict(vocab_sizes=(300,), widths=(8,), budgets=(2e6, 6e6), context=4, hidden_per_width=2,
                    batch_size=16, min_steps=5, max_epochs=50.0, untied=(("bpe-300", 8),), held_out_every=6,
                    eval_bytes=None, throughput_repeats=1, throughput_matmul_n=128, lr=1e-2, corpus="tiny")
    return CapacityConfig(**{**settings, **changes})


@pytest.fixture(scope="session")
def tiny_capacity_study():
    """(the document ``tinyembed study capacity`` would save, the corpus) of the tiny grid."""
    from tinyembed.study import run_capacity_study
    from tinyembed.study.results import study_document

    text = _tiny_corpus()
    results = run_capacity_study(_tiny_capacity_config(), text=text, show_progress=False)
    return study_document("capacity", results, "tinyembed study capacity --corpus tiny.txt"), text


@pytest.fixture
def tiny_corpus():
    """The tiny corpus's maker: ``tiny_corpus(articles=24, lines=6, seed=0)`` -> text."""
    return _tiny_corpus


@pytest.fixture
def tiny_capacity_config():
    """The tiny grid's maker: ``tiny_capacity_config(**changes)`` -> CapacityConfig."""
    return _tiny_capacity_config


# -- a decode study small enough for a test (tinyembed.study.decode): shared by tests/cli, report, tutorial ----
def _tiny_decode_grid():
    """Two vocabularies x one width x the four storages: a second, not a minute."""
    from tinyembed.study.decode import DecodeGrid

    return DecodeGrid((64, 300), (16,), ("float32", "bfloat16", "int8", "int4"), repeats=2)


def _tiny_text_ids():
    """What ``decode.wikipedia_ids`` returns, made up: Zipf(1.1) ids over 30,000 rows, 20,000 tokens."""
    import numpy as np

    from tinyembed.plan.zipf import zipf_ids

    return zipf_ids(30_000, 1.1, 20_000, np.random.default_rng(0)).astype(np.int64), 30_000, "a Zipf(1.1) stream"


@pytest.fixture
def tiny_decode(monkeypatch):
    """``tinyembed study decode --quick`` made tiny: the tiny grid, a 1 MiB copy, the made-up stream."""
    from tinyembed.study import decode

    monkeypatch.setattr(decode, "QUICK", _tiny_decode_grid())
    monkeypatch.setattr(decode, "COPY_BYTES", 1 << 20)
    monkeypatch.setattr(decode, "wikipedia_ids", _tiny_text_ids)
    return decode


@pytest.fixture(scope="session")
def tiny_decode_study():
    """The document ``tinyembed study decode`` would save, of the tiny grid and the made-up stream."""
    from tinyembed.study import decode
    from tinyembed.study.results import study_document

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(decode, "COPY_BYTES", 1 << 20)
        mp.setattr(decode, "wikipedia_ids", _tiny_text_ids)
        study = decode.run_decode_study(_tiny_decode_grid(), show_progress=False)
    return study_document("decode", study.to_dict(), "tinyembed study decode --quick")
