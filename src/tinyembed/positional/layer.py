"""EmbeddingLayer: the complete input embedding of a transformer.

token ids -> token table -> optional scale -> + positions -> dropout.

The token table is a component: any object that maps an id array to rows
(``Embedding``, or the compressed tables of :mod:`tinyembed.tables`) can serve.
The position encoding is picked by name from a registry, or passed as a module.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import numpy as np

from ..checks import check_padding_idx, check_positive_int
from ..nn import Embedding, Module
from ..nn import functional as F
from ..tensor import Tensor
from .learned import LearnedPositionalEmbedding
from .sinusoidal import PositionalEncoding

__all__ = ["EmbeddingLayer", "POSITIONAL"]

# name -> (max_len, dim, seed) -> position module. Adding a kind is adding an entry.
POSITIONAL: dict[str, Callable[[int, int, int | None], Module | None]] = {
    "sinusoidal": lambda max_len, dim, seed: PositionalEncoding(dim, max_len=max_len),
    "learned": lambda max_len, dim, seed: LearnedPositionalEmbedding(max_len, dim, seed=seed),
    "none": lambda max_len, dim, seed: None,
}


class EmbeddingLayer(Module):
    """Token lookup, scaling, positions and dropout: (batch, seq) ids to (batch, seq, dim).

    Args:
        vocab_size: rows of the token table.
        embedding_dim: d.
        max_len: positions a learned table holds (a sinusoidal one computes any length).
        positional: 'sinusoidal', 'learned', 'none', or a module whose
            ``forward(x, start)`` adds positions to x.
        scale: False (1), True (sqrt(d), as Vaswani et al.), or a float multiplier.
        dropout: probability applied to the sum in training mode.
        padding_idx: the padding id: its row starts at zero, gets no gradient, and
            :meth:`padding_mask` marks it.
        token_table: the table to use instead of a new ``Embedding``; anything
            callable on an id array that returns (*ids.shape, d) rows.
        seed: seeds the default tables' initialization and the dropout masks.

    Shape:
        forward: ids (batch, seq) -> (batch, seq, embedding_dim).

    Examples:
        >>> layer = EmbeddingLayer(100, 8, positional="sinusoidal", scale=True, seed=0)
        >>> layer([[1, 2, 3], [4, 5, 0]]).shape
        (2, 3, 8)
    """

    def __init__(self, vocab_size: int, embedding_dim: int, max_len: int = 512,
                 positional: str | Module | None = "sinusoidal", scale: bool | float = False,
                 dropout: float = 0.0, padding_idx: int | None = None, token_table=None,
                 seed: int | None = None):
        super().__init__()
        self.vocab_size = check_positive_int(vocab_size, "vocab_size")
        self.embedding_dim = check_positive_int(embedding_dim, "embedding_dim")
        self.max_len = check_positive_int(max_len, "max_len")
        if token_table is None:
            token_table = Embedding(vocab_size, embedding_dim, padding_idx=padding_idx, seed=seed)
        _check_table(token_table, self.vocab_size, self.embedding_dim)
        self.tokens = token_table
        positions: Module | None
        if isinstance(positional, str):
            if positional not in POSITIONAL:
                raise ValueError(f"positional must be one of {sorted(POSITIONAL)} or a module, got {positional!r}")
            positions = POSITIONAL[positional](self.max_len, self.embedding_dim, seed)
        elif positional is not None and not isinstance(positional, Module):
            raise TypeError(f"positional must be a name or a Module, got {type(positional).__name__}")
        else:
            positions = positional
        self.positions = positions
        # Below, float is listed beside numbers.Real for mypy, which does not count a float as a Real (and so
        # took all after the dropout check for unreachable, unchecked); at run time a float is one already.
        if scale is True:
            self.scale = math.sqrt(embedding_dim)
        elif scale is False:
            self.scale = 1.0
        elif isinstance(scale, (float, numbers.Real)) and math.isfinite(scale):
            self.scale = float(scale)
        else:
            raise ValueError(f"scale must be a bool or a finite number, got {scale!r}")
        if not isinstance(dropout, (float, numbers.Real)) or not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.dropout = float(dropout)
        # The table's own padding row wins; a bare padding_idx is resolved like Embedding's.
        table_pad = getattr(token_table, "padding_idx", None)
        self.padding_idx = table_pad if table_pad is not None else check_padding_idx(padding_idx, vocab_size)
        self._rng = np.random.default_rng(seed)

    def forward(self, ids, start: int = 0) -> Tensor:
        """Embed ``ids``; ``start`` is the position of the first one (incremental decoding)."""
        check = getattr(self.positions, "check_length", None)
        if check is not None:  # before the lookup: a max_norm renorm must not run for a call that fails
            check(start + np.shape(ids.data if isinstance(ids, Tensor) else ids)[-1])
        rows = self._added_rows(ids, start)
        if rows is not None:
            # Positions that are added (sinusoidal, learned) go in while each chunk of rows is
            # in cache: about the cost of the lookup alone, no full-size temporary.
            t = self.tokens
            x = F.embedding_add(ids, t.weight, rows, self.scale, padding_idx=t.padding_idx, max_norm=t.max_norm,
                                norm_type=t.norm_type, scale_grad_by_freq=t.scale_grad_by_freq, sparse=t.sparse)
        else:
            x = self.tokens(ids)
            if not isinstance(x, Tensor):  # a table that returns plain rows
                x = Tensor(x)
            if self.scale != 1.0:
                x = x * self.scale
            if self.positions is not None:
                x = self.positions(x, start=start)
        if self.dropout and self.training:
            x = F.dropout(x, self.dropout, training=True, rng=self._rng)
        return x

    def _added_rows(self, ids, start: int) -> Tensor | None:
        """The position rows to fuse into the lookup, or None where the ops must run apart:
        another kind of table, positions that are not added (RoPE), or mixed dtypes."""
        added_rows = getattr(self.positions, "added_rows", None)
        shape = np.shape(ids.data if isinstance(ids, Tensor) else ids)
        if type(self.tokens) is not Embedding or added_rows is None or len(shape) == 0:
            return None
        rows = added_rows(shape[-1], start, self.tokens.weight.dtype)
        return rows if rows.dtype == self.tokens.weight.dtype else None

    def padding_mask(self, ids) -> np.ndarray:
        """Boolean array of ``ids``' shape: True where the id is padding (positions to ignore)."""
        ids = np.asarray(ids.data if isinstance(ids, Tensor) else ids)
        if self.padding_idx is None:
            return np.zeros(ids.shape, dtype=bool)
        return ids == self.padding_idx

    def extra_repr(self) -> str:
        return (f"vocab_size={self.vocab_size}, embedding_dim={self.embedding_dim}, scale={self.scale:g}, "
                f"dropout={self.dropout:g}, padding_idx={self.padding_idx}")


def _check_table(table, vocab_size: int, dim: int) -> None:
    if not callable(table):
        raise TypeError(f"token_table must be callable on an id array, got {type(table).__name__}")
    rows = getattr(table, "num_embeddings", vocab_size)
    width = getattr(table, "embedding_dim", dim)
    if (rows, width) != (vocab_size, dim):
        raise ValueError(f"token_table is {rows} x {width}, the layer is {vocab_size} x {dim}")
