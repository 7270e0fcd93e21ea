"""A report as one self-contained HTML page plus the JSON of every number behind it.

A small document model, independent of what the report is about:

    Report      title, subtitle, summary lines, created / machine as given, sections, data
    Section     id, title, text (plain paragraphs), figures, tables, notes
    Figure      title, PNG bytes, caption
    Table       columns, rows, caption

:func:`render_html` turns a :class:`Report` into one page with nothing outside it: the
PNGs are base64 ``data:`` URIs, the CSS is inline, there is no script, and a
Content-Security-Policy tells the browser to load nothing else (a page that tried
would log a console error, which the Chromium test looks for). Every string given is
HTML-escaped. :func:`write_report` writes the page, ``report.json`` and the figures
as PNG files into a directory, atomically::

    OUT/index.html          the page
    OUT/report.json         {"generator": "tinyembed", ..., "sections": [...], "data": {...}}
    OUT/figures/SLUG.png    every figure, also as a file (SLUG from its title)

Table cells are None, str, bool, int or finite float (NumPy scalars too) and are shown
as: None as an em dash, bool as yes / no, int with thousands separators, float with
4 significant digits (scientific below 0.001 and from 1e6 up), str as given.
A column whose cells are all numbers, or strings that read as a number with an
optional unit ("3.2 ms", "45%", "1.8x"), is right-aligned. Pass strings to choose
the formatting yourself.

Examples:
    >>> import zlib, struct
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
import os
import re
import secrets
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "Figure",
    "Report",
    "ReportError",
    "Section",
    "Table",
    "figure_from_matplotlib",
    "format_cell",
    "render_html",
    "report_json",
    "to_jsonable",
    "validate_report",
    "write_report",
]

GENERATOR = "tinyembed"
FORMAT_VERSION = 1  # of report.json; bump when its layout changes
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# No scripts, no fonts, no styles or images from anywhere but this page itself.
CONTENT_SECURITY_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

_SECTION_ID = re.compile(r"[A-Za-z][A-Za-z0-9_-]*\Z")
_RESERVED_IDS = frozenset({"contents", "summary", "about"})  # ids of the page's own parts
# A number with an optional unit, as a table cell string: "3.2 ms", "-1,234", "45%", "1.8x", "2.1 GB/s".
_NUMERIC_TEXT = re.compile(r"[-+\u2212]?(\d[\d,]*(\.\d*)?|\.\d+)([eE][-+]?\d+)?"
                           r"\s*(%|\u00d7|[A-Za-z\u00b5]{1,5}(/[A-Za-z]{1,3})?)?\Z")


class ReportError(OSError):
    """The report could not be written where asked; the message names the path."""


# ---------------------------------------------------------------------------
# The document model
# ---------------------------------------------------------------------------


@dataclass
class Figure:
    """One plot: a PNG image with a title (axes labelled, units given) and an optional caption.

    Args:
        title: shown above the caption and used as the image's alt text and file name.
        png: the encoded PNG file, e.g. from :func:`figure_from_matplotlib`.
        caption: what to see in the plot, plain text.
    """

    title: str
    png: bytes
    caption: str = ""

    def __post_init__(self):
        _check_type("Figure.title", self.title, str)
        _check_type("Figure.caption", self.caption, str)
        if not isinstance(self.png, (bytes, bytearray, memoryview)):
            raise TypeError(f"Figure.png must be bytes, got {type(self.png).__name__}")
        self.png = bytes(self.png)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels, from the PNG header; (0, 0) if it is not a PNG."""
        if self.png[:8] != PNG_SIGNATURE or self.png[12:16] != b"IHDR" or len(self.png) < 24:
            return 0, 0
        return int.from_bytes(self.png[16:20], "big"), int.from_bytes(self.png[20:24], "big")


@dataclass
class Table:
    """Rows of cells under named columns; see the module docstring for how cells are shown.

    Args:
        columns: the header, one name per column (put units here: "time (ms)").
        rows: each a list of ``len(columns)`` cells.
        caption: plain text shown above the table.
    """

    columns: list[str]
    rows: list[list]
    caption: str = ""

    def __post_init__(self):
        if isinstance(self.columns, str) or not isinstance(self.columns, (list, tuple)):
            raise TypeError(f"Table.columns must be a list of str, got {self.columns!r}")
        self.columns = list(self.columns)
        for name in self.columns:
            _check_type("Table column name", name, str)
        if not isinstance(self.rows, (list, tuple)):
            raise TypeError(f"Table.rows must be a list of lists, got {type(self.rows).__name__}")
        self.rows = [list(row) if isinstance(row, (list, tuple)) else row for row in self.rows]
        _check_type("Table.caption", self.caption, str)


