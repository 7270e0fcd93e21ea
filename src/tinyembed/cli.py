"""The ``tinyembed`` command line.

Each subcommand is one ``Command``: a name, a one-line help, a function that
adds its arguments and a function that runs it. Adding a subcommand is
writing those two functions and appending one entry to ``_COMMANDS``. The CLI
only parses arguments and calls the library; it computes nothing itself.

Examples:
    tinyembed report
    tinyembed report --quick --out /tmp/report
    tinyembed memory
    tinyembed memory --model gpt2 --model llama3-8b --json
    tinyembed memory --vocab 65536 --dim 1024 --context 2048 --positional learned
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np

from tinyembed.commands.args import nonnegative_float, positive_int
from tinyembed.memory import DISTRIBUTIONS, embedding_memory, format_table
from tinyembed.models import MODELS, ModelConfig


@dataclass(frozen=True)
class Command:
    """One subcommand: ``run(args, parser)`` returns the exit code."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, argparse.ArgumentParser], int]


# ---------------------------------------------------------------------------
# tinyembed memory
# ---------------------------------------------------------------------------

# Flags that describe a custom config and mean nothing without --vocab/--dim.
_CUSTOM_ONLY_FLAGS = {
    "context": "--context",
    "tied": "--tied/--untied",
    "positional": "--positional",
    "total_params": "--total-params",
    "name": "--name",
}


def _add_memory_arguments(parser: argparse.ArgumentParser) -> None:
    known = ", ".join(MODELS)
    models = parser.add_argument_group("models")
    models.add_argument(
        "--model",
        action="append",
        choices=list(MODELS),
        metavar="NAME",
        help=f"a published config, repeatable (default: all unless --vocab/--dim is given). "
        f"Known: {known}",
    )

    custom = parser.add_argument_group(
        "custom config", "describe your own model; --vocab and --dim go together"
    )
    custom.add_argument("--vocab", type=positive_int, metavar="V", help="vocabulary size (rows)")
    custom.add_argument("--dim", type=positive_int, metavar="D", help="hidden size (row width)")
    custom.add_argument(
        "--context", type=positive_int, metavar="N", help="context length in tokens"
    )
    tying = custom.add_mutually_exclusive_group()
    tying.add_argument(
        "--tied",
        dest="tied",
        action="store_const",
        const=True,
        help="the output head reuses the token table (counted once)",
    )
    tying.add_argument(
        "--untied",
        dest="tied",
        action="store_const",
        const=False,
        help="the output head is a separate V x D table (default)",
    )
    custom.add_argument(
        "--positional",
        choices=["learned", "none"],
        help="position embeddings: a learned table of context x D (needs --context) "
        "or none (default)",
    )
    custom.add_argument(
        "--total-params",
        type=positive_int,
        metavar="N",
        help="all parameters of the model; without it the embedding share is reported unknown",
    )
    custom.add_argument("--name", help="name shown for the custom config (default: custom)")

    batch = parser.add_argument_group("batch assumption (for sparse updates)")
    batch.add_argument(
        "--batch-tokens",
        type=positive_int,
        default=16384,
        metavar="N",
        help="tokens per training batch (default: %(default)s)",
    )
    batch.add_argument(
        "--distribution",
        choices=list(DISTRIBUTIONS),
        default="zipf",
        help="how tokens are drawn from the vocabulary (default: %(default)s)",
    )
    batch.add_argument(
        "--zipf-alpha",
        type=nonnegative_float,
        default=1.0,
        metavar="A",
        help="Zipf exponent: rank i is drawn with probability proportional to 1/i^A "
        "(default: %(default)s)",
    )

    parser.add_argument(
        "--json", action="store_true", help="print a JSON list of reports instead of a table"
    )


