"""``tinyembed study``: questions about embeddings answered by training and timing.

Each study is a sub-subcommand registered in ``_STUDIES`` (as ``tinyembed train`` registers
its models): ``tinyembed study capacity`` trains the vocabulary x width x compute grid
(:mod:`tinyembed.study.capacity`); ``tinyembed study decode`` times one generated token's
output projection over vocabularies, widths and storage types, bounds the published models'
decoding by it, and measures which output rows real text asks for (:mod:`tinyembed.study.decode`).
Another study is one more (help, add_arguments, run) entry. Every study saves its results to
``~/.cache/tinyembed/studies/NAME.json`` (where ``tinyembed report`` reads them), and with
``--out`` writes its JSON, table and plots there.

Examples:
    tinyembed study capacity --quick
    tinyembed study capacity --out capacity --threads 1
    tinyembed study capacity --quick --json
    tinyembed study decode --quick
    tinyembed study decode --out decode --threads 1
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from .args import CommandError, Subcommands, add_subcommands, clamp_threads, positive_int, run_subcommand

HELP = "studies by training and timing: what a vocabulary costs and buys (capacity, decode)"

CAPACITY_HELP = ("train the tied-output LM over vocabulary x width x compute (IsoFLOPs) and compare held-out "
                 "bits per byte")

DECODE_HELP = ("time one generated token's output projection (attend, batch 1) over vocabulary x width x storage; "
               "the published models' heads per token; the output rows real text asks for")

# The files --out holds, besides the plots.
CAPACITY_FILES = ("capacity.json", "table.md", "table.txt")
DECODE_FILES = ("decode.json", "table.md", "table.txt")


def add_capacity_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true",
                        help="7 runs in under 2 minutes (3 tokenizers, 1 width, 2 budgets) instead of the full grid "
                             "(under 30 minutes)")
    parser.add_argument("--corpus", default="wikipedia", metavar="NAME_OR_FILE",
                        help="a prepared corpus or a UTF-8 file whose articles are apart by an empty line "
                             "(default: wikipedia)")
    _add_common_arguments(parser, CAPACITY_FILES)


def add_decode_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true",
                        help="3 vocabularies at width 768 in 4 storages (under a minute) instead of the full grid "
                             "(8 vocabularies from 1024 to 256000 at widths 768, 2048 and 4096)")
    _add_common_arguments(parser, DECODE_FILES)


def _add_common_arguments(parser: argparse.ArgumentParser, files: tuple[str, ...]) -> None:
    parser.add_argument("--threads", type=positive_int, metavar="N",
                        help="threads of the matrix products and the kernels (default: the cores other "
                             "processes leave idle, by the 1-minute load average; at least 1)")
    parser.add_argument("--out", metavar="DIR", help=f"also write {', '.join(files)} and the plots (PNG) here")
    parser.add_argument("--force", action="store_true", help="replace --out if it exists")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of the table")


def _command(args: argparse.Namespace, study: str) -> str:
    """The command line that reproduces this run, as saved with its results."""
    parts = ["tinyembed", "study", study]
    parts += ["--quick"] if args.quick else []
    corpus = getattr(args, "corpus", "wikipedia")
    parts += ["--corpus", corpus] if corpus != "wikipedia" else []
    parts += ["--threads", str(args.threads)] if args.threads else []
    parts += ["--out", args.out] if args.out else []
    return " ".join(parts)


def _idle_cores() -> int:
    """Cores the 1-minute load average leaves idle, at least 1. On a shared machine a product split
    over a busy core waits for it: tens of milliseconds for a millisecond's work, ten times slower
    for the small models of the grid (measured here under a load of 3 on 2 cores)."""
    import os  # noqa: PLC0415

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        load = os.getloadavg()[0]
    except OSError:  # no load average on this platform: every core
        return cores
    return max(1, min(cores, cores - round(load)))


def _capacity_plots(document: dict) -> dict[str, bytes]:
    from ..report import figures  # noqa: PLC0415

    return {f"{name}.png": figure.png for name, figure in (
        ("bits-per-byte-vs-parameters", figures.capacity_by_parameters(document)),
        ("bits-per-byte-vs-table-bytes", figures.capacity_by_table_bytes(document)),
        ("bits-per-byte-vs-vocabulary", figures.capacity_by_vocabulary(document)))}


def _decode_plots(document: dict) -> dict[str, bytes]:
    from ..report import figures  # noqa: PLC0415

    return {f"{name}.png": figure.png for name, figure in (
        ("seconds-per-token-vs-vocabulary", figures.decode_seconds_per_token(document)),
        ("bandwidth-vs-copy", figures.decode_bandwidth(document)))}


def _checked_out(args: argparse.Namespace):
    """--out checked before any work (and matplotlib, which its plots need); None without --out."""
    from ..io.files import check_destination  # noqa: PLC0415

    out = check_destination(args.out, directory=True, replace=args.force, what="--out") if args.out else None
    if out is not None:
        try:
            import matplotlib  # noqa: F401, PLC0415
        except ImportError:
            raise CommandError("--out draws plots, which need matplotlib: pip install 'tinyembed[plot]'") from None
    return out


def _use_threads(args: argparse.Namespace) -> None:
    """The kernels and BLAS on --threads, or on the idle cores (saying so)."""
    from ..kernels import set_num_threads  # noqa: PLC0415
    from ..study.throughput import set_blas_threads  # noqa: PLC0415

    threads = clamp_threads(args.threads)
    if threads is None:
        threads = _idle_cores()
        print(f"note: using {threads} thread{'s' if threads > 1 else ''} (the cores the load average leaves "
              f"idle; --threads to choose)", file=sys.stderr)
    set_num_threads(threads)
    set_blas_threads(threads)


def _finish(args: argparse.Namespace, document: dict, out, plots: Callable[[dict], dict[str, bytes]],
            format_text: Callable[[dict], str], format_markdown: Callable[[dict], str]) -> int:
    """Save the study for the report, write --out whole (NAME.json, the tables, the plots) or not at
    all, then print the JSON or the table."""
    from ..io.files import atomic_directory  # noqa: PLC0415
    from ..study import save_study  # noqa: PLC0415

    saved = save_study(document)
    if out is not None:
        pngs = plots(document)
        with atomic_directory(out, replace=args.force) as staging:
            (staging / f"{document['study']}.json").write_text(json.dumps(document, indent=1, allow_nan=False)
                                                               + "\n")
            (staging / "table.md").write_text(format_markdown(document) + "\n")
            (staging / "table.txt").write_text(format_text(document) + "\n")
            for name, png in pngs.items():
                (staging / name).write_bytes(png)
    if args.json:
        print(json.dumps(document, indent=1, allow_nan=False))
        return 0
    print(format_text(document))
    print(f"saved {saved}" + (f" and {out}" if out is not None else ""))
    sys.stdout.flush()
    return 0


def run_capacity(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from dataclasses import replace  # noqa: PLC0415

    from ..study import CapacityConfig, run_capacity_study  # noqa: PLC0415
    from ..study.results import study_document  # noqa: PLC0415
    from ..study.summary import format_markdown, format_text  # noqa: PLC0415
    from ..text.corpus import corpus_text  # noqa: PLC0415

    # Everything that can fail cheaply fails first: the destination, plotting, the corpus.
    out = _checked_out(args)
    try:
        text = corpus_text(args.corpus)
    except (OSError, ValueError) as e:
        parser.error(f"--corpus {args.corpus!r}: {e}")
    _use_threads(args)
    config = replace(CapacityConfig.quick_run() if args.quick else CapacityConfig(), corpus=args.corpus)
    try:
        results = run_capacity_study(config, text=text, show_progress=not args.quiet)
    except ValueError as e:  # a corpus too small to split, or a grid that nothing fits
        parser.error(f"--corpus {args.corpus!r}: {e}")
    document = study_document("capacity", results, _command(args, "capacity"))
    return _finish(args, document, out, _capacity_plots, format_text, format_markdown)


def run_decode(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ..study import run_decode_study  # noqa: PLC0415
    from ..study.results import study_document  # noqa: PLC0415
    from ..study.summary import format_decode_markdown, format_decode_text  # noqa: PLC0415

    out = _checked_out(args)
    _use_threads(args)
    try:
        study = run_decode_study(quick=args.quick, show_progress=not args.quiet)
    except (ImportError, OSError) as e:  # the real text: its tokenizer (tinyembed[text]) or its download
        raise CommandError(f"the decode study reads real text: {e}") from None
    except MemoryError as e:  # a table of the grid does not fit the memory available now
        raise CommandError(str(e)) from None
    document = study_document("decode", study.to_dict(), _command(args, "decode"))
    return _finish(args, document, out, _decode_plots, format_decode_text, format_decode_markdown)


# ---------------------------------------------------------------------------
# The studies: one (help, add_arguments, run) each.
# ---------------------------------------------------------------------------

_STUDIES: Subcommands = {
    "capacity": (CAPACITY_HELP, add_capacity_arguments, run_capacity),
    "decode": (DECODE_HELP, add_decode_arguments, run_decode),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_subcommands(parser, _STUDIES, dest="study", metavar="STUDY")


run = run_subcommand
