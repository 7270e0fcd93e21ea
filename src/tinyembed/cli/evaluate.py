"""``tinyembed evaluate VECTORS``: word similarity, analogies and neighbours of word vectors.

VECTORS is a word2vec text file (ours, gensim's ``save_word2vec_format``, the C
tool's) or a safetensors file written by ``WordVectors.save``; which one is told
by the file's first bytes. The benchmarks come from gensim's wheel (downloaded
once into the tinyembed cache). See ``tinyembed.vectors.evaluate`` for what is measured.

Examples:
    tinyembed evaluate vectors.txt
    tinyembed evaluate vectors.safetensors --restrict-vocab 100000 --json
    tinyembed evaluate vectors.txt --most-similar king paris --topn 5
"""

from __future__ import annotations

import argparse
import json
import sys

from .args import positive_int

HELP = "word similarity (WordSim-353, SimLex-999), analogies and neighbours of word vectors"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("vectors", metavar="VECTORS",
                        help="a word2vec text file or a tinyembed safetensors vectors file")
    parser.add_argument("--restrict-vocab", type=positive_int, default=30000, metavar="N",
                        help="analogies use the N most frequent words, i.e. the first N "
                             "(default: %(default)s)")
    parser.add_argument("--limit", type=positive_int, metavar="N",
                        help="read only the first N vectors of the file")
    parser.add_argument("--most-similar", nargs="+", action="extend", metavar="WORD",
                        help="words whose nearest neighbours to list "
                             "(default: king computer university france good water)")
    parser.add_argument("--topn", type=positive_int, default=10, metavar="K",
                        help="neighbours listed per word (default: %(default)s)")
    parser.add_argument("--json", action="store_true",
                        help="print JSON for programs instead of tables")


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ..vectors import load_vectors
    from ..vectors.evaluate import evaluate, format_report

    try:
        vectors = load_vectors(args.vectors, limit=args.limit)
    except (OSError, ValueError) as e:
        parser.error(f"cannot read word vectors from {args.vectors!r}: {e}")
    # The benchmarks come from gensim's wheel: a failed download exits 1, one line (tinyembed.cli.main).
    report = evaluate(vectors, restrict_vocab=args.restrict_vocab, query_words=args.most_similar, topn=args.topn)
    for warning in report.warnings:  # on stderr too, where a pipe of the JSON would not hide it
        print(f"warning: {warning}", file=sys.stderr)
    print(json.dumps(report.to_dict(), indent=2) if args.json else format_report(report))
    return 0
