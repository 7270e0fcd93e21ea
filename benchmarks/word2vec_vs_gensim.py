"""tinyembed's skip-gram against gensim's Word2Vec, side by side on the same text.

A benchmark, not a test: it trains both with the same settings on the same prepared
corpus, given to both as the same lists of words, scores both with
:mod:`tinyembed.vectors.evaluate` (WordSim-353, SimLex-999, the Google analogies) and times
their training. gensim's own ``evaluate_word_pairs`` scores gensim's vectors too,
as a cross-check of our evaluation.

gensim is needed here only (it is never a dependency of tinyembed); the Wikipedia
text needs the ``text`` extra, and our speed the ``fast`` one (numba)::

    pip install -e '.[text,fast]' gensim==4.4.0
    python benchmarks/word2vec_vs_gensim.py                    # one seed each
    python benchmarks/word2vec_vs_gensim.py --seeds 3 --out w2v.json

Settings (the issue's): skip-gram with negative sampling, dim 100, window 5, 5
negatives, 15 epochs, min_count 5, sample 1e-3, alpha 0.025 -> 0.0001, the same
threads for both (``--threads``, default 2: gensim's workers, tinyembed's kernel
threads). Corpus: Wikipedia (106 articles) then Lee, one sentence a line,
tokenized by :func:`tinyembed.train.vocab.tokenize_lines`.

Seeds run interleaved (gensim, tinyembed, next seed) so that a busy machine slows
both alike. Training time is the training alone (gensim's ``train``, our epochs),
not tokenization or counting the vocabulary; words/s is corpus words (in the
vocabulary, before subsampling) times epochs over that time, for both.

Targets: our WordSim-353 Spearman within 0.02 of gensim's, and our training time at
most gensim's (with numba, tinyembed trains by word2vec's per-pair loop,
:mod:`tinyembed.kernels.sgns`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import numpy as np

from tinyembed.kernels import jit
from tinyembed.text.corpus import corpus_text
from tinyembed.train.skipgram import SkipGramConfig, train_skipgram
from tinyembed.train.vocab import tokenize_lines
from tinyembed.vectors import WordVectors
from tinyembed.vectors.evaluate import evaluate

WS_TARGET = 0.02
TIME_TARGET = 1.0


def _scores(vectors: WordVectors) -> dict:
    report = evaluate(vectors, query_words=["king", "france", "university", "war"], topn=5)
    ws, simlex = report.word_pairs
    a = report.analogies
    return {"wordsim353": ws.spearman, "wordsim353_pairs": ws.pairs_used, "wordsim353_oov": ws.oov_pairs,
            "simlex999": simlex.spearman, "simlex999_pairs": simlex.pairs_used, "simlex999_oov": simlex.oov_pairs,
            "analogy": a.accuracy, "analogy_answered": a.total, "analogy_skipped": a.skipped,
            "neighbours": {n.word: [w for w, _ in n.neighbours] for n in report.neighbours}}


def run_gensim(sentences, args, seed: int) -> dict:
    try:
        from gensim.models import Word2Vec
        from gensim.test.utils import datapath
    except ImportError:
        sys.exit("this benchmark needs gensim: pip install gensim==4.4.0")
    model = Word2Vec(sg=1, hs=0, negative=args.negative, vector_size=args.dim, window=args.window,
                     epochs=args.epochs, min_count=args.min_count, sample=1e-3, alpha=0.025,
                     min_alpha=0.0001, workers=args.threads, seed=seed)
    model.build_vocab(sentences)
    start = time.perf_counter()
    model.train(sentences, total_examples=model.corpus_count, epochs=model.epochs)
    seconds = time.perf_counter() - start
    wv = model.wv
    counts = np.array([wv.get_vecattr(w, "count") for w in wv.index_to_key], dtype=np.int64)
    vectors = WordVectors(wv.index_to_key, wv.vectors, counts=counts)
    own = wv.evaluate_word_pairs(datapath("wordsim353.tsv"))[1].statistic
    return {"seed": seed, "seconds": seconds, "words_per_second": args.epochs * int(counts.sum()) / seconds,
            "vocab": len(vectors), "gensim_own_wordsim353": float(own), **_scores(vectors)}


def run_tinyembed(sentences, args, seed: int) -> dict:
    config = SkipGramConfig(dim=args.dim, window=args.window, negative=args.negative, epochs=args.epochs,
                            min_count=args.min_count, batch_size=args.batch_size, seed=seed,
                            threads=args.threads)
    result = train_skipgram(sentences, config, show_progress=not args.quiet)
    return {"seed": seed, "seconds": result.seconds, "words_per_second": result.words_per_second,
            "vocab": len(result.vocab), "losses": result.losses, **_scores(result.vectors)}


def _mean_sd(runs: list[dict], key: str) -> tuple[float, float]:
    values = [r[key] for r in runs if r[key] is not None]
    if not values:
        return float("nan"), float("nan")
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def _cell(runs, key, spec) -> str:
    mean, sd = _mean_sd(runs, key)
    return f"{mean:{spec}}" + (f" ± {sd:{spec}}" if len(runs) > 1 else "")


def table(results: dict) -> str:
    rows = [("WordSim-353 Spearman", "wordsim353", ".3f"), ("SimLex-999 Spearman", "simlex999", ".3f"),
            ("analogy accuracy", "analogy", ".3f"), ("training seconds", "seconds", ".1f"),
            ("words/s", "words_per_second", ",.0f")]
    g, t = results["gensim"], results["tinyembed"]
    lines = [f"| {'':<22} | {'gensim 4.4.0':>18} | {'tinyembed':>18} |", f"|{'-' * 24}|{'-' * 19}:|{'-' * 19}:|"]
    for name, key, spec in rows:
        lines.append(f"| {name:<22} | {_cell(g, key, spec):>18} | {_cell(t, key, spec):>18} |")
    first_g, first_t = g[0], t[0]
    lines.append(f"| {'pairs used (WS / SL)':<22} | {first_g['wordsim353_pairs']:>8} / {first_g['simlex999_pairs']:<7}"
                 f" | {first_t['wordsim353_pairs']:>8} / {first_t['simlex999_pairs']:<7} |")
    answered = (first_g["analogy_answered"], first_t["analogy_answered"])
    lines.append(f"| {'analogies answered':<22} | {answered[0]:>18} | {answered[1]:>18} |")
    lines.append(f"| {'vocabulary':<22} | {first_g['vocab']:>18} | {first_t['vocab']:>18} |")
    return "\n".join(lines)


def verdict(results: dict) -> list[str]:
    ws_g, _ = _mean_sd(results["gensim"], "wordsim353")
    ws_t, _ = _mean_sd(results["tinyembed"], "wordsim353")
    sec_g, _ = _mean_sd(results["gensim"], "seconds")
    sec_t, _ = _mean_sd(results["tinyembed"], "seconds")
    gap, ratio = ws_t - ws_g, sec_t / sec_g
    results["summary"] = {"wordsim353_gap": gap, "time_ratio": ratio,
                          "wordsim353_target_met": abs(gap) <= WS_TARGET, "time_target_met": ratio <= TIME_TARGET}
    return [f"WordSim-353: tinyembed - gensim = {gap:+.3f} (target within ±{WS_TARGET}): "
            f"{'met' if abs(gap) <= WS_TARGET else 'MISSED'}",
            f"training time: tinyembed / gensim = {ratio:.2f}x (target <= {TIME_TARGET:g}x): "
            f"{'met' if ratio <= TIME_TARGET else 'MISSED'}"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=1, help="seeds per system (default: 1)")
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--corpus", action="append", help="corpus names or files (default: wikipedia, lee)")
    parser.add_argument("--dim", type=int, default=100)
    parser.add_argument("--window", type=int, default=5)
    parser.add_argument("--negative", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--min-count", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2, help="gensim's workers and our kernel threads")
    parser.add_argument("--batch-size", type=int, default=SkipGramConfig.batch_size, help="tinyembed's pairs per step")
    parser.add_argument("--only", choices=["gensim", "tinyembed"], help="run one system only")
    parser.add_argument("--out", help="write the results as JSON here")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)

    names = args.corpus or ["wikipedia", "lee"]
    text = "".join(t if t.endswith("\n") else t + "\n" for t in map(corpus_text, names))
    sentences = tokenize_lines(text)
    words = sum(map(len, sentences))
    print(f"corpus {' + '.join(names)}: {len(sentences):,} sentences, {words:,} words; "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; compiled kernels (numba) "
          f"{'on' if jit.available() else 'off: pip install tinyembed[fast], ~2.5x faster'}", flush=True)

    results = {"settings": {**vars(args), "corpus": names, "sentences": len(sentences), "words": words},
               "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "numba": jit.available(),
                           "numpy": np.__version__, "load_average_start": os.getloadavg()},
               "gensim": [], "tinyembed": []}
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        for name, run in (("gensim", run_gensim), ("tinyembed", run_tinyembed)):
            if args.only and name != args.only:
                continue
            r = run(sentences, args, seed)
            results[name].append(r)
            print(f"seed {seed} {name:<9}: WordSim-353 {r['wordsim353']:.3f}, SimLex-999 {r['simlex999']:.3f}, "
                  f"analogies {r['analogy']:.3f}, {r['seconds']:.1f} s ({r['words_per_second']:,.0f} words/s), "
                  f"load average {os.getloadavg()[0]:.2f}", flush=True)
    results["machine"]["load_average_end"] = os.getloadavg()
    if results["gensim"]:
        results["machine"]["gensim_version"] = __import__("gensim").__version__
        own = [r["gensim_own_wordsim353"] - r["wordsim353"] for r in results["gensim"]]
        print(f"cross-check: gensim's evaluate_word_pairs minus ours on gensim's vectors: "
              f"{max(own, key=abs):+.2e}")
    if results["gensim"] and results["tinyembed"]:
        print()
        print(table(results))
        print()
        print("\n".join(verdict(results)))
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
