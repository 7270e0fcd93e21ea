"""A dependency-free progress bar on stderr, for long work (`tinyembed compress`, reports)."""

from __future__ import annotations

import sys
import time
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")

__all__ = ["progress"]


def progress(items: Iterable[T], desc: str = "", total: int | None = None, enabled: bool = True,
             stream=None) -> Iterator[T]:
    """Yield ``items`` while drawing ``desc [#####.....] k/n elapsed`` on stderr.

    The bar redraws in place on a terminal and prints one line per item elsewhere
    (CI logs), so it never floods a log with carriage returns.
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
        line = f"{desc} [{'#' * filled}{'.' * (20 - filled)}] {k}/{total} {time.perf_counter() - start:.1f}s"
        stream.write(("\r" + line + ("\n" if k == total else "")) if tty else line + "\n")
        stream.flush()
