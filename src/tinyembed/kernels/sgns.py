"""word2vec's inner loop: skip-gram with negative sampling, one pair at a time, in place.

For a pair (input word ``i``, output word ``o``) and ``K`` noise words drawn from the
unigram^0.75 table, with ``v = W_in[i]`` and learning rate ``lr``::

    for each target t in (o, n_1..n_K), label 1 for o and 0 for the noise words:
        g = lr * (label - σ(W_out[t] · v))        σ from a table over [-6, 6], as word2vec.c
        e += g * W_out[t]                         (e starts at zero)
        W_out[t] += g * v
    W_in[i] += e

which is plain SGD on ``-log σ(W_out[o]·v) - Σ_k log σ(-W_out[n_k]·v)``, the loss the
autograd path (:func:`tinyembed.train.skipgram.negative_sampling_loss`) differentiates.
A noise word equal to ``o`` is skipped. The learning rate falls linearly over the pairs,
and the noise words are drawn inside the loop (Vose's alias table, a xorshift generator
per thread), so a pass over millions of pairs needs no array of noise words.

Threads take contiguous ranges of the pairs and update the shared tables without locks
(word2vec.c's and gensim's "Hogwild"): two threads may race on a row, which SGD
tolerates; with one thread the result is a function of the seed alone. Needs the
compiled kernels (:mod:`.jit`); :func:`available` says whether they run.
"""

from __future__ import annotations

import numpy as np

from . import jit
from .jit import prange

__all__ = ["MAX_EXP", "SIGMOID_TABLE_SIZE", "available", "sgd_pairs", "sigmoid_tables"]

MAX_EXP = 6.0             # scores beyond ±MAX_EXP saturate σ, as in word2vec.c
SIGMOID_TABLE_SIZE = 1000  # word2vec.c's EXP_TABLE_SIZE


def available() -> bool:
    """Whether :func:`sgd_pairs` can run here (it has no NumPy version: a per-pair loop in Python
    would be hundreds of times slower; the autograd path is the fallback)."""
    return jit.available()


def sigmoid_tables() -> tuple[np.ndarray, np.ndarray]:
    """(σ(x), log σ(x)) at the centres of SIGMOID_TABLE_SIZE cells over [-MAX_EXP, MAX_EXP), float32."""
    x = (np.arange(SIGMOID_TABLE_SIZE) + 0.5) / SIGMOID_TABLE_SIZE * 2 * MAX_EXP - MAX_EXP
    sigmoid = 1.0 / (1.0 + np.exp(-x))
    return sigmoid.astype(np.float32), np.log(sigmoid).astype(np.float32)


def sgd_pairs(w_in: np.ndarray, w_out: np.ndarray, inputs: np.ndarray, outputs: np.ndarray, negative: int,
              noise_prob: np.ndarray, noise_alias: np.ndarray, lr_first: float, lr_last: float,
              seeds: np.ndarray) -> float:
    """Train the pairs in order, in place; returns the summed loss of their terms.

    Args:
        w_in, w_out: (V, D) float32 C-contiguous tables, updated in place.
        inputs, outputs: (P,) int32 ids of each pair's input and output word, validated.
        negative: noise words K per pair.
        noise_prob, noise_alias: (V,) float64 and int32: Vose's alias table of the noise distribution.
        lr_first, lr_last: the learning rate at the first pair and after the last (linear between).
        seeds: (T,) uint64, non-zero: one generator per thread; the pairs are cut into T contiguous ranges.

    Returns:
        Σ over the pairs' terms of ``-log σ(±score)`` (from the table; saturated scores count 0
        or ``|score|``), for monitoring.
    """
    sigmoid, log_sigmoid = sigmoid_tables()
    bounds = np.linspace(0, len(inputs), len(seeds) + 1).astype(np.int64)
    losses = np.zeros(len(seeds), dtype=np.float64)
    _sgd_pairs(w_in, w_out, inputs, outputs, negative, noise_prob, noise_alias, np.float32(lr_first),
               np.float32(lr_last), seeds.astype(np.uint64), sigmoid, log_sigmoid, bounds, losses)
    return float(losses.sum())


# fastmath (all of LLVM's flags, as measured): the dot products vectorize; SGD is no bit-exact reference.
@jit.kernel(parallel=True, fastmath=("fast",))
def _sgd_pairs(w_in, w_out, inputs, outputs, negative, noise_prob, noise_alias, lr_first, lr_last, seeds,
               sigmoid, log_sigmoid, bounds, losses):
    dim, num_words = w_in.shape[1], np.uint64(w_out.shape[0])
    total = max(bounds[-1], 1)
    cells = sigmoid.shape[0]
    scale = cells / (2 * MAX_EXP)
    for part in prange(losses.shape[0]):
        state = np.uint64(seeds[part])
        e = np.zeros(dim, dtype=np.float32)
        loss = 0.0
        for j in range(bounds[part], bounds[part + 1]):
            lr = lr_first + (lr_last - lr_first) * np.float32(j / total)
            out = outputs[j]
            v = w_in[inputs[j]]
            e[:] = 0
            for k in range(negative + 1):
                if k == 0:
                    target, label = np.int64(out), np.float32(1.0)
                else:
                    # xorshift64* twice: a uniform column, then the alias coin
                    state ^= state >> np.uint64(12)
                    state ^= state << np.uint64(25)
                    state ^= state >> np.uint64(27)
                    column = np.int64(((state * np.uint64(0x2545F4914F6CDD1D)) >> np.uint64(11)) % num_words)
                    state ^= state >> np.uint64(12)
                    state ^= state << np.uint64(25)
                    state ^= state >> np.uint64(27)
                    coin = ((state * np.uint64(0x2545F4914F6CDD1D)) >> np.uint64(11)) * (1.0 / 9007199254740992.0)
                    target = column if coin < noise_prob[column] else np.int64(noise_alias[column])
                    if target == out:
                        continue
                    label = np.float32(0.0)
                u = w_out[target]
                score = np.float32(0.0)
                for d in range(dim):
                    score += v[d] * u[d]
                if score >= MAX_EXP:
                    g = (label - np.float32(1.0)) * lr
                    loss += 0.0 if label > 0 else score
                elif score <= -MAX_EXP:
                    g = label * lr
                    loss += -score if label > 0 else 0.0
                else:
                    cell = int((score + MAX_EXP) * scale)
                    g = (label - sigmoid[cell]) * lr
                    loss -= log_sigmoid[cell] if label > 0 else log_sigmoid[cells - 1 - cell]
                for d in range(dim):
                    e[d] += g * u[d]
                for d in range(dim):
                    u[d] += g * v[d]
            for d in range(dim):
                v[d] += e[d]
        losses[part] = loss
