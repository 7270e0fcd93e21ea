"""``tinyembed memory``: parameters and memory of embedding tables, published or custom models.

Examples:
    tinyembed memory
    tinyembed memory --model gpt2 --model llama3-8b --json
    tinyembed memory --vocab 65536 --dim 1024 --context 2048 --positional learned
"""

from __future__ import annotations

import argparse
import json

from ..plan.memory import DISTRIBUTIONS, embedding_memory, format_table
from ..plan.models import MODELS, ModelConfig
from .args import positive_float, positive_int

HELP = "parameters and memory of embedding tables for published or custom models"

# Flags that describe a custom config and mean nothing without --vocab/--dim.
_CUSTOM_ONLY_FLAGS = {
    "context": "--context",
    "tied": "--tied/--untied",
    "positional": "--positional",
    "total_params": "--total-params",
    "name": "--name",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    known = ", ".join(MODELS)
    models = parser.add_argument_group("models")
    models.add_argument(
        "--model",
        action="append",
        choices=list(MODELS),
        metavar="NAME",
        help=f"a published config, repeatable (default: all unless --vocab/--dim is given). "
        f"Known: {known}",
    )

    custom = parser.add_argument_group(
        "custom config", "describe your own model; --vocab and --dim go together"
    )
    custom.add_argument("--vocab", type=positive_int, metavar="V", help="vocabulary size (rows)")
    custom.add_argument("--dim", type=positive_int, metavar="D", help="hidden size (row width)")
    custom.add_argument(
        "--context", type=positive_int, metavar="N", help="context length in tokens"
    )
    tying = custom.add_mutually_exclusive_group()
    tying.add_argument(
        "--tied",
        dest="tied",
        action="store_const",
        const=True,
        help="the output head reuses the token table (counted once)",
    )
    tying.add_argument(
        "--untied",
        dest="tied",
        action="store_const",
        const=False,
        help="the output head is a separate V x D table (default)",
    )
    custom.add_argument(
        "--positional",
        choices=["learned", "none"],
        help="position embeddings: a learned table of context x D (needs --context) "
        "or none (default)",
    )
    custom.add_argument(
        "--total-params",
        type=positive_int,
        metavar="N",
        help="all parameters of the model; without it the embedding share is reported unknown",
    )
    custom.add_argument("--name", help="name shown for the custom config (default: custom)")

    batch = parser.add_argument_group("batch assumption (for sparse updates)")
    batch.add_argument(
        "--batch-tokens",
        type=positive_int,
        default=16384,
        metavar="N",
        help="tokens per training batch (default: %(default)s)",
    )
    batch.add_argument(
        "--distribution",
        choices=list(DISTRIBUTIONS),
        default="zipf",
        help="how tokens are drawn from the vocabulary (default: %(default)s)",
    )
    batch.add_argument(
        "--zipf-alpha",
        type=positive_float,
        default=1.0,
        metavar="A",
        help="Zipf exponent: rank i is drawn with probability proportional to 1/i^A "
        "(default: %(default)s)",
    )

    parser.add_argument(
        "--json", action="store_true", help="print a JSON list of reports instead of a table"
    )


def _custom_config(args: argparse.Namespace, parser: argparse.ArgumentParser) -> ModelConfig | None:
    """The custom config described by the flags, or None if there is none."""
    if (args.vocab is None) != (args.dim is None):
        given, missing = ("--vocab", "--dim") if args.dim is None else ("--dim", "--vocab")
        parser.error(f"{given} needs {missing}: a custom config needs both --vocab and --dim")
    if args.vocab is None:
        stray = [flag for dest, flag in _CUSTOM_ONLY_FLAGS.items() if getattr(args, dest) is not None]
        if stray:
            parser.error(f"{', '.join(stray)} describe a custom config and need --vocab and --dim")
        return None
    if args.positional == "learned" and args.context is None:
        parser.error("--positional learned needs --context: a learned table has one row per position")
    try:
        return ModelConfig(
            name=args.name or "custom",
            vocab_size=args.vocab,
            hidden_size=args.dim,
            context_length=args.context,
            tied=bool(args.tied),
            positional=args.positional or "none",
            total_params=args.total_params,
            source="command line",
        )
    except ValueError as error:
        parser.error(str(error))
        raise  # unreachable: parser.error exits


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    custom = _custom_config(args, parser)
    names = args.model
    if names is None:
        # No --model: all published configs, unless the user asked only about their own.
        names = [] if custom is not None else list(MODELS)
    configs = [MODELS[name] for name in dict.fromkeys(names)]  # dedupe, keep order
    if custom is not None:
        configs.append(custom)

    reports = [
        embedding_memory(
            config,
            batch_tokens=args.batch_tokens,
            distribution=args.distribution,
            zipf_alpha=args.zipf_alpha,
        )
        for config in configs
    ]
    if args.json:
        print(json.dumps([report.to_dict() for report in reports], indent=2))
    else:
        print(format_table(reports))
    return 0
