"""The report renderer: a self-contained, escaped page; report.json; an atomic report directory."""

import base64
import io
import json
import math
import os
import struct
import zlib
from html.parser import HTMLParser

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyembed.report import (
    Figure,
    Report,
    ReportError,
    Section,
    Table,
    figure_from_matplotlib,
    format_cell,
    render_html,
    report_json,
    to_jsonable,
    write_report,
)
from tinyembed.report import run as report_run


def make_png(width: int, height: int, seed: int = 0) -> bytes:
    """A valid 8-bit grey PNG written by hand (zlib + CRCs), independent of the renderer."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    pixels = np.random.default_rng(seed).integers(0, 256, size=(height, width), dtype=np.uint8)
    raw = b"".join(b"\x00" + row.tobytes() for row in pixels)  # filter type 0 per scanline
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


class PageParser(HTMLParser):
    """Every start tag with its attributes, and the text inside chosen elements."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.stack: list[str] = []
        self.texts: dict[str, list[str]] = {}

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in ("img", "meta", "br"):
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if tag in self.stack:
            while self.stack.pop() != tag:
                pass

    def handle_data(self, data):
        if self.stack:
            self.texts.setdefault(self.stack[-1], []).append(data)


def parse(page: str) -> PageParser:
    parser = PageParser()
    parser.feed(page)
    parser.close()
    return parser


def sample_report(**overrides) -> Report:
    speed = Section("speed", "Speed", "How fast lookups are.\n\nA second paragraph.",
                    figures=[Figure("Throughput (lookups/s)", make_png(30, 20, 1), "Higher is better."),
                             Figure("Latency (ms)", make_png(17, 9, 2))],
                    tables=[Table(["op", "V", "time (ms)", "speed-up"],
                                  [["forward", 50257, 7.12345, "2.2x"], ["bag", 32000, 123.4, "0.03x"]],
                                  caption="Medians of 5 runs.")],
                    notes=["Timings are medians."])
    memory = Section("memory", "Memory", figures=[Figure("Bytes per row", make_png(8, 8, 3))])
    fields = dict(title="tinyembed report", subtitle="on NumPy", summary=["forward 2.2x torch"],
                  sections=[speed, memory], data={"times_ms": np.array([7.12345, 123.4]), "threads": np.int64(2)},
                  created="2025-01-01T00:00:00Z", machine={"cores": 2, "simd": ["avx2"]})
    fields.update(overrides)
    return Report(**fields)


def hidden_entries(directory) -> list[str]:
    return sorted(name for name in os.listdir(directory) if name.startswith("."))


# ---------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------


def test_page_embeds_every_figure_byte_for_byte_and_loads_nothing_else():
    report = sample_report()
    page = parse(render_html(report))
    images = [attrs for tag, attrs in page.tags if tag == "img"]
    figures = [f for section in report.sections for f in section.figures]
    assert len(images) == len(figures)
    for attrs, figure in zip(images, figures, strict=True):
        prefix = "data:image/png;base64,"
        assert attrs["src"].startswith(prefix)
        assert base64.b64decode(attrs["src"][len(prefix):], validate=True) == figure.png
        assert attrs["alt"] == figure.title
        assert (int(attrs["width"]), int(attrs["height"])) == figure.size
    tag_names = {tag for tag, _ in page.tags}
    assert not tag_names & {"script", "link", "iframe", "object", "embed", "base"}
    ids = {attrs["id"] for _, attrs in page.tags if "id" in attrs}
    for _tag, attrs in page.tags:
        for name, value in attrs.items():
            if name in ("src", "href"):
                # only embedded images and links within the page
                assert value.startswith("data:image/png;base64,") or value[1:] in ids and value[0] == "#"
    css = "".join(page.texts["style"])
    assert "url(" not in css and "@import" not in css and "@font-face" not in css


