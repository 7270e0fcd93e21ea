"""``tinyembed train``: train embeddings on real text.

Each model is a sub-subcommand: ``tinyembed train skipgram`` (word2vec's skip-gram
with negative sampling, :mod:`tinyembed.train.skipgram`) and ``tinyembed train lm``
(a small language model, :mod:`tinyembed.train.lm`, in :mod:`.train_lm`). Another
model is one more ``add_X_arguments`` / ``run_X`` pair registered in ``_MODELS``.

``--corpus`` takes a corpus name (``wikipedia``, ``lee``: see ``tinyembed data``) or
a UTF-8 text file, one sentence per line; repeat it to train on several, end to end.

Examples:
    tinyembed train skipgram --corpus lee --epochs 5 --out runs/lee
    tinyembed train skipgram --corpus wikipedia --corpus lee --dim 100 --window 5 \\
        --negative 5 --epochs 15 --min-count 5 --threads 2 --out runs/w2v --evaluate
    tinyembed train skipgram --corpus my_text.txt --dim 50 --out runs/mine
    tinyembed train skipgram --corpus lee --shards 4 --out runs/sharded     # Ray on this machine
    tinyembed train skipgram --corpus lee --shards 4 --ray-address 10.0.0.1:6379 --out runs/cluster
"""

from __future__ import annotations

import argparse
import json
import sys

from ..io.files import check_destination
from .args import (
    CommandError,
    Subcommands,
    add_subcommands,
    clamp_threads,
    float_in,
    nonnegative_int,
    positive_int,
    run_subcommand,
)
from .train_lm import HELP as LM_HELP
from .train_lm import add_lm_arguments, run_lm

HELP = "train embeddings on real text: skip-gram word vectors, or a small language model"


# ---------------------------------------------------------------------------
# tinyembed train skipgram
# ---------------------------------------------------------------------------

SKIPGRAM_HELP = "word2vec's skip-gram with negative sampling: word vectors from plain text"


def add_skipgram_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``tinyembed train skipgram``; defaults are word2vec's and gensim's."""
    from ..train.skipgram import SkipGramConfig  # noqa: PLC0415

    d = SkipGramConfig()
    data = parser.add_argument_group("data")
    data.add_argument("--corpus", action="append", required=True, metavar="NAME_OR_FILE",
                      help="a corpus name (wikipedia, lee) or a UTF-8 text file, one sentence a "
                           "line; repeat to train on several")
    data.add_argument("--min-count", type=positive_int, default=d.min_count, metavar="N",
                      help="drop words seen fewer than N times (default: %(default)s)")
    data.add_argument("--sample", type=float_in(0.0, 1.0), default=d.sample, metavar="T",
                      help="subsampling threshold of frequent words, 0 = off (default: %(default)s)")
    model = parser.add_argument_group("model")
    model.add_argument("--dim", type=positive_int, default=d.dim, metavar="D",
                       help="vector size (default: %(default)s)")
    model.add_argument("--window", type=positive_int, default=d.window, metavar="W",
                       help="largest distance of a context word (default: %(default)s)")
    model.add_argument("--negative", type=positive_int, default=d.negative, metavar="K",
                       help="noise words per pair (default: %(default)s)")
    optim = parser.add_argument_group("optimization")
    optim.add_argument("--epochs", type=positive_int, default=d.epochs, metavar="N",
                       help="passes over the corpus (default: %(default)s)")
    optim.add_argument("--batch-size", type=positive_int, default=d.batch_size, metavar="B",
                       help="pairs per step (default: %(default)s)")
    optim.add_argument("--optimizer", choices=["sgd", "sparse_adam"], default=d.optimizer,
                       help="sgd is word2vec's rule (default: %(default)s)")
    optim.add_argument("--alpha", type=float_in(0.0, float("inf")), default=d.alpha, metavar="LR",
                       help="learning rate at the start, decaying linearly (default: %(default)s)")
    optim.add_argument("--min-alpha", type=float_in(0.0, float("inf")), default=d.min_alpha, metavar="LR",
                       help="learning rate at the end (default: %(default)s)")
    optim.add_argument("--seed", type=nonnegative_int, default=d.seed,
                       help="seed of every random draw; the same seed gives the same vectors "
                            "(default: %(default)s)")
    optim.add_argument("--threads", type=positive_int, metavar="N",
                       help="threads of the kernels (default: every core)")
    shards = parser.add_argument_group("sharding (needs Ray: pip install 'tinyembed[distributed]')")
    shards.add_argument("--shards", type=positive_int, metavar="N",
                        help="train with both tables sharded over N Ray actors, in batches through autograd; the "
                             "vectors equal an unsharded batched run's (default: one process, no Ray)")
    shards.add_argument("--shard-plan", choices=["row", "hashed-row", "column", "table", "data-parallel"],
                        default="row", help="how the sharding planner places the tables (default: %(default)s)")
    shards.add_argument("--ray-address", metavar="HOST:PORT",
                        help="join this Ray cluster (from `ray start --head`) instead of starting Ray here")
    output = parser.add_argument_group("output")
    output.add_argument("--out", required=True, metavar="DIR",
                        help="folder for vectors.safetensors, vectors.txt (word2vec text format), "
                             "vocab.json and train.json")
    output.add_argument("--evaluate", action="store_true",
                        help="then score the vectors on WordSim-353, SimLex-999 and the analogies")
    output.add_argument("--force", action="store_true", help="replace --out if it exists")
    output.add_argument("--quiet", action="store_true", help="no progress bar")
    output.add_argument("--json", action="store_true", help="print train.json (and the evaluation) as JSON")


def _read_corpora(names, parser) -> tuple[str, str]:
    """The corpora's text end to end, and how to name them in messages."""
    from ..text.corpus import corpus_text  # noqa: PLC0415

    texts = []
    for name in names:
        try:
            texts.append(corpus_text(name))
        except (OSError, ValueError) as e:
            parser.error(f"--corpus {name!r}: {e}")
    # A corpus not ending in a newline would otherwise run its last line into the next's first.
    text = "".join(t if t.endswith("\n") else t + "\n" for t in texts)
    return text, " + ".join(repr(n) for n in names)


