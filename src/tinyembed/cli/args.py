"""Argument types every subcommand shares: the library's checks (:mod:`tinyembed.checks`) on
command-line text, so a flag is refused with the same words as the argument it becomes.

argparse puts the flag first: ``argument --dim: must be a positive integer, got -3``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

from ..checks import check_int, check_nonnegative_int, check_number, check_positive, check_positive_int

__all__ = ["CommandError", "positive_int", "nonnegative_int", "nonnegative_float", "positive_float", "float_in",
           "int_in", "clamp_threads", "Subcommands", "add_subcommands", "run_subcommand"]

# A command's own subcommands (``tinyembed train lm``, ``tinyembed study decode``): name -> (help,
# add_arguments(parser), run(args, parser)).
Subcommands = dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[..., int]]]


def add_subcommands(parser: argparse.ArgumentParser, subcommands: Subcommands, *, dest: str, metavar: str) -> None:
    """One subparser per entry; :func:`tinyembed.cli.main` hands each its own parser (``_parser``
    overrides the command's), so errors name it: "tinyembed train lm"."""
    subparsers = parser.add_subparsers(dest=dest, metavar=metavar, required=True)
    for name, (help_, add, run) in subcommands.items():
        sub = subparsers.add_parser(name, help=help_, description=help_)
        add(sub)
        sub.set_defaults(_subcommand=run, _parser=sub)


def run_subcommand(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run the subcommand :func:`add_subcommands` registered for ``args``, with its own parser."""
    return args._subcommand(args, args._parser)


class CommandError(Exception):
    """An expected failure while a command runs (a download failed, an input cannot be read):
    printed as one line, exit status 1 (:func:`tinyembed.cli.main`)."""


def clamp_threads(threads: int | None, flag: str = "--threads") -> int | None:
    """``threads`` at most the cores this process may use; more is clamped, with a note on stderr."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if threads is not None and threads > cores:
        print(f"note: {flag} {threads} is more than the {cores} cores here; using {cores}", file=sys.stderr)
        return cores
    return threads


def _argument(parse: Callable[[str], Any], check: Callable[[Any, str], Any], what: str) -> Callable[[str], Any]:
    """An argparse type: ``parse`` the text (else 'must be ``what``'), then ``check`` the value."""
    def convert(text: str):
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
        try:
            return check(value, "")
        except ValueError as e:  # the check's words, without the (empty) name
            raise argparse.ArgumentTypeError(str(e).strip()) from None
    return convert


positive_int = _argument(int, check_positive_int, "a positive integer")
nonnegative_int = _argument(int, check_nonnegative_int, "an integer >= 0")
positive_float = _argument(float, check_positive, "a finite number > 0")
nonnegative_float = _argument(float, lambda v, name: check_number(v, name, low=0), "a finite number >= 0")


def int_in(low: int, high: int | None = None) -> Callable[[str], int]:
    """A parser of integers in [low, high] (no upper bound if ``high`` is None)."""
    return _argument(int, lambda v, name: check_int(v, name, low=low, high=high), "an integer")


def float_in(low: float, high: float, closed_high: bool = False) -> Callable[[str], float]:
    """A parser of finite numbers in [low, high) (or [low, high] with ``closed_high``)."""
    return _argument(float, lambda v, name: check_number(v, name, low=low, high=high, high_open=not closed_high),
                     "a number")
