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
    parser.add_argument("--methods", metavar="M,M,...", default=None,
                        # argparse %-formats help: 'prune-50%' must reach it as 'prune-50%%'.
                        help=f"comma-separated methods (default: all): {', '.join(METHODS)}".replace("%", "%%"))
    parser.add_argument("--sample", type=positive_int, default=1000, help="rows sampled for recall@10")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print JSON for programs instead of a table")


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ..profile.compression import METHODS, compress, format_results, minilm_counts, minilm_table, read_table, unfit

    chosen = [m for m in args.methods.split(",") if m] if args.methods else list(METHODS)
    unknown = [m for m in chosen if m not in METHODS]
    if unknown:
        parser.error(f"unknown methods {unknown}; known: {', '.join(METHODS)}")
    if not args.file and (args.tensor or args.counts):
        parser.error("--tensor and --counts describe a --file; without --file the MiniLM table is used")
    try:
        table = read_table(args.file, args.tensor) if args.file else minilm_table()
        counts = np.load(args.counts, allow_pickle=False) if args.counts else None
        if counts is None and not args.file and any(METHODS[m].needs_counts for m in chosen):
            counts = minilm_counts(len(table))
    except (OSError, ValueError, KeyError) as e:
        parser.error(f"cannot read {'--file' if args.file else 'the MiniLM table'}: {e}")
    refused = unfit(chosen, np.shape(table), counts)
    if refused and args.methods:  # asked for by name: say why it cannot run, and run nothing
        parser.error("; ".join(f"{m} cannot run: {why}" for m, why in refused.items()))
    for m, why in refused.items():  # the default list: run what fits, and say what was left out
        print(f"note: {m} left out: {why}", file=sys.stderr)
    results = compress(table, [m for m in chosen if m not in refused], counts=counts, sample=args.sample,
                       seed=args.seed)
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=2))
    else:
        print(format_results(results))
    return 0
