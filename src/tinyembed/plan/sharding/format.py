"""Plans rendered for people: one fixed-width table per (tables, workload, device), the
cheapest fitting plan marked, the assumptions under the numbers."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterable

from ..memory import format_bytes
from .plans import ShardingPlan
from .strategies import cheapest_fit

__all__ = ["format_plans"]


def _format_seconds(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds * 1e9:.3g} ns"


_Column = tuple[str, Callable[[ShardingPlan], str]]

# (header, cell) per column; adding a column is adding one entry.
_COLUMNS: list[_Column] = [
    ("fits", lambda p: "yes" if p.fits else "NO"),
    ("max mem/dev", lambda p: format_bytes(p.max_memory_bytes)),
    ("% of dev", lambda p: f"{100 * p.max_memory_bytes / p.device.memory_bytes:.0f}%"),
    ("max lookups/dev", lambda p: f"{max(p.lookups):,}"),
    ("imbalance", lambda p: f"{p.load_imbalance:.2f}"),
    ("expected", lambda p: f"{p.expected_load_imbalance:.2f}"),
    ("ids", lambda p: format_bytes(p.input_ids_bytes)),
    ("outputs", lambda p: format_bytes(p.output_bytes)),
    ("backward", lambda p: format_bytes(p.backward_bytes)),
    ("max link", lambda p: format_bytes(max(max(p.sent_bytes), max(p.received_bytes)))),
    ("mem time", lambda p: _format_seconds(p.memory_time_s)),
    ("net time", lambda p: _format_seconds(p.network_time_s)),
    ("est. time", lambda p: _format_seconds(p.time_s)),
]


def _describe(group: list[ShardingPlan]) -> str:
    w, dev = group[0].workload, group[0].device
    tables = ", ".join(
        f"{t.name} {t.num_rows:,} x {t.dim} ({format_bytes(t.weight_bytes)}, "
        + (f"zipf {t.zipf_alpha:g}" if t.zipf_alpha is not None else "uniform")
        + f", {t.lookups_per_sample:g}/sample{'' if t.pooled else ' unpooled'})"
        for t in group[0].tables
    )
    mode = "training" if w.training else "inference"
    return (f"{w.num_devices} x {dev.name or 'device'} ({format_bytes(dev.memory_bytes)}, "
            f"{dev.memory_gb_per_s:g} GB/s memory, {dev.network_gb_per_s:g} GB/s network); "
            f"{mode}, batch {w.batch_size:,}; tables: {tables}")


def _render_group(group: list[ShardingPlan]) -> list[str]:
    best = cheapest_fit(group)
    rows = [[("* " if p is best else "  ") + p.strategy] + [cell(p) for _, cell in _COLUMNS] for p in group]
    headers = ["  strategy"] + [h for h, _ in _COLUMNS]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        right = [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join([cells[0].ljust(widths[0])] + right).rstrip()

    header = line(headers)
    out = [textwrap.fill(_describe(group), width=100), header, "-" * len(header), *(line(r) for r in rows)]
    out.append("* cheapest plan that fits" if best else "No strategy fits in device memory.")
    common = [a for a in group[0].assumptions if all(a in p.assumptions for p in group)]
    out.append("Assumptions:")
    out.extend(textwrap.fill(a, width=100, initial_indent="  - ", subsequent_indent="    ") for a in common)
    for p in group:
        out.extend(textwrap.fill(a, width=100, initial_indent="  - ", subsequent_indent="    ")
                   for a in p.assumptions if a not in common)
    return out


def format_plans(plans: Iterable[ShardingPlan]) -> str:
    """Render plans as fixed-width text tables, one per (tables, workload, device), with the
    cheapest fitting plan marked ``*`` and the assumptions under the numbers.

    Bytes are per batch except memory; ``imbalance`` is max / mean per-device memory traffic
    in the simulated batch, ``expected`` the same from the analytic probabilities.
    """
    plans = list(plans)
    if not plans:
        return "No plans."
    groups: dict[tuple, list[ShardingPlan]] = {}
    for p in plans:
        groups.setdefault((p.tables, p.workload, p.device), []).append(p)
    lines: list[str] = []
    for group in groups.values():
        if lines:
            lines.append("")
        lines.extend(_render_group(group))
    return "\n".join(lines)
