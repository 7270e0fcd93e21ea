"""Embedding and EmbeddingBag: lookup tables with PyTorch 2.13's semantics.

The modules own the weight and the configuration; the work is done by the
functional forms in :mod:`tinyembed.nn.functional` (see there for where we differ
from PyTorch on purpose).
"""

from __future__ import annotations

import numpy as np

from .. import kernels
from ..checks import check_float_dtype, check_nonnegative_int, check_padding_idx
from ..tensor import Tensor, no_grad
from . import init as init_
from .functional import _check_bag_mode, _check_norm, embedding, embedding_bag
from .module import Module, Parameter
from .table import EmbeddingTable, pretrained_weight, register_table, take_array

__all__ = ["Embedding", "EmbeddingBag"]


class _TableModule(Module):
    """What Embedding and EmbeddingBag share: the table, its init and its options."""

    def __init__(self, num_embeddings, embedding_dim, padding_idx, max_norm, norm_type,
                 scale_grad_by_freq, sparse, _weight, _freeze, dtype, seed, init):
        super().__init__()
        # Zero rows or zero width are allowed, as in torch: the table is empty, so is its gradient.
        self.num_embeddings = check_nonnegative_int(num_embeddings, "num_embeddings")
        self.embedding_dim = check_nonnegative_int(embedding_dim, "embedding_dim")
        self.padding_idx = check_padding_idx(padding_idx, self.num_embeddings)
        _check_norm(max_norm, norm_type)
        self.max_norm = max_norm
        self.norm_type = float(norm_type)
        self.scale_grad_by_freq = bool(scale_grad_by_freq)
        self.sparse = bool(sparse)
        if _weight is None:
            dtype = check_float_dtype(dtype)
            rng = np.random.default_rng(seed)
            data = init_.get(init)((self.num_embeddings, self.embedding_dim), rng, dtype)
            # On a 64-byte boundary, as NumPy's large arrays are not: each 16-column vector of a row is then one
            # load, not two (kernels.lanes.empty_aligned).
            aligned = kernels.empty_aligned(data.shape, data.dtype)
            aligned[...] = data
            data = aligned
            if self.padding_idx is not None:
                data[self.padding_idx] = 0  # the padding row starts at zero and never trains
            self.weight = Parameter(data, requires_grad=not _freeze)
        else:
            if tuple(_weight.shape) != (self.num_embeddings, self.embedding_dim):
                raise ValueError(f"_weight has shape {tuple(_weight.shape)}, expected "
                                 f"({self.num_embeddings}, {self.embedding_dim})")
            self.weight = Parameter(_weight, requires_grad=not _freeze)

    @classmethod
    def from_pretrained(cls, embeddings, freeze: bool = True, padding_idx=None, **kwargs):
        """A table holding ``embeddings`` (V, D); its padding row is kept as given.

        ``freeze=True`` stops the weight from training. A float32 or float64 ndarray is
        shared, not copied; other input (lists, float16) is converted to float32.
        """
        data = pretrained_weight(embeddings)
        num, dim = data.shape
        return cls(num, dim, padding_idx=padding_idx, _weight=data, _freeze=freeze, **kwargs)

    def extra_repr(self) -> str:
        parts = [f"{self.num_embeddings}, {self.embedding_dim}"]
        if self.padding_idx is not None:
            parts.append(f"padding_idx={self.padding_idx}")
        if self.max_norm is not None:
            parts.append(f"max_norm={self.max_norm}")
        if self.norm_type != 2.0:
            parts.append(f"norm_type={self.norm_type}")
        if self.scale_grad_by_freq:
            parts.append("scale_grad_by_freq=True")
        if self.sparse:
            parts.append("sparse=True")
        if self.weight.dtype != np.float32:
            parts.append(f"dtype={self.weight.dtype}")
        return ", ".join(parts)