def run_skipgram(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ..train.skipgram import SkipGramConfig, train_skipgram, write_outputs  # noqa: PLC0415

    if args.min_alpha > args.alpha:
        parser.error(f"--min-alpha {args.min_alpha} must not exceed --alpha {args.alpha}")
    if args.shards is None and (args.ray_address is not None or args.shard_plan != "row"):
        parser.error("--ray-address and --shard-plan place the shards: give --shards N too")
    out = check_destination(args.out, directory=True, replace=args.force, what="--out")  # before minutes of training
    try:
        config = SkipGramConfig(dim=args.dim, window=args.window, negative=args.negative, epochs=args.epochs,
                                min_count=args.min_count, sample=args.sample, alpha=args.alpha,
                                min_alpha=args.min_alpha, batch_size=args.batch_size,
                                optimizer=args.optimizer, seed=args.seed, threads=clamp_threads(args.threads))
    except ValueError as e:
        parser.error(str(e))
    sharding = None
    if args.shards is not None:
        from ..distributed.runtime import require_ray  # noqa: PLC0415
        from ..train.skipgram import ShardingConfig  # noqa: PLC0415

        try:
            require_ray()  # before minutes of reading and counting
        except ImportError as e:
            raise CommandError(str(e)) from None
        sharding = ShardingConfig(args.shards, args.shard_plan, args.ray_address)
    text, source = _read_corpora(args.corpus, parser)
    try:
        result = train_skipgram(text, config, source=f"corpus {source}", show_progress=not args.quiet,
                                sharding=sharding)
    except ValueError as e:  # a corpus with too few words to train on
        parser.error(str(e))
    except (RuntimeError, ConnectionError) as e:  # a shard lost, Ray unreachable: named, one line
        raise CommandError(f"sharded training failed: {e}") from None
    paths = write_outputs(result, out, replace=args.force)
    report = None
    if args.evaluate:
        from ..io.assets import AssetError  # noqa: PLC0415
        from ..vectors.evaluate import evaluate, format_report  # noqa: PLC0415

        try:
            report = evaluate(result.vectors)
        except AssetError as e:  # the benchmarks come from gensim's wheel: pip must reach PyPI
            raise CommandError(f"the vectors are in {out}, but the benchmarks could not be fetched to "
                               f"evaluate them: {e}") from None
    if args.json:
        payload = result.to_dict() | {"files": {k: str(p) for k, p in paths.items()}}
        if report is not None:
            payload["evaluation"] = report.to_dict()
        print(json.dumps(payload, indent=1))
        return 0
    print(f"trained {len(result.vocab)} words x {config.dim} on {source}: "
          f"{result.vocab.kept_words:,} words a pass, {config.epochs} epochs, loss "
          f"{result.losses[0]:.4f} -> {result.losses[-1]:.4f}, {result.seconds:.1f} s "
          f"({result.words_per_second:,.0f} words/s, {result.threads} threads)")
    if sharding is not None:
        where = f"the Ray cluster at {sharding.address}" if sharding.address else "a local Ray instance"
        print(f"  both tables sharded over {sharding.num_shards} actors ({sharding.plan} plan) on {where}")
    for path in paths.values():
        print(f"  wrote {path}")
    if report is not None:
        print()
        print(format_report(report))
    sys.stdout.flush()
    return 0


# ---------------------------------------------------------------------------
# The models: one (help, add_arguments, run) each. ``tinyembed train lm`` goes here.
# ---------------------------------------------------------------------------

_MODELS: Subcommands = {
    "skipgram": (SKIPGRAM_HELP, add_skipgram_arguments, run_skipgram),
    "lm": (LM_HELP, add_lm_arguments, run_lm),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_subcommands(parser, _MODELS, dest="model", metavar="MODEL")


run = run_subcommand
