"""The report's plots: one function per plot, from profiler results to a titled, labelled PNG.

Every function takes plain results (the dataclasses of :mod:`tinyembed.profile`
or their lists) and returns a :class:`~tinyembed.report.html.Figure`;
:func:`figure_from_matplotlib` refuses a plot without a title or axis labels.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from .html import Figure, figure_from_matplotlib

MIB = 1 << 20


def _pyplot():
    try:
        import matplotlib
    except ImportError as e:
        raise ImportError("the report's plots need matplotlib: pip install 'tinyembed[plot]'") from e
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
