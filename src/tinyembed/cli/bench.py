"""``tinyembed bench``: every operation issue 13 targets, timed against its peers on this machine.

The peers are PyTorch (its embedding ops, its quantized bags, Hugging Face's RoPE formula)
and FBGEMM's table-batched kernels, when installed (``pip install 'tinyembed[bench]'``).

Examples:
    tinyembed bench --quick
    tinyembed bench --json --out bench.json
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace

from .args import clamp_threads, positive_int

HELP = "time lookups, compressed tables, bags, RoPE and attend against PyTorch and FBGEMM on this machine"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true",
                        help="under a minute: every op on fewer and smaller shapes, uniform ids only, 3 repeats")
    parser.add_argument("--json", action="store_true", help="print JSON for programs instead of a table")
    parser.add_argument("--out", metavar="FILE", help="also write the JSON report to FILE (atomically)")
    parser.add_argument("--force", action="store_true", help="replace --out if it exists")
    parser.add_argument("--repeats", type=positive_int, metavar="N",
                        help="timed repeats of each contender (default: 5, or 3 with --quick)")
    parser.add_argument("--threads", type=positive_int, metavar="N",
                        help="threads for tinyembed, torch and FBGEMM alike (default: every core)")


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ..io.files import check_destination
    from ..profile import bench

    if args.out:  # checked before minutes of timing
        check_destination(args.out, replace=args.force, what="--out")
    threads = clamp_threads(args.threads)
    config = bench.BenchConfig.quick_run() if args.quick else bench.BenchConfig()
    if args.repeats is not None:
        config = replace(config, repeats=args.repeats)
    if threads is not None:
        config = replace(config, threads=threads)
    report = bench.run(config)
    if args.out:
        bench.write_json(report, args.out)
    print(json.dumps(report.to_dict(), indent=2) if args.json else bench.format_table(report))
    return 0