def test_content_security_policy_forbids_anything_but_embedded_images_and_inline_css():
    page = parse(render_html(sample_report()))
    (csp,) = [a["content"] for t, a in page.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives == {"default-src": "'none'", "img-src": "data:", "style-src": "'unsafe-inline'"}


def test_contents_link_to_every_section_in_order():
    report = sample_report()
    page = parse(render_html(report))
    hrefs = [attrs["href"] for tag, attrs in page.tags if tag == "a"]
    assert hrefs == ["#speed", "#memory"]
    section_ids = [attrs["id"] for tag, attrs in page.tags if tag == "section"]
    assert section_ids == ["speed", "memory"]


HOSTILE = ['<script>alert("x")</script>', "a & b < c > d", "\"quoted\" 'single'", "</table></section>",
           "<img src=x onerror=alert(1)>", "&amp; stays literal", "caf\u00e9 \u2014 \u03c0"]


@pytest.mark.parametrize("text", HOSTILE)
def test_every_user_string_is_escaped_and_shown_verbatim(text):
    report = Report(text, subtitle=text, summary=[text], created=text, machine={text: text},
                    sections=[Section("s", text, text, figures=[Figure(text, make_png(2, 2), text)],
                                      tables=[Table([text, "n"], [[text, 1]], caption=text)], notes=[text])])
    page = render_html(report)
    parsed = parse(page)
    # the same elements as a report of harmless strings: nothing was injected
    benign = parse(render_html(Report("t", subtitle="t", summary=["t"], created="t", machine={"t": "t"},
                                      sections=[Section("s", "t", "t", figures=[Figure("t", make_png(2, 2), "t")],
                                                        tables=[Table(["t", "n"], [["t", 1]], caption="t")],
                                                        notes=["t"])])))
    assert [tag for tag, _ in parsed.tags] == [tag for tag, _ in benign.tags]
    assert parsed.texts["title"] == [text]
    assert parsed.texts["h1"] == [text]
    assert text in parsed.texts["li"]  # summary and note
    assert text in parsed.texts["td"] and text in parsed.texts["th"]
    assert [a["alt"] for t, a in parsed.tags if t == "img"] == [text]
    assert any(text in caption for caption in parsed.texts["figcaption"])


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40)
       .filter(lambda s: s.strip()))
def test_arbitrary_table_cell_text_round_trips_through_the_page(text):
    page = render_html(Report("t", sections=[Section("s", "t", tables=[Table(["c"], [[text]])])]))
    assert parse(page).texts["td"] == [text]


def test_paragraphs_split_at_blank_lines():
    page = parse(render_html(Report("t", sections=[Section("s", "t", "one\nline\n\n  two  \n\n\nthree")])))
    assert page.texts["p"][:3] == ["one line", "two", "three"]


def test_numeric_columns_are_right_aligned_and_text_columns_are_not():
    table = Table(["name", "count", "time", "ratio", "mixed", "empty"],
                  [["a", 1, 0.5, "2.2x", "7 ms", None], ["b", np.int32(20), np.float32(1.25), "45%", "n/a", None]])
    page = parse(render_html(Report("t", sections=[Section("s", "t", tables=[table])])))
    header = [attrs.get("class") for tag, attrs in page.tags if tag == "th"]
    cells = [attrs.get("class") for tag, attrs in page.tags if tag == "td"]
    expected = [None, "num", "num", "num", None, None]
    assert header == expected
    assert cells == expected * 2


@pytest.mark.parametrize("value, shown", [
    (None, "\u2014"), (True, "yes"), (np.bool_(False), "no"), (0, "0"), (-1234567, "-1,234,567"),
    (np.uint8(200), "200"), (7.12345, "7.123"), (123.4, "123.4"), (0.5, "0.5000"), (0.0, "0"),
    (12345.6, "12,346"), (0.00012345, "1.234e-04"), (2.5e6, "2.500e+06"), (np.float32(1.5), "1.500"),
    ("as given", "as given"),
])
def test_format_cell_known_answers(value, shown):
    assert format_cell(value) == shown


@given(st.floats(min_value=1e-3, max_value=999_999.0) | st.floats(min_value=-999_999.0, max_value=-1e-3))
def test_format_cell_keeps_four_significant_digits(x):
    shown = float(format_cell(x).replace(",", ""))
    assert math.isclose(shown, x, rel_tol=5e-4 + 1e-12)


# ---------------------------------------------------------------------------
# Validation: errors name what is wrong
# ---------------------------------------------------------------------------


def test_figure_without_title_is_named_by_section_and_position():
    report = sample_report(sections=[Section("speed", "Speed", figures=[Figure("ok", make_png(2, 2)),
                                                                         Figure("  ", make_png(2, 2), "lost")])])
    with pytest.raises(ValueError, match=r"section 'speed', figure 2 has no title \(caption 'lost'\)"):
        render_html(report)


