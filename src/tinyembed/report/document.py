"""The report's document model: what a report holds, checked before anything renders it.

A small model, independent of what the report is about:

    Report      title, subtitle, summary lines, created / machine as given, sections, data
    Section     id, title, text (plain paragraphs), figures, tables, notes
    Figure      title, PNG bytes, caption
    Table       columns, rows, caption

:func:`validate_report` names the first part that cannot be rendered. Rendering is
:mod:`.render` (HTML) and :mod:`.manifest` (report.json); writing the directory is
:func:`tinyembed.report.run.write_report`.

Table cells are None, str, bool, int or finite float (NumPy scalars too); how they
are shown is :func:`tinyembed.report.render.format_cell`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from ..checks import check_type, is_number
from ..io.files import DestinationError

__all__ = ["Figure", "Report", "ReportError", "Section", "Table", "validate_report", "figure_slugs",
           "GENERATOR", "FORMAT_VERSION", "PNG_SIGNATURE"]

GENERATOR = "tinyembed"
FORMAT_VERSION = 1  # of report.json; bump when its layout changes
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_SECTION_ID = re.compile(r"[A-Za-z][A-Za-z0-9_-]*\Z")
_RESERVED_IDS = frozenset({"contents", "summary", "about"})  # ids of the page's own parts

class ReportError(DestinationError):
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
        check_type(self.title, str, "Figure.title")
        check_type(self.caption, str, "Figure.caption")
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
            check_type(name, str, "Table column name")
        if not isinstance(self.rows, (list, tuple)):
            raise TypeError(f"Table.rows must be a list of lists, got {type(self.rows).__name__}")
        self.rows = [list(row) if isinstance(row, (list, tuple)) else row for row in self.rows]
        check_type(self.caption, str, "Table.caption")


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
            check_type(getattr(self, name), str, f"Section.{name}")
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
            check_type(getattr(self, name), str, f"Report.{name}")
        self.sections, self.summary = list(self.sections), list(self.summary)
        for name in ("data", "machine"):
            check_type(getattr(self, name), dict, f"Report.{name}")


# ---------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------


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
        check_type(line, str, f"summary line {k}")
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
            check_type(note, str, f"{where}, note {k}")


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
            if not is_number(cell):
                raise TypeError(f"{where}, row {r}, column {table.columns[c]!r}: a cell is None, str, "
                                f"bool or a number, got {type(cell).__name__}: {cell!r:.60}")
            if not math.isfinite(cell):
                raise ValueError(f"{where}, row {r}, column {table.columns[c]!r} is {cell}; "
                                 "use None for a missing value")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60].rstrip("-")


def figure_slugs(report: Report) -> list[list[str]]:
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