def _custom_config(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Optional[ModelConfig]:
    """The custom config described by the flags, or None if there is none."""
    if (args.vocab is None) != (args.dim is None):
        given, missing = ("--vocab", "--dim") if args.dim is None else ("--dim", "--vocab")
        parser.error(f"{given} needs {missing}: a custom config needs both --vocab and --dim")
    if args.vocab is None:
        stray = [flag for dest, flag in _CUSTOM_ONLY_FLAGS.items() if getattr(args, dest) is not None]
        if stray:
            parser.error(f"{', '.join(stray)} describe a custom config and need --vocab and --dim")
        return None
    if args.positional == "learned" and args.context is None:
        parser.error("--positional learned needs --context: a learned table has one row per position")
    try:
        return ModelConfig(
            name=args.name or "custom",
            vocab_size=args.vocab,
            hidden_size=args.dim,
            context_length=args.context,
            tied=bool(args.tied),
            positional=args.positional or "none",
            total_params=args.total_params,
            source="command line",
        )
    except ValueError as error:
        parser.error(str(error))
        raise  # unreachable: parser.error exits


def _run_memory(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    custom = _custom_config(args, parser)
    names = args.model
    if names is None:
        # No --model: all published configs, unless the user asked only about their own.
        names = [] if custom is not None else list(MODELS)
    configs = [MODELS[name] for name in dict.fromkeys(names)]  # dedupe, keep order
    if custom is not None:
        configs.append(custom)

    reports = [
        embedding_memory(
            config,
            batch_tokens=args.batch_tokens,
            distribution=args.distribution,
            zipf_alpha=args.zipf_alpha,
        )
        for config in configs
    ]
    if args.json:
        print(json.dumps([report.to_dict() for report in reports], indent=2))
    else:
        print(format_table(reports))
    return 0


# ---------------------------------------------------------------------------
# tinyembed plot
# ---------------------------------------------------------------------------

# What can be plotted -> the library function that writes its PNGs into a directory.
_PLOTS = {"positional": "save_positional_plots"}


def _add_plot_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=sorted(_PLOTS), help="which family of plots to draw")
    parser.add_argument("--out", metavar="DIR", default="plots",
                        help="directory to write the PNG files into (default: ./plots)")


def _run_plot(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    try:
        from tinyembed import plots
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


# ---------------------------------------------------------------------------
# tinyembed compress
# ---------------------------------------------------------------------------


def _add_compress_arguments(parser: argparse.ArgumentParser) -> None:
    from tinyembed.compress import METHODS

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


def _load_table_file(args, parser) -> np.ndarray:
    from tinyembed.io import safetensors

    path = args.file
    try:
        if path.endswith(".npy"):
            return np.load(path, allow_pickle=False)  # never unpickle
        if not args.tensor:
            names = sorted(safetensors.read_header(path)[0])
            parser.error(f"--tensor is needed to pick a table from {path!r}; it holds {names}")
        return safetensors.load_tensor(path, args.tensor, copy=True)
    except (OSError, ValueError, KeyError) as e:
        parser.error(f"cannot read a table from {path!r}: {e}")


def _run_compress(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from tinyembed import assets
    from tinyembed.compress import METHODS, compress, format_results, token_counts

    methods = [m for m in args.methods.split(",") if m]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        parser.error(f"unknown methods {unknown}; known: {', '.join(METHODS)}")
    if not args.file and (args.tensor or args.counts):
        parser.error("--tensor and --counts describe a --file; without --file the MiniLM table is used")
    ranked = [m for m in methods if METHODS[m][1]]  # the methods that need token counts
    counts = None
    try:
        if args.file:
            table = _load_table_file(args, parser)
            if args.counts:
                counts = np.load(args.counts, allow_pickle=False)
            elif ranked:
                print(f"note: no --counts, so {ranked} (frequency-ranked) are left out", file=sys.stderr)
                methods = [m for m in methods if m not in ranked]
        else:
            table = assets.minilm_tensor("embeddings.word_embeddings.weight")
            if ranked:
                # Token frequencies of real text: gensim's Lee news corpus through the model's own tokenizer.
                text = assets.gensim_test_data("lee_background.cor").decode("utf-8", errors="replace")
                counts = token_counts(assets.minilm_tokenizer_json(), text, len(table))
    except (OSError, ValueError, ImportError, assets.AssetError) as e:
        parser.error(str(e))
    try:
        results = compress(table, methods, counts=counts, sample=args.sample, seed=args.seed)
    except (ValueError, ImportError) as e:
        parser.error(str(e))
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=2))
    else:
        print(format_results(results))
    return 0


# ---------------------------------------------------------------------------
# tinyembed bench
# ---------------------------------------------------------------------------


def _add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true",
                        help="under a minute: no 32000x4096 table, uniform ids only, 3 repeats")
    parser.add_argument("--json", action="store_true", help="print JSON for programs instead of a table")
    parser.add_argument("--out", metavar="FILE", help="also write the JSON report to FILE (atomically)")
    parser.add_argument("--repeats", type=positive_int, metavar="N",
                        help="timed repeats of each contender (default: 5, or 3 with --quick)")
    parser.add_argument("--threads", type=positive_int, metavar="N",
                        help="threads for tinyembed and torch alike (default: every core)")


