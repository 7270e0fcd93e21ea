"""MixedDimEmbedding: frequent ids get wide rows, rare ids narrow ones, all projected to one width.

Ginart et al., "Mixed Dimension Embeddings with Application to Memory-Efficient
Recommendation Systems" (ISIT 2021, arXiv:1909.11810). Ids are ranked by frequency
and cut into blocks; block k stores an (n_k, d_k) table and a (d_k, D) projection,
so the row of an id of block k is ``weight_k[row] @ projection_k``. A block as wide
as the output (d_k == D) has no projection: it would only re-mix what the block's own
table can already learn (the paper's reference code, DLRM's ``PrEmbeddingBag``, uses
the identity there too).

The widths follow the paper's power-law sizing scheme (its Algorithm 1)::

    p_k = (sum of the counts of block k's ids / all counts) / n_k    # popularity of one id of block k
    d_k = lambda * p_k ** alpha

with ``lambda = budget / sum_k n_k p_k ** alpha`` when a parameter budget is given
(Algorithm 1), and otherwise ``lambda = D / max_k p_k ** alpha``, so the most popular
block gets the full width D (DLRM's ``md_solver`` with base dimension d0 = D). Each
d_k is then rounded to the nearest integer and clipped to [1, D]. ``alpha = 0`` gives
every block width D; a larger alpha narrows the rare blocks faster.

Stored arrays::

    id_rank              (V,) int32     the frequency rank of each id (0: the most frequent);
                                        block k holds ranks [start_k, start_k + n_k)
    block{k}_weight      (n_k, d_k)     the block's rows, in rank order
    block{k}_projection  (d_k, D)       only for blocks narrower than D
"""

from __future__ import annotations

import numpy as np

from .. import kernels
from ..checks import check_float_dtype, check_int, check_number, check_positive, check_positive_int
from ..nn import Module, Parameter
from ..nn.functional import embedding
from ..nn.table import EmbeddingTable, attend_input, register_table, take_array
from ..tensor import Tensor, cat

__all__ = ["MixedDimEmbedding", "power_law_dims"]

_MAX_ROWS = 2**31 - 1  # id_rank is int32


# -- the sizing rule ---------------------------------------------------------------------------
def power_law_dims(popularity, block_sizes, embedding_dim: int, alpha: float = 0.5,
                   budget: float | None = None) -> list[int]:
    """Block widths by the power-law sizing scheme of Ginart et al. (module docstring).

    Args:
        popularity: (K,) p_k, the query probability of one id of block k (>= 0, not all 0).
        block_sizes: (K,) n_k, ids per block (used by ``budget``).
        embedding_dim: D, the widest a block may be.
        alpha: the temperature, >= 0: 0 gives uniform widths D.
        budget: the parameter budget B of Algorithm 1 (numbers in the block tables,
            sum_k n_k d_k, before rounding and clipping); None: the most popular block gets D.

    Returns:
        K ints in [1, embedding_dim].

    Examples:
        >>> power_law_dims([0.04, 0.01, 0.0025], [10, 40, 160], 64, alpha=0.5)
        [64, 32, 16]
    """
    p = np.asarray(popularity, dtype=np.float64)
    n = np.asarray(block_sizes)
    dim = check_positive_int(embedding_dim, "embedding_dim")
    if p.ndim != 1 or len(p) == 0 or n.shape != p.shape:
        raise ValueError(f"popularity and block_sizes must be 1-D of one length, got shapes {p.shape} and {n.shape}")
    if not (np.isfinite(p).all() and (p >= 0).all() and (p > 0).any()):
        raise ValueError(f"popularity must be finite, >= 0 and not all 0, got {p.tolist()}")
    check_number(alpha, "alpha", low=0)
    weighted = p**alpha  # 0 ** 0 == 1: with alpha = 0 even an unqueried block gets D
    if budget is None:
        lam = dim / weighted.max()
    else:
        check_positive(budget, "budget")
        lam = budget / float(np.sum(n * weighted))
    return [int(d) for d in np.clip(np.rint(lam * weighted), 1, dim)]


# -- validation --------------------------------------------------------------------------------
def _check_counts(counts) -> np.ndarray:
    counts = np.asarray(counts)
    if counts.ndim != 1 or len(counts) == 0 or counts.dtype.kind not in "fiu":
        raise ValueError(f"counts must be a non-empty 1-D array of numbers, got {counts.dtype} shape {counts.shape}")
    bad = (~np.isfinite(counts) | (counts < 0)) if counts.dtype.kind == "f" else counts < 0
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"counts must be finite and >= 0, got counts[{i}] = {counts[i]}")
    if not counts.any():
        raise ValueError("counts are all 0: there is no frequency to rank ids by")
    return counts


