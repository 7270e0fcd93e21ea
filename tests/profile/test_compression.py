"""tinyembed compress: the measurements are right, and the command reports every method."""

import dataclasses
import json

import numpy as np
import pytest

from tinyembed.cli import main
from tinyembed.profile.compression import METHODS, compress, neighbour_recall, row_cosines, token_counts


def small_table(v=300, d=16, seed=0):
    return np.random.default_rng(seed).standard_normal((v, d)).astype(np.float32)


def test_row_cosines_match_a_loop():
    a, b = small_table(20, 5, 1), small_table(20, 5, 2)
    expected = [x @ y / np.linalg.norm(x) / np.linalg.norm(y)
                for x, y in zip(a.astype(float), b.astype(float), strict=True)]
    np.testing.assert_allclose(row_cosines(a, b), expected, atol=1e-12)


def test_neighbour_recall_is_one_for_the_same_table_and_matches_brute_force():
    t = small_table()
    q = np.arange(0, 300, 7)
    assert neighbour_recall(t, t, q) == 1.0
    noisy = t + np.random.default_rng(5).normal(0, 0.5, t.shape).astype(np.float32)
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    hits = []
    for i in q:
        s1, s2 = unit(t) @ unit(t)[i], unit(noisy) @ unit(noisy)[i]
        s1[i] = s2[i] = -np.inf
        hits.append(len(set(np.argsort(-s1)[:10]) & set(np.argsort(-s2)[:10])) / 10)
    assert neighbour_recall(t, noisy, q) == pytest.approx(np.mean(hits))


def test_dense_row_is_lossless_and_int8_is_close():
    results = compress(small_table(), ["int8"], show_progress=False, repeats=2)
    dense, int8 = results
    assert dense.method == "dense" and dense.mean_cosine == pytest.approx(1.0)
    assert dense.relative_frobenius_error == 0 and dense.recall_at_10 == 1.0
    assert int8.compression_ratio == pytest.approx(300 * 16 * 4 / (300 * (16 + 8)))
    assert int8.mean_cosine > 0.999 and int8.relative_frobenius_error < 0.02


def test_every_method_runs_on_a_small_table():
    t = small_table(400, 160)  # wide enough for the rank-128 factorization
    counts = np.random.default_rng(3).zipf(1.3, 400).astype(np.int64)
    results = compress(t, list(METHODS), counts=counts, show_progress=False, repeats=1, sample=50)
    assert [r.method for r in results] == ["dense"] + list(METHODS)
    for r in results:
        assert 0 < r.nbytes and -1 <= r.min_cosine <= r.mean_cosine <= 1 + 1e-9
        assert 0 <= r.recall_at_10 <= 1 and r.lookup_time_ratio > 0


def test_bad_requests_are_clear_errors():
    with pytest.raises(ValueError, match="zip cannot compress.*unknown method"):
        compress(small_table(), ["zip"])
    with pytest.raises(ValueError, match="prune-50%.*counts"):
        compress(small_table(), ["prune-50%"])
    with pytest.raises(ValueError, match="one entry per row"):
        compress(small_table(), ["prune-50%"], counts=np.ones(3))


def test_token_counts_count_tokenizer_ids():
    pytest.importorskip("tokenizers")
    from tinyembed.io.assets import minilm_tokenizer_json

    counts = token_counts(minilm_tokenizer_json(), "the cat\nthe dog", 30522)
    assert counts.sum() == 4 + 4  # [CLS] x [SEP] per line
    assert counts[101] == 2 and counts[102] == 2  # [CLS], [SEP]


def test_compress_command_on_a_npy_file_prints_json(tmp_path, capsys):
    path = tmp_path / "table.npy"
    np.save(path, small_table())
    assert main(["compress", "--file", str(path), "--methods", "float16,int4", "--json", "--sample", "50"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["method"] for r in rows] == ["dense", "float16", "int4"]


def test_a_requested_method_that_cannot_run_fails_naming_why_and_measures_nothing(tmp_path, capsys):
    path = tmp_path / "table.npy"
    np.save(path, small_table())
    with pytest.raises(SystemExit) as e:
        main(["compress", "--file", str(path), "--methods", "float16,prune-50%", "--json"])
    out = capsys.readouterr()
    assert e.value.code == 2 and out.out == ""
    assert "prune-50% cannot run: it ranks ids by frequency and needs token counts (--counts)" in out.err


def test_the_default_methods_leave_out_what_cannot_run_and_say_so(tmp_path, capsys):
    path = tmp_path / "table.npy"
    np.save(path, small_table(40, 8))
    assert main(["compress", "--file", str(path), "--json", "--sample", "10"]) == 0
    out = capsys.readouterr()
    ran = [r["method"] for r in json.loads(out.out)]
    assert "lowrank-64" not in ran and "prune-50%" not in ran and "int8" in ran
    assert "note: lowrank-64 left out: rank 64 needs a table of at least 64 x 64" in out.err
    assert "note: prune-50% left out" in out.err


def test_compress_command_refuses_a_missing_tensor(tmp_path, capsys):
    from tinyembed.io import safetensors

    path = tmp_path / "t.safetensors"
    safetensors.save({"a": small_table()}, path)
    with pytest.raises(SystemExit):
        main(["compress", "--file", str(path), "--tensor", "b"])
    assert "'b'" in capsys.readouterr().err


def test_methods_that_do_not_fit_a_small_table_are_refused_before_anything_is_built():
    with pytest.raises(ValueError, match="lowrank-64 cannot compress this 8x4 table: rank 64 needs"):
        compress(small_table(8, 4), ["float16", "lowrank-64"], show_progress=False, repeats=1)


def test_compress_command_refuses_counts_without_a_file(capsys):
    with pytest.raises(SystemExit):
        main(["compress", "--counts", "c.npy"])
    assert "--counts describe a --file" in capsys.readouterr().err


def test_compress_command_names_an_unreadable_counts_file(tmp_path, capsys):
    path = tmp_path / "table.npy"
    np.save(path, small_table())
    with pytest.raises(SystemExit):
        main(["compress", "--file", str(path), "--counts", str(tmp_path / "missing.npy"), "--methods", "prune-50%"])
    assert "missing.npy" in capsys.readouterr().err


def test_a_table_too_large_for_the_memory_is_refused_naming_both_figures_before_any_work(tmp_path, capsys,
                                                                                          monkeypatch):
    import tinyembed.checks

    path = tmp_path / "table.npy"
    np.save(path, small_table())
    monkeypatch.setattr(tinyembed.checks, "available_memory", lambda: 1000)
    monkeypatch.setitem(METHODS, "int8", dataclasses.replace(
        METHODS["int8"], build=lambda *a: pytest.fail("built before the memory check")))
    assert main(["compress", "--file", str(path), "--methods", "int8", "--json"]) == 1
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err.count("\n") == 1 and "GiB, but this machine has 0.0 GiB available" in out.err