def test_figure_that_is_not_a_png_is_named():
    jpeg = b"\xff\xd8\xff\xe0" + bytes(40)
    report = sample_report(sections=[Section("speed", "Speed", figures=[Figure("A JPEG", jpeg)])])
    with pytest.raises(ValueError, match=r"figure 1 \('A JPEG'\) is not a PNG"):
        render_html(report)
    truncated = make_png(2, 2)[:14]
    with pytest.raises(ValueError, match="no valid PNG header"):
        render_html(sample_report(sections=[Section("speed", "Speed", figures=[Figure("cut", truncated)])]))


@pytest.mark.parametrize("section, message", [
    (Section("bad id", "t"), "has id 'bad id'"),
    (Section("1st", "t"), "has id '1st'"),
    (Section("contents", "t"), "reserved"),
    (Section("figure-x", "t"), "reserved"),
    (Section("s", " "), "section 's' has an empty title"),
    (Section("s", "t", tables=[Table(["a", "b"], [[1, 2], [3]])]), r"table 1, row 1 has 1 cells for 2"),
    (Section("s", "t", tables=[Table(["a"], [[float("nan")]])]), r"row 0, column 'a' is nan"),
    (Section("s", "t", tables=[Table(["a"], [[{1}]])]), r"column 'a'.*got set"),
    (Section("s", "t", tables=[Table([], [])]), "has no columns"),
])
def test_invalid_sections_are_rejected_with_the_culprit_named(section, message):
    with pytest.raises((ValueError, TypeError), match=message):
        render_html(Report("t", sections=[section]))


def test_duplicate_section_ids_are_rejected():
    with pytest.raises(ValueError, match="'s' is used twice"):
        render_html(Report("t", sections=[Section("s", "a"), Section("s", "b")]))


def test_wrong_types_fail_at_construction():
    with pytest.raises(TypeError, match="Figure.png must be bytes"):
        Figure("t", "not bytes")
    with pytest.raises(TypeError, match="Section.title must be str"):
        Section("s", None)
    with pytest.raises(TypeError, match="Table.columns"):
        Table("abc", [])
    with pytest.raises(TypeError, match="Report.data must be dict"):
        Report("t", data=[1])


# ---------------------------------------------------------------------------
# JSON
# ---------------------------------------------------------------------------


class Result:
    def __init__(self, value):
        self.value = value

    def to_dict(self):
        return {"value": self.value}


def test_to_jsonable_converts_numpy_and_results_to_plain_json():
    value = {"a": np.float32(0.5), "b": np.arange(6, dtype=np.int16).reshape(2, 3), "c": (np.bool_(True), None),
             3: "int key", "r": Result(np.float64(2.0)), "o": np.array([np.int8(1), "x"], dtype=object)}
    out = to_jsonable(value)
    assert out == {"a": 0.5, "b": [[0, 1, 2], [3, 4, 5]], "c": [True, None], "3": "int key",
                   "r": {"value": 2.0}, "o": [1, "x"]}
    assert type(out["a"]) is float and type(out["b"][0][0]) is int and type(out["c"][0]) is bool
    assert json.loads(json.dumps(out, allow_nan=False)) == out


@pytest.mark.parametrize("data, error, where", [
    ({"bench": {"rows": [1.0, float("nan")]}}, ValueError, r"data\['bench'\]\['rows'\]\[1\] is nan"),
    ({"t": np.array([[1.0, 2.0], [np.inf, 0.0]])}, ValueError, r"data\['t'\]\[1\]\[0\] is inf"),
    ({"s": {1, 2}}, TypeError, r"data\['s'\] is a set"),
    ({"b": b"raw"}, TypeError, r"data\['b'\] is a bytes"),
    ({(1, 2): 3}, TypeError, r"data has the key \(1, 2\)"),
    ({"u": np.array(["x"])}, TypeError, r"data\['u'\] is an array of dtype <U1"),
    ({"r": Result(float("inf"))}, ValueError, r"data\['r'\]\.to_dict\(\)\['value'\] is inf"),
])
def test_to_jsonable_names_the_key_path_of_what_json_cannot_hold(data, error, where):
    with pytest.raises(error, match=where):
        to_jsonable(data)


