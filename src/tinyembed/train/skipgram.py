"""Skip-gram with negative sampling (word2vec's SGNS) on tinyembed's embeddings.

The model is word2vec's: two tables, input vectors ``W_in`` (the word vectors kept
at the end) and output vectors ``W_out``, both :class:`tinyembed.nn.Embedding` with
row-sparse gradients. A pair (input word ``i``, output word ``o``) with ``K`` noise
words ``n_1..n_K`` drawn from the unigram^0.75 distribution has the loss::

    loss(i, o) = -log σ(W_out[o] · W_in[i]) - Σ_k log σ(-W_out[n_k] · W_in[i])

Training follows word2vec.c and gensim (sg=1, hs=0), step by step:

1. Each epoch, every occurrence of word ``w`` is kept with probability
   ``keep(w)`` (subsampling, :meth:`Vocabulary.keep_probabilities`); dropped words
   leave the sentence before windows are drawn, so windows reach further.
2. Each kept position ``t`` draws a reduced window ``b_t`` uniform in ``1..window``;
   every position ``s`` of the same sentence with ``0 < |s - t| <= b_t`` gives the
   pair (input ``w_s``, output ``w_t``): as in word2vec.c, the context word's input
   vector predicts the centre word, and noise words are drawn for the centre word.
   A noise word equal to the pair's output word is skipped (word2vec.c skips it too).
3. Pairs are trained in corpus order by SGD with a learning rate that decays linearly
   from ``alpha`` to ``min_alpha`` over the whole run, in one of two ways:

   * word2vec's own loop (:mod:`tinyembed.kernels.sgns`, when numba is installed and the
     optimizer is SGD, :func:`uses_kernel`): one pair at a time, each update applied
     before the next pair is scored, threads on contiguous ranges of the pairs without
     locks, as word2vec.c and gensim do. On one thread the vectors are a function of the
     seed; on several, threads race on shared rows (SGD tolerates it) and runs differ.
   * batches through autograd (SparseAdam, or without numba): ``batch_size`` pairs per
     step, SGD on the *summed* loss, each pair's update computed from the same tables.
     The loss is one autograd op, :func:`negative_sampling_loss`, whose forward and
     backward are written side by side and checked by finite differences in the tests;
     its gradients are :class:`RowSparseGrad` s pooled by :func:`tinyembed.kernels.bag_pool`.
     How large a batch is a trade: with 2048 pairs (the default) the vectors score as
     gensim's do; with 8192 a frequent word's hundreds of summed updates in one step
     overshoot and WordSim-353 ends 0.03 lower. Every kernel adds in a fixed order: the
     same seed gives bit-identical vectors for any number of threads.

Everything random comes from one ``numpy.random.Generator`` seeded by ``seed`` (the
tables' initial values, subsampling, windows, and the noise words or the seeds of the
per-pair loop's generators).

Examples:
    >>> sentences = [["cat", "purrs", "cat", "sleeps"], ["dog", "barks", "dog", "runs"]] * 50
    >>> result = train_skipgram(sentences, SkipGramConfig(dim=8, epochs=2, min_count=1, seed=0),
    ...                         show_progress=False)
    >>> result.vectors.vectors.shape, result.vectors.vectors.dtype
    ((6, 8), dtype('float32'))
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from .. import kernels
from ..checks import (
    check_choice,
    check_nonnegative_int,
    check_number,
    check_positive,
    check_positive_int,
    check_probability,
)
from ..io.files import atomic_directory, write_atomic
from ..io.progress import ProgressBar
from ..kernels import sgns
from ..nn import Embedding, Module
from ..optim import SGD, SparseAdam
from ..sparse import RowSparseGrad
from ..tensor import Tensor
from .vocab import EncodedCorpus, Vocabulary, tokenize_lines

__all__ = ["SkipGram", "SkipGramConfig", "SkipGramResult", "EpochStats", "NoiseSampler", "ShardedSkipGram",
           "ShardingConfig", "negative_sampling_loss", "skipgram_pairs", "subsample", "train_skipgram",
           "write_outputs"]

OPTIMIZERS = ("sgd", "sparse_adam")


# -- configuration --------------------------------------------------------------------------
@dataclass
class SkipGramConfig:
    """Hyper-parameters of skip-gram training; the defaults are word2vec's and gensim's.

    Attributes:
        dim: vector size D.
        window: largest distance between a word and its context (each position draws
            its own reduced window in 1..window).
        negative: noise words K per pair.
        epochs: passes over the corpus.
        min_count: words seen fewer times are dropped.
        sample: subsampling threshold (0 turns subsampling off).
        alpha, min_alpha: learning rate at the start and at the end (linear decay).
        ns_exponent: exponent of the noise distribution ``count ** ns_exponent``.
        batch_size: pairs per step (see the module docstring for why 2048).
        optimizer: 'sgd' (word2vec's rule; ``alpha`` is its learning rate) or
            'sparse_adam' (lazy Adam; try ``alpha`` around 1e-3 to 1e-2).
        seed: seed of every random draw.
        threads: threads for the kernels (None: leave as set).
    """

    dim: int = 100
    window: int = 5
    negative: int = 5
    epochs: int = 5
    min_count: int = 5
    sample: float = 1e-3
    alpha: float = 0.025
    min_alpha: float = 1e-4
    ns_exponent: float = 0.75
    batch_size: int = 2048
    optimizer: str = "sgd"
    seed: int = 1
    threads: int | None = None

    def __post_init__(self):
        for name in ("dim", "window", "negative", "epochs", "min_count", "batch_size"):
            check_positive_int(getattr(self, name), name)
        check_probability(self.sample, "sample", high_open=True)
        check_positive(self.alpha, "alpha")
        check_number(self.min_alpha, f"min_alpha (at most alpha={self.alpha})", low=0, high=self.alpha)
        check_number(self.ns_exponent, "ns_exponent")
        check_choice(self.optimizer, OPTIMIZERS, "optimizer")
        check_nonnegative_int(self.seed, "seed")
        if self.threads is not None:
            check_positive_int(self.threads, "threads")

    def to_dict(self) -> dict:
        return asdict(self)


# -- the loss -------------------------------------------------------------------------------
def _log_sigmoid(x: np.ndarray) -> np.ndarray:
    """log σ(x) = -softplus(-x), without overflow for large |x|."""
    return np.minimum(x, 0) - np.log1p(np.exp(-np.abs(x)))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


def negative_sampling_loss(input_weight: Tensor, output_weight: Tensor, inputs, targets,
                           mask: np.ndarray | None = None) -> Tensor:
    """Summed skip-gram negative-sampling loss of a batch of pairs, with row-sparse gradients.

    Args:
        input_weight: (V, D) input vectors W_in.
        output_weight: (V, D) output vectors W_out, same dtype.
        inputs: (B,) integer ids of the input (context) words.
        targets: (B, 1 + K) integer ids: column 0 the output (centre) word, columns
            1..K its noise words.
        mask: optional (B, 1 + K) bool; False leaves that term out of the loss (a
            noise word equal to the output word).

    Returns:
        Scalar Tensor, ``Σ_b [-log σ(u_{b,0}·v_b) - Σ_k log σ(-u_{b,k}·v_b)]`` over the
        terms kept by ``mask``, where ``v_b = W_in[inputs[b]]`` and ``u_{b,k} = W_out[targets[b, k]]``.
        Its backward gives both tables a :class:`RowSparseGrad` (rows the batch touched).

    Shape:
        inputs (B,), targets (B, 1 + K) -> () of the tables' dtype.
    """
    if not isinstance(input_weight, Tensor) or not isinstance(output_weight, Tensor):
        raise TypeError("input_weight and output_weight must be Tensors (an Embedding's weight)")
    if input_weight.ndim != 2 or input_weight.shape[1:] != output_weight.shape[1:] or output_weight.ndim != 2:
        raise ValueError(f"tables must be (V, D) with the same D, got {input_weight.shape} and {output_weight.shape}")
    if input_weight.dtype != output_weight.dtype:
        raise TypeError(f"tables must share a dtype, got {input_weight.dtype} and {output_weight.dtype}")
    inputs = kernels.check_ids(inputs, input_weight.shape[0], "inputs")
    targets = kernels.check_ids(targets, output_weight.shape[0], "targets")
    if inputs.ndim != 1 or targets.ndim != 2 or len(targets) != len(inputs) or targets.shape[1] < 1:
        raise ValueError(f"inputs must be (B,) and targets (B, 1 + K), got {inputs.shape} and {targets.shape}")
    mask = _check_mask(mask, targets)
    v = kernels.gather_rows(input_weight.data, inputs)  # (B, D)
    u = kernels.gather_rows(output_weight.data, targets)  # (B, 1+K, D)
    return _negative_sampling(v, u, inputs, targets, mask, (input_weight, output_weight),
                              (input_weight.shape, output_weight.shape))


def _check_mask(mask, targets: np.ndarray) -> np.ndarray | None:
    if mask is None:
        return None
    mask = np.asarray(mask)
    if mask.dtype != np.bool_ or mask.shape != targets.shape:
        raise ValueError(f"mask must be bool of shape {targets.shape}, got {mask.dtype} {mask.shape}")
    return mask


def _negative_sampling(v: np.ndarray, u: np.ndarray, inputs: np.ndarray, targets: np.ndarray,
                       mask: np.ndarray | None, parents: tuple[Tensor, Tensor],
                       shapes: tuple[tuple, tuple]) -> Tensor:
    """The loss from the looked-up rows, wherever they came from: ``v`` (B, D) the input rows,
    ``u`` (B, 1+K, D) the output rows; ``parents`` get the two RowSparseGrads of ``shapes``."""
    input_shape, output_shape = shapes
    dim = input_shape[1]
    scores = np.einsum("bd,bkd->bk", v, u)  # (B, 1+K)
    scores[:, 1:] *= -1  # noise terms: log σ(-score)
    terms = _log_sigmoid(scores)
    if mask is not None:
        terms *= mask
    loss = -terms.sum(dtype=np.float64)

    def backward(g):
        # d/d score of -log σ(±score) is σ(score) - label: label 1 for column 0, else 0.
        dscore = _sigmoid(-scores)  # σ(-(±score)) = 1 - σ(±score)
        dscore[:, 0] *= -1
        if mask is not None:
            dscore *= mask
        dscore *= g
        # Each table's gradient row is a weighted bag: W_out[r] gets Σ dscore[b, k] v_b over the
        # (b, k) with targets[b, k] = r; W_in[r] gets Σ dscore[b, k] u_{b,k} over the b with
        # inputs[b] = r. Pooling the bags (kernels.bag_pool) sums them straight from v and u,
        # without a (B, 1+K, D) temporary of products to add up afterwards.
        width = targets.shape[1]
        u_rows, weights = u.reshape(-1, dim), dscore.reshape(-1)
        out_rows, out_entries, out_bounds = _group(targets.reshape(-1), output_shape[0])
        grad_out, _ = kernels.bag_pool(v, out_entries // width, out_bounds, "sum", weights[out_entries])
        in_rows, in_pairs, in_bounds = _group(inputs, input_shape[0])
        entries = (in_pairs[:, None] * width + np.arange(width)).reshape(-1)  # each pair's 1+K terms
        grad_in, _ = kernels.bag_pool(u_rows, entries, in_bounds * width, "sum", weights[entries])
        return (RowSparseGrad(in_rows, grad_in, input_shape),
                RowSparseGrad(out_rows, grad_out, output_shape))

    return Tensor._from_op(np.asarray(loss, dtype=v.dtype), parents, backward, "negative_sampling_loss")


def _group(ids: np.ndarray, num_rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positions of ``ids`` (in 0..num_rows-1, num_rows <= 2**32) grouped by id.

    Returns:
        (unique ids (k,), positions (n,) stably sorted by id, bounds (k + 1,)): group
        ``j`` is ``positions[bounds[j]:bounds[j + 1]]``, in input order.
    """
    # A stable sort of 16-bit keys is a radix sort in NumPy, 5x faster than sorting int64
    # (measured); larger ids take two passes, low half then high half (LSD radix).
    if num_rows <= 1 << 16:
        order = np.argsort(ids.astype(np.uint16), kind="stable")
    else:
        low = np.argsort((ids & 0xFFFF).astype(np.uint16), kind="stable")
        order = low[np.argsort((ids[low] >> 16).astype(np.uint16), kind="stable")]
    ordered = ids[order]
    is_start = np.ones(len(ids), dtype=bool)
    np.not_equal(ordered[1:], ordered[:-1], out=is_start[1:])
    starts = np.flatnonzero(is_start)
    return ordered[starts], order, np.append(starts, len(ids))


class SkipGram(Module):
    """word2vec's two tables: ``input`` (the word vectors) and ``output``.

    ``input`` starts uniform in [-0.5/D, 0.5/D) and ``output`` at zero, as in word2vec.c.

    Args:
        num_words: vocabulary size V.
        dim: vector size D.
        seed: seed of the input table's initial values.

    Shape:
        forward(inputs (B,), targets (B, 1 + K), mask) -> scalar summed loss.
    """

    def __init__(self, num_words: int, dim: int, seed: int | None = None, dtype=np.float32):
        super().__init__()
        half = 0.5 / dim
        self.input = Embedding(num_words, dim, sparse=True, seed=seed, dtype=dtype,
                               init=lambda shape, rng, dt: rng.uniform(-half, half, size=shape).astype(dt))
        self.output = Embedding(num_words, dim, sparse=True, dtype=dtype,
                                init=lambda shape, rng, dt: np.zeros(shape, dtype=dt))

    def forward(self, inputs, targets, mask=None) -> Tensor:
        return negative_sampling_loss(self.input.weight, self.output.weight, inputs, targets, mask)


@dataclass
class ShardingConfig:
    """Train with both tables sharded over Ray actors (:mod:`tinyembed.distributed`).

    Attributes:
        num_shards: actors (the tables' shards share them: shard k of each table on actor k).
        plan: how the planner places the tables: 'row' (default), 'hashed-row', 'column',
            'table' (each table whole on one actor) or 'data-parallel'.
        address: a Ray cluster to join (``"host:port"``); None starts Ray on this machine.
        num_cpus: the CPU share each actor reserves.
    """

    num_shards: int
    plan: str = "row"
    address: str | None = None
    num_cpus: float = 0.25

    def __post_init__(self):
        from ..distributed import COLLECTION_PLANS  # noqa: PLC0415 - the sharded path only

        check_positive_int(self.num_shards, "num_shards")
        check_choice(self.plan, tuple(COLLECTION_PLANS), "plan")
        check_positive(self.num_cpus, "num_cpus")

    def to_dict(self) -> dict:
        return asdict(self)


class ShardedSkipGram:
    """word2vec's two tables sharded over Ray actors, trained exactly as :class:`SkipGram`.

    The tables ``input`` and ``output`` form one :class:`ShardedEmbeddingCollection`, so a
    batch's rows of both travel in one request per actor, and so do their updates. The
    loss is the same function of the looked-up rows as :class:`SkipGram`'s, and each shard
    applies the same optimizer step to its rows: the vectors equal the unsharded run's.

    Args:
        model: the starting tables (a :class:`SkipGram`).
        sharding: where they go.
        optimizer: 'sgd' or 'sparse_adam'; lr: its learning rate.
    """

    def __init__(self, model: SkipGram, sharding: ShardingConfig, optimizer: str, lr: float):
        from ..distributed import ShardedEmbeddingCollection  # noqa: PLC0415 - the sharded path only

        self.sharding = sharding
        weights = {"input": model.input.weight.data, "output": model.output.weight.data}
        self.tables = ShardedEmbeddingCollection.from_pretrained(
            weights, sharding.num_shards, sharding.plan, optimizer, lr=lr, address=sharding.address,
            num_cpus=sharding.num_cpus)

    def __call__(self, inputs, targets, mask=None) -> Tensor:
        """The summed loss of a batch (as :func:`negative_sampling_loss`), its backward filling
        both tables' gradients."""
        input_table, output_table = self.tables["input"], self.tables["output"]
        inputs = kernels.check_ids(inputs, input_table.num_embeddings, "inputs")
        targets = kernels.check_ids(targets, output_table.num_embeddings, "targets")
        if inputs.ndim != 1 or targets.ndim != 2 or len(targets) != len(inputs) or targets.shape[1] < 1:
            raise ValueError(f"inputs must be (B,) and targets (B, 1 + K), got {inputs.shape} and {targets.shape}")
        mask = _check_mask(mask, targets)
        rows = self.tables.lookup({"input": inputs, "output": targets})  # one request per actor
        shapes = ((input_table.num_embeddings, input_table.embedding_dim),
                  (output_table.num_embeddings, output_table.embedding_dim))
        return _negative_sampling(rows["input"], rows["output"], inputs, targets, mask,
                                  (input_table.weight, output_table.weight), shapes)

    def step(self, lr: float) -> None:
        """Apply the gradients on the shards at learning rate ``lr``."""
        self.tables.lr = lr
        self.tables.step()

    def gather(self, model: SkipGram) -> SkipGram:
        """``model`` with the trained tables copied back from the shards."""
        model.input.weight.data[...] = self.tables["input"].to_dense()
        model.output.weight.data[...] = self.tables["output"].to_dense()
        return model

    def close(self) -> None:
        self.tables.close()


# -- the data of an epoch -------------------------------------------------------------------
def subsample(corpus: EncodedCorpus, keep_probability: np.ndarray,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Keep each word with its probability.

    Returns:
        (ids int32 (m,), sentence int64 (m,)): the kept words in corpus order and
        the sentence each belongs to.
    """
    keep = rng.random(corpus.num_words) < keep_probability[corpus.ids]
    return corpus.ids[keep], corpus.sentence_ids()[keep]


def skipgram_pairs(ids: np.ndarray, sentence: np.ndarray, window: int,
                   rng: np.random.Generator | None = None,
                   reduced: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """All (input, output) pairs of a stream of words with word2vec's reduced windows.

    Position ``t`` has a reduced window ``b_t`` in 1..window and is the output word
    of a pair with every position ``s`` of its sentence at ``0 < |s - t| <= b_t``.

    Args:
        ids: (n,) word ids; sentence: (n,) the sentence of each (non-decreasing).
        window: the largest window.
        rng: draws ``b_t`` uniform in 1..window when ``reduced`` is None.
        reduced: optional (n,) ints in 1..window, the windows to use.

    Returns:
        (inputs int32 (P,), outputs int32 (P,)), ordered by output position, then by
        ``s`` from left to right: the order word2vec trains them in.
    """
    n = len(ids)
    if reduced is None:
        if rng is None:
            raise ValueError("skipgram_pairs needs rng or reduced")
        reduced = rng.integers(1, window + 1, size=n)  # b_t
    elif np.shape(reduced) != (n,) or (n and not (1 <= np.min(reduced) and np.max(reduced) <= window)):
        raise ValueError(f"reduced must be ({n},) ints in 1..{window}")
    offsets = np.concatenate([np.arange(-window, 0), np.arange(1, window + 1)])  # (2w,)
    position = np.arange(n)[:, None] + offsets[None, :]  # (n, 2w) context positions s
    inside = (position >= 0) & (position < n) & (np.abs(offsets)[None, :] <= reduced[:, None])
    clipped = np.clip(position, 0, max(n - 1, 0))
    inside &= sentence[clipped] == sentence[:, None]
    inputs = ids[clipped[inside]]
    outputs = np.repeat(ids, inside.sum(axis=1))
    return inputs.astype(np.int32, copy=False), outputs.astype(np.int32, copy=False)


class NoiseSampler:
    """Draws noise words from a distribution over the vocabulary by Vose's alias method.

    Each draw picks a column ``i`` uniformly, then keeps ``i`` with probability
    ``prob[i]`` or takes ``alias[i]``: exact (no table of rounded slots as in
    word2vec.c), two random numbers and two look-ups into (V,) tables that stay in cache.

    Args:
        distribution: float64 (V,) probabilities (non-negative, summing to about 1).

    Attributes:
        prob: float64 (V,); alias: int32 (V,).
    """

    def __init__(self, distribution: np.ndarray):
        p = np.asarray(distribution, dtype=np.float64)
        if p.ndim != 1 or len(p) == 0 or (p < 0).any() or not np.isfinite(p).all() or p.sum() <= 0:
            raise ValueError("distribution must be a 1-D array of finite probabilities >= 0 with a positive sum")
        n = len(p)
        scaled = p * (n / p.sum())
        self.prob = np.ones(n, dtype=np.float64)
        self.alias = np.arange(n, dtype=np.int32)
        small = [i for i in range(n) if scaled[i] < 1.0]
        large = [i for i in range(n) if scaled[i] >= 1.0]
        while small and large:
            s, g = small.pop(), large.pop()
            self.prob[s], self.alias[s] = scaled[s], g
            scaled[g] -= 1.0 - scaled[s]
            (small if scaled[g] < 1.0 else large).append(g)
        # What is left has scaled probability 1 up to rounding: it keeps itself.

    def probabilities(self) -> np.ndarray:
        """float64 (V,): the distribution the tables draw from (to check them against the input)."""
        n = len(self.prob)
        p = self.prob.copy()
        np.add.at(p, self.alias, 1.0 - self.prob)
        return p / n

    def draw(self, size, rng: np.random.Generator) -> np.ndarray:
        """int32 noise words of shape ``size``."""
        column = rng.integers(0, len(self.prob), size=size, dtype=np.int32)
        keep = rng.random(size) < self.prob[column]
        return np.where(keep, column, self.alias[column])


# -- results --------------------------------------------------------------------------------
@dataclass
class EpochStats:
    """One epoch: mean loss per pair, pairs, words read, seconds."""

    epoch: int
    loss: float
    pairs: int
    words: int
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class SkipGramResult:
    """What :func:`train_skipgram` gives back.

    Attributes:
        config: the hyper-parameters.
        vocab: the vocabulary (row ``i`` of every table is ``vocab.words[i]``).
        model: the trained tables.
        epochs: per-epoch statistics.
        seconds: training time (pairs, negatives and steps; not tokenization).
        words_per_second: corpus words (in the vocabulary, before subsampling) trained
            per second, over all epochs: the rate gensim and word2vec.c report.
        threads: kernel threads used.
        sharding: where the tables were trained, if sharded.
    """

    config: SkipGramConfig
    vocab: Vocabulary
    model: SkipGram
    epochs: list[EpochStats]
    seconds: float
    words_per_second: float
    threads: int
    sharding: ShardingConfig | None = None

    @property
    def vectors(self):
        """The input vectors as :class:`tinyembed.vectors.WordVectors` (float32 (V, D))."""
        from ..vectors import WordVectors

        return WordVectors(list(self.vocab.words), self.model.input.weight.data.astype(np.float32),
                           counts=self.vocab.counts)

    @property
    def losses(self) -> list[float]:
        return [e.loss for e in self.epochs]

    def to_dict(self) -> dict:
        out = {"config": self.config.to_dict(), "vocab_size": len(self.vocab),
               "corpus_words": self.vocab.total_words, "trained_words": self.vocab.kept_words,
               "epochs": [e.to_dict() for e in self.epochs], "losses": self.losses,
               "seconds": self.seconds, "words_per_second": self.words_per_second,
               "threads": self.threads}
        if self.sharding is not None:
            out["sharding"] = self.sharding.to_dict()
        return out


# -- training -------------------------------------------------------------------------------
@contextlib.contextmanager
def _kernel_threads(threads: int | None):
    """Run the kernels (compiled ones included) on ``threads`` threads, then restore the
    previous setting; yields the count in force."""
    if threads is None:
        yield kernels.get_num_threads()
        return
    old = kernels.get_num_threads()
    kernels.set_num_threads(threads)
    try:
        yield threads
    finally:
        kernels.set_num_threads(old)


def train_skipgram(corpus, config: SkipGramConfig | None = None, *, source: str = "corpus",
                   vocab: Vocabulary | None = None, show_progress: bool = True,
                   stream=None, sharding: ShardingConfig | None = None) -> SkipGramResult:
    """Train skip-gram word vectors with negative sampling.

    Args:
        corpus: plain text (a str: one sentence per line, tokenized by
            :func:`tinyembed.train.vocab.tokenize_lines`) or sentences as lists of words.
        config: hyper-parameters (:class:`SkipGramConfig`; None: the defaults).
        source: how errors name the corpus (a file or corpus name).
        vocab: a vocabulary to use instead of counting one from ``corpus``.
        show_progress: draw a progress bar with the loss and words/s on ``stream`` (stderr).
        sharding: train both tables sharded over Ray actors (:class:`ShardingConfig`); the
            vectors equal the unsharded run's (same seed and batch). Ray is started for the
            run and shut down after it, unless this process was already connected.

    Raises:
        ValueError: the corpus has no words, or none reaching ``config.min_count``
            (naming ``source`` and min_count), or no sentence of two words to train on.
    """
    config = SkipGramConfig() if config is None else config
    if not isinstance(config, SkipGramConfig):
        raise TypeError(f"config must be a SkipGramConfig, got {type(config).__name__}")
    sentences = tokenize_lines(corpus) if isinstance(corpus, str) else corpus
    if vocab is None:
        vocab = Vocabulary.from_sentences(sentences, config.min_count, source=source)
    encoded = vocab.encode(sentences)
    if encoded.num_words == 0 or np.diff(encoded.bounds).max() < 2:
        raise ValueError(f"{source} has no sentence (line) with two words in the vocabulary "
                         f"(min_count={config.min_count}): skip-gram needs pairs of words")
    if sharding is not None and not isinstance(sharding, ShardingConfig):
        raise TypeError(f"sharding must be a ShardingConfig, got {type(sharding).__name__}")
    with _kernel_threads(config.threads) as threads:
        if sharding is None:
            return _train(encoded, vocab, config, threads, show_progress, stream)
        from ..distributed import ray_session  # noqa: PLC0415 - the sharded path only

        with ray_session(sharding.address):
            return _train(encoded, vocab, config, threads, show_progress, stream, sharding)


def _rates(loss: float, words_per_second: float) -> str:
    return f"loss {loss:.4f} {words_per_second:,.0f} words/s"


def uses_kernel(config: SkipGramConfig) -> bool:
    """Whether training runs word2vec's per-pair loop (:mod:`tinyembed.kernels.sgns`: plain SGD and
    the compiled kernels available) rather than batches through autograd (SparseAdam, or no numba)."""
    return config.optimizer == "sgd" and sgns.available()


# Pairs per call of the per-pair loop: ~0.1 s of work, so the bar moves and Ctrl-C is seen promptly.
_KERNEL_CHUNK = 1 << 18


def _kernel_steps(model: SkipGram, noise: NoiseSampler, config: SkipGramConfig, threads: int,
                  rng: np.random.Generator) -> Callable[[np.ndarray, np.ndarray, float, float], float]:
    """Train a run of pairs with word2vec's loop, the rate falling from lr_first to lr_last over them."""
    w_in, w_out = model.input.weight, model.output.weight

    def step(inputs, outputs, lr_first, lr_last):
        seeds = rng.integers(1, 2**63, size=threads, dtype=np.uint64)
        loss = sgns.sgd_pairs(w_in.data, w_out.data, inputs, outputs, config.negative, noise.prob, noise.alias,
                              lr_first, lr_last, seeds)
        w_in.increment_version("skip-gram SGD")
        w_out.increment_version("skip-gram SGD")
        return loss
    return step


def _batch_targets(outputs: np.ndarray, noise: NoiseSampler, config: SkipGramConfig,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(targets int32 (B, 1 + K), mask bool (B, 1 + K)): each pair's output word then K noise words,
    a noise word equal to the output masked out."""
    targets = np.empty((len(outputs), 1 + config.negative), dtype=np.int32)
    targets[:, 0] = outputs
    targets[:, 1:] = noise.draw((len(outputs), config.negative), rng)
    mask = targets != targets[:, :1]
    mask[:, 0] = True
    return targets, mask


def _autograd_steps(model: SkipGram, noise: NoiseSampler, config: SkipGramConfig,
                    rng: np.random.Generator) -> Callable[[np.ndarray, np.ndarray, float, float], float]:
    """Train a batch of pairs at once: the summed loss through autograd, one optimizer step at lr_first."""
    params = [model.input.weight, model.output.weight]
    optimizer = SGD(params, lr=config.alpha) if config.optimizer == "sgd" else SparseAdam(params, lr=config.alpha)

    def step(inputs, outputs, lr_first, lr_last):
        for group in optimizer.param_groups:
            group["lr"] = lr_first
        targets, mask = _batch_targets(outputs, noise, config, rng)
        optimizer.zero_grad()
        loss = model(inputs, targets, mask)
        loss.backward()
        optimizer.step()
        return float(loss.data)
    return step


def _sharded_steps(sharded: ShardedSkipGram, noise: NoiseSampler, config: SkipGramConfig,
                   rng: np.random.Generator) -> Callable[[np.ndarray, np.ndarray, float, float], float]:
    """:func:`_autograd_steps` with the rows and the optimizer on the shards: the same loss and updates."""

    def step(inputs, outputs, lr_first, lr_last):
        targets, mask = _batch_targets(outputs, noise, config, rng)
        loss = sharded(inputs, targets, mask)
        loss.backward()
        sharded.step(lr_first)
        return float(loss.data)
    return step


def _train(encoded: EncodedCorpus, vocab: Vocabulary, config: SkipGramConfig, threads: int,
           show_progress: bool, stream, sharding: ShardingConfig | None = None) -> SkipGramResult:
    rng = np.random.default_rng(config.seed)
    model = SkipGram(len(vocab), config.dim, seed=int(rng.integers(2**63)))
    noise = NoiseSampler(vocab.noise_distribution(config.ns_exponent))
    run = (encoded, vocab, config, threads, show_progress, stream, rng, model)
    if sharding is None and uses_kernel(config):
        return _train_loop(*run, _kernel_steps(model, noise, config, threads, rng), _KERNEL_CHUNK)
    if sharding is None:
        return _train_loop(*run, _autograd_steps(model, noise, config, rng), config.batch_size)
    # Sharded, the rows live on the actors: batches through autograd, as without the compiled kernels.
    sharded = ShardedSkipGram(model, sharding, config.optimizer, config.alpha)
    try:
        result = _train_loop(*run, _sharded_steps(sharded, noise, config, rng), config.batch_size)
        sharded.gather(model)
    finally:
        sharded.close()
    return replace(result, sharding=sharding)


def _train_loop(encoded: EncodedCorpus, vocab: Vocabulary, config: SkipGramConfig, threads: int,
                show_progress: bool, stream, rng: np.random.Generator, model: SkipGram,
                step: Callable[[np.ndarray, np.ndarray, float, float], float], chunk: int) -> SkipGramResult:
    """Run the epochs, ``chunk`` pairs per call of ``step(inputs, outputs, lr_first, lr_last) -> loss sum``."""
    keep = vocab.keep_probabilities(config.sample)
    bar = ProgressBar(config.epochs * encoded.num_words, enabled=show_progress, stream=stream)

    def rate(epoch: int, pair: int, num_pairs: int) -> float:
        # Progress through the run in words read, as word2vec decays its rate.
        progress = (epoch + pair / max(num_pairs, 1)) / config.epochs
        return config.alpha - (config.alpha - config.min_alpha) * progress

    stats: list[EpochStats] = []
    start = time.perf_counter()
    for epoch in range(config.epochs):
        epoch_start = time.perf_counter()
        ids, sentence = subsample(encoded, keep, rng)
        inputs, outputs = skipgram_pairs(ids, sentence, config.window, rng)
        num_pairs = len(inputs)
        loss_sum = 0.0
        for lo in range(0, num_pairs, chunk):
            hi = min(num_pairs, lo + chunk)
            loss_sum += step(inputs[lo:hi], outputs[lo:hi], rate(epoch, lo, num_pairs), rate(epoch, hi, num_pairs))
            words_done = (epoch + hi / num_pairs) * encoded.num_words
            bar.update(words_done, _rates(loss_sum / hi, words_done / (time.perf_counter() - start)),
                       desc=f"epoch {epoch + 1}/{config.epochs}")
        seconds = time.perf_counter() - epoch_start
        stats.append(EpochStats(epoch + 1, loss_sum / max(num_pairs, 1), num_pairs, encoded.num_words, seconds))
        elapsed = time.perf_counter() - start
        bar.update((epoch + 1) * encoded.num_words, _rates(stats[-1].loss, (epoch + 1) * encoded.num_words / elapsed),
                   final=True)  # a line per epoch, in a log and on a terminal
    seconds = time.perf_counter() - start
    return SkipGramResult(config, vocab, model, stats, seconds, config.epochs * encoded.num_words / seconds, threads)


# -- files --------------------------------------------------------------------------------------
OUTPUT_FILES = {"vectors": "vectors.safetensors", "vectors_text": "vectors.txt", "vocab": "vocab.json",
                "train": "train.json"}


def write_outputs(result: SkipGramResult, out_dir, *, replace: bool = False) -> dict[str, Path]:
    """Write a training run into the directory ``out_dir``, whole or not at all.

    Files:
        vectors.safetensors   the input vectors (:meth:`WordVectors.save`)
        vectors.txt           the same in word2vec's text format
        vocab.json            words and counts (:meth:`Vocabulary.save`)
        train.json            config, per-epoch losses, words/s, seconds

    An existing ``out_dir`` is replaced only with ``replace`` (:func:`tinyembed.io.files.atomic_directory`).

    Returns:
        {name: path} of the files written.
    """
    out = Path(os.path.abspath(out_dir))
    with atomic_directory(out, replace=replace) as staging:
        vectors = result.vectors
        vectors.save(staging / OUTPUT_FILES["vectors"])
        vectors.save_word2vec_text(staging / OUTPUT_FILES["vectors_text"])
        result.vocab.save(staging / OUTPUT_FILES["vocab"])
        write_atomic(staging / OUTPUT_FILES["train"], json.dumps(result.to_dict(), indent=2) + "\n")
    return {name: out / file for name, file in OUTPUT_FILES.items()}
