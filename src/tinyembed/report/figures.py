"""The plots: one function per plot, each a titled, labelled PNG (matplotlib, the ``plot`` extra).

The report's plots take plain results (the dataclasses of :mod:`tinyembed.profile` or
their lists); the positional plots (``tinyembed plot positional``) draw the encodings
themselves. Every function returns a :class:`~tinyembed.report.document.Figure`, and
:func:`figure_from_matplotlib` refuses a plot without a title or axis labels.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..io.assets import minilm_tensor
from ..io.files import atomic_directory, check_destination
from ..positional import RotaryEmbedding, sinusoidal_table
from .document import Figure

MIB = 1 << 20


def figure_from_matplotlib(fig, title: str | None = None, caption: str = "", *, dpi: int = 110,
                           close: bool = True, require_labels: bool = True) -> Figure:
    """A :class:`Figure` from a matplotlib figure, after checking it is titled and its axes labelled.

    Args:
        fig: a ``matplotlib.figure.Figure``.
        title: the report's title for it; None takes the figure's suptitle, or the
            title of its only axes.
        dpi: resolution of the PNG.
        close: close ``fig`` afterwards (pyplot keeps every open figure alive).
        require_labels: check that every visible axes with data has an x and a y label
            (and every colorbar a label): the report promises labelled axes with units.
            Turn it off only for plots without axes, such as a pie chart.

    Raises:
        ValueError: no title, or unlabelled axes; the message names the axes by its title.
    """
    import io

    suptitle = fig._suptitle.get_text() if getattr(fig, "_suptitle", None) is not None else ""
    visible = [ax for ax in fig.axes if ax.get_visible() and ax.axison]
    # A colorbar is an axes too; matplotlib marks it with a private `_colorbar`, and
    # its label sits on its long axis only.
    colorbars = [ax for ax in visible if getattr(ax, "_colorbar", None) is not None]
    plots = [ax for ax in visible if ax not in colorbars]
    if title is None:
        titled = [ax.get_title() for ax in plots if ax.get_title()]
        title = suptitle or (titled[0] if len(plots) == 1 and titled else "")
    if not title.strip():
        raise ValueError("the figure has no title: give title=, or set a suptitle or the axes title")
    if require_labels:
        for k, ax in enumerate(plots):
            name = f"axes {k} ({ax.get_title()!r})" if ax.get_title() else f"axes {k}"
            missing = [axis for axis, label in (("x", ax.get_xlabel()), ("y", ax.get_ylabel())) if not label.strip()]
            if ax.has_data() and missing:
                raise ValueError(f"figure {title!r}: {name} has no {' or '.join(missing)} label "
                                 "(label every axis, with its unit)")
            if len(plots) > 1 and not (ax.get_title() or suptitle):
                raise ValueError(f"figure {title!r}: {name} has no title and the figure no suptitle")
        for ax in colorbars:
            label = ax.get_ylabel() if ax._colorbar.orientation == "vertical" else ax.get_xlabel()
            if not label.strip():
                raise ValueError(f"figure {title!r}: a colorbar has no label (what its colours mean, with the unit)")
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=dpi)
    finally:
        if close:
            import matplotlib.pyplot as plt

            plt.close(fig)
    return Figure(title=title, png=buffer.getvalue(), caption=caption)


def _pyplot():
    try:
        import matplotlib
    except ImportError as e:
        raise ImportError("plots need matplotlib: pip install 'tinyembed[plot]'") from e
    matplotlib.use("Agg")  # no display here, and none needed
    import matplotlib.pyplot as plt
    return plt


def _axes(title: str, xlabel: str, ylabel: str, size=(7.5, 4.2)):
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=size, layout="constrained")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    return fig, ax


def _done(fig, title: str, caption: str) -> Figure:
    return figure_from_matplotlib(fig, title, caption)


def roofline(measurements, machine) -> Figure:
    """Each lookup's GB/s as a bar, under the machine's copy bandwidth (1 thread, all cores)."""
    title = "Lookup bandwidth against this machine's copy bandwidth"
    fig, ax = _axes(title, "table (rows x dim, storage)", "GB/s (bytes read + written)", size=(8.5, 5.0))
    labels = [f"{m.num_embeddings}x{m.embedding_dim} {m.dtype}" for m in measurements]
    x = np.arange(len(measurements))
    ax.bar(x, [m.gb_per_s for m in measurements], color="#4878a8", label="lookup (median)")
    ax.axhline(machine.copy_gbps_all_cores, color="#c44e52", ls="--",
               label=f"copy, {machine.usable_cores} threads: {machine.copy_gbps_all_cores:.1f} GB/s")
    ax.axhline(machine.copy_gbps_one_thread, color="#dd8452", ls=":",
               label=f"copy, 1 thread: {machine.copy_gbps_one_thread:.1f} GB/s")
    ax.set_xticks(x, labels, fontsize=7, rotation=45, ha="right", rotation_mode="anchor")
    ax.legend(fontsize=8)
    return _done(fig, title, "Bytes moved = ids + rows read as stored + output written; the dashed lines are the "
                             "peak a copy reaches on this machine, measured in the same run.")


def throughput_by_shape(measurements) -> Figure:
    """Tokens per second against tokens per batch, one line per sequence length."""
    title = "Lookup throughput by batch shape"
    fig, ax = _axes(title, "tokens per batch (batch x sequence length)", "million tokens per second")
    by_seq = defaultdict(list)
    for m in measurements:
        by_seq[m.seq_len].append(m)
    for seq, ms in sorted(by_seq.items()):
        ms.sort(key=lambda m: m.tokens)
        ax.plot([m.tokens for m in ms], [m.tokens_per_s / 1e6 for m in ms], marker="o", label=f"seq {seq}")
    ax.set_xscale("log")
    ax.legend(fontsize=8)
    m0 = measurements[0]
    return _done(fig, title, f"{m0.num_embeddings}x{m0.embedding_dim} {m0.dtype} table, {m0.pattern} ids. "
                             "Small batches pay Python's fixed cost per call; large ones reach the memory limit.")


def throughput_by_dim(measurements) -> Figure:
    """GB/s against row width, one line per (vocabulary, storage dtype)."""
    title = "Lookup bandwidth by row width and storage"
    fig, ax = _axes(title, "embedding dim (values per row)", "GB/s (bytes read + written)")
    lines = defaultdict(list)
    for m in measurements:
        lines[(m.num_embeddings, m.dtype)].append(m)
    for (vocab, dtype), ms in sorted(lines.items()):
        ms.sort(key=lambda m: m.embedding_dim)
        ax.plot([m.embedding_dim for m in ms], [m.gb_per_s for m in ms], marker="o", label=f"V={vocab}, {dtype}")
    ax.set_xscale("log", base=2)
    ax.legend(fontsize=7, ncol=2)
    return _done(fig, title, "Compressed tables read fewer bytes per row but decode every value; the decode "
                             "is what their lower bandwidth measures.")


def throughput_by_vocab(measurements, machine) -> Figure:
    """GB/s against vocabulary size at one width: where the table leaves the caches."""
    title = "Lookup bandwidth by vocabulary size"
    fig, ax = _axes(title, "table size (MiB)", "GB/s (bytes read + written)")
    ms = sorted(measurements, key=lambda m: m.num_embeddings)
    sizes = [m.num_embeddings * m.embedding_dim * 4 / MIB for m in ms]
    ax.plot(sizes, [m.gb_per_s for m in ms], marker="o", label="lookup (median)")
    for m, size in zip(ms, sizes, strict=True):
        ax.annotate(f"V={m.num_embeddings}", (size, m.gb_per_s), fontsize=7, xytext=(3, 3), textcoords="offset points")
    for c in machine.caches:
        ax.axvline(c.size_bytes / MIB, color="grey", ls=":", lw=1)
        ax.annotate(c.name, (c.size_bytes / MIB, ax.get_ylim()[0]), fontsize=7, rotation=90,
                    xytext=(2, 4), textcoords="offset points")
    ax.set_xscale("log")
    ax.legend(fontsize=8)
    m0 = ms[0]
    return _done(fig, title, f"dim {m0.embedding_dim} float32 tables, {m0.tokens} uniform ids a batch; dotted lines "
                             "mark this machine's cache sizes.")


def pattern_times(results) -> Figure:
    """Lookup time per access pattern, plain and deduplicated."""
    title = "Lookup time by access pattern"
    fig, ax = _axes(title, "access pattern", "time per batch (ms)")
    x = np.arange(len(results))
    ax.bar(x - 0.2, [r.median_s * 1e3 for r in results], 0.4, label="gather every id")
    ax.bar(x + 0.2, [r.dedup_median_s * 1e3 for r in results], 0.4, label="gather unique ids, then expand")
    ax.set_xticks(x, [r.pattern for r in results], fontsize=8)
    ax.legend(fontsize=8)
    return _done(fig, title, f"{results[0].tokens} ids per batch. Deduplication pays only when the gather "
                             "it saves costs more than finding the unique ids (a sort).")


def hot_set(results) -> Figure:
    """Share of lookups served by the k most frequent rows, per pattern."""
    title = "Hot-set curve: lookups served by the most frequent rows"
    fig, ax = _axes(title, "k most frequent rows", "share of lookups (%)")
    for r in results:
        ax.plot(r.hot_set_ks, [100 * s for s in r.hot_set_share], marker="o", label=r.pattern)
    ax.set_xscale("log")
    ax.set_ylim(0, 101)
    ax.legend(fontsize=8)
    return _done(fig, title, "A steep curve means a small cache of hot rows serves most lookups.")


def cache_hit_rates(analyses) -> Figure:
    """Simulated hit rate of each cache level, grouped by pattern."""
    title = "Simulated cache hit rates of the table's rows"
    fig, ax = _axes(title, "access pattern", "hit rate of accesses reaching the level (%)")
    names = [level.name for level in analyses[0].levels]
    x = np.arange(len(analyses))
    width = 0.8 / len(names)
    for k, name in enumerate(names):
        rates = [100 * (a.levels[k].hit_rate or 0.0) for a in analyses]
        ax.bar(x + (k - (len(names) - 1) / 2) * width, rates, width, label=name)
    ax.set_xticks(x, [a.pattern for a in analyses], fontsize=8)
    ax.set_ylim(0, 101)
    ax.legend(fontsize=8)
    a0 = analyses[0]
    return _done(fig, title, f"{a0.lookups} lookups of a {a0.num_embeddings}x{a0.embedding_dim} float32 table "
                             "replayed through LRU caches of this machine's geometry, after a warm-up.")


def row_cache(curves) -> Figure:
    """Hit rate of LRU and LFU row caches, and the static top-k oracle, against capacity."""
    title = "Hot-row cache hit rate on the real text stream"
    fig, ax = _axes(title, "cache capacity (rows)", "hit rate (%)")
    for name, values in (("LRU", curves.lru), ("LFU", curves.lfu), ("top-k oracle (static)", curves.hot_set)):
        ax.plot(curves.capacities, [100 * v for v in values], marker="o", label=name)
    ax.set_xscale("log")
    ax.set_ylim(0, 101)
    ax.legend(fontsize=8)
    return _done(fig, title, f"{curves.lookups} lookups, {curves.distinct_rows} distinct rows, FBGEMM-style "
                             "row caches; the oracle keeps the k most frequent rows of the whole stream.")


def memory_by_vocab(scaling, dim: int) -> Figure:
    """Table bytes against vocabulary size for one width, one line per storage format."""
    title = f"Token table size by vocabulary (dim {dim})"
    fig, ax = _axes(title, "vocabulary size (rows)", "table size (MiB)")
    j = scaling.dims.index(dim)
    for dtype in scaling.dtypes:
        ax.plot(scaling.vocab_sizes, [row[j] / MIB for row in scaling.bytes[dtype]], marker="o", label=dtype)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    return _done(fig, title, "int8 and int4 use FBGEMM's row-wise layout: the codes, then a scale and a bias per row.")


def memory_by_dim(scaling, vocab: int) -> Figure:
    """Table bytes against width for one vocabulary, one line per storage format."""
    title = f"Token table size by width (vocabulary {vocab})"
    fig, ax = _axes(title, "embedding dim (values per row)", "table size (MiB)")
    i = scaling.vocab_sizes.index(vocab)
    for dtype in scaling.dtypes:
        ax.plot(scaling.dims, [b / MIB for b in scaling.bytes[dtype][i]], marker="o", label=dtype)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    return _done(fig, title, "Bytes grow linearly with the width; the per-row scale and bias of int8/int4 "
                             "matter only for narrow rows.")


def embedding_share(models) -> Figure:
    """Share of each published model's parameters in its embeddings."""
    title = "Embeddings' share of model parameters"
    known = [m for m in models if m["embedding_share"] is not None]
    fig, ax = _axes(title, "share of all parameters (%)", "model", size=(7.5, 0.35 * len(known) + 1.2))
    ax.barh([m["name"] for m in known], [100 * m["embedding_share"] for m in known], color="#55a868")
    ax.invert_yaxis()
    return _done(fig, title, "Token table, untied output head and learned positions, over the published totals.")


