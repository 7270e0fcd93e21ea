"""Learned absolute positions (GPT-2, BERT): one trainable row per position, up to max_len."""

from __future__ import annotations

import numpy as np

from ..checks import check_nonnegative_int, check_positive_int
from ..nn import Module, Parameter, pretrained_weight
from ..nn import init as init_
from ..nn.functional import embedding
from ..tensor import Tensor
from .sinusoidal import _check_input, check_positions

__all__ = ["LearnedPositionalEmbedding"]


class LearnedPositionalEmbedding(Module):
    """A (max_len, dim) table of trainable position vectors added to (batch, seq, dim) inputs.

    Unlike the sinusoidal encoding it cannot extrapolate: a sequence longer than
    ``max_len`` is an error. Rows start N(0, 0.02^2), as GPT-2 and BERT initialize them.

    Shape:
        forward: x (batch, seq, dim) -> same shape; gradients flow to ``weight``.
    """

    def __init__(self, max_len: int, embedding_dim: int, seed: int | None = None,
                 init=None, _weight=None, _freeze: bool = False):
        super().__init__()
        self.max_len = check_positive_int(max_len, "max_len")
        self.embedding_dim = check_positive_int(embedding_dim, "embedding_dim")
        if _weight is None:
            init = init_.normal(std=0.02) if init is None else init
            rng = np.random.default_rng(seed)
            _weight = init_.get(init)((self.max_len, self.embedding_dim), rng, np.dtype(np.float32))
        self.weight = Parameter(_weight, requires_grad=not _freeze)

    @classmethod
    def from_pretrained(cls, weights, freeze: bool = True) -> LearnedPositionalEmbedding:
        """A table holding ``weights`` (max_len, dim), such as a model's ``position_embeddings.weight``."""
        data = pretrained_weight(weights)
        return cls(data.shape[0], data.shape[1], _weight=data, _freeze=freeze)

    def check_length(self, end: int) -> None:
        """Raise unless positions 0..end-1 exist: a learned table cannot extrapolate."""
        if end > self.max_len:
            raise ValueError(
                f"positions up to {end} requested, but this learned table has max_len={self.max_len}: "
                "learned positions cannot extrapolate (use a sinusoidal or rotary encoding)"
            )

    def encoding(self, positions) -> Tensor:
        """Rows of ``positions``: a Tensor that carries gradients to the table."""
        pos = check_positions(positions)
        if pos.size:
            self.check_length(int(pos.max()) + 1)
        return embedding(pos, self.weight)

    def forward(self, x: Tensor, start: int = 0) -> Tensor:
        x = _check_input(x, self.embedding_dim)
        return x + self.added_rows(x.shape[-2], start)

    def added_rows(self, seq: int, start: int = 0, dtype=None) -> Tensor:
        """The (seq, dim) rows :meth:`forward` adds for positions ``start .. start + seq - 1``.

        They carry gradients to the table, so they are always the table's dtype;
        ``dtype`` is accepted for the same call as :class:`PositionalEncoding` and ignored.
        """
        start = check_nonnegative_int(start, "start")
        self.check_length(start + seq)
        return embedding(np.arange(start, start + seq), self.weight)

    def extra_repr(self) -> str:
        return f"{self.max_len}, {self.embedding_dim}"
