"""The sections of `tinyembed report`: one function per section, registered in order.

Each function takes the run's :class:`Context` and returns its
:class:`~tinyembed.report.document.Section` plus the data behind it (for
report.json) and the summary lines it contributes. Adding a section is adding
one function to :data:`SECTIONS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..kernels import jit
from ..plan.memory import format_bytes
from ..profile import EmbeddingProfiler, MachineInfo
from ..profile.patterns import AccessPattern
from . import figures
from .document import Section, Table

GIB = 1 << 30


@dataclass
class ReportConfig:
    """How much to measure. :meth:`quick` fits CI (under 90 s here); the default, 3 minutes."""

    repeats: int = 5
    batch_sizes: tuple[int, ...] = (1, 4, 16, 64)
    seq_lengths: tuple[int, ...] = (128, 512)
    scaling_vocab: int = 50257
    scaling_dims: tuple[int, ...] = (64, 384, 1024)
    scaling_dtypes: tuple[str, ...] = ("float32", "float16", "bfloat16", "int8", "int4")
    vocab_sweep: tuple[int, ...] = (1000, 8192, 50257, 262144)  # at dim 384, float32: cache-sized to memory-sized
    pattern_batches: int = 4
    cache_lookups: int = 50_000
    cache_patterns: tuple[str, ...] = ("uniform", "zipf-1", "sequential", "text")
    row_cache_lookups: int = 200_000
    positional_seq: int = 512
    compress_methods: tuple[str, ...] | None = None  # None: every method
    compress_sample: int = 500
    memory_vocab: tuple[int, ...] = (1000, 8192, 32000, 50257, 128256, 262144)
    memory_dims: tuple[int, ...] = (64, 256, 768, 2048, 4096, 8192)
    capacity_study: str | None = None  # the saved study the capacity section draws (None: the last one)
    decode_study: str | None = None  # the saved study the decode section draws (None: the last one)
    quick: bool = False

    @classmethod
    def quick_run(cls) -> ReportConfig:
        return cls(repeats=3, batch_sizes=(1, 16, 64), seq_lengths=(512,), scaling_dims=(64, 384),
                   scaling_dtypes=("float32", "int8"), vocab_sweep=(1000, 50257), pattern_batches=2,
                   cache_lookups=20_000, row_cache_lookups=50_000, positional_seq=256,
                   compress_methods=("float16", "int8", "int4"), compress_sample=200, quick=True)


@dataclass
class Context:
    """What every section may use: the profiler, the machine, the config, shared inputs."""

    profiler: EmbeddingProfiler
    machine: MachineInfo
    config: ReportConfig
    cache: dict = field(default_factory=dict)

    def minilm_table(self) -> np.ndarray:
        if "minilm" not in self.cache:
            from ..io.assets import minilm_tensor  # noqa: PLC0415
            self.cache["minilm"] = np.ascontiguousarray(minilm_tensor("embeddings.word_embeddings.weight"),
                                                        dtype=np.float32)
        return self.cache["minilm"]


SectionResult = tuple[Section, dict, list[str]]


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3g} ms"


def _pct(share: float | None) -> str:
    return "—" if share is None else f"{100 * share:.1f}%"


# -- sections ------------------------------------------------------------------------------------
def machine_section(ctx: Context) -> SectionResult:
    m = ctx.machine
    caches = ", ".join(f"{c.name} {format_bytes(c.size_bytes)} {c.ways}-way" for c in m.caches) or "not listed"
    rows = [["CPU", m.cpu_model], ["cores (usable)", f"{m.cores} ({m.usable_cores})"],
            ["memory", format_bytes(m.memory_bytes) if m.memory_bytes else "—"], ["caches (sysfs)", caches],
            ["copy bandwidth, 1 thread", f"{m.copy_gbps_one_thread:.1f} GB/s"],
            ["copy bandwidth, all cores", f"{m.copy_gbps_all_cores:.1f} GB/s"], ["NumPy", m.numpy],
            ["compiled kernels", "on (numba)" if jit.available() else "off: the NumPy path (install tinyembed[fast])"]]
    section = Section("machine", "Machine", text=(
        "Every number in this report was measured on this machine in this run. Bandwidth counts bytes read "
        "plus bytes written per second, copying an array far larger than the last cache; the best of the "
        "two thread counts is the roofline the lookups are compared with."),
        tables=[Table(["property", "value"], rows)])
    return section, {"machine": m.to_dict()}, [f"Copy bandwidth {m.peak_gbps:.1f} GB/s (best of 1 thread and "
                                               f"{m.usable_cores}), the lookups' roofline."]


def throughput_section(ctx: Context) -> SectionResult:
    cfg, p = ctx.config, ctx.profiler
    by_shape = p.measure_lookup_performance(ctx.minilm_table(), cfg.batch_sizes, cfg.seq_lengths)
    scaling = p.lookup_scaling([cfg.scaling_vocab], cfg.scaling_dims, cfg.scaling_dtypes)
    by_vocab = p.lookup_scaling(cfg.vocab_sweep, [384], ["float32"])
    rows = [[f"{m.num_embeddings}x{m.embedding_dim}", m.dtype, m.tokens, _ms(m.median_s), f"{m.spread:.0%}",
             f"{m.tokens_per_s / 1e6:.1f}", f"{m.gb_per_s:.1f}", f"{m.percent_of_peak:.0f}%"] for m in scaling]
    best = max(scaling, key=lambda m: m.gb_per_s)
    section = Section("throughput", "Lookup throughput on the bandwidth roofline", text=(
        "A lookup reads each requested row and writes it to the output: it is bound by memory bandwidth, "
        "not arithmetic. The bars compare each table's lookup with the copy bandwidth; then the real MiniLM "
        "word table (30522x384 float32) under batches of every shape, and random tables of every width, "
        "storage and vocabulary size."),
        figures=[figures.roofline(scaling, ctx.machine), figures.throughput_by_shape(by_shape),
                 figures.throughput_by_dim(scaling), figures.throughput_by_vocab(by_vocab, ctx.machine)],
        tables=[Table(["table", "storage", "tokens", "median", "spread", "M tokens/s", "GB/s", "of peak"], rows,
                      caption="Batches of 32x512 uniform ids; medians of the repeats, spread = (max - min) / median.")])
    data = {"by_shape": [m.to_dict() for m in by_shape], "scaling": [m.to_dict() for m in scaling],
            "by_vocab": [m.to_dict() for m in by_vocab]}
    return section, data, [f"Fastest lookup: {best.num_embeddings}x{best.embedding_dim} {best.dtype} at "
                           f"{best.gb_per_s:.1f} GB/s, {best.percent_of_peak:.0f}% of the copy roofline."]


def patterns_section(ctx: Context) -> SectionResult:
    results = ctx.profiler.access_pattern_analysis(ctx.minilm_table(), batches=ctx.config.pattern_batches)
    rows = [[r.pattern, _ms(r.median_s), f"{r.gb_per_s:.1f}", f"{r.unique_rows:.0f}", _pct(r.unique_share),
             _ms(r.dedup_median_s)] + [_pct(s) for s in r.hot_set_share] for r in results]
    ks = results[0].hot_set_ks
    text = next(r for r in results if r.pattern == "text")
    uniform = next(r for r in results if r.pattern == "uniform")
    section = Section("patterns", "Access patterns", text=(
        "The same table and batch shape (32x512 ids) under different ids. 'text' is real English Wikipedia "
        "(the shortened dump in gensim's test data, markup stripped) tokenized with the all-MiniLM-L6-v2 "
        "WordPiece tokenizer; 'sorted' is a Zipf batch in address order; the deduplicated lookup gathers each "
        "distinct row once, then expands.\n\nThe lookup splits a batch into one contiguous share per thread. "
        "Sorting a Zipf batch puts all the repeats of the hot rows into the first share and nearly every "
        "distinct row into the last, so one thread does most of the work: compare 'sorted' with 'zipf'."),
        figures=[figures.pattern_times(results), figures.hot_set(results)],
        tables=[Table(["pattern", "time", "GB/s", "unique rows", "unique share", "dedup time"]
                      + [f"top {k}" for k in ks], rows,
                      caption="Unique rows per batch and the hot-set shares are means over the drawn batches.")])
    return section, {"patterns": [r.to_dict() for r in results]}, [
        f"Real text touches {text.unique_rows:.0f} distinct rows per {text.tokens}-token batch "
        f"({_pct(text.unique_share)}) "
        f"against {uniform.unique_rows:.0f} for uniform ids; its top 1000 rows serve "
        f"{_pct(text.hot_set_share[ks.index(1000)] if 1000 in ks else None)} of lookups."]


def caches_section(ctx: Context) -> SectionResult:
    cfg = ctx.config
    analyses = [ctx.profiler.cache_analysis(AccessPattern.parse(name), lookups=cfg.cache_lookups,
                                            warmup_lookups=cfg.cache_lookups // 5, caches=ctx.machine.caches,
                                            perf=(name == "text"))
                for name in cfg.cache_patterns]
    rows = [[a.pattern, a.line_accesses] + [_pct(level.hit_rate) for level in a.levels] +
            [f"{a.levels[-1].misses / a.lookups:.2f}"] for a in analyses]
    perf = analyses[-1].perf
    notes = list(analyses[0].assumptions)
    if perf is not None and perf.available:
        counted = ", ".join(f"{k} {v:,}" for k, v in perf.counts.items() if v is not None)
        notes.append(f"perf stat on the text lookups (whole process, interpreter included): {counted}")
    elif perf is not None:
        notes.append(f"perf stat could not count here: {perf.reason}")
    names = [level.name for level in analyses[0].levels]
    section = Section("caches", "Cache behaviour", text=(
        "The cache lines the table's rows occupy, replayed in lookup order through set-associative LRU caches "
        "with this machine's sizes and associativity (from sysfs). A hit rate is of the accesses that reach "
        "that level."),
        figures=[figures.cache_hit_rates(analyses)],
        tables=[Table(["pattern", "line accesses"] + [f"{n} hits" for n in names] + ["memory reads per lookup"],
                      rows)], notes=notes)
    text = analyses[-1]
    return section, {"caches": [a.to_dict() for a in analyses]}, [
        f"Simulated on real text, {_pct(text.levels[-1].hit_rate)} of the row reads reaching the last cache "
        f"hit it."]


def row_cache_section(ctx: Context) -> SectionResult:
    curves = ctx.profiler.row_cache_analysis(max_lookups=ctx.config.row_cache_lookups)
    rows = [[c, _pct(lru), _pct(lfu), _pct(hot)] for c, lru, lfu, hot in
            zip(curves.capacities, curves.lru, curves.lfu, curves.hot_set, strict=True)]
    section = Section("row-caches", "Hot-row caches", text=(
        "A row cache keeps frequently used rows in fast memory (FBGEMM's embedding cache keeps them in GPU "
        "memory in front of host memory). Hit rates over the real text stream, for least-recently and "
        "least-frequently used eviction."),
        figures=[figures.row_cache(curves)],
        tables=[Table(["capacity (rows)", "LRU", "LFU", "top-k oracle"], rows)])
    k = len(curves.capacities) // 2
    return section, {"row_caches": curves.to_dict()}, [
        f"A {curves.capacities[k]}-row LRU cache serves {_pct(curves.lru[k])} of real-text lookups."]


def memory_section(ctx: Context) -> SectionResult:
    cfg = ctx.config
    scaling = ctx.profiler.analyze_memory_scaling(cfg.memory_vocab, cfg.memory_dims)
    rows = [[m["name"], m["vocab_size"], m["hidden_size"], "yes" if m["tied"] else "no",
             f"{m['embedding_params'] / 1e6:.1f}M", _pct(m["embedding_share"])]
            + [format_bytes(m["token_table_bytes"][d]) for d in scaling.dtypes] for m in scaling.models]
    section = Section("memory", "Memory scaling", text=(
        "Bytes grow as vocabulary x width x bytes per value. The table lists the published configurations "
        "of tinyembed memory; the share counts the token table, an untied output head and learned positions."),
        figures=[figures.memory_by_vocab(scaling, cfg.memory_dims[len(cfg.memory_dims) // 2]),
                 figures.memory_by_dim(scaling, cfg.memory_vocab[len(cfg.memory_vocab) // 2]),
                 figures.embedding_share(scaling.models)],
        tables=[Table(["model", "vocab", "dim", "tied", "embedding params", "share of params"]
                      + [f"table {d}" for d in scaling.dtypes], rows)])
    top = max((m for m in scaling.models if m["embedding_share"] is not None), key=lambda m: m["embedding_share"])
    return section, {"memory": scaling.to_dict()}, [
        f"Embeddings are {_pct(top['embedding_share'])} of {top['name']}'s parameters, the largest share of "
        f"the published models listed."]


def positional_section(ctx: Context) -> SectionResult:
    rows_ = ctx.profiler.compare_positional_encodings(seq_len=ctx.config.positional_seq)
    rows = [[r.name, r.parameters, format_bytes(r.cached_bytes), _ms(r.time_s), r.what_is_timed,
             "yes" if r.extrapolates else "no", r.evidence] for r in rows_]
    section = Section("positional", "Positional encodings", text=(
        f"Costs at a (8, {ctx.config.positional_seq}, 384) batch with 6 heads, and whether each still does its "
        f"job at 4x the training length ({rows_[0].train_len} -> {rows_[0].test_len} positions)."),
        figures=[figures.positional_times(rows_)],
        tables=[Table(["encoding", "parameters", "cached", "time", "what is timed", "extrapolates", "evidence"],
                      rows)])
    refused = [r.name for r in rows_ if not r.extrapolates]
    return section, {"positional": [r.to_dict() for r in rows_]}, [
        f"Past the training length, {', '.join(refused) or 'none'} cannot go on; the others keep working."]


def compression_section(ctx: Context) -> SectionResult:
    from ..profile.compression import DEFAULT_METHODS, METHODS, compress  # noqa: PLC0415
    from ..profile.patterns import text_stream  # noqa: PLC0415
    cfg = ctx.config
    table = ctx.minilm_table()
    counts = np.bincount(text_stream(), minlength=len(table))[:len(table)]
    methods = list(cfg.compress_methods or DEFAULT_METHODS)
    results = compress(table, methods=[m for m in methods if m in METHODS], counts=counts,
                       sample=cfg.compress_sample, repeats=cfg.repeats, show_progress=False)
    rows = [[r.method, format_bytes(r.nbytes), f"{r.compression_ratio:.2f}x", f"{r.mean_cosine:.4f}",
             f"{r.recall_at_10:.3f}", f"{r.lookup_time_ratio:.2f}x", r.description] for r in results]
    section = Section("compression", "Compression trade-offs", text=(
        "Each method of tinyembed compress applied to the real MiniLM word table; frequency-ranked methods "
        "use token counts of the Wikipedia text. Quality is the mean cosine between original and compressed "
        "rows and the recall of each row's 10 nearest neighbours; speed is the lookup time relative to dense."),
        figures=[figures.compression(results)],
        tables=[Table(["method", "size", "ratio", "mean cosine", "recall@10", "lookup time", "what"], rows)])
    small = [r for r in results if r.mean_cosine >= 0.99 and r.method != "dense"]
    best = min(small, key=lambda r: r.nbytes) if small else None
    line = (f"Smallest MiniLM table with mean cosine >= 0.99: {best.method}, {best.compression_ratio:.1f}x smaller."
            if best else "No compression method kept a mean cosine of 0.99.")
    return section, {"compression": [r.to_dict() for r in results]}, [line]


def _measured_sharding(quick: bool) -> tuple[Table | None, dict, list[str], str]:
    """The planner's prediction beside a measurement on local Ray actors, or why there is none.

    Returns:
        (table or None, data, notes, a sentence for the section's text).
    """
    import importlib.util  # noqa: PLC0415

    if importlib.util.find_spec("ray") is None:
        reason = "Ray is not installed (pip install 'tinyembed[distributed]')"
        return None, {"measured": None, "not_measured": reason}, [], f"Not measured on Ray: {reason}."
    from ..profile.sharded import measure_traffic  # noqa: PLC0415

    patterns = ("zipf-1", "text") if quick else ("uniform", "zipf-1", "text")
    plans = ("row", "hashed-row") if quick else ("row", "hashed-row", "column")
    try:
        comparisons = measure_traffic(patterns=patterns, plans=plans, num_shards=4,
                                      batch_shape=(8, 512) if quick else (16, 512), batches=2 if quick else 4)
    except (RuntimeError, OSError, ImportError, ValueError) as e:  # Ray did not start, the text is missing, ...
        reason = " ".join(str(e).split())
        return None, {"measured": None, "not_measured": reason}, [], f"Not measured on Ray: {reason}."
    c0 = comparisons[0]
    rows = []
    for c in comparisons:
        predicted_rows = sum(s.predicted_lookups for s in c.shards)
        predicted_bytes = sum(s.predicted_bytes_received + s.predicted_bytes_sent for s in c.shards)
        rows.append([c.pattern, c.plan, f"{c.predicted_imbalance:.2f}", f"{c.lookup_imbalance:.2f}",
                     f"{c.row_imbalance:.2f}", f"{predicted_rows:,.0f}", f"{sum(s.rows_sent for s in c.shards):,.0f}",
                     format_bytes(int(predicted_bytes)),
                     format_bytes(int(sum(s.bytes_received + s.bytes_sent for s in c.shards)))])
    caption = (f"Measured on Ray, {c0.num_shards} local actors: a {c0.vocab:,} x {c0.dim} float32 table trained on "
               f"batches of {c0.batch_ids:,} ids (means of {c0.batches}); predicted: the planner on the same table, "
               "batch and N. Imbalance = max / mean over the shards of the lookups routed (before deduplication) "
               "and of the distinct rows served.")
    table = Table(["pattern", "plan", "imbalance predicted", "measured: lookups", "measured: rows",
                   "rows sent predicted", "measured", "bytes in+out predicted", "measured"], rows, caption=caption)
    notes = sorted({f"{c.pattern}: {n}" for c in comparisons for n in c.notes})
    return table, {"measured": [c.to_dict() for c in comparisons]}, notes, (
        f"Measured on Ray, {c0.num_shards} local actors, beside what the planner predicted: the shards count "
        "what they receive and send while a sharded table trains (tinyembed.distributed), and the notes say "
        "which assumption of the cost model a difference comes from.")


def sharding_section(ctx: Context) -> SectionResult:
    from ..plan.sharding import format_plans, llama3_8b_vocab_scenario, recommendation_scenario  # noqa: PLC0415
    scenarios = [llama3_8b_vocab_scenario(), recommendation_scenario()]
    tables, data, lines = [], [], []
    for scenario in scenarios:
        plans = scenario.plans()
        data.append({"scenario": scenario.to_dict(), "plans": [p.to_dict() for p in plans],
                     "text": format_plans(plans)})
        rows = [[p.strategy, p.num_devices, format_bytes(p.max_memory_bytes), "yes" if p.fits else "no",
                 f"{p.load_imbalance:.2f}", format_bytes(p.network_bytes), _ms(p.time_s)] for p in plans]
        tables.append(Table(["strategy", "devices", "max memory per device", "fits", "load imbalance",
                             "network per batch", "estimated time"], rows,
                            caption=f"{scenario.name}: {scenario.description}"))
    measured_table, measured, measured_notes, measured_text = _measured_sharding(ctx.config.quick)
    if measured_table is not None:
        tables.append(measured_table)
    llama = scenarios[0].plans()
    devices = max(p.num_devices for p in llama)
    shown = [p for p in llama if p.num_devices == devices and p.strategy != "data_parallel"]
    notes = measured_notes + sorted({a for d in data for p in d["plans"] for a in p["assumptions"]})
    section = Section("sharding", "Sharding plans beyond one machine", text=(
        "A planner and cost model, by simulation: each strategy places the tables on N devices; a batch of "
        "ids drawn from the tables' Zipf skew gives each device's lookups, memory traffic and the bytes sent "
        "between devices. Time = the busiest device's traffic / memory bandwidth + its link bytes / network "
        "bandwidth.\n\n" + measured_text),
        figures=[figures.sharding_load(shown)], tables=tables, notes=notes)
    rows_ = next(p for p in shown if p.strategy == "row_wise")
    hashed = next(p for p in shown if p.strategy == "row_wise_hashed")
    lines.append(f"LLaMA-3-8B vocabulary on {devices} devices: contiguous row-wise sharding is "
                 f"{rows_.load_imbalance:.2f}x imbalanced under Zipf; "
                 f"hashing rows brings it to {hashed.load_imbalance:.2f}.")
    if measured.get("measured"):
        row_zipf = next(c for c in measured["measured"] if c["pattern"] == "zipf-1" and c["plan"] == "row")
        lines.append(f"Measured on Ray (4 local actors, Zipf 1.0): row sharding's lookups are "
                     f"{row_zipf['lookup_imbalance']:.2f}x imbalanced as predicted "
                     f"({row_zipf['predicted_imbalance']:.2f}), but deduplicated rows only "
                     f"{row_zipf['row_imbalance']:.2f}x.")
    return section, {"sharding": data, "sharding_measured": measured}, lines


def _saved_study(name: str, path: str, title: str, how: str, headline: str) -> tuple[dict | None, SectionResult]:
    """(the study document saved at ``path``, None) or, when there is none or it cannot be read, (None, a
    section that says so and how to make one)."""
    from ..study.results import last_study  # noqa: PLC0415

    try:
        doc = last_study(name, path)
    except ValueError as e:
        doc, problem = None, f"The saved study could not be read ({e}). "
    else:
        problem = f"No {name} study has been saved on this machine yet. "
    missing = (Section(name, title, text=problem + how), {"path": path, "status": problem.strip()}, [headline])
    return doc, missing


def capacity_section(ctx: Context) -> SectionResult:
    """The last saved capacity study (never trained here: the report keeps its time limit)."""
    from ..study.results import study_path  # noqa: PLC0415
    from ..study.summary import describe, untied_pairs  # noqa: PLC0415

    path = ctx.config.capacity_study or str(study_path("capacity"))
    how = (f"`tinyembed study capacity` trains it (under 30 minutes here; `--quick`, under 2) and saves it to "
           f"{path}, where this section looks.")
    doc, missing = _saved_study("capacity", path, "Vocabulary capacity (IsoFLOPs)", how,
                                "Capacity study: none saved yet; `tinyembed study capacity` makes one "
                                "(the report never trains).")
    if doc is None:
        return missing
    best = [[f"{b['budget']:.2g}", b["best"]["tokenizer"], b["best"]["embedding_dim"],
             f"{b['best']['bits_per_byte']:.3f}", f"{b['best']['total_parameters']:,}"] for b in doc["isoflops"]]
    rows = [[f"{p['budget']:.2g}", p["tokenizer"], p["embedding_dim"], "yes" if p["tied"] else "no",
             f"{p['total_parameters']:,}", _pct(p["embedding_share"]), format_bytes(p["table_bytes_float32"]),
             format_bytes(p["table_bytes_int8"]), f"{p['tokens_per_byte']:.3f}", f"{p['bits_per_byte']:.3f}",
             f"{p['quantized_bits_per_byte'].get('int8', float('nan')):.3f}",
             f"{p['quantized_bits_per_byte'].get('int4', float('nan')):.3f}"]
            for p in sorted(doc["points"], key=lambda p: (p["budget"], not p["tied"], p["vocab_size"],
                                                          p["embedding_dim"]))]
    section = Section("capacity", "Vocabulary capacity (IsoFLOPs)", text=(
        f"From the capacity study saved at {path}: {doc['date']}, `{doc['command']}`, on "
        f"{doc['machine'].get('cpu_model', 'an unknown CPU')}. The tied-output window LM was trained for a fixed "
        f"number of FLOPs at each vocabulary and width, on the {doc['corpus']['name']} corpus with one article in "
        f"{doc['corpus']['held_out_every']} held out (never seen by training or by the BPE trainer), and scored in "
        f"bits per byte of the held-out text, which does not depend on the tokenizer.\n\n{describe(doc)}\n\n{how}"),
        figures=[figures.capacity_by_vocabulary(doc), figures.capacity_by_parameters(doc),
                 figures.capacity_by_table_bytes(doc)],
        tables=[Table(["budget (FLOPs)", "best tokenizer", "D", "bits/byte", "parameters"], best,
                      caption="The IsoFLOPs optimum of each budget."),
                Table(["budget (FLOPs)", "tokenizer", "D", "tied", "parameters", "embedding share", "table f32",
                       "table int8", "tokens/byte", "bits/byte", "int8 bits/byte", "int4 bits/byte"], rows,
                      caption="Every run; int8 / int4: the trained vocabulary tables stored as FBGEMM's rows.")])
    data = {"path": path, "date": doc["date"], "command": doc["command"], "finding": doc["finding"],
            "isoflops": [{"budget": b["budget"], "best": b["best"]} for b in doc["isoflops"]],
            "step_throughput": doc["step_throughput"], "points": len(doc["points"])}
    if untied_pairs(doc):
        data["untied"] = [{"tied": t, "untied": u} for t, u in untied_pairs(doc)]
    top = doc["isoflops"][-1]["best"]
    return section, data, [f"Capacity study: at the largest budget {top['tokenizer']} at width {top['embedding_dim']} "
                           f"scores {top['bits_per_byte']:.3f} bits per byte of held-out text; {doc['trend']}."]


def decode_section(ctx: Context) -> SectionResult:
    """The last saved decode study (never measured here: the report keeps its time limit)."""
    from ..study.results import study_path  # noqa: PLC0415
    from ..study.summary import decode_largest, decode_tables, describe_decode  # noqa: PLC0415

    path = ctx.config.decode_study or str(study_path("decode"))
    how = (f"`tinyembed study decode` measures it (`--quick`, under a minute) and saves it to {path}, where this "
           f"section looks.")
    doc, missing = _saved_study("decode", path, "Decode cost of the output projection", how,
                                "Decode study: none saved yet; `tinyembed study decode` makes one "
                                "(the report never measures it).")
    if doc is None:
        return missing
    largest = decode_largest(doc)
    section = Section("decode", "Decode cost of the output projection", text=(
        f"From the decode study saved at {path}: {doc['date']}, `{doc['command']}`, on "
        f"{doc['machine'].get('cpu_model', 'an unknown CPU')}. Generating a token ends with its scores against "
        f"every row of the output projection (`attend`, batch 1): each of the V x D values is read once per token, "
        f"so the time is the table's bytes over the bandwidth the kernel reaches. Random N(0, 0.02²) tables of "
        f"each size and storage were timed on {doc['threads']} thread{'s' if doc['threads'] > 1 else ''}, the "
        f"storages of one shape taking turns; the published models' heads are judged at those rates.\n\n"
        f"{describe_decode(doc)}\n\n{how}"),
        figures=[figures.decode_seconds_per_token(doc), figures.decode_bandwidth(doc)],
        tables=[Table(columns, rows, caption=caption) for caption, columns, rows in decode_tables(doc)])
    slow, fast = (f(largest.values(), key=lambda p: p["seconds_per_token"]) for f in (max, min))
    data = {"path": path, "date": doc["date"], "command": doc["command"], "copy_gbps": doc["copy_gbps"],
            "largest": largest, "ms_per_token": {s: p["seconds_per_token"] * 1e3 for s, p in largest.items()},
            "models": doc["models"], "rows_ever_predicted": doc["rows_ever_predicted"], "coverage": doc["coverage"],
            "points": len(doc["points"])}
    return section, data, [f"Decode study: one token's output projection at V={slow['vocab_size']}, "
                           f"D={slow['embedding_dim']} takes {slow['seconds_per_token'] * 1e3:.2f} ms in "
                           f"{slow['storage']} and {fast['seconds_per_token'] * 1e3:.2f} ms in {fast['storage']} "
                           f"({fast['gb_per_s']:.1f} GB/s)."]


# In page order. Each: (title for the progress bar, function).
SECTIONS: list[tuple[str, Callable[[Context], SectionResult]]] = [
    ("machine", machine_section),
    ("throughput", throughput_section),
    ("access patterns", patterns_section),
    ("caches", caches_section),
    ("row caches", row_cache_section),
    ("memory", memory_section),
    ("positional", positional_section),
    ("compression", compression_section),
    ("sharding", sharding_section),
    ("capacity", capacity_section),
    ("decode", decode_section),
]
