"""Writing atomically: readers see the old output or the whole new one, never half of one.

Every file tinyembed writes (tables, vectors, tokenizers, prepared corpora, bench
JSON) goes through :func:`atomic_open`: a temporary file beside the target, flushed
to disk, then renamed over it. Outputs of several files (a report, a training run)
go through :func:`atomic_directory`: they are written into a hidden sibling
directory that is renamed into place whole. A failure or Ctrl-C part way leaves the
destination as it was and no temporary behind; error messages name the destination,
never the temporary.

Commands check their destination first (:func:`check_destination`), before minutes
of work: an unwritable place fails at once, naming it, and an existing output is not
replaced unless asked.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO, Union

__all__ = ["DestinationError", "WriteError", "atomic_open", "write_atomic", "atomic_directory", "check_destination"]

PathLike = Union[str, "os.PathLike[str]"]


class DestinationError(OSError):
    """An output cannot go where it was asked to (found before writing); the message names the path and why."""


class WriteError(OSError):
    """Writing an output failed part way (a full disk, say); the destination is as it was, and the
    message names it, not the temporary."""


def _reason(error: OSError) -> str:
    return error.strerror or str(error)


# -- files ------------------------------------------------------------------------------------
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


# -- directories -------------------------------------------------------------------------------
def _hidden_sibling(path: Path, kind: str, create: bool) -> Path:
    """``.NAME.KIND-RANDOM`` beside ``path``; made (honouring the umask, unlike mkdtemp's 0700) if ``create``."""
    while True:
        sibling = path.parent / f".{path.name}.{kind}-{secrets.token_hex(4)}"
        if not create:
            if not sibling.exists():
                return sibling
            continue
        try:
            sibling.mkdir()
            return sibling
        except FileExistsError:
            continue


@contextlib.contextmanager
def atomic_directory(path: PathLike, *, replace: bool = False) -> Iterator[Path]:
    """A new empty directory to write ``path``'s files into; it becomes ``path`` on success.

    The directory is a hidden sibling of ``path`` (same file system). When the block
    ends without an error it is renamed to ``path``; a previous ``path`` is replaced
    whole only if ``replace`` (old aside, new in, old deleted; the old comes back if the
    rename fails). On any error, Ctrl-C included, the new directory is deleted and
    ``path`` is as it was.

    Raises:
        DestinationError: ``path`` exists and ``replace`` is False, or it is not a
            directory, or its parent cannot take a new directory; the message names ``path``.
        WriteError: writing failed part way; ``path`` is as it was.

    Examples:
        >>> import tempfile, pathlib
        >>> out = pathlib.Path(tempfile.mkdtemp()) / "run"
        >>> with atomic_directory(out) as staging:
        ...     _ = (staging / "a.txt").write_text("hello")
        >>> sorted(p.name for p in out.iterdir())
        ['a.txt']
    """
    out = Path(os.path.abspath(path))  # abspath also resolves "..", which cannot be renamed onto
    check_destination(out, directory=True, replace=replace)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = _hidden_sibling(out, "new", create=True)
    except OSError as e:
        raise WriteError(f"cannot write {out}: {_reason(e)}") from None
    try:
        yield staging
        if out.is_dir() and not out.is_symlink():
            _swap_in(staging, out)
        else:
            # Renaming onto an empty directory replaces it; onto a non-empty one made by
            # someone else meanwhile it fails, and nothing is lost.
            os.rename(staging, out)
    except BaseException as e:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(e, OSError) and not isinstance(e, (DestinationError, WriteError)):
            raise WriteError(f"cannot write {out}: {_reason(e)}") from e
        raise


def _swap_in(staging: Path, out: Path) -> None:
    """Replace the directory ``out`` with ``staging``: old aside, new in, old deleted."""
    aside = _hidden_sibling(out, "old", create=False)
    os.rename(out, aside)
    try:
        os.rename(staging, out)
    except BaseException:
        os.rename(aside, out)  # put the previous output back
        raise
    try:
        shutil.rmtree(aside)
    except OSError as e:  # the new output is in place; only the old copy is left over
        warnings.warn(f"{out} is written, but its previous contents could not be deleted from {aside}: {e}",
                      RuntimeWarning, stacklevel=3)


# -- checking first ----------------------------------------------------------------------------
def check_destination(path: PathLike, *, directory: bool = False, replace: bool | Callable[[Path], bool] = False,
                      what: str = "") -> Path:
    """Fail at once, naming ``path``, if an output cannot be written there; returns ``path``.

    The output is a file, or with ``directory`` a directory of files. ``path`` must be
    missing (an empty directory counts as missing for a directory output), or ``replace``
    must allow replacing it: True, or a predicate of the path (say, "it is a previous
    report"). The nearest existing ancestor must accept a new file: this is tried with
    a temporary file, so permissions and read-only file systems show up now rather
    than after the work. Nothing is created or changed.

    Raises:
        DestinationError: naming the path and the reason.
    """
    out = Path(os.path.abspath(path))
    name = f"{what} {out}" if what else str(out)
    if out.is_symlink():
        raise DestinationError(f"{name} is a symbolic link; remove it or pick another path")
    if out.exists():
        if directory and not out.is_dir():
            raise DestinationError(f"{name} exists and is a file, not a directory")
        if not directory and out.is_dir():
            raise DestinationError(f"{name} is a directory, not a file")
        empty_dir = directory and not any(out.iterdir())
        allowed = replace(out) if callable(replace) else replace
        if not empty_dir and not allowed:
            hint = "pass --force to replace it, or pick another path" if not callable(replace) else \
                "it holds something else: pick another path"
            raise DestinationError(f"{name} already exists; {hint}")
    parent = out.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise DestinationError(f"cannot write {name}: {parent} is a file, not a directory")
    try:
        with tempfile.TemporaryFile(dir=parent, prefix=f".{out.name}.check-"):
            pass
    except OSError as e:
        raise DestinationError(f"cannot write {name}: {_reason(e)} ({parent})") from None
    return out
