"""The README's examples run as written."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_quick_start_runs():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README has no python example"
    for code in blocks:
        exec(compile(code, "README.md", "exec"), {})


def test_readme_has_exactly_the_two_commands_ci_runs():
    text = README.read_text()
    for marker in ("<!-- main-command -->", "<!-- test-command -->"):
        assert text.count(marker) == 1
    ci = (README.parent / ".ci" / "run").read_text()
    assert "<!-- test-command -->" in ci


def test_readme_command_lines_parse_with_the_flags_they_use():
    """Every `tinyembed ...` line of the README's shell examples names real subcommands and flags."""
    import shlex

    from tinyembed.cli import build_parser

    parser = build_parser()
    lines, fence = [], None
    for line in README.read_text().splitlines():
        if line.startswith("```"):
            fence = None if fence is not None else line[3:]
        elif fence == "":  # a plain block: shell examples and outputs
            lines.append(line.split("#")[0].strip())
    commands = [line for line in lines if line.startswith(("tinyembed ", ".venv/bin/tinyembed "))
                and not re.match(r"\S*tinyembed [\w ]+:", line)]  # a pasted output's first line
    assert len(commands) >= 10
    for line in commands:
        argv = shlex.split(line)[1:]
        if argv == ["--help"]:
            continue
        parser.parse_args(argv)  # SystemExit (2) on an unknown flag or a bad value


def test_readme_performance_blocks_are_one_bench_run_as_it_printed():
    """The performance section's blocks agree: the missed targets and last lines are those of the full output
    beside them (benchmarks/readme_perf.py writes them; a block pasted from another run fails here)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("readme_perf", README.parent / "benchmarks" / "readme_perf.py")
    readme_perf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(readme_perf)
    text = README.read_text()

    def block(marker):
        found = re.findall(rf"{re.escape(marker)}\n```\n(.*?)```", text, flags=re.S)
        assert len(found) == 1, marker
        return found[0].splitlines()

    output = block("<!-- bench-output -->")
    assert output[0].startswith("tinyembed bench: ") and output[-1].startswith("targets met ")
    assert output == readme_perf.bench_output("\n".join(output))
    assert block("<!-- bench-last-lines -->") == output[-2:]
    missed = block("<!-- bench-missed -->")
    assert missed == readme_perf.missed_targets(output)
    counted = re.search(r"targets met \d+, missed (\d+)", output[-1]).group(1)
    assert sum(int(line.rsplit("/", 1)[1]) for line in missed[1:-1]) == int(counted)
    assert block("<!-- call-costs -->")[0].startswith("benchmarks/call_costs.py: ")