def _check_blocks(block_sizes, block_dims, num_embeddings: int, dim: int) -> tuple[tuple, tuple]:
    sizes = tuple(block_sizes)
    dims = tuple(block_dims)
    if not sizes or len(sizes) != len(dims):
        raise ValueError(f"block_sizes and block_dims must be non-empty and of one length, "
                         f"got {len(sizes)} sizes and {len(dims)} dims")
    sizes = tuple(check_positive_int(n, f"block_sizes[{k}]") for k, n in enumerate(sizes))
    if sum(sizes) != num_embeddings:
        raise ValueError(f"block_sizes must add up to num_embeddings={num_embeddings}, "
                         f"got {list(sizes)} (sum {sum(sizes)})")
    dims = tuple(check_positive_int(d, f"block_dims[{k}]") for k, d in enumerate(dims))
    for k, d in enumerate(dims):
        if d > dim:
            raise ValueError(f"block_dims[{k}]={d} exceeds embedding_dim={dim}")
    return sizes, dims


def _check_id_rank(id_rank, num_embeddings: int) -> np.ndarray:
    if id_rank is None:
        return np.arange(num_embeddings, dtype=np.int32)
    id_rank = np.asarray(id_rank)
    if id_rank.shape != (num_embeddings,) or id_rank.dtype.kind not in "iu":
        raise ValueError(f"id_rank must be ({num_embeddings},) integers, got {id_rank.dtype} shape {id_rank.shape}")
    seen = np.zeros(num_embeddings, dtype=bool)
    inside = (id_rank >= 0) & (id_rank < num_embeddings)
    seen[id_rank[inside]] = True
    if not inside.all() or not seen.all():
        raise ValueError(f"id_rank must be a permutation of 0..{num_embeddings - 1} (one rank per id); "
                         f"rank {int(np.flatnonzero(~seen)[0])} is missing")
    return id_rank.astype(np.int32, copy=False)


# -- the differentiable gather back into id order ------------------------------------------------
def _interleave_rows(parts: list[Tensor], positions: list[np.ndarray], num_rows: int, dim: int,
                     dtype) -> Tensor:
    """Rows ``parts[k]`` placed at rows ``positions[k]`` of a (num_rows, dim) output.

    The positions partition 0..num_rows-1, so the backward just reads each part's rows back.
    """
    data = np.empty((num_rows, dim), dtype=dtype)
    for part, pos in zip(parts, positions, strict=True):
        data[pos] = part.data

    def backward(g):
        return tuple(g[pos] for pos in positions)

    return Tensor._from_op(data, tuple(parts), backward, "interleave_rows")


