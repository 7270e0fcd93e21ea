"""``tinyembed train lm``: a small language model on a real corpus, loss and perplexity per epoch.

Examples:
    tinyembed train lm --corpus lee --tokenizer bpe --out lm
    tinyembed train lm --corpus my.txt --tokenizer byte --epochs 3 --json
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields

from .args import positive_float, positive_int

HELP = "train a small language model (EmbeddingLayer, one hidden layer, tied output) on a corpus"


def add_lm_arguments(parser: argparse.ArgumentParser) -> None:
    from ..train.lm import LMConfig  # noqa: PLC0415

    d = {f.name: f.default for f in fields(LMConfig) if f.name != "vocab_size"}
    parser.add_argument("--corpus", default="lee", metavar="NAME_OR_FILE",
                        help="a prepared corpus (lee, wikipedia) or any UTF-8 text file (default: lee)")
    parser.add_argument("--tokenizer", default="bpe", metavar="KIND_OR_FILE",
                        help="'byte', 'bpe' (trained on the corpus), or a saved tokenizer JSON (default: bpe)")
    parser.add_argument("--vocab-size", type=positive_int, default=4000, metavar="N",
                        help="ids of the BPE vocabulary trained with --tokenizer bpe (default: 4000)")
    parser.add_argument("--context", type=positive_int, default=d["context"], metavar="K",
                        help=f"tokens seen before each predicted one (default: {d['context']})")
    parser.add_argument("--dim", type=positive_int, default=d["dim"], metavar="D",
                        help=f"embedding width (default: {d['dim']})")
    parser.add_argument("--hidden", type=positive_int, default=d["hidden"], metavar="H",
                        help=f"hidden layer width (default: {d['hidden']})")
    parser.add_argument("--epochs", type=positive_int, default=d["epochs"], metavar="N",
                        help=f"passes over the training lines (default: {d['epochs']})")
    parser.add_argument("--batch-size", type=positive_int, default=d["batch_size"], metavar="B",
                        help=f"tokens per step (default: {d['batch_size']})")
    parser.add_argument("--lr", type=positive_float, default=d["lr"], help=f"AdamW learning rate (default: {d['lr']})")
    parser.add_argument("--seed", type=int, default=d["seed"], help="seeds the weights and the batch order")
    parser.add_argument("--out", metavar="DIR", required=True,
                        help="writes checkpoint.safetensors (weights, config, tokenizer) and train.json")
    parser.add_argument("--force", action="store_true", help="replace --out if it exists")
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no line per epoch")
    parser.add_argument("--json", action="store_true", help="print the per-epoch history as JSON")


def _tokenizer(args, text: str, parser):
    from ..text.tokenizers import BPETokenizer, ByteTokenizer, load_tokenizer  # noqa: PLC0415

    specials = {"pad": "<pad>", "unk": "<unk>"}
    if args.tokenizer == "byte":
        return ByteTokenizer(specials=specials)
    if args.tokenizer == "bpe":
        try:
            tokenizer = BPETokenizer.train(text, args.vocab_size, specials=specials)
        except ValueError as e:  # a vocabulary too small for the bytes and the special tokens
            parser.error(f"--vocab-size {args.vocab_size}: {e}")
        if tokenizer.vocab_size < args.vocab_size:
            print(f"note: --vocab-size {args.vocab_size} asked for more ids than this corpus supports: no pair of "
                  f"tokens occurs often enough for another merge after {tokenizer.vocab_size} ids; training "
                  f"with {tokenizer.vocab_size}", file=sys.stderr)
        return tokenizer
    try:
        return load_tokenizer(args.tokenizer)
    except (OSError, ValueError) as e:
        parser.error(f"--tokenizer {args.tokenizer!r} is neither 'byte', 'bpe' nor a readable tokenizer file: {e}")


def run_lm(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ..checks import check_memory  # noqa: PLC0415
    from ..io.files import atomic_directory, check_destination  # noqa: PLC0415
    from ..text.corpus import corpus_text  # noqa: PLC0415
    from ..train.lm import LMConfig, best_epoch, save_checkpoint, train_lm, training_bytes  # noqa: PLC0415

    # Everything that can fail cheaply fails first: the destination, the settings, the memory.
    out = check_destination(args.out, directory=True, replace=args.force, what="--out")
    settings = dict(context=args.context, dim=args.dim, hidden=args.hidden, epochs=args.epochs,
                    batch_size=args.batch_size, lr=args.lr, seed=args.seed)
    try:
        largest = LMConfig(vocab_size=max(args.vocab_size, 512), **settings)  # the most ids a tokenizer gives here
    except ValueError as e:
        parser.error(str(e))
    check_memory(training_bytes(largest), f"a language model with --context {args.context}, --dim {args.dim} "
                                          f"and --hidden {args.hidden}")
    try:
        text = corpus_text(args.corpus)
    except (OSError, ValueError) as e:
        parser.error(f"--corpus {args.corpus!r}: {e}")
    tokenizer = _tokenizer(args, text, parser)
    talk = not (args.json or args.quiet)
    config = LMConfig(vocab_size=tokenizer.vocab_size, **settings)
    try:
        model, history = train_lm(
            text.splitlines(), tokenizer, config, show_progress=talk,
            on_epoch=None if not talk else lambda s: print(
                f"epoch {s.epoch}: train loss {s.train_loss:.3f} (ppl {s.train_perplexity:.1f}), "
                f"val loss {s.val_loss:.3f} (ppl {s.val_perplexity:.1f}), {s.tokens_per_s:,.0f} tokens/s"))
    except ValueError as e:  # a corpus too small to train and validate on
        parser.error(str(e))
    best = best_epoch(history)
    summary = {"corpus": args.corpus, "tokenizer": type(tokenizer).__name__, "vocab_size": tokenizer.vocab_size,
               "parameters": model.num_parameters(), "kept_epoch": best.epoch,
               "history": [s.to_dict() for s in history]}
    with atomic_directory(out, replace=args.force) as staging:
        save_checkpoint(model, tokenizer, staging / "checkpoint.safetensors")
        (staging / "train.json").write_text(json.dumps(summary, indent=1) + "\n")
    if args.json:
        print(json.dumps(summary, indent=1))
    elif not args.quiet:
        print(f"kept epoch {best.epoch} (val loss {best.val_loss:.3f}, the lowest); "
              f"wrote {out / 'checkpoint.safetensors'} and {out / 'train.json'}")
    return 0
