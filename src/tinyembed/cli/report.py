"""``tinyembed report``: profile embedding lookups on this machine into one HTML report.

Examples:
    tinyembed report
    tinyembed report --quick --out /tmp/report
    tinyembed report --json
"""

from __future__ import annotations

import argparse
import json

HELP = "profile embedding lookups on this machine into one HTML report with plots and JSON"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", metavar="DIR", default=None,
                        help="the report directory: index.html, report.json, figures/ "
                             "(default: ./tinyembed-report; with --json, none unless given)")
    parser.add_argument("--force", action="store_true", help="replace a previous report in --out")
    parser.add_argument("--quick", action="store_true", help="a smaller run for CI (under 90 s)")
    parser.add_argument("--json", action="store_true",
                        help="print report.json for programs instead of the summary")


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ..report.run import as_json, run_report

    out = args.out if args.out is not None or args.json else "tinyembed-report"
    # The directory is checked before any measuring; a ReportError (an OSError) exits 1, one line.
    report, path = run_report(out, quick=args.quick, show_progress=True, overwrite=args.force)
    if args.json:
        print(json.dumps(as_json(report), indent=1))
        return 0
    print(report.title)
    print(report.subtitle)
    for line in report.summary:
        print(f"  - {line}")
    if path is not None:
        print(f"report: {path / 'index.html'}")
    return 0
