"""Studies saved as JSON, with their date, command and machine; the last one of each kind.

Every ``tinyembed study NAME`` run saves its results to ``cache_dir()/studies/NAME.json``
(``$TINYEMBED_CACHE`` or ``~/.cache/tinyembed``), replacing the previous one, besides any
``--out`` it was given. ``tinyembed report`` draws its study sections from these files and
never trains: without one it says which command makes it.

A document is the study's results plus::

    study      its name ("capacity")
    format     FORMAT, the version of this layout
    date       when it finished, ISO 8601 UTC
    command    the command line that made it
    machine    CPU, cores, memory, library versions
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from pathlib import Path

from ..io.assets import cache_dir
from ..io.files import write_atomic
from ..kernels import get_num_threads
from ..profile.timing import machine_info

__all__ = ["FORMAT", "study_document", "study_path", "save_study", "last_study"]

FORMAT = 1


def study_document(name: str, results: dict, command: str) -> dict:
    """``results`` with the study's name, the format, the date, the command and the machine."""
    date = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    return {"study": name, "format": FORMAT, "date": date, "command": command,
            "machine": machine_info(get_num_threads()), **results}


def study_path(name: str, root: str | os.PathLike | None = None) -> Path:
    """Where the last ``name`` study is kept: ``ROOT/NAME.json``, ROOT ``cache_dir()/studies`` by default."""
    return (Path(root) if root is not None else cache_dir() / "studies") / f"{name}.json"


def save_study(document: dict, path: str | os.PathLike | None = None) -> Path:
    """Write ``document`` (from :func:`study_document`) atomically to ``path`` (default: its study_path)."""
    target = Path(path) if path is not None else study_path(document["study"])
    write_atomic(target, json.dumps(document, indent=1, allow_nan=False) + "\n", make_parents=True)
    return target


def last_study(name: str, path: str | os.PathLike | None = None) -> dict | None:
    """The last saved ``name`` study, or None when there is none.

    Raises:
        ValueError: the file is there but is not a readable study of that name (the message says why).
    """
    target = Path(path) if path is not None else study_path(name)
    try:
        document = json.loads(target.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise ValueError(f"{target} is not a readable study: {e}") from None
    if not isinstance(document, dict) or document.get("study") != name:
        raise ValueError(f"{target} does not hold a {name!r} study")
    if document.get("format") != FORMAT:
        raise ValueError(f"{target} has format {document.get('format')!r}; this tinyembed reads format {FORMAT}")
    return document
