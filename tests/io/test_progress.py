"""The progress bar: every item passes through; a log gets at most 20 lines, a terminal one redrawn line."""

import io

from tinyembed.io.progress import progress


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_log_gets_a_line_per_step_of_the_bar_not_per_item():
    log = io.StringIO()
    assert list(progress(range(1000), desc="work", stream=log)) == list(range(1000))
    lines = log.getvalue().splitlines()
    assert len(lines) == 20
    assert lines[-1].startswith("work [####################] 1000/1000")


def test_few_items_get_a_line_each():
    log = io.StringIO()
    list(progress(["a", "b", "c"], stream=log))
    assert [line.split("] ")[1].split()[0] for line in log.getvalue().splitlines()] == ["1/3", "2/3", "3/3"]


def test_a_terminal_bar_redraws_in_place_and_ends_the_line():
    term = _Terminal()
    list(progress(range(5), desc="t", stream=term))
    out = term.getvalue()
    assert out.count("\r") == 5 and out.endswith("\n") and out.count("\n") == 1


def test_disabled_prints_nothing():
    log = io.StringIO()
    assert list(progress(range(3), stream=log, enabled=False)) == [0, 1, 2]
    assert log.getvalue() == ""
