"""`tinyembed report`: run every section, then write index.html and report.json at once.

The output directory is checked before minutes of measuring (:func:`check_out_dir`),
and nothing reaches it until every section has run: the pages are written into a
temporary sibling directory that is renamed into place whole (:func:`write_report`,
on :func:`tinyembed.io.files.atomic_directory`), so a failed or interrupted run never
leaves a report that looks complete::

    OUT/index.html          the page (:mod:`.render`)
    OUT/report.json         {"generator": "tinyembed", ..., "sections": [...], "data": {...}} (:mod:`.manifest`)
    OUT/figures/SLUG.png    every figure, also as a file (SLUG from its title)
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

from ..io.files import DestinationError, WriteError, atomic_directory, check_destination
from ..io.progress import progress
from ..profile import EmbeddingProfiler
from .document import GENERATOR, Report, ReportError, figure_slugs
from .manifest import report_json
from .render import render_html
from .sections import SECTIONS, Context, ReportConfig

__all__ = ["ReportConfig", "build_report", "check_out_dir", "is_report_dir", "run_report", "write_report"]

TITLE = "tinyembed report: embedding lookups on this machine"


def is_report_dir(path: Path) -> bool:
    """Whether ``path`` is a directory that a previous :func:`write_report` made (its report.json says so)."""
    try:
        with open(path / "report.json", encoding="utf-8") as f:
            marker = json.load(f)
    except (OSError, ValueError):
        return False
    return isinstance(marker, dict) and marker.get("generator") == GENERATOR


def check_out_dir(out_dir: str | os.PathLike, *, overwrite: bool = True) -> Path:
    """Fail early, before minutes of measuring, if ``out_dir`` cannot take a report.

    It must be missing, empty, or (with ``overwrite``) a previous tinyembed report, and
    the nearest existing parent must accept a new directory. Raises :class:`ReportError`
    naming the path; nothing is created.
    """
    out = Path(os.path.abspath(out_dir))
    if out.is_dir() and not out.is_symlink() and is_report_dir(out) and not overwrite:
        raise ReportError(f"{out} already holds a report; replace it with --force (overwrite=True)")
    try:
        return check_destination(out, directory=True, replace=is_report_dir, what="report directory")
    except DestinationError as e:
        raise ReportError(str(e)) from None


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "xb") as f:
        f.write(data)


def write_report(report: Report, out_dir: str | os.PathLike, *, overwrite: bool = True) -> Path:
    """Write ``index.html``, ``report.json`` and ``figures/*.png`` into ``out_dir``; returns its path.

    Everything is rendered first, then written into a new hidden directory beside
    ``out_dir`` and renamed into place, so ``out_dir`` is either the complete new
    report or what it was before, never a half-written report. Missing parents of
    ``out_dir`` are created.

    Args:
        out_dir: the report directory. If it exists it must be empty or hold a previous
            tinyembed report (its report.json has ``"generator": "tinyembed"``); a
            previous report is replaced whole, including files added to it since.
        overwrite: False refuses to replace a previous report.

    Raises:
        ReportError (an OSError): ``out_dir`` exists and is something else (a file, a
            symbolic link, a directory with other files), or cannot be written; the
            message names the path. Nothing is changed then.
        ValueError, TypeError: the report cannot be rendered or its data is not JSON
            (see :func:`validate_report`, :func:`to_jsonable`); raised before any file is touched.
    """
    page = render_html(report).encode("utf-8")
    manifest = json.dumps(report_json(report), indent=2, allow_nan=False, ensure_ascii=False).encode("utf-8")
    out = check_out_dir(out_dir, overwrite=overwrite)
    try:
        with atomic_directory(out, replace=True) as staging:
            (staging / "figures").mkdir()
            for section, names in zip(report.sections, figure_slugs(report), strict=True):
                for figure, slug in zip(section.figures, names, strict=True):
                    _write_file(staging / "figures" / f"{slug}.png", figure.png)
            _write_file(staging / "index.html", page)
            _write_file(staging / "report.json", manifest)  # last: it marks a complete report
    except (DestinationError, WriteError) as e:
        raise ReportError(str(e)) from e.__cause__
    return out


def build_report(config: ReportConfig | None = None, show_progress: bool = True) -> Report:
    """Measure everything :data:`~tinyembed.report.sections.SECTIONS` lists; return the report."""
    config = config or ReportConfig()
    started = time.perf_counter()
    profiler = EmbeddingProfiler(repeats=config.repeats, seed=0)
    machine = profiler.machine()
    ctx = Context(profiler=profiler, machine=machine, config=config)
    sections, data, summary, seconds = [], {}, [], {}
    for name, build in progress(SECTIONS, desc="report", enabled=show_progress):
        t = time.perf_counter()
        section, section_data, lines = build(ctx)
        seconds[name] = time.perf_counter() - t
        sections.append(section)
        data[section.id] = section_data
        summary += lines
    total = time.perf_counter() - started
    data["run"] = {"config": asdict(config), "seconds_per_section": seconds, "seconds": total}
    return Report(
        title=TITLE,
        subtitle=f"{'quick run' if config.quick else 'full run'}, {total:.0f} s on {machine.cpu_model}",
        summary=summary, sections=sections, data=data,
        created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        machine={"CPU": machine.cpu_model, "cores": machine.usable_cores,
                 "copy bandwidth (best)": f"{machine.peak_gbps:.1f} GB/s", "NumPy": machine.numpy,
                 "Python": sys.version.split()[0]})


def run_report(out_dir: str | os.PathLike | None = "tinyembed-report", quick: bool = False,
               show_progress: bool = True, overwrite: bool = True) -> tuple[Report, Path | None]:
    """Check ``out_dir``, build the report, write it (unless ``out_dir`` is None).

    ``overwrite`` False refuses a previous report in ``out_dir``, before any measuring.
    """
    out = None if out_dir is None else check_out_dir(out_dir, overwrite=overwrite)
    report = build_report(ReportConfig.quick_run() if quick else ReportConfig(), show_progress)
    return report, (None if out is None else write_report(report, out, overwrite=overwrite))


def as_json(report: Report) -> dict:
    """What report.json holds."""
    return report_json(report)
