"""``tinyembed plot``: pictures of embeddings as PNG files (the ``plot`` extra: matplotlib).

Examples:
    tinyembed plot positional --out plots
"""

from __future__ import annotations

import argparse

HELP = "draw pictures of embeddings as PNG files (needs the 'plot' extra: matplotlib)"

# What can be plotted -> the library function that writes its PNGs into a directory.
_PLOTS = {"positional": "save_positional_plots"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=sorted(_PLOTS), help="which family of plots to draw")
    parser.add_argument("--out", metavar="DIR", default="plots",
                        help="directory to write the PNG files into (default: ./plots)")


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    try:
        from ..report import plots
    except ImportError as e:
        parser.error(str(e))
    try:
        paths = getattr(plots, _PLOTS[args.what])(args.out)
    except ImportError as e:  # matplotlib missing: say which extra to install
        parser.error(str(e))
    except OSError as e:
        parser.error(f"cannot write plots to {args.out!r}: {e}")
    for path in paths:
        print(path)
    return 0