def _run_bench(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from tinyembed.profile import bench

    overrides = {k: v for k, v in (("repeats", args.repeats), ("threads", args.threads)) if v is not None}
    config = bench.BenchConfig.quick_run(**overrides) if args.quick else bench.BenchConfig(**overrides)
    report = bench.run(config)
    if args.out:
        try:
            bench.write_json(report, args.out)
        except OSError as e:
            parser.error(f"cannot write {args.out!r}: {e}")
    print(json.dumps(report.to_dict(), indent=2) if args.json else bench.format_table(report))
    return 0


# ---------------------------------------------------------------------------
# tinyembed report
# ---------------------------------------------------------------------------


def _add_report_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", metavar="DIR", default=None,
                        help="the report directory: index.html, report.json, figures/ "
                             "(default: ./tinyembed-report; with --json, none unless given)")
    parser.add_argument("--quick", action="store_true", help="a smaller run for CI (under 90 s)")
    parser.add_argument("--json", action="store_true",
                        help="print report.json for programs instead of the summary")


def _run_report(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from tinyembed.report import ReportError
    from tinyembed.report.run import as_json, run_report

    out = args.out if args.out is not None or args.json else "tinyembed-report"
    try:
        report, path = run_report(out, quick=args.quick, show_progress=True)
    except ReportError as e:
        parser.error(str(e))
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


# ---------------------------------------------------------------------------
# The command registry and entry point
# ---------------------------------------------------------------------------

_COMMANDS: list[Command] = [
    Command(
        name="memory",
        help="parameters and memory of embedding tables for published or custom models",
        add_arguments=_add_memory_arguments,
        run=_run_memory,
    ),
    Command(
        name="compress",
        help="shrink an embedding table every established way and measure what each costs",
        add_arguments=_add_compress_arguments,
        run=_run_compress,
    ),
    Command(
        name="plot",
        help="draw pictures of embeddings as PNG files (needs the 'plot' extra: matplotlib)",
        add_arguments=_add_plot_arguments,
        run=_run_plot,
    ),
    Command(
        name="report",
        help="profile embedding lookups on this machine into one HTML report with plots and JSON",
        add_arguments=_add_report_arguments,
        run=_run_report,
    ),
    Command(
        name="bench",
        help="time the lookup kernels against PyTorch and NumPy on this machine (medians, GB/s)",
        add_arguments=_add_bench_arguments,
        run=_run_bench,
    ),
]


def _from_module(name: str, module: str) -> Command:
    """A subcommand written as a module of :mod:`tinyembed.commands` (HELP, add_arguments, run)."""
    mod = importlib.import_module(f"tinyembed.commands.{module}")
    return Command(name=name, help=mod.HELP, add_arguments=mod.add_arguments, run=mod.run)


_COMMANDS += [
    _from_module("data", "data"),
    _from_module("evaluate", "evaluate"),
    _from_module("tokenize", "tokenize"),
    _from_module("train", "train"),
]


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with one subparser per entry of ``_COMMANDS``."""
    parser = argparse.ArgumentParser(
        prog="tinyembed",
        description="The embedding systems of a language model, from scratch on NumPy.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in _COMMANDS:
        sub = subparsers.add_parser(command.name, help=command.help, description=command.help)
        command.add_arguments(sub)
        sub.set_defaults(_command=command, _parser=sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``tinyembed`` with ``argv`` (default: ``sys.argv[1:]``); return the exit code.

    Argument errors and ``--help`` exit through ``SystemExit`` as argparse does
    (code 2 and 0).
    """
    args = build_parser().parse_args(argv)
    try:
        return args._command.run(args, args._parser)
    except BrokenPipeError:
        # `tinyembed memory | head` closed our stdout early: not an error of ours.
        # Point stdout at devnull so the interpreter's final flush stays quiet.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