def positional_times(rows) -> Figure:
    title = "Cost of each positional encoding per batch"
    fig, ax = _axes(title, "encoding", "time per batch (ms)")
    ax.bar([r.name for r in rows], [r.time_s * 1e3 for r in rows], color="#8172b3")
    return _done(fig, title, "What each adds to one forward pass; see the table for what is timed.")


def compression(results) -> Figure:
    """Bytes against quality for each compression method of the MiniLM table."""
    title = "Compression of the MiniLM word table: size against quality"
    fig, ax = _axes(title, "table size (MiB)", "mean cosine to the original row")
    for r in results:
        ax.scatter(r.nbytes / MIB, r.mean_cosine, color="#4878a8")
        ax.annotate(r.method, (r.nbytes / MIB, r.mean_cosine), fontsize=7, xytext=(3, 3),
                    textcoords="offset points")
    ax.set_xscale("log")
    return _done(fig, title,
                 "Measured by tinyembed compress on the real 30522x384 table: up and to the left is better.")


def sharding_load(plans) -> Figure:
    """Per-device memory traffic of each strategy in one workload."""
    title = "Sharding: memory traffic per device per batch"
    fig, ax = _axes(title, "device", "bytes read per batch (MiB)")
    n = plans[0].num_devices
    width = 0.8 / len(plans)
    for k, p in enumerate(plans):
        x = np.arange(n) + (k - (len(plans) - 1) / 2) * width
        ax.bar(x, np.asarray(p.memory_traffic_bytes) / MIB, width,
               label=f"{p.strategy} (imbalance {p.load_imbalance:.2f})")
    ax.set_xticks(np.arange(n))
    ax.legend(fontsize=7)
    return _done(fig, title, "Simulated under the measured Zipf skew: contiguous row ranges put the hot rows on "
                             "device 0; hashing rows over devices spreads them.")