@register_table
class Embedding(_TableModule, EmbeddingTable):
    """A lookup table from integer ids to rows of a (num_embeddings, embedding_dim) weight.

    Args:
        num_embeddings: rows (the vocabulary size).
        embedding_dim: columns.
        padding_idx: a row that starts at zero and never receives gradient; negative counts from the end.
        max_norm: rows looked up are renormalized in place to at most this norm.
        norm_type: the p of the p-norm for ``max_norm``.
        scale_grad_by_freq: scale gradients by the inverse frequency of ids in the batch.
        sparse: give ``weight.grad`` as a :class:`RowSparseGrad`.
        dtype: float32 (default) or float64.
        seed: seed of the initializer's random generator.
        init: 'normal' (N(0, 1), PyTorch's default), 'uniform', 'xavier_uniform', or
            a configured initializer such as ``nn.init.normal(std=0.02)``.

    Shape:
        input (*) integer ids -> output (*, embedding_dim).

    Examples:
        >>> emb = Embedding(10, 3, padding_idx=0, seed=0)
        >>> emb([[0, 2], [4, 9]]).shape
        (2, 2, 3)
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 max_norm: float | None = None, norm_type: float = 2.0, scale_grad_by_freq: bool = False,
                 sparse: bool = False, _weight=None, _freeze: bool = False, dtype=np.float32,
                 seed: int | None = None, init="normal"):
        super().__init__(num_embeddings, embedding_dim, padding_idx, max_norm, norm_type,
                         scale_grad_by_freq, sparse, _weight, _freeze, dtype, seed, init)

    def forward(self, input, out: np.ndarray | None = None) -> Tensor:
        return embedding(input, self.weight, padding_idx=self.padding_idx, max_norm=self.max_norm,
                         norm_type=self.norm_type, scale_grad_by_freq=self.scale_grad_by_freq, sparse=self.sparse,
                         out=out)

    def attend(self, h) -> Tensor:
        """Scores of ``h`` against every row, ``h @ weight.T``: the output projection of a
        tied model (Flax's ``Embed.attend``). Differentiable: its gradient adds into the same
        weight (and reaches ``h``, a Tensor). One BLAS product on the weight as it is stored.

        Shape:
            h (*, embedding_dim) -> (*, num_embeddings), the weight's dtype.
        """
        h = h if isinstance(h, Tensor) else Tensor(h)
        if h.ndim == 0 or h.shape[-1] != self.embedding_dim:
            raise ValueError(f"attend needs (..., {self.embedding_dim}) input, got shape {h.shape}")
        return h @ self.weight.T

    def bag(self, ids, offsets=None, mode: str = "sum", per_sample_weights=None,
            include_last_offset: bool = False) -> np.ndarray:
        """The table protocol's bag with this table's semantics: padding ids are left out of
        their bag (and its mean) and max_norm renormalizes, exactly as EmbeddingBag. Like every
        table's bag it takes float weights of any dtype."""
        if mode not in ("sum", "mean"):
            raise ValueError(f"mode must be 'sum' or 'mean', got {mode!r}")
        if per_sample_weights is not None:
            per_sample_weights = np.asarray(per_sample_weights, dtype=self.weight.dtype)
        with no_grad():
            pooled = embedding_bag(ids, self.weight, offsets, max_norm=self.max_norm, norm_type=self.norm_type,
                                   mode=mode, per_sample_weights=per_sample_weights,
                                   include_last_offset=include_last_offset, padding_idx=self.padding_idx)
        return pooled.data.astype(np.float32, copy=False)

    @property
    def storage(self) -> str:
        """The storage type (:data:`tinyembed.kernels.rows.STORAGE_TYPES`): the weight's dtype."""
        return str(self.weight.dtype)

    # -- the table protocol (tinyembed.tables): rows without autograd, stored arrays --
    def _rows(self, ids: np.ndarray) -> np.ndarray:
        return kernels.gather_rows(self.weight.data, ids).astype(np.float32, copy=False)

    def _rows_into(self, ids: np.ndarray, out: np.ndarray) -> None:
        if self.weight.dtype == np.float32:  # straight into the output, no temporary
            kernels.gather_rows(self.weight.data, ids, out=out)
        else:
            np.copyto(out, self._rows(ids))

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {"weight": self.weight.data}

    def config(self) -> dict:
        return {**super().config(), "padding_idx": self.padding_idx, "max_norm": self.max_norm,
                "norm_type": self.norm_type, "scale_grad_by_freq": self.scale_grad_by_freq,
                "sparse": self.sparse, "dtype": str(self.weight.dtype)}

    @classmethod
    def _from_state(cls, arrays, config) -> Embedding:
        weight = take_array(arrays, "weight", (config["num_embeddings"], config["embedding_dim"]),
                            config["dtype"])
        return cls.from_pretrained(weight, freeze=False, padding_idx=config["padding_idx"],
                                   max_norm=config["max_norm"], norm_type=config["norm_type"],
                                   scale_grad_by_freq=config["scale_grad_by_freq"], sparse=config["sparse"])


class EmbeddingBag(_TableModule):
    """Sums, means or maxes of bags of embeddings, without materializing each bag.

    Args:
        mode: 'sum', 'mean' (default) or 'max'.
        include_last_offset: offsets carry B + 1 entries, the last ending the last bag.
        Others as :class:`Embedding`.

    Shape:
        input (B, N) with offsets None, or (n,) with offsets (B,) -> output (B, embedding_dim).

    Examples:
        >>> bag = EmbeddingBag(10, 3, mode="sum", seed=0)
        >>> bag([1, 2, 4, 5, 4, 3], offsets=[0, 2]).shape
        (2, 3)
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, max_norm: float | None = None,
                 norm_type: float = 2.0, scale_grad_by_freq: bool = False, mode: str = "mean",
                 sparse: bool = False, _weight=None, include_last_offset: bool = False,
                 padding_idx: int | None = None, _freeze: bool = False, dtype=np.float32,
                 seed: int | None = None, init="normal"):
        _check_bag_mode(mode, sparse)
        super().__init__(num_embeddings, embedding_dim, padding_idx, max_norm, norm_type,
                         scale_grad_by_freq, sparse, _weight, _freeze, dtype, seed, init)
        self.mode = mode
        self.include_last_offset = bool(include_last_offset)

    def forward(self, input, offsets=None, per_sample_weights=None) -> Tensor:
        return embedding_bag(input, self.weight, offsets, max_norm=self.max_norm, norm_type=self.norm_type,
                             scale_grad_by_freq=self.scale_grad_by_freq, mode=self.mode, sparse=self.sparse,
                             per_sample_weights=per_sample_weights, include_last_offset=self.include_last_offset,
                             padding_idx=self.padding_idx)

    def extra_repr(self) -> str:
        extra = f", mode={self.mode!r}"
        if self.include_last_offset:
            extra += ", include_last_offset=True"
        return super().extra_repr() + extra
