"""The studies for people: their tables (plain text and Markdown) and what they found.

Every function reads the saved document (:mod:`.results`), so the printed table, the
README's table and the report's section show the same numbers from the same file.

    capacity    rows, format_text, format_markdown, untied_pairs, describe
    decode      decode_tables, format_decode_text, format_decode_markdown, decode_largest, describe_decode
"""

from __future__ import annotations

from ..plan.memory import format_bytes, format_params

__all__ = ["COLUMNS", "rows", "format_text", "format_markdown", "untied_pairs", "describe", "decode_tables",
           "format_decode_text", "format_decode_markdown", "decode_largest", "describe_decode"]

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


def _aligned(columns: list[str], body: list[list[str]]) -> str:
    """A table as plain text: right-aligned columns, a rule under the header."""
    table = [columns] + body
    widths = [max(len(r[i]) for r in table) for i in range(len(columns))]
    lines = ["  ".join(cell.rjust(w) for cell, w in zip(r, widths, strict=True)) for r in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _markdown(columns: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---:" for _ in columns) + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in body])


def format_text(document: dict) -> str:
    """The table with aligned columns, then :func:`describe`."""
    return _aligned(COLUMNS, rows(document)) + "\n\n" + describe(document)


def format_markdown(document: dict) -> str:
    """The table as Markdown (for the README), then :func:`describe`."""
    return _markdown(COLUMNS, rows(document)) + "\n\n" + describe(document)


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


# -- the decode study (tinyembed.study.decode) -------------------------------------------------------
def _threads(document: dict) -> str:
    return f"{document['threads']} thread{'s' if document['threads'] > 1 else ''}"


def decode_tables(document: dict) -> list[tuple[str, list[str], list[list[str]]]]:
    """(caption, columns, rows) of each table: the measured tables, the published models, and (with
    text) the pruned output heads."""
    points = document["points"]
    timed = [[str(p["vocab_size"]), str(p["embedding_dim"]), p["storage"], format_bytes(p["table_bytes"]),
              f"{p['seconds_per_token'] * 1e3:.3g}", f"{p['gb_per_s']:.1f}", f"{p['percent_of_copy']:.0f}%",
              f"{p['spread']:.0%}"]
             for p in sorted(points, key=lambda p: (p["embedding_dim"], p["vocab_size"]))]
    tables = [(f"One token's output projection (attend, batch 1) on {_threads(document)}; GB/s = "
               f"table bytes / time, against a copy's {document['copy_gbps']:.1f} GB/s (bytes read + written).",
               ["V", "D", "storage", "table", "ms/token", "GB/s", "of copy", "spread"], timed)]
    storages = list(dict.fromkeys(m["storage"] for m in document["models"]))
    by_model: dict[str, dict[str, dict]] = {}
    for m in document["models"]:
        by_model.setdefault(m["name"], {})[m["storage"]] = m
    models = []
    for name, per in by_model.items():
        m = next(iter(per.values()))
        models.append([name, str(m["vocab_size"]), str(m["hidden_size"]), "yes" if m["tied"] else "no",
                       "—" if m["head_share"] is None else f"{100 * m['head_share']:.1f}%"]
                      + [cell for s in storages for cell in (format_bytes(per[s]["head_bytes"]),
                                                             f"{per[s]['head_tokens_per_s']:.3g}")])
    notes = "; ".join(f"{name}: {per[storages[0]]['note']}" for name, per in by_model.items()
                      if per[storages[0]]["note"])
    tables.append(("Per generated token: the output projection's bytes, its share of all the weight bytes read, "
                   "and the tokens per second it alone allows at the GB/s measured here for that storage (the largest "
                   "table measured at the width nearest the model's)."
                   + (f" {notes}." if notes else "")
                   + "".join(f" {name} is left out: {why}." for name, why in document["models_left_out"].items()),
                   ["model", "V", "D", "tied", "head share"]
                   + [c for s in storages for c in (f"{s} head", f"{s} tokens/s")], models))
    if document["coverage"]:
        text = document["text"]
        tables.append((f"A {text['vocab_size']}-row output head pruned to the rows {text['source']} uses most, "
                       f"counted on the first {text['tokens'] - text['held_out_tokens']:,} tokens and judged "
                       f"on the last {text['held_out_tokens']:,}.",
                       ["kept rows", "head bytes saved", "held-out tokens it cannot predict"],
                       [[str(c["kept_rows"]), f"{100 * c['bytes_saved']:.1f}%", f"{100 * c['held_out_miss']:.2f}%"]
                        for c in document["coverage"]]))
    return tables


def format_decode_text(document: dict) -> str:
    """Each table with aligned columns under its caption, then :func:`describe_decode`."""
    return "\n\n".join(f"{caption}\n{_aligned(columns, body)}" for caption, columns, body
                       in decode_tables(document)) + "\n\n" + describe_decode(document)


def format_decode_markdown(document: dict) -> str:
    """Each table as Markdown under its caption, then :func:`describe_decode`."""
    return "\n\n".join(f"{caption}\n\n{_markdown(columns, body)}" for caption, columns, body
                       in decode_tables(document)) + "\n\n" + describe_decode(document)


def decode_largest(document: dict) -> dict[str, dict]:
    """Storage -> the point of the largest shape measured (by V x D): the one caches help least."""
    v, d = max(((p["vocab_size"], p["embedding_dim"]) for p in document["points"]), key=lambda s: s[0] * s[1])
    return {p["storage"]: p for p in document["points"] if (p["vocab_size"], p["embedding_dim"]) == (v, d)}


def describe_decode(document: dict) -> str:
    """The finding: the largest table in each storage, the published models' heads, real text's rows,
    and the run's cost."""
    largest = decode_largest(document)
    first = next(iter(largest.values()))
    lines = [f"At V={first['vocab_size']}, D={first['embedding_dim']} (the largest table measured) one token's "
             f"output projection takes " + ", ".join(
                 f"{p['seconds_per_token'] * 1e3:.3g} ms in {s} ({p['gb_per_s']:.1f} GB/s, "
                 f"{p['percent_of_copy']:.0f}% of copy)" for s, p in largest.items()) + "."]
    if "float32" in largest and len(largest) > 1:
        f32 = largest["float32"]
        lines.append("Against float32: " + "; ".join(
            f"{s} reads {f32['table_bytes'] / p['table_bytes']:.1f}x fewer bytes and is "
            f"{f32['seconds_per_token'] / p['seconds_per_token']:.1f}x as fast" for s, p in largest.items()
            if s != "float32") + ".")
    shares = {m["name"]: m for m in document["models"] if m["head_share"] is not None}
    if shares:
        lines.append("The output projection's share of the weight bytes one generated token reads: " + ", ".join(
            f"{name} {100 * m['head_share']:.1f}%" for name, m in shares.items()) + "." + "".join(
            f" ({name}: {m['note']}.)" for name, m in shares.items() if m["note"]))
    storage = "bfloat16" if "bfloat16" in largest else first["storage"]
    bound = [m for m in document["models"] if m["storage"] == storage]
    if bound:
        lines.append(f"Stored as {storage}, at the rate measured here, the head alone allows " + ", ".join(
            f"{m['name']} {m['head_tokens_per_s']:.3g}" for m in bound) + " tokens per second (all the weights: "
            + ", ".join(f"{m['name']} {m['weights_tokens_per_s']:.2g}" for m in bound
                        if m["weights_tokens_per_s"] is not None) + ").")
    if document["coverage"]:
        text = document["text"]
        lines.append(f"Real text ({text['source']}, {text['tokens']:,} tokens) ever asks for "
                     f"{100 * document['rows_ever_predicted']:.1f}% of the {text['vocab_size']} output rows. "
                     f"A head pruned to its K most frequent rows (counted on the first "
                     f"{100 * (1 - text['held_out']):.0f}%, judged on the rest) saves a share of the head's bytes "
                     f"and cannot predict a share of the held-out tokens: " + "; ".join(
                         f"K={c['kept_rows']}: {100 * c['bytes_saved']:.1f}% saved, {100 * c['held_out_miss']:.2f}% "
                         f"not predictable" for c in document["coverage"]) + ".")
    load = document.get("background_cores")
    lines.append(f"Copy bandwidth {document['copy_gbps']:.1f} GB/s on {_threads(document)} "
                 f"({format_bytes(document['copy_bytes'])} arrays); {len(document['points'])} tables timed in "
                 f"{document['seconds']:.0f} s" + (f", other processes kept {load:.1f} cores busy"
                                                     if load is not None else "") + ".")
    return "\n".join(lines)
