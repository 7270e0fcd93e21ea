"""The ``tinyembed report`` page.

    document   the document model (Report, Section, Figure, Table), validated
    render     the model as one self-contained HTML page
    manifest   the model and every number behind it as report.json
    figures    the report's plots, from profiler results to titled, labelled PNGs
    plots      the positional-encoding plots of ``tinyembed plot``
    sections   the report's sections, a registry of builders
    run        measure every section, then write the directory atomically
"""

from .document import Figure, Report, ReportError, Section, Table, validate_report
from .figures import figure_from_matplotlib
from .manifest import report_json, to_jsonable
from .render import format_cell, render_html
from .run import write_report

__all__ = ["Figure", "Report", "ReportError", "Section", "Table", "figure_from_matplotlib", "format_cell",
           "render_html", "report_json", "to_jsonable", "validate_report", "write_report"]