@dataclass
class Section:
    """One part of the report, with its own entry in the table of contents.

    Args:
        id: the anchor (``#id``): a letter, then letters, digits, '-' or '_'.
        title: the heading.
        text: plain text; paragraphs are separated by a blank line.
        figures, tables: shown in that order, after the text.
        notes: short plain-text remarks (assumptions, caveats), listed last.
    """

    id: str
    title: str
    text: str = ""
    figures: list[Figure] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __post_init__(self):
        for name in ("id", "title", "text"):
            _check_type(f"Section.{name}", getattr(self, name), str)
        self.figures, self.tables, self.notes = list(self.figures), list(self.tables), list(self.notes)


@dataclass
class Report:
    """A whole report.

    Args:
        title: the page title and top heading.
        sections: in order; each gets an entry in the table of contents.
        subtitle: one line under the title.
        summary: the main findings, one line each, shown at the top.
        data: every number behind the report, written to report.json under "data"
            (NumPy scalars and arrays and objects with ``to_dict()`` are converted).
        created: when the report was made, shown as given (e.g. an ISO 8601 time).
        machine: what it ran on, shown as given (name -> value) at the end.
    """

    title: str
    sections: list[Section] = field(default_factory=list)
    subtitle: str = ""
    summary: list[str] = field(default_factory=list)
    data: dict = field(default_factory=dict)
    created: str = ""
    machine: dict = field(default_factory=dict)

    def __post_init__(self):
        for name in ("title", "subtitle", "created"):
            _check_type(f"Report.{name}", getattr(self, name), str)
        self.sections, self.summary = list(self.sections), list(self.summary)
        for name in ("data", "machine"):
            _check_type(f"Report.{name}", getattr(self, name), dict)


def _check_type(what: str, value, kind: type) -> None:
    if not isinstance(value, kind):
        raise TypeError(f"{what} must be {kind.__name__}, got {type(value).__name__}: {value!r:.80}")


# ---------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------


def _is_number(value) -> bool:
    return isinstance(value, (numbers.Real, np.number)) and not isinstance(value, (bool, np.bool_))


def validate_report(report: Report) -> None:
    """Raise ValueError / TypeError naming the first part of ``report`` that cannot be rendered.

    Checks: a non-empty title; unique, well-formed section ids; every figure titled and
    a PNG (signature and header); every table row as long as the header and every
    cell None, str, bool, int or finite float; every summary line and note a string.
    """
    if not isinstance(report, Report):
        raise TypeError(f"expected a Report, got {type(report).__name__}")
    if not report.title.strip():
        raise ValueError("the report has an empty title")
    for k, line in enumerate(report.summary):
        _check_type(f"summary line {k}", line, str)
    seen: set[str] = set()
    for s, section in enumerate(report.sections):
        if not isinstance(section, Section):
            raise TypeError(f"section {s} is a {type(section).__name__}, not a Section")
        where = f"section {section.id!r}"
        if not _SECTION_ID.match(section.id):
            raise ValueError(f"section {s} has id {section.id!r}: an id is a letter, then letters, "
                             "digits, '-' or '_'")
        if section.id in seen or section.id in _RESERVED_IDS or section.id.startswith(("figure-", "table-")):
            raise ValueError(f"section id {section.id!r} is used twice or is reserved "
                             f"({', '.join(sorted(_RESERVED_IDS))}, figure-*, table-*)")
        seen.add(section.id)
        if not section.title.strip():
            raise ValueError(f"{where} has an empty title")
        for f, figure in enumerate(section.figures, 1):
            if not isinstance(figure, Figure):
                raise TypeError(f"{where}, figure {f} is a {type(figure).__name__}, not a Figure")
            name = f"{where}, figure {f}" + (f" ({figure.title!r})" if figure.title.strip() else "")
            if not figure.title.strip():
                raise ValueError(f"{name} has no title" + (f" (caption {figure.caption[:60]!r})"
                                                            if figure.caption else ""))
            if figure.png[:8] != PNG_SIGNATURE:
                raise ValueError(f"{name} is not a PNG: it starts with {figure.png[:8]!r}")
            if min(figure.size) <= 0:
                raise ValueError(f"{name} has no valid PNG header (IHDR)")
        for t, table in enumerate(section.tables, 1):
            if not isinstance(table, Table):
                raise TypeError(f"{where}, table {t} is a {type(table).__name__}, not a Table")
            _validate_table(table, f"{where}, table {t}")
        for k, note in enumerate(section.notes):
            _check_type(f"{where}, note {k}", note, str)


