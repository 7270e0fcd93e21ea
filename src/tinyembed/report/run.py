"""`tinyembed report`: run every section, then write index.html and report.json at once.

Nothing reaches the output directory until every section has run: the pages
are written to a temporary directory and renamed into place
(:func:`~tinyembed.report.html.write_report`), so a failed or interrupted run
never leaves a report that looks complete.
"""

from __future__ import annotations

import datetime as _dt
import os
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from ..io.progress import progress
from ..profile import EmbeddingProfiler
from .html import Report, ReportError, _is_report_dir, report_json
from .html import write_report as _write
from .sections import SECTIONS, Context, ReportConfig

__all__ = ["ReportConfig", "build_report", "check_out_dir", "run_report"]

TITLE = "tinyembed report: embedding lookups on this machine"


def check_out_dir(out_dir: str | os.PathLike) -> Path:
    """Fail early, before minutes of measuring, if ``out_dir`` cannot take a report.

    It must be missing, empty, or a previous tinyembed report, and its parent must
    accept a new directory. Raises :class:`ReportError` naming the path.
    """
    out = Path(out_dir)
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise ReportError(f"report directory {str(out)!r} exists and is not a directory")
    # The test write_report applies: a report.json that tinyembed wrote, not any file of that name.
    if out.is_dir() and any(out.iterdir()) and not _is_report_dir(out):
        raise ReportError(f"report directory {str(out)!r} is not empty and holds no previous report: "
                          "choose another --out")
    parent = out.absolute().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryDirectory(dir=parent, prefix=".tinyembed-check-").cleanup()
    except OSError as e:
        raise ReportError(f"cannot write a report into {str(parent)!r}: {e.strerror or e}") from None
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
               show_progress: bool = True) -> tuple[Report, Path | None]:
    """Check ``out_dir``, build the report, write it (unless ``out_dir`` is None)."""
    out = None if out_dir is None else check_out_dir(out_dir)
    report = build_report(ReportConfig.quick_run() if quick else ReportConfig(), show_progress)
    return report, (None if out is None else _write(report, out))


def as_json(report: Report) -> dict:
    """What report.json holds."""
    return report_json(report)
