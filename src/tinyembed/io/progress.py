"""A dependency-free progress bar on stderr, for long work (`tinyembed compress`, reports)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

__all__ = ["progress"]


def progress(items: Iterable[T], desc: str = "", total: int | None = None, enabled: bool = True,
             stream=None) -> Iterator[T]:
    """Yield ``items`` while drawing ``desc [#####.....] k/n elapsed`` on stderr.

    The bar redraws in place on a terminal. Elsewhere (CI logs, pipes) it prints a
    line only when the bar grows, at most 20 lines however many items there are.
    """
    stream = sys.stderr if stream is None else stream
    items = list(items) if total is None else items
    total = len(items) if total is None else total
    tty = getattr(stream, "isatty", lambda: False)()
    start = time.perf_counter()
    for k, item in enumerate(items, 1):
        yield item
        if not enabled:
            continue
        filled = int(20 * k / max(total, 1))
        if not tty and filled == int(20 * (k - 1) / max(total, 1)) and k != total:
            continue  # a log gets a line per step of the bar, not per item
        line = f"{desc} [{'#' * filled}{'.' * (20 - filled)}] {k}/{total} {time.perf_counter() - start:.1f}s"
        stream.write(("\r" + line + ("\n" if k == total else "")) if tty else line + "\n")
        stream.flush()