def _validate_table(table: Table, where: str) -> None:
    if not table.columns:
        raise ValueError(f"{where} has no columns")
    for r, row in enumerate(table.rows):
        if not isinstance(row, list):
            raise TypeError(f"{where}, row {r} is a {type(row).__name__}, not a list of cells")
        if len(row) != len(table.columns):
            raise ValueError(f"{where}, row {r} has {len(row)} cells for {len(table.columns)} "
                             f"columns {table.columns}")
        for c, cell in enumerate(row):
            if cell is None or isinstance(cell, (str, bool, np.bool_)):
                continue
            if not _is_number(cell):
                raise TypeError(f"{where}, row {r}, column {table.columns[c]!r}: a cell is None, str, "
                                f"bool or a number, got {type(cell).__name__}: {cell!r:.60}")
            if not math.isfinite(cell):
                raise ValueError(f"{where}, row {r}, column {table.columns[c]!r} is {cell}; "
                                 "use None for a missing value")


# ---------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------

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
    if _is_number(value):
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
        _is_number(cell) or (isinstance(cell, str) and _NUMERIC_TEXT.match(cell.strip())) for cell in cells)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60].rstrip("-")


def _figure_slugs(report: Report) -> list[list[str]]:
    """A unique file-name stem for every figure, per section, from its title."""
    used: set[str] = set()
    slugs = []
    number = 0
    for section in report.sections:
        names = []
        for figure in section.figures:
            number += 1
            base = _slug(figure.title) or f"figure-{number}"
            slug, k = base, 2
            while slug in used:
                slug, k = f"{base}-{k}", k + 1
            used.add(slug)
            names.append(slug)
        slugs.append(names)
    return slugs


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
    slugs = _figure_slugs(report)
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


# ---------------------------------------------------------------------------
# JSON
# ---------------------------------------------------------------------------


def to_jsonable(value: Any, path: str = "data") -> Any:
    """``value`` as plain JSON types: dicts with str keys, lists, str, int, finite float, bool, None.

    NumPy scalars become Python scalars, arrays nested lists, tuples lists, int dict
    keys strings (as ``json`` would), and an object with a ``to_dict()`` method its dict.

    Raises:
        TypeError: something JSON cannot hold (a set, bytes, an object array of them, ...);
            the message names where, as ``path`` then keys and indices.
        ValueError: a NaN or infinity (JSON has neither); the message names where.
    """
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (numbers.Integral, np.integer)):
        return int(value)
    if isinstance(value, (numbers.Real, np.floating)):
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"{path} is {value}: JSON has no NaN or infinity (use None for a missing value)")
        return value
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biufO":
            raise TypeError(f"{path} is an array of dtype {value.dtype}, which JSON cannot hold")
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            bad = tuple(int(i) for i in np.argwhere(~np.isfinite(value))[0])
            raise ValueError(f"{path}{''.join(f'[{i}]' for i in bad)} is {value[bad]}: JSON has no NaN "
                             "or infinity (use None for a missing value)")
        if value.dtype.kind == "O":
            return [to_jsonable(item, f"{path}[{i}]") for i, item in enumerate(value)]
        return value.tolist()
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if isinstance(key, (bool, np.bool_)) or not isinstance(key, (str, numbers.Integral, np.integer)):
                raise TypeError(f"{path} has the key {key!r} ({type(key).__name__}); JSON keys are strings")
            name = key if isinstance(key, str) else str(int(key))
            if name in out:
                raise ValueError(f"{path} has the key {name!r} twice once keys are strings")
            out[name] = to_jsonable(item, f"{path}[{name!r}]")
        return out
    if isinstance(value, (list, tuple)):
        return [to_jsonable(item, f"{path}[{i}]") for i, item in enumerate(value)]
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return to_jsonable(to_dict(), f"{path}.to_dict()")
    raise TypeError(f"{path} is a {type(value).__name__}, which JSON cannot hold: {value!r:.80}")