# -- the capacity study (drawn from its saved document: tinyembed.study.results) --------------------
def _budget_curves(ax, document: dict, x: str, scale: float = 1.0) -> None:
    """Each budget's tied points, a line through its own best (the lowest bits per byte reached by that
    size or less: points of different vocabularies do not lie on one curve), the untied points as
    crosses, and the Pareto front over every tied point (no point has both a lower ``x`` and fewer bits
    per byte)."""
    points = document["points"]
    colors = ["#4878a8", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860"]
    for k, budget in enumerate(sorted({p["budget"] for p in points if p["tied"]})):
        at = sorted((p for p in points if p["tied"] and p["budget"] == budget), key=lambda p: p[x])
        color = colors[k % len(colors)]
        ax.scatter([p[x] / scale for p in at], [p["bits_per_byte"] for p in at], s=16, color=color,
                   label=f"{budget:.2g} FLOPs")
        best = [p for i, p in enumerate(at) if all(p["bits_per_byte"] < q["bits_per_byte"] for q in at[:i])]
        ax.plot([p[x] / scale for p in best], [p["bits_per_byte"] for p in best], lw=1, color=color)
    untied = [p for p in points if not p["tied"]]
    if untied:
        ax.scatter([p[x] / scale for p in untied], [p["bits_per_byte"] for p in untied], marker="x", color="black",
                   zorder=3, label="untied")
    front = [points[i] for i in document["pareto"][x]]
    ax.step([p[x] / scale for p in front], [p["bits_per_byte"] for p in front], where="post", color="black",
            ls="--", lw=1, label="Pareto front")
    ax.scatter([p[x] / scale for p in front], [p["bits_per_byte"] for p in front], s=70, facecolors="none",
               edgecolors="black", zorder=3)
    ax.set_xscale("log")
    ax.legend(fontsize=8)


def capacity_by_parameters(document: dict) -> Figure:
    """Held-out bits per byte against the model's parameters, each compute budget in its colour."""
    title = "Capacity study: bits per byte against parameters, by FLOPs budget"
    fig, ax = _axes(title, "parameters (all, a tied table counted once)", "held-out bits per byte")
    _budget_curves(ax, document, "total_parameters")
    return _done(fig, title, "Each point is one vocabulary and width trained for the budget's FLOPs; lower is "
                             "better. Lines: each budget's best by that size. Circled: the Pareto front over every "
                             "budget.")


def capacity_by_table_bytes(document: dict) -> Figure:
    """Held-out bits per byte against the bytes of the model's vocabulary tables in float32."""
    title = "Capacity study: bits per byte against the vocabulary table's bytes"
    fig, ax = _axes(title, "vocabulary tables, float32 (MiB)", "held-out bits per byte")
    _budget_curves(ax, document, "table_bytes_float32", scale=MIB)
    return _done(fig, title, "The table is V x D float32 (two tables when untied); int8 rows take (D + 8) / 4D "
                             "of it. Circled: the Pareto front.")


def capacity_by_vocabulary(document: dict) -> Figure:
    """For each budget, the best bits per byte of each vocabulary over the widths: the IsoFLOPs profiles."""
    title = "Capacity study: best bits per byte by vocabulary at each budget (IsoFLOPs)"
    fig, ax = _axes(title, "vocabulary size (ids; 257 = bytes)", "held-out bits per byte (best width)")
    for budget in document["isoflops"]:
        profile = sorted(budget["by_vocabulary"].values(), key=lambda p: p["vocab_size"])
        line, = ax.plot([p["vocab_size"] for p in profile], [p["bits_per_byte"] for p in profile], marker="o",
                        label=f"{budget['budget']:.2g} FLOPs")
        best = budget["best"]
        ax.scatter([best["vocab_size"]], [best["bits_per_byte"]], s=120, marker="*", color=line.get_color(),
                   edgecolors="black", zorder=3)
    ax.set_xscale("log", base=2)
    sizes = sorted({p["vocab_size"] for p in document["points"]})
    ax.set_xticks(sizes, [str(v) for v in sizes])
    ax.minorticks_off()
    ax.legend(fontsize=8)
    return _done(fig, title, "A star marks each budget's best vocabulary: if the stars move right as the budget "
                             "grows, larger budgets want larger vocabularies.")


# -- the decode study (drawn from its saved document: tinyembed.study.results) ----------------------
_STORAGE_COLORS = {"float32": "#4878a8", "float16": "#8172b3", "bfloat16": "#dd8452", "float8_e4m3fn": "#937860",
                   "int8": "#55a868", "int4": "#c44e52"}
_WIDTH_STYLES = ["-", "--", ":", "-."]


def _decode_lines(document: dict):
    """((storage, width), its points by vocabulary, color, line style) for every storage and width measured."""
    widths = sorted({p["embedding_dim"] for p in document["points"]})
    lines: dict[tuple[str, int], list[dict]] = defaultdict(list)
    for p in document["points"]:
        lines[(p["storage"], p["embedding_dim"])].append(p)
    for (storage, width), points in lines.items():
        yield ((storage, width), sorted(points, key=lambda p: p["vocab_size"]), _STORAGE_COLORS.get(storage),
               _WIDTH_STYLES[widths.index(width) % len(_WIDTH_STYLES)])


def decode_seconds_per_token(document: dict) -> Figure:
    """One generated token's output projection: milliseconds against vocabulary size, one line per storage
    and width, both axes logarithmic."""
    title = "Decode: one token's output projection against vocabulary size"
    fig, ax = _axes(title, "vocabulary size (output rows V)", "ms per token (attend, batch 1)")
    for (storage, width), points, color, style in _decode_lines(document):
        ax.plot([p["vocab_size"] for p in points], [p["seconds_per_token"] * 1e3 for p in points], marker="o",
                ms=4, color=color, ls=style, label=f"{storage}, D={width}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    sizes = sorted({p["vocab_size"] for p in document["points"]})
    ax.set_xticks(sizes, [f"{v:,}" for v in sizes], rotation=45, ha="right", rotation_mode="anchor", fontsize=8)
    ax.minorticks_off()
    ax.legend(fontsize=7, ncol=2)
    return _done(fig, title, "Every generated token reads the whole V x D table once: the time grows with V and "
                             "with the bytes per value, as long as decoding the rows keeps up with memory.")


def decode_bandwidth(document: dict) -> Figure:
    """GB/s of table read by one token's projection against the table's bytes, under the copy roofline."""
    title = "Decode: bandwidth of the output projection against the copy roofline"
    fig, ax = _axes(title, "table as stored (MiB)", "GB/s of table read")
    for (storage, width), points, color, style in _decode_lines(document):
        points = sorted(points, key=lambda p: p["table_bytes"])
        ax.plot([p["table_bytes"] / MIB for p in points], [p["gb_per_s"] for p in points], marker="o", ms=4,
                color=color, ls=style, label=f"{storage}, D={width}")
    ax.axhline(document["copy_gbps"], color="black", ls="--", lw=1,
               label=f"copy: {document['copy_gbps']:.1f} GB/s (read + written)")
    ax.set_xscale("log")
    top = max([document["copy_gbps"]] + [p["gb_per_s"] for p in document["points"]])
    ax.set_ylim(0, 1.45 * top)  # room for the legend above the lines
    ax.legend(fontsize=7, ncol=3, loc="upper left")
    return _done(fig, title, f"The dashed line is a copy of {document['copy_bytes'] / MIB:.0f} MiB arrays on the "
                             "same threads, measured in the same run. Tables that fit a cache can pass it; a storage "
                             "far below it is bound by decoding its rows, not by memory.")


# -- positional encodings (tinyembed plot positional) ------------------------------------------
def cosine_similarity_matrix(table: np.ndarray) -> np.ndarray:
    """(n, d) rows -> (n, n) cosine similarities, in float64."""
    t = np.asarray(table, dtype=np.float64)
    t = t / np.maximum(np.linalg.norm(t, axis=1, keepdims=True), 1e-12)
    return t @ t.T


def sinusoidal_heatmap(num_positions: int = 256, embedding_dim: int = 128) -> Figure:
    """The sinusoidal table as an image: fast waves in the first dims, slow ones in the last."""
    plt = _pyplot()
    table = sinusoidal_table(np.arange(num_positions), embedding_dim)
    fig, ax = plt.subplots(figsize=(8, 5))
    im = ax.imshow(table, aspect="auto", cmap="RdBu", vmin=-1, vmax=1, interpolation="nearest")
    ax.set_title(f"Sinusoidal position encoding (d = {embedding_dim}, base 10000)")
    ax.set_xlabel("embedding dimension")
    ax.set_ylabel("position (tokens)")
    fig.colorbar(im, ax=ax, label="value")
    fig.tight_layout()
    return figure_from_matplotlib(fig, caption="Each row is one position: fast waves in the first dimensions, "
                                               "slow ones in the last.")


def rope_similarity(num_positions: int, head_dim: int = 64) -> np.ndarray:
    """(n, n) similarity <R(m)q, R(n)q> / |q|^2 of one vector rotated to every position.

    q = all ones puts equal energy in every rotation pair; the result depends only on m - n.
    """
    q = np.ones((1, 1, num_positions, head_dim))
    rotated, _ = RotaryEmbedding(head_dim).apply(q, q)
    r = rotated.data[0, 0]  # (n, head_dim)
    return r @ r.T / head_dim


def position_similarity(learned_table: np.ndarray | None = None, num_positions: int = 512,
                        dim: int = 384) -> Figure:
    """Cosine similarity between positions: sinusoidal, RoPE and a real learned table side by side."""
    plt = _pyplot()
    panels = [("sinusoidal", cosine_similarity_matrix(sinusoidal_table(np.arange(num_positions), dim))),
              ("RoPE (rotated copies of one vector)", rope_similarity(num_positions, 64))]
    if learned_table is not None:
        panels.append(("learned: all-MiniLM-L6-v2", cosine_similarity_matrix(learned_table[:num_positions])))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.8), layout="constrained")
    for ax, (name, sim) in zip(np.atleast_1d(axes), panels, strict=True):
        im = ax.imshow(sim, cmap="viridis", vmin=-1, vmax=1, interpolation="nearest")
        ax.set_title(name)
        ax.set_xlabel("position (tokens)")
        ax.set_ylabel("position (tokens)")
    fig.colorbar(im, ax=list(np.atleast_1d(axes)), label="cosine similarity", shrink=0.8)
    fig.suptitle("Similarity between position encodings")
    return figure_from_matplotlib(fig, caption="Cosine similarity of every pair of positions; sinusoidal and "
                                               "RoPE depend only on the distance.")


