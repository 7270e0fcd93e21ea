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