def report_json(report: Report) -> dict:
    """What report.json holds: the report's text and tables, its figures' files, and ``data``.

    Raises:
        ValueError, TypeError: from :func:`validate_report` or :func:`to_jsonable`.
    """
    from .. import __version__

    validate_report(report)
    sections = []
    for section, names in zip(report.sections, _figure_slugs(report), strict=True):
        sections.append({
            "id": section.id,
            "title": section.title,
            "text": section.text,
            "figures": [{"title": figure.title, "caption": figure.caption, "file": f"figures/{slug}.png",
                         "width_px": figure.size[0], "height_px": figure.size[1]}
                        for figure, slug in zip(section.figures, names, strict=True)],
            "tables": [{"caption": table.caption, "columns": table.columns,
                        "rows": to_jsonable(table.rows, f"sections[{section.id!r}].tables[{t}].rows")}
                       for t, table in enumerate(section.tables)],
            "notes": section.notes,
        })
    return {
        "generator": GENERATOR,
        "version": __version__,
        "format": FORMAT_VERSION,
        "title": report.title,
        "subtitle": report.subtitle,
        "summary": report.summary,
        "created": report.created,
        "machine": to_jsonable(report.machine, "machine"),
        "sections": sections,
        "data": to_jsonable(report.data, "data"),
    }


# ---------------------------------------------------------------------------
# Writing the directory
# ---------------------------------------------------------------------------


def _is_report_dir(path: Path) -> bool:
    """Whether ``path`` is a directory that a previous :func:`write_report` made (its report.json says so)."""
    try:
        with open(path / "report.json", encoding="utf-8") as f:
            marker = json.load(f)
    except (OSError, ValueError):
        return False
    return isinstance(marker, dict) and marker.get("generator") == GENERATOR


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "xb") as f:
        f.write(data)


def write_report(report: Report, out_dir: str | os.PathLike, *, overwrite: bool = True) -> Path:
    """Write ``index.html``, ``report.json`` and ``figures/*.png`` into ``out_dir``; returns its path.

    Everything is rendered first, then written into a new hidden directory beside
    ``out_dir`` (same file system) and renamed into place, so ``out_dir`` is either
    the complete new report or what it was before, never a half-written report.
    ``out_dir``'s parents are created if missing.

    Args:
        out_dir: the report directory. If it exists it must be empty or hold a previous
            tinyembed report (its report.json has ``"generator": "tinyembed"``); a
            previous report is replaced whole, including files added to it since.
        overwrite: False refuses to replace a previous report.

    Raises:
        ReportError (an OSError): ``out_dir`` exists and is something else (a file, a
            symbolic link, a directory with other files), or cannot be written; the
            message names the path. Nothing is changed then (but for missing parents
            of ``out_dir`` that were already created).
        ValueError, TypeError: the report cannot be rendered or its data is not JSON
            (see :func:`validate_report`, :func:`to_jsonable`); raised before any file is touched.
    """
    page = render_html(report).encode("utf-8")
    manifest = json.dumps(report_json(report), indent=2, allow_nan=False, ensure_ascii=False).encode("utf-8")
    slugs = _figure_slugs(report)

    out = Path(os.path.abspath(out_dir))  # abspath also resolves "..", which cannot be renamed onto
    replace_previous = False
    if out.is_symlink():
        raise ReportError(f"cannot write the report to {out}: it is a symbolic link; remove it or pick "
                          "another --out")
    if out.exists():
        if not out.is_dir():
            raise ReportError(f"cannot write the report to {out}: it is a file, not a report directory")
        if _is_report_dir(out):
            if not overwrite:
                raise ReportError(f"{out} already holds a report; pass overwrite=True to replace it")
            replace_previous = True
        elif any(out.iterdir()):
            raise ReportError(f"cannot write the report to {out}: the directory is not empty and holds "
                              "no previous tinyembed report (no report.json with \"generator\": "
                              "\"tinyembed\"); pick an empty or new directory")
    parent = out.parent
    if parent.exists() and not parent.is_dir():
        raise ReportError(f"cannot write the report to {out}: {parent} is a file, not a directory")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ReportError(f"cannot create {parent} for the report: {e.strerror or e}") from e

    try:
        staging = _make_hidden_dir(parent, out.name, "new")
    except OSError as e:
        raise ReportError(f"cannot write the report to {out}: cannot create a directory in {parent} "
                          f"({e.strerror or e})") from e
    try:
        (staging / "figures").mkdir()
        for section, names in zip(report.sections, slugs, strict=True):
            for figure, slug in zip(section.figures, names, strict=True):
                _write_file(staging / "figures" / f"{slug}.png", figure.png)
        _write_file(staging / "index.html", page)
        _write_file(staging / "report.json", manifest)  # last: it marks a complete report
        if replace_previous:
            _swap_in(staging, out)
        else:
            # Renaming onto an empty directory replaces it; onto a non-empty one (made
            # by someone else meanwhile) it fails, and nothing is lost.
            os.rename(staging, out)
    except BaseException as e:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(e, OSError) and not isinstance(e, ReportError):
            raise ReportError(f"cannot write the report to {out}: {e.strerror or e}") from e
        raise
    return out


