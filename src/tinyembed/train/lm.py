"""A small language model on tinyembed's layers: does the embedding layer learn?

The model predicts each token from the ``context`` tokens before it (Bengio et
al., 2003, with today's parts)::

    ids (B, k) -> EmbeddingLayer: tokens + learned positions   (B, k, D)
               -> flatten -> Linear -> GELU (tanh form)         (B, H)
               -> Linear -> LayerNorm -> / sqrt(D)               (B, D)
               -> tokens.attend: the token table, transposed    (B, V) logits

The output projection is the token table itself (weight tying, Press & Wolf
2017): one V x D matrix reads the input and scores the output. ``tied=False``
gives the model a second V x D table for the output (to measure what tying
saves and costs). The features are scaled by 1/sqrt(D) before the tied product,
as T5 does: the table's rows start as N(0, 1), so unscaled logits would start with a
standard deviation of sqrt(D) and a loss far above log(V) (the capacity study measured
0.1-0.3 bits per byte lost to it at its budgets). Training
reports the training and validation loss and perplexity each epoch; a
checkpoint (safetensors: the weights, the config and the tokenizer) reloads to
bit-identical outputs.

Examples:
    >>> from tinyembed.text.tokenizers import ByteTokenizer
    >>> tok = ByteTokenizer()
    >>> model = WindowLM(LMConfig(vocab_size=tok.vocab_size, context=4, dim=8, hidden=16))
    >>> model(np.zeros((2, 4), dtype=np.int64)).shape
    (2, 260)
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, fields

import numpy as np

from ..checks import check_memory, check_number, check_positive, check_positive_int
from ..io import safetensors
from ..io.progress import progress
from ..nn import Embedding, LayerNorm, Linear, Module
from ..nn import functional as F
from ..optim import AdamW
from ..positional import EmbeddingLayer
from ..tensor import Tensor, no_grad

__all__ = ["LMConfig", "WindowLM", "EpochStats", "Examples", "windows", "training_bytes", "train_lm", "train_step",
           "nll_sum", "evaluate_loss", "best_epoch", "save_checkpoint", "load_checkpoint"]

_METADATA_CONFIG = "tinyembed.lm.config"
_METADATA_TOKENIZER = "tinyembed.lm.tokenizer"


@dataclass
class LMConfig:
    """The model's shape and its training schedule."""

    vocab_size: int
    context: int = 16  # tokens the model sees before the one it predicts
    dim: int = 64
    hidden: int = 256
    dropout: float = 0.0
    seed: int = 0
    epochs: int = 5
    batch_size: int = 256
    lr: float = 3e-3
    weight_decay: float = 0.01
    val_fraction: float = 0.1  # the last lines of the corpus, held out
    tied: bool = True  # the output projection is the token table (False: a second V x D table)
    scale_logits: bool = True  # features / sqrt(D) before the output table (False: checkpoints from before it)

    def __post_init__(self):
        for name in ("vocab_size", "context", "dim", "hidden", "epochs", "batch_size"):
            check_positive_int(getattr(self, name), name)
        check_positive(self.lr, "lr")
        check_number(self.val_fraction, "val_fraction", low=0, high=1, low_open=True, high_open=True)

    @classmethod
    def from_dict(cls, data: dict) -> LMConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown LMConfig fields {unknown}")
        # A config saved before logits were scaled describes a model that never scaled them.
        return cls(**{"scale_logits": False, **data})


class WindowLM(Module):
    """Next-token model over a fixed window; the output projection is the token table.

    Shape:
        forward: ids (B, context) int -> logits (B, vocab_size) float32.
    """

    def __init__(self, config: LMConfig):
        super().__init__()
        self.config = config
        c = config
        self.embed = EmbeddingLayer(c.vocab_size, c.dim, max_len=c.context, positional="learned",
                                    dropout=c.dropout, seed=c.seed)
        self.hidden = Linear(c.context * c.dim, c.hidden, seed=c.seed + 1)
        self.project = Linear(c.hidden, c.dim, seed=c.seed + 2)
        self.norm = LayerNorm(c.dim)
        self.output = None if c.tied else Embedding(c.vocab_size, c.dim, seed=c.seed + 3)

    @property
    def output_table(self) -> Embedding:
        """The V x D table that scores the next token: the token table itself when tied."""
        return self.embed.tokens if self.output is None else self.output

    def forward(self, ids) -> Tensor:
        x = self.embed(ids)                                      # (B, k, D)
        # GPT-2's tanh GELU: the exact form calls math.erfc per element, 10x slower here.
        h = F.gelu(self.hidden(x.reshape(x.shape[0], -1)), approximate="tanh")  # (B, H)
        # (B, V): tied to the token table. The product of attend (h @ weight.T), written as F.linear so
        # that the table's gradient comes back in the table's own row-major layout: through attend's
        # transpose it is column-major, and adding it to the lookup's gradient and Adam's passes over
        # it are then 3-4x slower (measured: 50 ms against 12 for a 16384 x 256 table).
        features = self.norm(self.project(h))  # (B, D)
        if self.config.scale_logits:
            features = features * (1.0 / math.sqrt(self.config.dim))
        return F.linear(features, self.output_table.weight)

    def matrix_shapes(self) -> list[tuple[int, int]]:
        """(out, in) of every matrix a token's features are multiplied by, in forward order:
        the hidden layer, the projection back to D, the output table. Everything else a step does
        (the lookup, GELU, LayerNorm, the softmax) is elementwise, O(1/D) of these products."""
        return [self.hidden.weight.shape, self.project.weight.shape, self.output_table.weight.shape]

    def extra_repr(self) -> str:
        c = self.config
        return f"vocab_size={c.vocab_size}, context={c.context}, dim={c.dim}, hidden={c.hidden}, tied={c.tied}"


