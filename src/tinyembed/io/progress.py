"""A dependency-free progress bar on stderr, for long work (reports, compression, training).

    desc [#########...........] 450/1000 12.3s loss 2.345 81,000 words/s

On a terminal the bar redraws in place (at most 10 times a second). Elsewhere (CI
logs, pipes) it prints a line only when the bar grows a step, at most 20 lines
however many items there are, and the last one always.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import TextIO, TypeVar

T = TypeVar("T")

__all__ = ["ProgressBar", "progress"]

_STEPS = 20           # the bar's width: a log gets one line per step
_REDRAW_SECONDS = 0.1  # a terminal redraws at most this often


class ProgressBar:
    """A bar for ``total`` units of work; :meth:`update` with how many are done.

    Args:
        total: units of work in all (items, words, ...).
        desc: what is being done, shown first.
        enabled: False draws nothing.
        stream: where to draw (default stderr).
    """

    def __init__(self, total: float, desc: str = "", enabled: bool = True, stream: TextIO | None = None):
        self.total, self.desc, self.enabled = total, desc, enabled
        self.stream = sys.stderr if stream is None else stream
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = self._last_draw = time.perf_counter()
        self._last_step = 0  # an empty bar is not worth a line

    def update(self, done: float, postfix: str = "", desc: str | None = None, final: bool = False) -> None:
        """Show ``done`` of ``total``, with ``postfix`` after the time (a loss, a rate); ``final``
        always draws and ends the line."""
        if not self.enabled:
            return
        done = min(done, self.total)
        step = int(_STEPS * done / max(self.total, 1))
        now = time.perf_counter()
        if step == self._last_step and (not self.tty or (not final and now - self._last_draw < _REDRAW_SECONDS)):
            return  # a log gets a line per step of the bar, not per update
        self._last_step, self._last_draw = step, now
        if desc is not None:
            self.desc = desc
        count = f"{done:.0f}/{self.total:.0f}" if isinstance(done, float) else f"{done}/{self.total}"
        line = f"{self.desc} [{'#' * step}{'.' * (_STEPS - step)}] {count} {now - self.start:.1f}s"
        line += f" {postfix}" if postfix else ""
        self.stream.write(("\r" + line + ("\n" if final else "")) if self.tty else line + "\n")
        self.stream.flush()


def progress(items: Iterable[T], desc: str = "", total: int | None = None, enabled: bool = True,
             stream: TextIO | None = None) -> Iterator[T]:
    """Yield ``items`` while drawing a :class:`ProgressBar` of how many have passed."""
    items = list(items) if total is None else items
    total = len(items) if total is None else total  # type: ignore[arg-type]
    bar = ProgressBar(total, desc, enabled, stream)
    for k, item in enumerate(items, 1):
        yield item
        bar.update(k, final=k == total)