def _make_hidden_dir(parent: Path, name: str, kind: str) -> Path:
    """A new directory ``parent/.NAME.KIND-RANDOM`` (mkdir honours the umask; mkdtemp would make it 0700)."""
    while True:
        path = parent / f".{name}.{kind}-{secrets.token_hex(4)}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue


def _swap_in(staging: Path, out: Path) -> None:
    """Replace the previous report ``out`` with ``staging``: old aside, new in, old deleted."""
    aside = out.parent / f".{out.name}.old-{secrets.token_hex(4)}"
    os.rename(out, aside)
    try:
        os.rename(staging, out)
    except BaseException:
        os.rename(aside, out)  # put the previous report back
        raise
    try:
        shutil.rmtree(aside)
    except OSError as e:  # the new report is in place; only the old copy is left over
        warnings.warn(f"the new report is in {out}, but the previous one could not be deleted from "
                      f"{aside}: {e}", RuntimeWarning, stacklevel=3)


# ---------------------------------------------------------------------------
# From matplotlib
# ---------------------------------------------------------------------------


def figure_from_matplotlib(fig, title: str | None = None, caption: str = "", *, dpi: int = 110,
                           close: bool = True, require_labels: bool = True) -> Figure:
    """A :class:`Figure` from a matplotlib figure, after checking it is titled and its axes labelled.

    Args:
        fig: a ``matplotlib.figure.Figure``.
        title: the report's title for it; None takes the figure's suptitle, or the
            title of its only axes.
        dpi: resolution of the PNG.
        close: close ``fig`` afterwards (pyplot keeps every open figure alive).
        require_labels: check that every visible axes with data has an x and a y label
            (and every colorbar a label): the report promises labelled axes with units.
            Turn it off only for plots without axes, such as a pie chart.

    Raises:
        ValueError: no title, or unlabelled axes; the message names the axes by its title.
    """
    import io

    suptitle = fig._suptitle.get_text() if getattr(fig, "_suptitle", None) is not None else ""
    visible = [ax for ax in fig.axes if ax.get_visible() and ax.axison]
    # A colorbar is an axes too; matplotlib marks it with a private `_colorbar`, and
    # its label sits on its long axis only.
    colorbars = [ax for ax in visible if getattr(ax, "_colorbar", None) is not None]
    plots = [ax for ax in visible if ax not in colorbars]
    if title is None:
        titled = [ax.get_title() for ax in plots if ax.get_title()]
        title = suptitle or (titled[0] if len(plots) == 1 and titled else "")
    if not title.strip():
        raise ValueError("the figure has no title: give title=, or set a suptitle or the axes title")
    if require_labels:
        for k, ax in enumerate(plots):
            name = f"axes {k} ({ax.get_title()!r})" if ax.get_title() else f"axes {k}"
            missing = [axis for axis, label in (("x", ax.get_xlabel()), ("y", ax.get_ylabel())) if not label.strip()]
            if ax.has_data() and missing:
                raise ValueError(f"figure {title!r}: {name} has no {' or '.join(missing)} label "
                                 "(label every axis, with its unit)")
            if len(plots) > 1 and not (ax.get_title() or suptitle):
                raise ValueError(f"figure {title!r}: {name} has no title and the figure no suptitle")
        for ax in colorbars:
            label = ax.get_ylabel() if ax._colorbar.orientation == "vertical" else ax.get_xlabel()
            if not label.strip():
                raise ValueError(f"figure {title!r}: a colorbar has no label (what its colours mean, with the unit)")
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=dpi)
    finally:
        if close:
            import matplotlib.pyplot as plt

            plt.close(fig)
    return Figure(title=title, png=buffer.getvalue(), caption=caption)
