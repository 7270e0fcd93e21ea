"""The rendered report in Debian's headless Chromium: it loads, every image decodes, no console errors.

Negative controls prove the checker can fail: a broken image, a console error from an
inline script, a wrong title, and an external resource that the report's
Content-Security-Policy blocks must each be reported.
"""

import os
import struct

import numpy as np
import pytest

from tinyembed.report import Report, Section, Table, figure_from_matplotlib, write_report

TITLE = "tinyembed report: browser test"


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(0)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    sizes = 2 ** np.arange(4, 13)
    ax.loglog(sizes, 3e-3 * sizes, marker="o")
    ax.set_title("Lookup time by batch size")
    ax.set_xlabel("ids per batch (count)")
    ax.set_ylabel("time (ms)")
    line = figure_from_matplotlib(fig, caption="Linear in the number of ids.", dpi=80)

    fig, ax = plt.subplots(figsize=(5, 4))
    im = ax.imshow(rng.normal(size=(32, 32)), cmap="RdBu")
    ax.set_title("A table's first rows")
    ax.set_xlabel("embedding dimension")
    ax.set_ylabel("row (token id)")
    fig.colorbar(im, label="value (1)")
    heat = figure_from_matplotlib(fig, dpi=80)

    fig, ax = plt.subplots(figsize=(5, 3))
    ax.hist(rng.normal(size=1000), bins=30)
    ax.set_title("Row norms")
    ax.set_xlabel("L2 norm (1)")
    ax.set_ylabel("rows (count)")
    hist = figure_from_matplotlib(fig, dpi=80)

    report = Report(TITLE, subtitle="rendered by tests/report/test_chromium.py", summary=["three figures, one table"],
                    created="2025-01-01T00:00:00Z", machine={"cores": os.cpu_count()},
                    sections=[Section("speed", "Speed", "Two paragraphs.\n\nThe second.", figures=[line, heat],
                                      tables=[Table(["ids", "time (ms)"], [[int(n), 3e-3 * n] for n in sizes],
                                                    caption="The numbers of figure 1.")]),
                              Section("norms", "Norms", figures=[hist], notes=["A note."])],
                    data={"sizes": sizes, "time_ms": 3e-3 * sizes})
    return write_report(report, tmp_path_factory.mktemp("chromium") / "report")


def png_size(path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n" and header[12:16] == b"IHDR"
    return struct.unpack(">II", header[16:24])


def test_report_loads_decodes_every_image_and_logs_no_errors(browser, report_dir):
    check = browser.check(report_dir / "index.html", expected_title=TITLE)
    assert check.failures == []
    assert check.ready_state == "complete" and check.title == TITLE
    # the browser decoded each image to the size its PNG file declares
    files = sorted((report_dir / "figures").iterdir(), key=lambda p: p.stat().st_size)
    decoded = sorted((img["natural_width"], img["natural_height"]) for img in check.images)
    assert len(check.images) == 3
    assert decoded == sorted(png_size(path) for path in files)


def test_checker_reports_a_broken_image(browser, tmp_path):
    page = tmp_path / "broken.html"
    # a PNG cut off after its header: the signature is right, the image is not
    page.write_text('<!DOCTYPE html><title>t</title><img alt="cut" src="data:image/png;base64,'
                    'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJ">')
    check = browser.check(page, expected_title="t")
    assert not check.ok
    assert [f for f in check.failures if f.startswith("image 0 ('cut') did not decode")]
    assert check.images[0]["natural_width"] == 0


def test_checker_reports_console_errors_and_uncaught_exceptions(browser, tmp_path):
    page = tmp_path / "noisy.html"
    page.write_text('<!DOCTYPE html><title>t</title><p>hi</p>'
                    '<script>console.error("logged on purpose"); undefinedFunction();</script>')
    check = browser.check(page, expected_title="t")
    assert not check.ok
    assert any("logged on purpose" in e for e in check.console_errors)
    assert any("undefinedFunction is not defined" in e for e in check.console_errors)
    assert check.images == [] and check.ready_state == "complete"


def test_checker_reports_a_wrong_title_and_a_missing_page(browser, tmp_path):
    page = tmp_path / "titled.html"
    page.write_text("<!DOCTYPE html><title>actual</title>")
    assert browser.check(page, expected_title="actual").ok
    assert browser.check(page, expected_title="expected").failures == [
        "title is 'actual', expected 'expected'"]
    missing = browser.check(tmp_path / "nowhere.html")
    assert any(f.startswith("page did not load") for f in missing.failures)


def test_report_page_loads_nothing_from_outside_itself(browser, report_dir, tmp_path):
    # The same page with an external stylesheet and image slipped in: the page's
    # Content-Security-Policy blocks both, and the checker sees the violations.
    (tmp_path / "pixel.png").write_bytes((report_dir / "figures").iterdir().__next__().read_bytes())
    page = (report_dir / "index.html").read_text(encoding="utf-8")
    page = page.replace("</head>", '<link rel="stylesheet" href="https://example.invalid/x.css"></head>')
    page = page.replace("</main>", f'<img alt="outside" src="{(tmp_path / "pixel.png").as_uri()}"></main>')
    (tmp_path / "index.html").write_text(page, encoding="utf-8")
    check = browser.check(tmp_path / "index.html", expected_title=TITLE)
    policy = [e for e in check.console_errors if "Content Security Policy" in e]
    assert len(policy) == 2
    assert any("x.css" in e for e in policy) and any("pixel.png" in e for e in policy)


def test_screenshot_is_the_whole_page_at_the_given_width(browser, report_dir, tmp_path):
    full = browser.screenshot(report_dir / "index.html", tmp_path / "full.png", width=1000)
    width, height = png_size(full)
    assert width == 1000
    assert height > 1500  # three figures and a table do not fit one 900-pixel screen
    top = browser.screenshot(report_dir / "index.html", tmp_path / "top.png", width=800, height=600)
    assert png_size(top) == (800, 600)
    assert sorted(os.listdir(tmp_path)) == ["full.png", "top.png"]