def test_report_json_holds_tables_figure_files_and_data():
    report = sample_report()
    doc = report_json(report)
    assert doc["generator"] == "tinyembed" and doc["format"] == 1
    assert doc["data"] == {"times_ms": [7.12345, 123.4], "threads": 2}
    speed = doc["sections"][0]
    assert speed["tables"][0]["rows"] == [["forward", 50257, 7.12345, "2.2x"], ["bag", 32000, 123.4, "0.03x"]]
    files = [f["file"] for s in doc["sections"] for f in s["figures"]]
    assert files == ["figures/throughput-lookups-s.png", "figures/latency-ms.png", "figures/bytes-per-row.png"]
    assert [(f["width_px"], f["height_px"]) for f in speed["figures"]] == [(30, 20), (17, 9)]


def test_figure_files_get_unique_names_even_for_equal_or_symbol_only_titles():
    report = Report("t", sections=[Section("a", "A", figures=[Figure("Same", make_png(2, 2)),
                                                              Figure("Same", make_png(2, 2)),
                                                              Figure("\u2211\u2211", make_png(2, 2))]),
                                   Section("b", "B", figures=[Figure("same", make_png(2, 2))])])
    files = [f["file"] for s in report_json(report)["sections"] for f in s["figures"]]
    assert files == ["figures/same.png", "figures/same-2.png", "figures/figure-3.png", "figures/same-3.png"]


# ---------------------------------------------------------------------------
# The report directory
# ---------------------------------------------------------------------------


def test_write_report_writes_page_json_and_figures(tmp_path):
    report = sample_report()
    out = write_report(report, tmp_path / "report")
    assert out == tmp_path / "report"
    assert sorted(os.listdir(out)) == ["figures", "index.html", "report.json"]
    assert (out / "index.html").read_text(encoding="utf-8") == render_html(report)
    doc = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert doc == json.loads(json.dumps(report_json(report)))
    figures = [f for s in report.sections for f in s.figures]
    written = [(out / f["file"]).read_bytes() for s in doc["sections"] for f in s["figures"]]
    assert written == [f.png for f in figures]
    assert sorted(os.listdir(out / "figures")) == sorted(os.path.basename(f["file"]) for s in doc["sections"]
                                                         for f in s["figures"])
    assert hidden_entries(tmp_path) == []


def test_write_report_creates_missing_parents_and_fills_an_empty_directory(tmp_path):
    out = write_report(sample_report(), tmp_path / "a" / "b" / "report")
    assert (out / "report.json").is_file()
    (tmp_path / "empty").mkdir()
    out = write_report(sample_report(), tmp_path / "empty")
    assert (out / "index.html").is_file()
    assert hidden_entries(tmp_path) == []


def test_write_report_replaces_a_previous_report_whole(tmp_path):
    out = tmp_path / "report"
    write_report(sample_report(title="old"), out)
    (out / "stray.txt").write_text("added by hand")
    write_report(sample_report(title="new"), out)
    assert json.loads((out / "report.json").read_text())["title"] == "new"
    assert not (out / "stray.txt").exists()
    assert hidden_entries(tmp_path) == []


def test_write_report_refuses_to_replace_a_previous_report_without_overwrite(tmp_path):
    out = write_report(sample_report(title="old"), tmp_path / "report")
    with pytest.raises(ReportError, match="already holds a report"):
        write_report(sample_report(title="new"), out, overwrite=False)
    assert json.loads((out / "report.json").read_text())["title"] == "old"


@pytest.mark.parametrize("kind", ["non-report directory", "foreign report.json", "file", "symlink"])
def test_write_report_refuses_anything_else_and_changes_nothing(tmp_path, kind):
    out = tmp_path / "target"
    if kind == "non-report directory":
        out.mkdir()
        (out / "thesis.tex").write_text("precious")
    elif kind == "foreign report.json":
        out.mkdir()
        (out / "report.json").write_text('{"generator": "something else"}')
    elif kind == "file":
        out.write_text("precious")
    else:
        (tmp_path / "elsewhere").mkdir()
        out.symlink_to(tmp_path / "elsewhere")
    before = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    with pytest.raises(ReportError, match=str(out)):
        write_report(sample_report(), out)
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == before
    if kind == "non-report directory":
        assert (out / "thesis.tex").read_text() == "precious"