@register_table
class MixedDimEmbedding(Module, EmbeddingTable):
    """Frequency-ranked blocks of ids, block k with its own width d_k, projected to D.

    Args:
        num_embeddings: V.
        embedding_dim: D, the width of every output row.
        block_sizes: n_k, ids per block, most frequent block first; they add up to V.
        block_dims: d_k in [1, D], the stored width of each block.
        id_rank: (V,) the frequency rank of each id, a permutation of 0..V-1; None: id i
            has rank i (the vocabulary is already sorted by frequency).
        seed: seed of the initializer.
        dtype: float32 (default) or float64 parameters.

    A new table draws block weights from N(0, 1) and projections from N(0, 1/d_k), so
    each element of an output row has variance 1, as a dense ``Embedding``'s N(0, 1) rows.
    Build from token counts with :meth:`from_counts`. The stored arrays (``save``) have
    the names of ``state_dict``: ``id_rank``, ``block{k}_weight``, ``block{k}_projection``.

    A projected row comes from a BLAS product, whose rounding depends on how many rows it
    computes at once: ``lookup(ids)`` equals ``to_dense()[ids]`` up to float32 rounding
    (exactly, for the blocks of full width).

    Shape:
        input (*) integer ids -> output (*, embedding_dim).

    Examples:
        >>> table = MixedDimEmbedding(100, 16, block_sizes=[10, 30, 60], block_dims=[16, 8, 2], seed=0)
        >>> table([[0, 50, 99]]).shape, table.num_parameters()
        ((1, 3, 16), 680)
    """

    id_rank: np.ndarray  # a buffer (register_buffer), so declared for the type checker

    def __init__(self, num_embeddings: int, embedding_dim: int, block_sizes, block_dims, id_rank=None,
                 seed: int | None = None, dtype=np.float32):
        super().__init__()
        num = check_positive_int(num_embeddings, "num_embeddings")
        dim = check_positive_int(embedding_dim, "embedding_dim")
        sizes, dims = _check_blocks(block_sizes, block_dims, num, dim)
        dtype = check_float_dtype(dtype)
        rng = np.random.default_rng(seed)
        weights = [rng.standard_normal((n, d)).astype(dtype) for n, d in zip(sizes, dims, strict=True)]
        projections = [None if d == dim else (rng.standard_normal((d, dim)) / np.sqrt(d)).astype(dtype)
                       for d in dims]
        self._set_state(num, dim, _check_id_rank(id_rank, num), weights, projections)

    def _set_state(self, num: int, dim: int, id_rank: np.ndarray, weights: list, projections: list) -> None:
        if num > _MAX_ROWS:
            raise ValueError(f"num_embeddings must be at most {_MAX_ROWS} (int32 id_rank), got {num}")
        self.num_embeddings, self.embedding_dim = num, dim
        self.block_sizes = tuple(int(w.shape[0]) for w in weights)
        self.block_dims = tuple(int(w.shape[1]) for w in weights)
        self._starts = np.concatenate([[0], np.cumsum(self.block_sizes)]).astype(np.int64)  # (K + 1,)
        self.register_buffer("id_rank", id_rank)  # (V,) int32
        self._weights, self._projections = [], []
        for k, (w, p) in enumerate(zip(weights, projections, strict=True)):
            w = Parameter(w)
            setattr(self, f"block{k}_weight", w)  # (n_k, d_k)
            self._weights.append(w)
            if p is not None:
                p = Parameter(p)
                setattr(self, f"block{k}_projection", p)  # (d_k, D)
            self._projections.append(p)

    @classmethod
    def from_counts(cls, counts, embedding_dim: int, num_blocks: int | None = None, alpha: float = 0.5,
                    block_sizes=None, budget: float | None = None, seed: int | None = None,
                    dtype=np.float32) -> MixedDimEmbedding:
        """A table whose blocks and widths come from token frequencies.

        Ids are ranked by ``counts``, most frequent first (equal counts: the lower id
        first), cut into blocks, and each block's width set by :func:`power_law_dims`.

        Args:
            counts: (V,) non-negative frequencies, not all 0.
            embedding_dim: D.
            num_blocks: cut the ranks into this many blocks of equal size (the first
                ``V % num_blocks`` one id larger); default 4. Or give ``block_sizes``.
            alpha: the power-law temperature (>= 0; default 0.5).
            block_sizes: explicit n_k, most frequent block first, adding up to V.
            budget: Algorithm 1's parameter budget for the block tables; None gives
                the most popular block the full width D.
            seed, dtype: as the constructor.
        """
        counts = _check_counts(counts)
        num = len(counts)
        if block_sizes is None:
            num_blocks = 4 if num_blocks is None else num_blocks
            check_int(num_blocks, "num_blocks (at most V)", low=1, high=num)
            block_sizes = [len(b) for b in np.array_split(np.arange(num), num_blocks)]
        elif num_blocks is not None and num_blocks != len(block_sizes):
            raise ValueError(f"num_blocks={num_blocks!r} disagrees with the {len(block_sizes)} block_sizes given")
        sizes, _ = _check_blocks(block_sizes, [1] * len(block_sizes), num, 1)
        order = np.argsort(-counts.astype(np.float64), kind="stable")  # rank -> id
        id_rank = np.empty(num, dtype=np.int32)
        id_rank[order] = np.arange(num, dtype=np.int32)
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        share = np.add.reduceat(counts[order].astype(np.float64), starts) / float(counts.sum())
        popularity = share / np.asarray(sizes, dtype=np.float64)
        dims = power_law_dims(popularity, sizes, embedding_dim, alpha, budget)
        return cls(num, embedding_dim, sizes, dims, id_rank=id_rank, seed=seed, dtype=dtype)

    # -- forward -------------------------------------------------------------------------------
    def _blocks_of(self, flat: np.ndarray):
        """For each block that ``flat`` ids fall in: (k, positions in flat, rows in block k)."""
        ranks = self.id_rank[flat].astype(np.int64)
        block = np.searchsorted(self._starts, ranks, side="right") - 1  # (N,)
        for k in range(len(self.block_sizes)):
            pos = np.flatnonzero(block == k)
            if pos.size:
                yield k, pos, ranks[pos] - self._starts[k]

    def forward(self, ids) -> Tensor:
        ids = kernels.check_ids(ids, self.num_embeddings)
        flat = ids.reshape(-1)
        if flat.size == 0:  # no block is looked up, yet the empty output is still a function of the table
            x = embedding(flat, self._weights[0])
            x = x if self._projections[0] is None else x @ self._projections[0]
            return x.reshape(ids.shape + (self.embedding_dim,))
        parts, positions = [], []
        for k, pos, rows in self._blocks_of(flat):
            x = embedding(rows, self._weights[k])  # (n, d_k)
            if self._projections[k] is not None:
                x = x @ self._projections[k]  # (n, D)
            parts.append(x)
            positions.append(pos)
        out = _interleave_rows(parts, positions, flat.size, self.embedding_dim, self._weights[0].dtype)  # (N, D)
        return out.reshape(ids.shape + (self.embedding_dim,))

    def attend(self, h) -> Tensor:
        """Scores of ``h`` against every row, ``h @ to_dense().T``, block by block: ``(h @ P_k.T) @ W_k.T``
        (``h @ W_k.T`` for a full-width block), so a narrow block costs its own width, and no dense table
        is built. The blocks' scores, in rank order, are put back in id order. Differentiable: gradients
        reach every block's weight and projection, and ``h`` (a Tensor).

        Shape:
            h (*, embedding_dim) -> (*, num_embeddings).
        """
        h, _ = attend_input(h, self.embedding_dim)
        h = h if isinstance(h, Tensor) else Tensor(h)
        blocks = [(h if p is None else h @ p.T) @ w.T for w, p in zip(self._weights, self._projections, strict=True)]
        by_rank = blocks[0] if len(blocks) == 1 else cat(blocks, dim=-1)  # (*, V): column r is rank r
        return by_rank[..., self.id_rank.astype(np.int64)]

    def extra_repr(self) -> str:
        dtype = "" if self._weights[0].dtype == np.float32 else f", dtype={self._weights[0].dtype}"
        return (f"{self.num_embeddings}, {self.embedding_dim}, block_sizes={list(self.block_sizes)}, "
                f"block_dims={list(self.block_dims)}{dtype}")

    # -- the table protocol --------------------------------------------------------------------
    def _rows(self, ids: np.ndarray) -> np.ndarray:
        flat = ids.reshape(-1)
        out = np.empty((flat.size, self.embedding_dim), dtype=np.float32)
        for k, pos, rows in self._blocks_of(flat):
            x = kernels.gather_rows(self._weights[k].data, rows)  # (n, d_k)
            out[pos] = x if self._projections[k] is None else x @ self._projections[k].data
        return out.reshape(ids.shape + (self.embedding_dim,))

    def state_arrays(self) -> dict[str, np.ndarray]:
        arrays = {"id_rank": self.id_rank}
        for k, (w, p) in enumerate(zip(self._weights, self._projections, strict=True)):
            arrays[f"block{k}_weight"] = w.data
            if p is not None:
                arrays[f"block{k}_projection"] = p.data
        return arrays

    def config(self) -> dict:
        return {**super().config(), "block_sizes": list(self.block_sizes), "block_dims": list(self.block_dims),
                "dtype": str(self._weights[0].dtype)}

    @classmethod
    def _from_state(cls, arrays, config) -> MixedDimEmbedding:
        num, dim, dtype = config["num_embeddings"], config["embedding_dim"], config["dtype"]
        check_float_dtype(dtype)
        sizes, dims = _check_blocks(config["block_sizes"], config["block_dims"], num, dim)
        id_rank = _check_id_rank(take_array(arrays, "id_rank", (num,), np.int32), num)
        weights = [take_array(arrays, f"block{k}_weight", (n, d), dtype)
                   for k, (n, d) in enumerate(zip(sizes, dims, strict=True))]
        projections = [None if d == dim else take_array(arrays, f"block{k}_projection", (d, dim), dtype)
                       for k, d in enumerate(dims)]
        table = cls.__new__(cls)
        Module.__init__(table)
        table._set_state(num, dim, id_rank, weights, projections)
        return table