# The context-extension scalings drawn, in Hugging Face's rope_parameters form, for a
# model trained on `original` tokens and extended by `factor` (LLaMA-3.1's llama3 settings).
def _rope_scalings(original: int, factor: float) -> dict[str, dict]:
    return {
        "linear": {"rope_type": "linear", "factor": factor},
        "dynamic": {"rope_type": "dynamic", "factor": factor, "original_max_position_embeddings": original},
        "yarn": {"rope_type": "yarn", "factor": factor, "original_max_position_embeddings": original},
        "llama3": {"rope_type": "llama3", "factor": factor, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                   "original_max_position_embeddings": original},
    }


def rope_spectrum(head_dim: int = 128, base: float = 10000.0, original: int = 4096, factor: float = 4.0) -> Figure:
    """Wavelength of each rotary frequency, unscaled and under every scaling, at factor x the original length."""
    plt = _pyplot()
    seq_len = int(original * factor)
    fig, ax = plt.subplots(figsize=(8, 5))
    pairs = np.arange(head_dim // 2)
    unscaled = RotaryEmbedding(head_dim, base=base)
    ax.plot(pairs, 2 * np.pi / unscaled.inv_freq, label="no scaling", color="black", linewidth=2)
    for name, scaling in _rope_scalings(original, factor).items():
        rope = RotaryEmbedding(head_dim, base=base, scaling=scaling)
        rope.cos_sin(np.array([seq_len - 1]))  # 'dynamic' picks its frequencies from the length
        ax.plot(pairs, 2 * np.pi / rope.inv_freq, label=f"{name} (factor {factor:g})", linestyle="--")
    ax.axhline(original, color="gray", linewidth=0.8)
    ax.axhline(seq_len, color="gray", linewidth=0.8, linestyle=":")
    ax.text(0, original * 1.15, f"original context {original}", color="gray")
    ax.text(0, seq_len * 1.15, f"extended context {seq_len}", color="gray")
    ax.set_yscale("log")
    ax.set_title(f"RoPE wavelengths (head_dim {head_dim}, base {base:g}) and context-extension scalings")
    ax.set_xlabel("rotation pair index i")
    ax.set_ylabel("wavelength 2\u03c0 / \u03b8\u1d62 (tokens)")
    ax.legend()
    fig.tight_layout()
    return figure_from_matplotlib(fig, caption="A pair rotates once per wavelength; scalings stretch the slow "
                                               "pairs past the original context.")


def _minilm_positions() -> np.ndarray:
    return minilm_tensor("embeddings.position_embeddings.weight")


# name -> figure builder; the report and the CLI iterate over this.
POSITIONAL_PLOTS: dict[str, Callable[[], Figure]] = {
    "sinusoidal_heatmap": sinusoidal_heatmap,
    "position_similarity": lambda: position_similarity(_minilm_positions()),
    "rope_spectrum": rope_spectrum,
}


def save_positional_plots(out_dir: str | os.PathLike, *, replace: bool = False) -> list[Path]:
    """Write every positional plot as ``NAME.png`` into the directory ``out_dir``, whole or not at all.

    The directory is checked first (:func:`tinyembed.io.files.check_destination`); an
    existing one is replaced only with ``replace``. Returns the paths written.
    """
    out = check_destination(out_dir, directory=True, replace=replace, what="plot directory")
    figures = {name: build() for name, build in POSITIONAL_PLOTS.items()}  # drawn before anything is written
    with atomic_directory(out, replace=replace) as staging:
        for name, figure in figures.items():
            (staging / f"{name}.png").write_bytes(figure.png)
    return [out / f"{name}.png" for name in figures]
