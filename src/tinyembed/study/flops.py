"""FLOPs of the window language model, counted from its shapes, and bits per byte.

FLOPs count the matrix products only, 2 per multiply-add (the convention of Kaplan et al.
2020 and of Tao et al. 2024, whose IsoFLOPs study this reproduces): a token's features pass
through the hidden layer (H x kD), the projection back (D x H) and the output table (V x D),
so a forward costs ``2 * (kD*H + H*D + D*V)`` per token. Training adds the backward: each
product's gradient with respect to its input and to its weight, two more products of the
same size (the first layer's input gradient is needed, the token table trains), so
``3x`` the forward. The lookup, GELU, LayerNorm and the softmax are elementwise, O(1/D) of
this, and not counted. ``tests/study/test_flops.py`` checks the count against a brute-force
count of every multiply and add of one step of a tiny model.

Bits per byte is the total negative log-likelihood of a text in bits, over the text's UTF-8
bytes: tokenizers that cut the same text into different numbers of tokens compare on it.

Examples:
    >>> from tinyembed.train.lm import LMConfig, WindowLM
    >>> model = WindowLM(LMConfig(vocab_size=1000, context=8, dim=64, hidden=256))
    >>> forward_flops_per_token(model)  # 2 * (512*256 + 256*64 + 64*1000)
    422912
    >>> train_flops_per_token(model)
    1268736
    >>> round(bits_per_byte(nll_nats=math.log(256) * 10, n_bytes=10), 12)  # uniform over the 256 bytes
    8.0
"""

from __future__ import annotations

import math

from ..checks import check_positive_int
from ..train.lm import Examples, nll_sum

__all__ = ["forward_flops_per_token", "train_flops_per_token", "bits_per_byte", "held_out_bits_per_byte"]

TRAIN_FORWARD_RATIO = 3  # forward, then the input and weight gradients of every product


def forward_flops_per_token(model) -> int:
    """FLOPs of one token's forward: 2 per multiply-add of every matrix in ``model.matrix_shapes()``."""
    return sum(2 * rows * cols for rows, cols in model.matrix_shapes())


def train_flops_per_token(model) -> int:
    """FLOPs of one token's training step: the forward and the backward's two products per matrix."""
    return TRAIN_FORWARD_RATIO * forward_flops_per_token(model)


def bits_per_byte(nll_nats: float, n_bytes: int) -> float:
    """Total negative log-likelihood in nats -> bits per byte of a text of ``n_bytes`` UTF-8 bytes."""
    check_positive_int(n_bytes, "n_bytes")
    return nll_nats / math.log(2) / n_bytes


def held_out_bits_per_byte(model, stream, context: int, pad_id: int, n_bytes: int, batch_size: int = 1024) -> float:
    """Bits per byte of ``model`` on one token stream that encodes a text of ``n_bytes`` UTF-8 bytes.

    Every token of the stream is scored, each from the ``context`` tokens before it (padding
    before the first): the total is the stream's whole log-likelihood.

    Args:
        model: a :class:`~tinyembed.train.lm.WindowLM`, or any callable from ids (b, context) to
            logits (b, V).
        stream: int (n_tokens,) ids, e.g. :func:`tinyembed.study.data.encode_stream` of the text.
    """
    examples = Examples.of_lines([stream], context, pad_id)
    return bits_per_byte(nll_sum(model, examples, batch_size), n_bytes)
