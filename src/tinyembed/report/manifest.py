"""report.json: the report's text, tables and figure files, and every number behind them.

    {"generator": "tinyembed", "version": ..., "format": 1, "title": ..., "summary": [...],
     "sections": [{"id", "title", "text", "figures": [{"file": "figures/SLUG.png", ...}],
                   "tables", "notes"}], "data": {...}}

:func:`to_jsonable` turns NumPy scalars and arrays and objects with ``to_dict()`` into
plain JSON types, and refuses what JSON cannot hold (NaN included), naming where.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from .document import FORMAT_VERSION, GENERATOR, Report, figure_slugs, validate_report

__all__ = ["to_jsonable", "report_json"]


def to_jsonable(value: Any, path: str = "data") -> Any:
    """``value`` as plain JSON types: dicts with str keys, lists, str, int, finite float, bool, None.

    NumPy scalars become Python scalars, arrays nested lists, tuples lists, int dict
    keys strings (as ``json`` would), and an object with a ``to_dict()`` method its dict.

    Raises:
        TypeError: something JSON cannot hold (a set, bytes, an object array of them, ...);
            the message names where, as ``path`` then keys and indices.
        ValueError: a NaN or infinity (JSON has neither); the message names where.
    """
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (numbers.Integral, np.integer)):
        return int(value)
    if isinstance(value, (numbers.Real, np.floating)):
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"{path} is {value}: JSON has no NaN or infinity (use None for a missing value)")
        return value
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biufO":
            raise TypeError(f"{path} is an array of dtype {value.dtype}, which JSON cannot hold")
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            bad = tuple(int(i) for i in np.argwhere(~np.isfinite(value))[0])
            raise ValueError(f"{path}{''.join(f'[{i}]' for i in bad)} is {value[bad]}: JSON has no NaN "
                             "or infinity (use None for a missing value)")
        if value.dtype.kind == "O":
            return [to_jsonable(item, f"{path}[{i}]") for i, item in enumerate(value)]
        return value.tolist()
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if isinstance(key, (bool, np.bool_)) or not isinstance(key, (str, numbers.Integral, np.integer)):
                raise TypeError(f"{path} has the key {key!r} ({type(key).__name__}); JSON keys are strings")
            name = key if isinstance(key, str) else str(int(key))
            if name in out:
                raise ValueError(f"{path} has the key {name!r} twice once keys are strings")
            out[name] = to_jsonable(item, f"{path}[{name!r}]")
        return out
    if isinstance(value, (list, tuple)):
        return [to_jsonable(item, f"{path}[{i}]") for i, item in enumerate(value)]
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return to_jsonable(to_dict(), f"{path}.to_dict()")
    raise TypeError(f"{path} is a {type(value).__name__}, which JSON cannot hold: {value!r:.80}")


def report_json(report: Report) -> dict:
    """What report.json holds: the report's text and tables, its figures' files, and ``data``.

    Raises:
        ValueError, TypeError: from :func:`validate_report` or :func:`to_jsonable`.
    """
    from .. import __version__

    validate_report(report)
    sections = []
    for section, names in zip(report.sections, figure_slugs(report), strict=True):
        sections.append({
            "id": section.id,
            "title": section.title,
            "text": section.text,
            "figures": [{"title": figure.title, "caption": figure.caption, "file": f"figures/{slug}.png",
                         "width_px": figure.size[0], "height_px": figure.size[1]}
                        for figure, slug in zip(section.figures, names, strict=True)],
            "tables": [{"caption": table.caption, "columns": table.columns,
                        "rows": to_jsonable(table.rows, f"sections[{section.id!r}].tables[{t}].rows")}
                       for t, table in enumerate(section.tables)],
            "notes": section.notes,
        })
    return {
        "generator": GENERATOR,
        "version": __version__,
        "format": FORMAT_VERSION,
        "title": report.title,
        "subtitle": report.subtitle,
        "summary": report.summary,
        "created": report.created,
        "machine": to_jsonable(report.machine, "machine"),
        "sections": sections,
        "data": to_jsonable(report.data, "data"),
    }
