"""Writing files atomically: readers see the old file or the whole new one, never half of one.

Every file tinyembed writes (tables, vectors, tokenizers, reports, prepared
corpora) goes through :func:`atomic_open`: a temporary file beside the target,
flushed to disk, then renamed over it. A failure part way leaves the old file
untouched and no temporary file behind.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from typing import BinaryIO, Union

__all__ = ["atomic_open", "write_atomic"]

PathLike = Union[str, "os.PathLike[str]"]


def _create_temp(directory: str, basename: str) -> tuple[str, int]:
    """A new file beside the target. Opened with mode 0o666 so the umask applies, as for
    any new file (mkstemp's 0o600 would survive the rename)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        temp = os.path.join(directory, f".{basename}.{secrets.token_hex(4)}.tmp")
        try:
            return temp, os.open(temp, flags, 0o666)
        except FileExistsError:
            continue


@contextlib.contextmanager
def atomic_open(path: PathLike, make_parents: bool = False) -> Iterator[BinaryIO]:
    """A binary file to write ``path``'s new content into; it replaces ``path`` on success.

    Args:
        make_parents: create missing parent directories first.

    Examples:
        >>> import tempfile, pathlib
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
        >>> with atomic_open(target) as f:
        ...     _ = f.write(b"hello")
        >>> target.read_bytes()
        b'hello'
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if make_parents:
        os.makedirs(directory, exist_ok=True)
    temp, fd = _create_temp(directory, os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise


def write_atomic(path: PathLike, data: bytes | str, make_parents: bool = False) -> None:
    """Write ``data`` (str is encoded as UTF-8) to ``path`` atomically."""
    with atomic_open(path, make_parents) as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)
