"""The `tinyembed report` page: a generic document model rendered to self-contained HTML.

See :mod:`tinyembed.report.html`.
"""

from .html import (
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
                   validate_report,
                   write_report,
)

__all__ = ["Figure", "Report", "ReportError", "Section", "Table", "figure_from_matplotlib", "format_cell",
           "render_html", "report_json", "to_jsonable", "validate_report", "write_report"]
