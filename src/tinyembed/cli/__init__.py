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
    tinyembed study capacity --quick
    tinyembed study decode --quick
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from types import ModuleType

from ..io.assets import AssetError
from ..io.files import DestinationError
from . import bench, compress, data, evaluate, memory, plot, report, study, tokenize, train, tutorial
from .args import CommandError

__all__ = ["COMMANDS", "CommandError", "build_parser", "main"]

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
    "study": study,
    "tutorial": tutorial,
}


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (with where to find help), exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with one subparser per entry of :data:`COMMANDS`."""
    parser = _Parser(
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

    Exit codes: 0 done; 2 a bad argument (argparse's ``SystemExit``, as ``--help``'s 0);
    1 an expected failure while running; 130 interrupted (Ctrl-C). Errors are one line
    on stderr, never a traceback: commands write their outputs whole, so an error or
    Ctrl-C part way leaves every destination as it was.
    """
    prog = "tinyembed"
    try:
        args = build_parser().parse_args(argv)
        prog = args._parser.prog
        return args._run(args, args._parser)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `tinyembed memory | head` closed our stdout early: not an error of ours.
        # Point stdout at devnull so the interpreter's final flush stays quiet.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except (ValueError, DestinationError) as e:  # an argument's value or an --out place was refused, named
        print(f"{prog}: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except (CommandError, OSError, MemoryError, AssetError) as e:
        print(f"{prog}: error: {_one_line(e)}", file=sys.stderr)
        return 1


def _one_line(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return " ".join(text.split())


if __name__ == "__main__":
    sys.exit(main())
