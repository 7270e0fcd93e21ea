"""``tinyembed plot``: pictures of embeddings as PNG files (the ``plot`` extra: matplotlib).

Examples:
    tinyembed plot positional --out plots
"""

from __future__ import annotations

import argparse

HELP = "draw pictures of embeddings as PNG files (needs the 'plot' extra: matplotlib)"

# What can be plotted -> the name of the function in tinyembed.report.figures that writes its PNGs.
_PLOTS = {"positional": "save_positional_plots"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=sorted(_PLOTS), help="which family of plots to draw")
    parser.add_argument("--out", metavar="DIR", default="plots",
                        help="directory to write the PNG files into, whole (default: ./plots)")
    parser.add_argument("--force", action="store_true", help="replace --out if it exists")


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ..io.files import DestinationError
    try:
        from ..report import figures
        paths = getattr(figures, _PLOTS[args.what])(args.out, replace=args.force)
    except ImportError as e:  # matplotlib missing: say which extra to install
        parser.error(str(e))
    except DestinationError as e:
        parser.error(f"cannot write plots: {e}")
    for path in paths:
        print(path)
    return 0
