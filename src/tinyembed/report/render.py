"""The report as one self-contained HTML page.

:func:`render_html` turns a :class:`~tinyembed.report.document.Report` into one page
with nothing outside it: the PNGs are base64 ``data:`` URIs, the CSS is inline, there
is no script, and a Content-Security-Policy tells the browser to load nothing else (a
page that tried would log a console error, which the browser test looks for). Every
string given is HTML-escaped.

Table cells are shown as: None as an em dash, bool as yes / no, int with thousands
separators, float with 4 significant digits (scientific below 0.001 and from 1e6 up),
str as given. A column whose cells are all numbers, or strings that read as a number
with an optional unit ("3.2 ms", "45%", "1.8x"), is right-aligned. Pass strings to
choose the formatting yourself.

Examples:
    >>> import zlib, struct
    >>> from tinyembed.report import Figure, Report, Section, Table
    >>> def chunk(kind, data):
    ...     return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    >>> png = (b"\\x89PNG\\r\\n\\x1a\\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
    ...        + chunk(b"IDAT", zlib.compress(b"\\x00\\x80")) + chunk(b"IEND", b""))
    >>> report = Report("Demo", sections=[Section("speed", "Speed", "Lookups per second.",
    ...     figures=[Figure("Throughput (lookups/s) by batch size", png)],
    ...     tables=[Table(["batch", "lookups/s"], [[32, 1.5e6], [64, 2.25e6]])])],
    ...     data={"lookups_per_s": [1.5e6, 2.25e6]})
    >>> page = render_html(report)
    >>> page.count("data:image/png;base64,"), "<script" in page
    (1, False)
    >>> format_cell(1234567), format_cell(0.012345), format_cell(2.25e6), format_cell(None)
    ('1,234,567', '0.01235', '2.250e+06', '—')
"""

from __future__ import annotations

import base64
import html
import json
import math
import numbers
import re

import numpy as np

from ..checks import is_number
from .document import GENERATOR, Report, Table, figure_slugs, validate_report
from .manifest import to_jsonable

__all__ = ["render_html", "format_cell", "CONTENT_SECURITY_POLICY"]

# No scripts, no fonts, no styles or images from anywhere but this page itself.
CONTENT_SECURITY_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
# A number with an optional unit, as a table cell string: "3.2 ms", "-1,234", "45%", "1.8x", "2.1 GB/s".
_NUMERIC_TEXT = re.compile(r"[-+\u2212]?(\d[\d,]*(\.\d*)?|\.\d+)([eE][-+]?\d+)?"
                           r"\s*(%|\u00d7|[A-Za-z\u00b5]{1,5}(/[A-Za-z]{1,3})?)?\Z")


_CSS = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1100px; padding: 1.5rem 2rem 3rem; background: #fff; color: #1d1f21;
  font: 16px/1.55 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", "Liberation Sans", sans-serif; }