@dataclass
class Examples:
    """Every (previous ``context`` tokens, next token) pair of some lines, held as positions in one
    token stream, so that memory grows with the tokens and never with the context.

    The stream is each line after ``context`` pad ids (the first tokens of a line see padding
    where it has no history). Example ``i`` predicts ``stream[targets[i]]`` from the ``context``
    tokens before it; :meth:`batch` gathers the windows of a few examples when they are needed.
    """

    stream: np.ndarray   # (tokens + context * lines,) int64
    targets: np.ndarray  # (n,) int64 positions in stream
    context: int

    @classmethod
    def of_lines(cls, lines: list[np.ndarray], context: int, pad_id: int) -> Examples:
        lines = [np.asarray(line, dtype=np.int64).reshape(-1) for line in lines]
        lines = [line for line in lines if len(line)]
        if not lines:
            raise ValueError("no tokens to train on: the corpus encodes to nothing")
        pad = np.full(context, pad_id, dtype=np.int64)
        stream = np.concatenate([part for line in lines for part in (pad, line)])
        starts = np.cumsum([0] + [context + len(line) for line in lines[:-1]]) + context
        targets = np.concatenate([start + np.arange(len(line)) for start, line in zip(starts, lines, strict=True)])
        return cls(stream, targets.astype(np.int64), context)

    def __len__(self) -> int:
        return len(self.targets)

    def batch(self, index) -> tuple[np.ndarray, np.ndarray]:
        """(inputs (b, context) int64, targets (b,) int64) of the examples at ``index``."""
        at = self.targets[index]
        return self.stream[at[:, None] + np.arange(-self.context, 0)], self.stream[at]


