"""Put one bench run and one call_costs run into the README's performance section, as they printed.

The section's numbers are the outputs of these runs, never typed in: each block sits in a code fence
after its marker comment, and this script replaces what is in the fence.

* ``<!-- bench-last-lines -->``: the bench's last two lines (targets by suite, met and missed);
* ``<!-- bench-output -->``: the bench's whole output, its progress bar left out;
* ``<!-- bench-missed -->``: the targets of that run's ``by target`` block that missed at least once;
* ``<!-- call-costs -->``: the output of ``benchmarks/call_costs.py``.

``tests/test_readme.py`` checks that the blocks agree with each other (one run, not pieces of several)::

    tinyembed bench > bench.txt
    python benchmarks/call_costs.py > call_costs.txt
    python benchmarks/readme_perf.py bench.txt call_costs.txt
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from tinyembed.io.files import write_atomic

README = Path(__file__).resolve().parents[1] / "README.md"
# A line of the bench's `by target` block: case, op, target, lowest-highest, met/missed.
TARGET_LINE = re.compile(r"^  \S.*\s(-?\d+\.\d+)-(-?\d+\.\d+)\s+(\d+)/(\d+)$")


def bench_output(text: str) -> list[str]:
    """The bench's lines without its progress bar (drawn on stderr, kept if both streams were saved)."""
    return [line for line in text.splitlines() if line.strip() and not line.startswith("tinyembed bench [")]


def missed_targets(lines: list[str]) -> list[str]:
    """The ``by target`` lines of a bench output that missed at least once, then its per-suite count."""
    start = next(i for i, line in enumerate(lines) if line.startswith("by target"))
    missed = [line for line in lines[start + 1:] if (m := TARGET_LINE.match(line)) and int(m.group(4)) > 0]
    return [lines[start]] + missed + [next(line for line in lines if line.startswith("targets by suite"))]


def replace_block(text: str, marker: str, lines: list[str]) -> str:
    """``text`` with the code fence after ``marker`` holding ``lines``."""
    pattern = re.compile(rf"({re.escape(marker)}\n```\n)(.*?)(```)", flags=re.S)
    if len(pattern.findall(text)) != 1:
        raise ValueError(f"the README must have one {marker} followed by a code fence")
    return pattern.sub(lambda m: m.group(1) + "\n".join(lines) + "\n" + m.group(3), text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bench", type=Path, help="the output of `tinyembed bench`")
    parser.add_argument("call_costs", type=Path, help="the output of `python benchmarks/call_costs.py`")
    parser.add_argument("--readme", type=Path, default=README, help="the README to update (default: the repo's)")
    args = parser.parse_args(argv)
    bench = bench_output(args.bench.read_text())
    if not bench[-1].startswith("targets met"):
        raise SystemExit(f"{args.bench} does not end with the bench's summary line: an unfinished run?")
    costs = [line for line in args.call_costs.read_text().splitlines() if line.strip()]
    if not costs or not costs[0].startswith("benchmarks/call_costs.py: "):
        raise SystemExit(f"{args.call_costs} is not the output of benchmarks/call_costs.py")
    text = args.readme.read_text()
    for marker, lines in (("<!-- bench-last-lines -->", bench[-2:]), ("<!-- bench-output -->", bench),
                          ("<!-- bench-missed -->", missed_targets(bench)), ("<!-- call-costs -->", costs)):
        text = replace_block(text, marker, lines)
    write_atomic(args.readme, text)
    print(f"{args.readme}: the performance section from {args.bench} and {args.call_costs}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
