"""``tinyembed compress``: shrink an embedding table every established way and measure each.

Examples:
    tinyembed compress
    tinyembed compress --methods int8,int4,lowrank-64 --json
    tinyembed compress --file table.safetensors --tensor weight --counts counts.npy
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from .args import positive_int

HELP = "shrink an embedding table every established way and measure what each costs"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..profile.compression import METHODS

    source = parser.add_argument_group("the table (default: the real all-MiniLM-L6-v2 word table)")
    source.add_argument("--file", metavar="PATH", help="a .safetensors or .npy file holding a (V, D) table")
    source.add_argument("--tensor", metavar="NAME", help="the tensor's name inside a .safetensors file")
    source.add_argument("--counts", metavar="PATH",
                        help="a .npy file of (V,) token counts, for the frequency-ranked methods")
    parser.add_argument("--methods", metavar="M,M,...", default=",".join(METHODS),
                        # argparse %-formats help: 'prune-50%' must reach it as 'prune-50%%'.
                        help=f"comma-separated methods (default: all): {', '.join(METHODS)}".replace("%", "%%"))
    parser.add_argument("--sample", type=positive_int, default=1000, help="rows sampled for recall@10")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print JSON for programs instead of a table")


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ..io.assets import AssetError
    from ..profile.compression import (
        METHODS,
        compress,
        format_results,
        minilm_counts,
        minilm_table,
        needs_counts,
        read_table,
    )

    methods = [m for m in args.methods.split(",") if m]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        parser.error(f"unknown methods {unknown}; known: {', '.join(METHODS)}")
    if not args.file and (args.tensor or args.counts):
        parser.error("--tensor and --counts describe a --file; without --file the MiniLM table is used")
    ranked = needs_counts(methods)
    counts = None
    try:
        if args.file:
            table = read_table(args.file, args.tensor)
            if args.counts:
                counts = np.load(args.counts, allow_pickle=False)
            elif ranked:
                print(f"note: no --counts, so {ranked} (frequency-ranked) are left out", file=sys.stderr)
                methods = [m for m in methods if m not in ranked]
        else:
            table = minilm_table()
            if ranked:
                counts = minilm_counts(len(table))
    except (OSError, ValueError, KeyError, ImportError, AssetError) as e:
        parser.error(f"cannot read the table: {e}")
    try:
        results = compress(table, methods, counts=counts, sample=args.sample, seed=args.seed)
    except (ValueError, ImportError) as e:
        parser.error(str(e))
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=2))
    else:
        print(format_results(results))
    return 0
