"""The capacity study for people: its table (plain text and Markdown) and what it found.

Every function reads the saved document (:mod:`.results`), so the printed table, the
README's table and the report's section show the same numbers from the same file.
"""

from __future__ import annotations

from ..plan.memory import format_bytes, format_params

__all__ = ["COLUMNS", "rows", "format_text", "format_markdown", "untied_pairs", "describe"]

COLUMNS = ["budget (FLOPs)", "tokenizer", "V", "D", "tied", "params", "emb. share", "table f32", "table int8",
           "tokens/byte", "steps", "epochs", "bits/byte", "int8", "int4", "train s", "best"]


def rows(document: dict) -> list[list[str]]:
    """One row per point, by budget, then tied first, then vocabulary and width; "*" marks each
    budget's lowest bits per byte."""
    best = {id_ for id_ in (_key(b["best"]) for b in document["isoflops"])}
    points = sorted(document["points"], key=lambda p: (p["budget"], not p["tied"], p["vocab_size"],
                                                       p["embedding_dim"]))
    out = []
    for p in points:
        q = p["quantized_bits_per_byte"]
        out.append([f"{p['budget']:.2g}", p["tokenizer"], str(p["vocab_size"]), str(p["embedding_dim"]),
                    "yes" if p["tied"] else "no", format_params(p["total_parameters"]),
                    f"{100 * p['embedding_share']:.0f}%", format_bytes(p["table_bytes_float32"]),
                    format_bytes(p["table_bytes_int8"]), f"{p['tokens_per_byte']:.3f}", str(p["steps"]),
                    f"{p['epochs']:.2f}", f"{p['bits_per_byte']:.3f}",
                    f"{q['int8']:.3f}" if "int8" in q else "—", f"{q['int4']:.3f}" if "int4" in q else "—",
                    f"{p['train_seconds']:.0f}", "*" if _key(p) in best else ""])
    return out


def _key(p: dict) -> tuple:
    return p["budget"], p["tokenizer"], p["embedding_dim"], p["tied"]


def format_text(document: dict) -> str:
    """The table with aligned columns, then :func:`describe`."""
    table = [COLUMNS] + rows(document)
    widths = [max(len(r[i]) for r in table) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.rjust(w) for cell, w in zip(r, widths, strict=True)) for r in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines) + "\n\n" + describe(document)


def format_markdown(document: dict) -> str:
    """The table as Markdown (for the README), then :func:`describe`."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "|".join("---:" for _ in COLUMNS) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows(document)]
    return "\n".join(lines) + "\n\n" + describe(document)


def untied_pairs(document: dict) -> list[tuple[dict, dict]]:
    """(tied point, untied point) of the same tokenizer, width and budget."""
    tied = {(p["budget"], p["tokenizer"], p["embedding_dim"]): p for p in document["points"] if p["tied"]}
    return [(tied[k], p) for p in document["points"] if not p["tied"]
            and (k := (p["budget"], p["tokenizer"], p["embedding_dim"])) in tied]


def describe(document: dict) -> str:
    """The finding, tied against untied, the skipped runs, the step's throughput and the run's cost."""
    lines = [document["finding"]]
    for tied, untied in untied_pairs(document):
        lines.append(f"Untied {untied['tokenizer']} D={untied['embedding_dim']} at {untied['budget']:.2g} FLOPs: "
                     f"{untied['bits_per_byte']:.3f} bits/byte with {format_params(untied['total_parameters'])} "
                     f"parameters, against {tied['bits_per_byte']:.3f} tied with "
                     f"{format_params(tied['total_parameters'])}.")
    skipped = document["skipped"]
    if skipped:
        lines.append(f"Skipped {len(skipped)} runs the budget buys fewer than {document['config']['min_steps']} "
                     f"steps of or that would pass over the training text more than "
                     f"{document['config']['max_epochs']} times: "
                     + ", ".join(f"{s['tokenizer']} D={s['embedding_dim']} @ {s['budget']:.2g}" for s in skipped)
                     + ".")
    points = document["points"]
    flops, seconds = sum(p["flops"] for p in points), sum(p["train_seconds"] for p in points)
    slow, fast = (f(points, key=lambda p: p["train_flops_per_s"]) for f in (min, max))
    lines.append(f"Training spent {flops:.3g} FLOPs in {seconds / 60:.1f} min ({flops / seconds / 1e9:.1f} GFLOP/s "
                 f"overall; per run from {slow['train_flops_per_s'] / 1e9:.1f} GFLOP/s, {slow['tokenizer']} "
                 f"D={slow['embedding_dim']}, to {fast['train_flops_per_s'] / 1e9:.1f}, {fast['tokenizer']} "
                 f"D={fast['embedding_dim']}); scoring the rest of the time.")
    t = document["step_throughput"]
    lines.append(f"Training step at the largest point (V={t['vocab_size']}, D={t['embedding_dim']}, batch "
                 f"{t['batch_size']}): {t['step_flops_per_s'] / 1e9:.1f} GFLOP/s; this machine's float32 matmul "
                 f"({t['matmul_n']}x{t['matmul_n']}), measured in turns with it: "
                 f"{t['matmul_flops_per_s'] / 1e9:.1f} GFLOP/s; ratio {t['ratio']:.2f}.")
    c = document["corpus"]
    load = document.get("background_cores")
    lines.append(f"Corpus {c['name']}: {format_bytes(c['train_bytes'])} of training text, "
                 f"{format_bytes(c['held_out_bytes'])} held out ({c['held_out_articles']} articles, every "
                 f"{c['held_out_every']}th; never seen by training or the BPE trainer). FLOPs: "
                 f"{document['flops_convention']}. {len(document['points'])} runs in "
                 f"{document['seconds'] / 60:.1f} min" + (f", other processes kept {load:.1f} of "
                                                           f"{document['machine'].get('usable_cores')} cores busy"
                                                           if load is not None else "") + ".")
    return "\n".join(lines)