def windows(ids: np.ndarray, context: int, pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Every (previous ``context`` tokens, next token) pair of one token sequence, as arrays.

    Returns:
        inputs (n, context) int64, targets (n,) int64, for a sequence of n tokens.
    """
    examples = Examples.of_lines([ids], context, pad_id)
    return examples.batch(np.arange(len(examples)))


def training_bytes(config: LMConfig) -> int:
    """Estimated peak bytes of training ``config``: the parameters four times over (weights,
    gradients, AdamW's two moments) and one batch's activations (windows, hidden layer, logits)."""
    c = config
    tables = 1 if c.tied else 2
    params = tables * c.vocab_size * c.dim + c.context * c.dim + (c.context * c.dim + 1) * c.hidden \
        + (c.hidden + 1) * c.dim + 2 * c.dim
    activations = c.batch_size * (c.context * (8 + 3 * 4 * c.dim) + 3 * 4 * (c.hidden + c.vocab_size))
    return 4 * 4 * params + activations


@dataclass
class EpochStats:
    epoch: int
    train_loss: float
    val_loss: float
    seconds: float
    tokens_per_s: float

    @property
    def train_perplexity(self) -> float:
        return math.exp(self.train_loss)

    @property
    def val_perplexity(self) -> float:
        return math.exp(self.val_loss)

    def to_dict(self) -> dict:
        return {**asdict(self), "train_perplexity": self.train_perplexity, "val_perplexity": self.val_perplexity}


def nll_sum(model, examples: Examples, batch_size: int = 1024) -> float:
    """Total cross entropy (nats) of ``model`` on every example, in eval mode, summed in float64.

    ``model`` is a :class:`WindowLM` or any callable from ids (b, context) to logits (b, V).
    """
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    total = 0.0
    with no_grad():
        for a in range(0, len(examples), batch_size):
            inputs, targets = examples.batch(np.arange(a, min(a + batch_size, len(examples))))
            logits = model(inputs)
            logits = logits if isinstance(logits, Tensor) else Tensor(np.asarray(logits))
            total += float(F.cross_entropy(logits, targets, reduction="sum").data)
    if hasattr(model, "train"):
        model.train(was_training)
    return total


def evaluate_loss(model: WindowLM, examples: Examples, batch_size: int = 1024) -> float:
    """Mean cross entropy (nats per token) of ``model`` on the examples, in eval mode."""
    return nll_sum(model, examples, batch_size) / len(examples)


def train_step(model: WindowLM, optimizer, inputs: np.ndarray, targets: np.ndarray) -> float:
    """One step on a batch: forward, cross entropy, backward, ``optimizer.step()``; the batch's mean loss.

    The step :func:`train_lm`, ``tinyembed study capacity`` and its throughput measurement all run.
    """
    loss = F.cross_entropy(model(inputs), targets)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return float(loss.data)


def train_lm(lines: list[str], tokenizer, config: LMConfig, show_progress: bool = True,
             on_epoch=None) -> tuple[WindowLM, list[EpochStats]]:
    """Train a :class:`WindowLM` on ``lines`` (one document or paragraph each).

    The last ``val_fraction`` of the lines are held out for validation. Batches are
    shuffled with ``config.seed``: the same seed gives the same model. The model returned
    holds the weights of the epoch with the lowest validation loss (``best_epoch(history)``),
    not necessarily the last.

    Args:
        tokenizer: any :mod:`tinyembed.text.tokenizers` tokenizer; its pad id (or 0)
            fills the history of a line's first tokens.
        on_epoch: called with each :class:`EpochStats` as it is measured.

    Raises:
        MemoryError: the model and a batch would not fit in the memory available
            (:func:`training_bytes`), before anything is allocated.
    """
    if config.vocab_size != tokenizer.vocab_size:
        raise ValueError(f"config.vocab_size is {config.vocab_size}, the tokenizer has {tokenizer.vocab_size}")
    check_memory(training_bytes(config), f"a language model with context {config.context}, dim {config.dim}, "
                                         f"hidden {config.hidden} and {config.vocab_size} ids")
    lines = [line for line in lines if line.strip()]
    if len(lines) < 2:
        raise ValueError(f"the corpus has {len(lines)} non-empty lines: at least 2 are needed "
                         "(one to train on, one to validate)")
    split = min(len(lines) - 1, max(1, int(round(len(lines) * (1 - config.val_fraction)))))
    pad = tokenizer.pad_id if tokenizer.pad_id is not None else 0
    encoded = tokenizer.encode_batch(lines)
    train = Examples.of_lines(encoded[:split], config.context, pad)
    val = Examples.of_lines(encoded[split:], config.context, pad)

    model = WindowLM(config)
    optimizer = AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    rng = np.random.default_rng(config.seed)
    steps = math.ceil(len(train) / config.batch_size)
    history: list[EpochStats] = []
    best: dict[str, np.ndarray] | None = None
    for epoch in range(1, config.epochs + 1):
        start = time.perf_counter()
        order = rng.permutation(len(train))
        model.train()
        total = 0.0
        for k in progress(range(steps), desc=f"epoch {epoch}/{config.epochs}", total=steps,
                          enabled=show_progress):
            inputs, targets = train.batch(order[k * config.batch_size:(k + 1) * config.batch_size])
            total += train_step(model, optimizer, inputs, targets) * len(targets)
        seconds = time.perf_counter() - start
        stats = EpochStats(epoch, total / len(train), evaluate_loss(model, val), seconds, len(train) / seconds)
        history.append(stats)
        if best_epoch(history) is stats:
            best = {name: array.copy() for name, array in model.state_dict().items()}
        if on_epoch is not None:
            on_epoch(stats)
    if best is not None:
        model.load_state_dict(best)  # the epoch that generalised best, as early stopping keeps
    model.eval()
    return model, history


def best_epoch(history: list[EpochStats]) -> EpochStats:
    """The epoch with the lowest validation loss (the first of equals): the one :func:`train_lm` keeps."""
    return min(history, key=lambda s: s.val_loss)


def save_checkpoint(model: WindowLM, tokenizer, path: str | os.PathLike) -> None:
    """The weights, config and tokenizer in one safetensors file, written atomically.

    The tied token table is stored once: it is both the input table and the output projection.
    """
    state = dict(model.state_dict())
    metadata = {_METADATA_CONFIG: json.dumps(asdict(model.config)),
                _METADATA_TOKENIZER: json.dumps(tokenizer.to_dict())}
    safetensors.save(state, path, metadata=metadata)


def load_checkpoint(path: str | os.PathLike):
    """(model in eval mode, tokenizer) from :func:`save_checkpoint`; a damaged file raises ValueError."""
    from ..text.tokenizers import from_dict  # noqa: PLC0415

    try:
        _, metadata = safetensors.read_header(path)
        arrays = safetensors.load(path, copy=True)
    except (OSError, ValueError) as e:
        raise ValueError(f"{os.fspath(path)!r} is not a readable tinyembed language-model checkpoint: {e}") from None
    missing = [k for k in (_METADATA_CONFIG, _METADATA_TOKENIZER) if k not in (metadata or {})]
    if missing:
        raise ValueError(f"{os.fspath(path)!r} is not a tinyembed language-model checkpoint: no {missing[0]} metadata")
    try:
        config = LMConfig.from_dict(json.loads(metadata[_METADATA_CONFIG]))
        tokenizer = from_dict(json.loads(metadata[_METADATA_TOKENIZER]))
    except (TypeError, json.JSONDecodeError) as e:
        raise ValueError(f"{os.fspath(path)!r}: damaged checkpoint metadata: {e}") from None
    model = WindowLM(config)
    try:
        model.load_state_dict(arrays)
    except (KeyError, ValueError) as e:
        raise ValueError(f"{os.fspath(path)!r}: the weights do not fit the stored config: {e}") from None
    return model.eval(), tokenizer