h1 { font-size: 1.9rem; line-height: 1.25; margin: .5rem 0 .2rem; }
h2 { font-size: 1.4rem; margin: 2.6rem 0 .8rem; padding-bottom: .3rem; border-bottom: 1px solid #d8dde3; }
p { margin: .6rem 0; max-width: 48rem; }
a { color: #1f5f9f; }
.subtitle { color: #4a5159; font-size: 1.1rem; margin-top: 0; }
.created { color: #4a5159; font-size: .9rem; }
ul.summary { background: #f3f6f9; border-left: 4px solid #3b6ea5; margin: 1.2rem 0; padding: .8rem 1rem .8rem 2.2rem; }
nav.contents { margin: 1.5rem 0; }
nav.contents h2 { font-size: 1.1rem; border: none; margin: 0 0 .3rem; }
nav.contents ol { margin: 0; padding-left: 1.6rem; }
figure { margin: 1.6rem 0; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid #e2e6ea; }
figcaption, caption, ul.notes { color: #3e454c; font-size: .92rem; }
figcaption { margin-top: .45rem; max-width: 52rem; }
.table-wrap { overflow-x: auto; margin: 1.2rem 0; }
table { border-collapse: collapse; font-size: .92rem; }
caption { caption-side: top; text-align: left; padding-bottom: .4rem; }
th, td { padding: .3rem .75rem; border-bottom: 1px solid #e2e6ea; text-align: left; vertical-align: top; }
thead th { background: #f3f5f7; border-bottom: 2px solid #9aa3ad; }
tbody tr:nth-child(even) { background: #fafbfc; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
footer { margin-top: 3rem; padding-top: .5rem; border-top: 1px solid #d8dde3; font-size: .85rem; color: #4a5159; }
footer table { font-size: .85rem; }
footer th { font-weight: 600; }
@page { margin: 15mm; }
@media print {
  body { max-width: none; padding: 0; font-size: 10.5pt; }
  a { color: inherit; text-decoration: none; }
  h2 { break-after: avoid; }
  figure, tr, caption { break-inside: avoid; }
  tbody tr:nth-child(even) { background: none; }
  .table-wrap { overflow: visible; }
}
"""


def format_cell(value) -> str:
    """How a table cell is shown (see the module docstring); the result is not yet escaped."""
    if value is None:
        return "\u2014"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (numbers.Integral, np.integer)):
        return f"{int(value):,}"
    if is_number(value):
        value = float(value)
        magnitude = abs(value)
        if value == 0:
            return "0"
        if magnitude < 1e-3 or magnitude >= 1e6:
            return f"{value:.3e}"
        decimals = max(0, 3 - math.floor(math.log10(magnitude)))
        return f"{value:,.{decimals}f}"
    return str(value)


def _is_numeric_column(rows: list[list], column: int) -> bool:
    cells = [row[column] for row in rows if row[column] is not None]
    return bool(cells) and all(
        is_number(cell) or (isinstance(cell, str) and _NUMERIC_TEXT.match(cell.strip())) for cell in cells)


def _paragraphs(text: str) -> list[str]:
    """Plain text -> escaped paragraphs (split at blank lines; single newlines become spaces)."""
    blocks = re.split(r"\n\s*\n", text.strip())
    return [f"<p>{html.escape(' '.join(block.split()))}</p>" for block in blocks if block.strip()]


def _render_table(table: Table, number: int) -> str:
    numeric = [_is_numeric_column(table.rows, c) for c in range(len(table.columns))]

    def cls(c: int) -> str:
        return ' class="num"' if numeric[c] else ""

    out = [f'<div class="table-wrap"><table id="table-{number}">']
    caption = f"Table {number}." + (f" {html.escape(table.caption)}" if table.caption else "")
    out.append(f"<caption>{caption}</caption>")
    out.append("<thead><tr>" + "".join(f'<th scope="col"{cls(c)}>{html.escape(name)}</th>'
                                       for c, name in enumerate(table.columns)) + "</tr></thead>")
    out.append("<tbody>")
    for row in table.rows:
        out.append("<tr>" + "".join(f"<td{cls(c)}>{html.escape(format_cell(cell))}</td>"
                                    for c, cell in enumerate(row)) + "</tr>")
    out.append("</tbody></table></div>")
    return "\n".join(out)


def _machine_value(value) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(to_jsonable(value, "machine"), ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def render_html(report: Report) -> str:
    """The report as one self-contained HTML page (a str; UTF-8 when written).

    Raises:
        ValueError, TypeError: from :func:`validate_report`, naming what is wrong.
    """
    from .. import __version__

    validate_report(report)
    slugs = figure_slugs(report)
    esc = html.escape
    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">',
        f'<meta name="generator" content="{GENERATOR} {esc(__version__)}">',
        f"<title>{esc(report.title)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        "<header>",
        f"<h1>{esc(report.title)}</h1>",
    ]
    if report.subtitle:
        out.append(f'<p class="subtitle">{esc(report.subtitle)}</p>')
    if report.created:
        out.append(f'<p class="created">Created {esc(report.created)}</p>')
    if report.summary:
        out.append('<ul class="summary" id="summary">')
        out.extend(f"<li>{esc(line)}</li>" for line in report.summary)
        out.append("</ul>")
    out.append("</header>")
    if report.sections:
        out.append('<nav class="contents" id="contents" aria-label="Contents"><h2>Contents</h2><ol>')
        out.extend(f'<li><a href="#{section.id}">{esc(section.title)}</a></li>' for section in report.sections)
        out.append("</ol></nav>")
    out.append("<main>")
    figure_number = table_number = 0
    for section, names in zip(report.sections, slugs, strict=True):
        out.append(f'<section id="{section.id}">')
        out.append(f"<h2>{esc(section.title)}</h2>")
        out.extend(_paragraphs(section.text))
        for figure, slug in zip(section.figures, names, strict=True):
            figure_number += 1
            width, height = figure.size
            data = base64.b64encode(figure.png).decode("ascii")
            stop = "" if figure.title.rstrip()[-1] in ".?!" else "."
            caption = f"<strong>Figure {figure_number}. {esc(figure.title)}{stop}</strong>"
            if figure.caption:
                caption += f" {esc(figure.caption)}"
            out.append(f'<figure id="figure-{slug}">')
            out.append(f'<img src="data:image/png;base64,{data}" alt="{esc(figure.title)}" '
                       f'width="{width}" height="{height}">')
            out.append(f"<figcaption>{caption}</figcaption>")
            out.append("</figure>")
        for table in section.tables:
            table_number += 1
            out.append(_render_table(table, table_number))
        if section.notes:
            out.append('<ul class="notes">')
            out.extend(f"<li>{esc(note)}</li>" for note in section.notes)
            out.append("</ul>")
        out.append("</section>")
    out.append("</main>")
    out.append('<footer id="about">')
    if report.machine:
        out.append('<div class="table-wrap"><table class="machine"><caption>Machine</caption><tbody>')
        out.extend(f'<tr><th scope="row">{esc(str(key))}</th><td>{esc(_machine_value(value))}</td></tr>'
                   for key, value in report.machine.items())
        out.append("</tbody></table></div>")
    out.append(f"<p>Made by {GENERATOR} {esc(__version__)}. The numbers behind every figure and table "
               "are in report.json next to this page.</p>")
    out.append("</footer>")
    out.append("</body>")
    out.append("</html>")
    return "\n".join(out) + "\n"