def test_parent_that_is_a_file_gives_a_clear_error_and_no_leftovers(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    for out in (tmp_path / "notes.txt" / "report", tmp_path / "notes.txt" / "deeper" / "report"):
        with pytest.raises(ReportError, match="notes.txt") as info:
            write_report(sample_report(), out)
        assert isinstance(info.value, OSError)
    assert sorted(os.listdir(tmp_path)) == ["notes.txt"]


def test_read_only_parent_gives_a_clear_error_and_no_leftovers(tmp_path):
    parent = tmp_path / "locked"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        try:  # root ignores permission bits: then this case cannot be made to fail by chmod
            (parent / "probe").mkdir()
        except PermissionError:
            pass
        else:
            (parent / "probe").rmdir()
            pytest.skip("running as root: a read-only directory is still writable")
        with pytest.raises(ReportError, match=f"{parent}.*Permission denied"):
            write_report(sample_report(), parent / "report")
        assert os.listdir(parent) == []
    finally:
        parent.chmod(0o755)


def test_data_that_is_not_json_fails_before_any_file_is_written(tmp_path):
    with pytest.raises(ValueError, match=r"data\['loss'\]\[2\] is nan"):
        write_report(sample_report(data={"loss": [1.0, 0.5, float("nan")]}), tmp_path / "report")
    assert os.listdir(tmp_path) == []


def failing_write(fail_on: str):
    real = report_run._write_file

    def write(path, data):
        if path.name == fail_on:
            raise OSError(28, "No space left on device")
        real(path, data)
    return write


def test_failure_while_writing_leaves_no_report_and_no_temporary_directory(tmp_path, monkeypatch):
    monkeypatch.setattr(report_run, "_write_file", failing_write("index.html"))
    with pytest.raises(ReportError, match="No space left on device"):
        write_report(sample_report(), tmp_path / "report")
    assert os.listdir(tmp_path) == []


def test_failure_while_writing_keeps_the_previous_report_intact(tmp_path, monkeypatch):
    out = write_report(sample_report(title="old"), tmp_path / "report")
    before = {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    monkeypatch.setattr(report_run, "_write_file", failing_write("report.json"))
    with pytest.raises(ReportError):
        write_report(sample_report(title="new"), out)
    assert {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert hidden_entries(tmp_path) == []


def test_failed_swap_puts_the_previous_report_back(tmp_path, monkeypatch):
    out = write_report(sample_report(title="old"), tmp_path / "report")
    real_rename = os.rename

    def rename(src, dst):
        if os.path.basename(src).startswith(".report.new-") and dst == out:
            raise OSError(5, "Input/output error")
        real_rename(src, dst)

    monkeypatch.setattr(report_run.os, "rename", rename)
    with pytest.raises(ReportError, match="Input/output error"):
        write_report(sample_report(title="new"), out)
    monkeypatch.undo()
    assert json.loads((out / "report.json").read_text())["title"] == "old"
    assert hidden_entries(tmp_path) == []


def test_report_directory_permissions_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        out = write_report(sample_report(), tmp_path / "report")
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == 0o755  # mkdtemp would have made it 0700


# ---------------------------------------------------------------------------
# From matplotlib
# ---------------------------------------------------------------------------


@pytest.fixture
def plt():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    yield plt
    plt.close("all")


def test_figure_from_matplotlib_gives_a_png_of_the_drawn_size(plt):
    import matplotlib.image

    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([1, 2, 3], [1, 4, 9])
    ax.set_title("Squares")
    ax.set_xlabel("n")
    ax.set_ylabel("n\u00b2 (count)")
    figure = figure_from_matplotlib(fig, caption="c", dpi=50)
    assert figure.title == "Squares" and figure.caption == "c"
    pixels = matplotlib.image.imread(io.BytesIO(figure.png), format="png")  # an independent decoder
    assert pixels.shape[:2] == (150, 200)
    assert figure.size == (200, 150)
    assert not plt.fignum_exists(fig.number)


def test_figure_from_matplotlib_rejects_unlabelled_axes_and_untitled_figures(plt):
    fig, ax = plt.subplots()
    ax.plot([1, 2], [3, 4])
    ax.set_xlabel("x (s)")
    with pytest.raises(ValueError, match="no title"):
        figure_from_matplotlib(fig, close=False)
    with pytest.raises(ValueError, match="axes 0 has no y label"):
        figure_from_matplotlib(fig, title="T", close=False)
    ax.set_ylabel("y (m)")
    im = ax.imshow(np.eye(3))
    fig.colorbar(im)
    with pytest.raises(ValueError, match="colorbar has no label"):
        figure_from_matplotlib(fig, title="T", close=False)
    fig.axes[-1].set_ylabel("value (1)")
    assert figure_from_matplotlib(fig, title="T").size[0] > 0
