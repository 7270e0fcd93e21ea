"""The ``tinyembed`` command line: one module per subcommand, registered in :data:`COMMANDS`.

Each command module has ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args, parser) -> exit code``; adding a subcommand is writing that module
and adding it to ``COMMANDS``. The modules parse arguments and print; the work
is the library's, imported inside ``run`` so that ``tinyembed --help`` stays fast.
:mod:`.args` holds the argument types they share.

Examples:
    tinyembed report
    tinyembed memory --model gpt2 --json
    tinyembed train skipgram --corpus lee --out w2v
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from types import ModuleType

from . import bench, compress, data, evaluate, memory, plot, report, tokenize, train

__all__ = ["COMMANDS", "build_parser", "main"]

# name -> the module that implements it, in the order `tinyembed --help` lists them.
COMMANDS: dict[str, ModuleType] = {
    "report": report,
    "bench": bench,
    "memory": memory,
    "compress": compress,
    "plot": plot,
    "data": data,
    "tokenize": tokenize,
    "train": train,
    "evaluate": evaluate,
}


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with one subparser per entry of :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(
        prog="tinyembed",
        description="The embedding systems of a language model, from scratch on NumPy.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in COMMANDS.items():
        sub = subparsers.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(sub)
        sub.set_defaults(_run=module.run, _parser=sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``tinyembed`` with ``argv`` (default: ``sys.argv[1:]``); return the exit code.

    Argument errors and ``--help`` exit through ``SystemExit`` as argparse does
    (code 2 and 0).
    """
    args = build_parser().parse_args(argv)
    try:
        return args._run(args, args._parser)
    except BrokenPipeError:
        # `tinyembed memory | head` closed our stdout early: not an error of ours.
        # Point stdout at devnull so the interpreter's final flush stays quiet.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
