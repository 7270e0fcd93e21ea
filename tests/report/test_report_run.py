"""`tinyembed report`: the real quick report, run once, checked against its own data and in Chromium;
the command line's bad input and interruptions, with the measuring stubbed out so they run fast.
"""

import html
import json
import os
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from tinyembed.cli import main
from tinyembed.kernels.rows import storage_row_bytes
from tinyembed.profile import EmbeddingProfiler, MachineInfo
from tinyembed.profile.patterns import DEFAULT_PATTERNS
from tinyembed.report import Report, Section, Table, figures, run, sections, write_report
from tinyembed.report.sections import SECTIONS, ReportConfig

QUICK_LIMIT_S = 90  # the bound for `tinyembed report --quick` on this machine
SECTION_IDS = ["machine", "throughput", "patterns", "caches", "row-caches", "memory", "positional",
               "compression", "sharding", "capacity", "decode"]


# -- the real quick report, run once ---------------------------------------------------------------
def describe_axes(ax):
    from matplotlib.ticker import LogFormatter, ScalarFormatter

    def axis(a, label):
        # Ticks shown as numbers make a quantity axis; named ticks (categories, set_xticks labels) do not.
        categorical = not isinstance(a.get_major_formatter(), (ScalarFormatter, LogFormatter))
        return {"label": label, "categorical": categorical}
    return {"title": ax.get_title(), "x": axis(ax.xaxis, ax.get_xlabel()), "y": axis(ax.yaxis, ax.get_ylabel()),
            "has_data": ax.has_data()}


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """`run_report(..., quick=True)` once, recording every plot's axes as figures.py hands them over."""
    pytest.importorskip("matplotlib")
    out = tmp_path_factory.mktemp("quick") / "report"
    plots = []
    original = figures.figure_from_matplotlib

    def recording(fig, title=None, caption="", **kwargs):
        plots.append({"title": title, "axes": [describe_axes(ax) for ax in fig.axes]})
        return original(fig, title, caption, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(figures, "figure_from_matplotlib", recording)
        # No saved study, whatever this machine's cache holds (tests/report/test_capacity_section.py and
        # test_decode_section.py draw them).
        missing = tmp_path_factory.mktemp("studies") / "capacity.json"
        mp.setattr("tinyembed.study.results.study_path", lambda name, root=None: missing)
        report, path = run.run_report(out, quick=True, show_progress=False)
    manifest = json.loads((out / "report.json").read_text(encoding="utf-8"))
    return SimpleNamespace(report=report, path=path, out=out, manifest=manifest, data=manifest["data"], plots=plots)


def test_quick_run_takes_under_90_seconds(quick):
    seconds = quick.data["run"]["seconds"]
    per_section = {k: round(v, 1) for k, v in quick.data["run"]["seconds_per_section"].items()}
    print(f"quick report: {seconds:.1f} s; per section: {per_section}")
    assert seconds < QUICK_LIMIT_S, (f"`tinyembed report --quick` took {seconds:.1f} s, over the issue's "
                                     f"{QUICK_LIMIT_S} s; per section: {per_section}")
    assert sum(per_section.values()) <= seconds + 1


def test_report_directory_holds_the_page_the_json_and_every_figure(quick):
    assert quick.path == quick.out.absolute()
    listed = [f["file"] for s in quick.manifest["sections"] for f in s["figures"]]
    assert len(listed) == len(set(listed)) >= len(SECTIONS) + 2  # several sections have two or three plots
    files = sorted(str(p.relative_to(quick.out)) for p in quick.out.rglob("*") if p.is_file())
    assert files == sorted(["index.html", "report.json", *listed])
    assert os.listdir(quick.out.parent) == ["report"]  # no staging directory left beside it


def test_report_json_has_every_section_and_its_data(quick):
    m = quick.manifest
    assert (m["generator"], m["format"], m["title"]) == ("tinyembed", 1, run.TITLE)
    assert [s["id"] for s in m["sections"]] == SECTION_IDS
    assert len(SECTIONS) == len(SECTION_IDS)
    assert set(quick.data) == {*SECTION_IDS, "run"}
    for sid in SECTION_IDS:
        assert quick.data[sid] and all(v for v in quick.data[sid].values()), sid
    assert quick.data["run"]["config"] == json.loads(json.dumps(ReportConfig.quick_run().__dict__))
    assert set(quick.data["run"]["seconds_per_section"]) == {name for name, _ in SECTIONS}
    assert m["summary"] == quick.report.summary and m["subtitle"].startswith("quick run")


def test_report_data_obeys_the_profiler_properties(quick):
    d, cfg = quick.data, ReportConfig.quick_run()
    by_shape = d["throughput"]["by_shape"]
    assert [(r["batch_size"], r["seq_len"]) for r in by_shape] == [(b, s) for b in cfg.batch_sizes
                                                                   for s in cfg.seq_lengths]
    peak = d["machine"]["machine"]["peak_gbps"]
    for r in by_shape + d["throughput"]["scaling"]:
        assert r["gb_per_s"] * r["median_s"] * 1e9 == pytest.approx(r["bytes_moved"])
        assert r["percent_of_peak"] == pytest.approx(100 * r["gb_per_s"] / peak)
    assert [(r["embedding_dim"], r["dtype"]) for r in d["throughput"]["scaling"]] == [
        (dim, t) for dim in cfg.scaling_dims for t in cfg.scaling_dtypes]
    patterns = d["patterns"]["patterns"]
    assert [p["pattern"] for p in patterns] == [p.label for p in DEFAULT_PATTERNS]
    for p in patterns:
        assert np.all(np.diff(p["hot_set_share"]) >= 0) and 0 < p["unique_rows"] <= p["tokens"]
    assert [a["pattern"] for a in d["caches"]["caches"]] == list(cfg.cache_patterns)
    assert d["row-caches"]["row_caches"]["lookups"] == cfg.row_cache_lookups
    memory = d["memory"]["memory"]
    for fmt, grid in memory["bytes"].items():
        assert grid == [[v * storage_row_bytes(fmt, dim) for dim in cfg.memory_dims] for v in cfg.memory_vocab]
    positional = {r["name"]: r for r in d["positional"]["positional"]}
    assert [n for n, r in positional.items() if not r["extrapolates"]] == ["learned"]
    assert positional["learned"]["parameters"] == cfg.positional_seq * 384
    assert [r["method"] for r in d["compression"]["compression"] if r["method"] != "dense"] == list(
        cfg.compress_methods)


NUMBER = re.compile(r"(?<![\w.\-])\d+(?:\.\d+)?")  # not inside a name such as gpt2 or LLaMA-3-8B
# Words of the sentences, not measurements.
LITERALS = ("1 thread", ">= 0.99")


def numeric_leaves(value):
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from numeric_leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from numeric_leaves(item)


def shown_forms(data) -> dict[int, set[str]]:
    """Every way a number of ``data`` can appear with k decimals: as is, as a percentage, in thousands ('16k')."""
    forms = {k: set() for k in range(4)}
    for v in numeric_leaves(data):
        for c in (v, 100 * v, v / 1000):
            for k in forms:
                forms[k].add(f"{c:.{k}f}")
    return forms


def test_every_number_in_the_summary_comes_from_one_sections_data(quick):
    forms = {sid: shown_forms(quick.data[sid]) for sid in SECTION_IDS}
    assert quick.report.summary
    for line in quick.report.summary:
        text = line
        for literal in LITERALS:
            text = text.replace(literal, "")
        numbers = NUMBER.findall(text)

        def explains(sid, numbers=numbers):
            return all(n in forms[sid][len(n.partition(".")[2])] for n in numbers)
        assert any(explains(sid) for sid in SECTION_IDS), f"a number of {line!r} is in no section's data"


def test_summary_lines_quote_the_data(quick):
    d, lines = quick.data, quick.report.summary
    machine = d["machine"]["machine"]
    assert f"Copy bandwidth {machine['peak_gbps']:.1f} GB/s" in lines[0]
    best = max(d["throughput"]["scaling"], key=lambda m: m["gb_per_s"])
    assert (f"Fastest lookup: {best['num_embeddings']}x{best['embedding_dim']} {best['dtype']} at "
            f"{best['gb_per_s']:.1f} GB/s, {best['percent_of_peak']:.0f}%") in lines[1]
    text = next(p for p in d["patterns"]["patterns"] if p["pattern"] == "text")
    uniform = next(p for p in d["patterns"]["patterns"] if p["pattern"] == "uniform")
    assert f"{text['unique_rows']:.0f} distinct rows" in lines[2]
    assert f"({100 * text['unique_share']:.1f}%) against {uniform['unique_rows']:.0f} for uniform" in lines[2]
    curves = d["row-caches"]["row_caches"]
    k = len(curves["capacities"]) // 2
    assert f"A {curves['capacities'][k]}-row LRU cache serves {100 * curves['lru'][k]:.1f}%" in lines[4]
    assert "learned cannot go on" in lines[6]
    cosine = [r for r in d["compression"]["compression"] if r["mean_cosine"] >= 0.99 and r["method"] != "dense"]
    smallest = min(cosine, key=lambda r: r["nbytes"])
    assert f"{smallest['method']}, {smallest['compression_ratio']:.1f}x smaller" in lines[7]
    page = (quick.out / "index.html").read_text(encoding="utf-8")
    assert all(f"<li>{html.escape(line)}</li>" in page for line in lines)


def test_every_figure_png_decodes_to_its_size_and_is_titled(quick):
    import matplotlib.image

    page = (quick.out / "index.html").read_text(encoding="utf-8")
    for section in quick.manifest["sections"]:
        assert section["id"] != "machine" or not section["figures"]
        for figure in section["figures"]:
            pixels = matplotlib.image.imread(quick.out / figure["file"])
            assert pixels.shape[:2] == (figure["height_px"], figure["width_px"]) and pixels.shape[0] > 100
            assert pixels.std() > 0  # something is drawn
            assert figure["title"].strip() and html.escape(figure["title"]) in page


UNIT = re.compile(r"\(.+\)|%|GB/s|\bms\b|\bMiB\b|per second|\brows\b")
DIMENSIONLESS = ("cosine", "device")  # a ratio of lengths, a device's index


def test_every_plot_is_titled_with_labelled_axes_and_units(quick):
    titles = [f["title"] for s in quick.manifest["sections"] for f in s["figures"]]
    assert [p["title"] for p in quick.plots] == titles
    for plot in quick.plots:
        plotted = [ax for ax in plot["axes"] if ax["has_data"]]
        assert plotted, plot["title"]
        for ax in plotted:
            assert ax["title"] == plot["title"]
            for name in ("x", "y"):
                axis = ax[name]
                assert axis["label"].strip(), f"{plot['title']!r}: no {name} label"
                if not axis["categorical"] and not any(w in axis["label"] for w in DIMENSIONLESS):
                    assert UNIT.search(axis["label"]), f"{plot['title']!r}: {name} label {axis['label']!r} has no unit"


def test_quick_report_passes_the_chromium_check(quick, browser):
    check = browser.check(quick.out / "index.html", expected_title=run.TITLE)
    assert check.failures == []
    figures_ = [f for s in quick.manifest["sections"] for f in s["figures"]]
    assert sorted((img["natural_width"], img["natural_height"]) for img in check.images) == sorted(
        (f["width_px"], f["height_px"]) for f in figures_)


# -- the command line, with the measuring stubbed out ----------------------------------------------
def tiny_report(title="tiny report") -> Report:
    return Report(title, summary=["one line, 42 ms"], created="2026-01-01T00:00:00+00:00",
                  sections=[Section("numbers", "Numbers", "Some.", tables=[Table(["n"], [[1], [2]])])],
                  data={"n": [1, 2], "run": {"seconds": 0.0}})


def snapshot(root: Path) -> dict:
    """Every file and directory under ``root`` (hidden ones too), with file contents."""
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


@pytest.fixture
def no_measuring(monkeypatch):
    def build_report(*args, **kwargs):
        raise AssertionError("build_report ran: --out must be checked before any measuring")
    monkeypatch.setattr(run, "build_report", build_report)


@pytest.fixture
def stub_report(monkeypatch):
    """build_report returns a tiny report at once and records the config it was given."""
    configs = []

    def build_report(config=None, show_progress=True):
        configs.append(config)
        return tiny_report()
    monkeypatch.setattr(run, "build_report", build_report)
    return configs


def test_report_help_lists_its_options(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["report", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert all(flag in out for flag in ("--out", "--quick", "--json"))
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "report" in capsys.readouterr().out


def make_file(tmp_path):
    (tmp_path / "taken").write_text("a file\n")
    return tmp_path / "taken", tmp_path / "taken"


def make_full_dir(tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"\xff\xd8")
    return tmp_path / "photos", tmp_path / "photos"


def make_foreign_report(tmp_path):
    # A report.json, but not one tinyembed wrote: replacing it would lose someone's files.
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "report.json").write_text('{"generator": "something else"}')
    return tmp_path / "other", tmp_path / "other"


def make_under_a_file(tmp_path):
    (tmp_path / "plain").write_text("x")
    return tmp_path / "plain" / "report", tmp_path / "plain"


@pytest.mark.parametrize("make", [make_file, make_full_dir, make_foreign_report, make_under_a_file])
def test_bad_out_fails_fast_naming_the_path_and_writes_nothing(make, tmp_path, capsys, no_measuring):
    out, named = make(tmp_path)
    before = snapshot(tmp_path)
    assert main(["report", "--quick", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert str(named) in err and "error:" in err and len(err.splitlines()) == 1
    assert snapshot(tmp_path) == before  # nothing written, no temporary directory left


def test_json_prints_the_report_json_and_writes_no_directory(tmp_path, monkeypatch, capsys, stub_report):
    monkeypatch.chdir(tmp_path)
    assert main(["report", "--json", "--quick"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert (printed["generator"], printed["title"], printed["summary"]) == ("tinyembed", "tiny report",
                                                                           ["one line, 42 ms"])
    assert printed["data"] == {"n": [1, 2], "run": {"seconds": 0.0}}
    assert os.listdir(tmp_path) == []  # --json alone writes nothing
    assert [c.quick for c in stub_report] == [True]


def test_json_with_out_prints_what_it_writes(tmp_path, capsys, stub_report):
    assert main(["report", "--json", "--out", str(tmp_path / "r")]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((tmp_path / "r" / "report.json").read_text(encoding="utf-8"))
    assert [c.quick for c in stub_report] == [False]


def test_default_run_writes_tinyembed_report_and_prints_the_summary(tmp_path, monkeypatch, capsys, stub_report):
    monkeypatch.chdir(tmp_path)
    assert main(["report"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "tiny report" and "  - one line, 42 ms" in out
    assert out[-1] == f"report: {tmp_path / 'tinyembed-report' / 'index.html'}"
    assert sorted(os.listdir(tmp_path / "tinyembed-report")) == ["figures", "index.html", "report.json"]
    # run again: the previous report is kept unless --force, then replaced, nothing else left beside it
    assert main(["report"]) == 2
    assert "already holds a report; replace it with --force" in capsys.readouterr().err
    assert main(["report", "--force"]) == 0
    assert os.listdir(tmp_path) == ["tinyembed-report"]


class Interrupted(BaseException):
    pass


@pytest.fixture
def interrupted_run(monkeypatch):
    """A build whose second section raises mid-way (the machine is not measured; the third never runs)."""
    machine = MachineInfo(cores=2, usable_cores=2, cpu_model="test CPU", memory_bytes=None, caches=[],
                          copy_gbps_one_thread=10.0, copy_gbps_all_cores=12.0, copy_bytes=1 << 20,
                          numpy=np.__version__)
    monkeypatch.setattr(EmbeddingProfiler, "machine", lambda self, copy_bytes=0: machine)
    ran = []

    def section(name, error=None):
        def build(ctx):
            ran.append(name)
            if error is not None:
                raise error
            return Section(name, name.title()), {"x": 1}, [f"{name} done"]
        return name, build

    def use(error):
        monkeypatch.setattr(run, "SECTIONS", [("machine", sections.machine_section), section("first"),
                                              section("second", error), section("third")])
        return ran
    return use


def _main_fails(argv, error, capsys):
    """main(argv) with a section that raises ``error``: Ctrl-C is exit 130 and one line; others propagate."""
    if error is KeyboardInterrupt:
        assert main(argv) == 130
        assert capsys.readouterr().err.splitlines()[-1] == "interrupted"
    else:
        with pytest.raises(type(error) if isinstance(error, BaseException) else error):
            main(argv)


@pytest.mark.parametrize("error", [KeyboardInterrupt, RuntimeError("measuring failed"), Interrupted])
def test_interrupted_run_leaves_no_report_directory(error, tmp_path, interrupted_run, capsys):
    ran = interrupted_run(error)
    _main_fails(["report", "--quick", "--out", str(tmp_path / "report")], error, capsys)
    assert ran == ["first", "second"]
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("error", [KeyboardInterrupt, RuntimeError("measuring failed")])
def test_interrupted_run_keeps_the_previous_report_untouched(error, tmp_path, interrupted_run, capsys):
    write_report(tiny_report("previous report"), tmp_path / "report")
    before = snapshot(tmp_path)
    ran = interrupted_run(error)
    _main_fails(["report", "--force", "--out", str(tmp_path / "report")], error, capsys)
    assert ran == ["first", "second"]
    assert snapshot(tmp_path) == before


def test_a_complete_stubbed_run_replaces_the_previous_report(tmp_path, interrupted_run):
    write_report(tiny_report("previous report"), tmp_path / "report")
    interrupted_run(None)
    assert main(["report", "--force", "--out", str(tmp_path / "report")]) == 0
    manifest = json.loads((tmp_path / "report" / "report.json").read_text(encoding="utf-8"))
    assert [s["id"] for s in manifest["sections"]] == ["machine", "first", "second", "third"]
    assert manifest["summary"][1:] == ["first done", "second done", "third done"]
    assert os.listdir(tmp_path) == ["report"]
