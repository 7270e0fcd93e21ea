"""FactorizedEmbedding: a (V, D) table stored as the product of a (V, r) and an (r, D) factor.

ALBERT's factorized embedding parameterization (Lan et al. 2020, section 3.1): instead
of V x D numbers, store A (V, r) and B (r, D), and let row i be ``A[i] @ B``. With
r much smaller than D this stores (V + D) r numbers, and both factors train.

:meth:`FactorizedEmbedding.from_float` compresses an existing table with a truncated
SVD, which by the Eckart-Young theorem is the best rank-r approximation in Frobenius
(and spectral) norm: its error is the root of the sum of the squared singular values
it drops.
"""

from __future__ import annotations

import numpy as np

from .. import kernels
from ..checks import check_float_dtype, check_int, check_positive_int
from ..nn import Module, Parameter
from ..nn.functional import embedding
from ..nn.table import EmbeddingTable, as_float_table, attend_input, register_table, take_array
from ..tensor import Tensor

__all__ = ["FactorizedEmbedding"]


def _check_rank(rank, num_embeddings: int, embedding_dim: int) -> int:
    """A rank in [1, min(V, D)]: a larger one stores more than the dense table and represents nothing more."""
    limit = min(num_embeddings, embedding_dim)
    return check_int(rank, f"rank of a {num_embeddings} x {embedding_dim} table (at most min(V, D))",
                     low=1, high=limit)


@register_table
class FactorizedEmbedding(Module, EmbeddingTable):
    """An embedding table whose rows are ``A[i] @ B``: A (V, rank) and B (rank, D), both trained.

    Args:
        num_embeddings: V, the vocabulary size.
        embedding_dim: D, the width of the rows it returns.
        rank: r, the inner width, in [1, min(V, D)].
        seed: seed of the initializer.
        dtype: float32 (default) or float64 factors.

    A new table draws A from N(0, 1) and B from N(0, 1/r), so each element of a row
    has variance 1, as a dense ``Embedding``'s N(0, 1) rows do.

    Rows are computed by a BLAS matrix product, whose rounding depends on how many
    rows it computes at once: an id's row may differ in the last float32 bit between
    lookups of different batches (``lookup(ids)`` equals ``to_dense()[ids]`` up to rounding).

    Shape:
        input (*) integer ids -> output (*, embedding_dim).

    Examples:
        >>> table = FactorizedEmbedding(1000, 64, rank=8, seed=0)
        >>> table([[1, 2, 3]]).shape, table.num_parameters()
        ((1, 3, 64), 8512)
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, rank: int, seed: int | None = None,
                 dtype=np.float32):
        super().__init__()
        self.num_embeddings = check_positive_int(num_embeddings, "num_embeddings")
        self.embedding_dim = check_positive_int(embedding_dim, "embedding_dim")
        self.rank = _check_rank(rank, self.num_embeddings, self.embedding_dim)
        dtype = check_float_dtype(dtype)
        rng = np.random.default_rng(seed)
        self.A = Parameter(rng.standard_normal((self.num_embeddings, self.rank)).astype(dtype))  # (V, r)
        self.B = Parameter((rng.standard_normal((self.rank, self.embedding_dim))
                            / np.sqrt(self.rank)).astype(dtype))  # (r, D)

    # -- building from arrays ----------------------------------------------------------------
    @classmethod
    def from_factors(cls, A, B) -> FactorizedEmbedding:
        """The table with exactly these factors: A (V, r) and B (r, D), both float32 or both float64.

        The arrays are shared, not copied (as ``Embedding.from_pretrained``).
        """
        A, B = np.asarray(A), np.asarray(B)
        if A.ndim != 2 or B.ndim != 2 or A.shape[1] != B.shape[0]:
            raise ValueError(f"factors must be A (V, r) and B (r, D), got shapes {A.shape} and {B.shape}")
        if A.dtype != B.dtype:
            raise ValueError(f"factors must share a dtype, got A {A.dtype} and B {B.dtype}")
        check_float_dtype(A.dtype)
        table = cls.__new__(cls)
        Module.__init__(table)
        table.num_embeddings = check_positive_int(A.shape[0], "num_embeddings")
        table.embedding_dim = check_positive_int(B.shape[1], "embedding_dim")
        table.rank = _check_rank(A.shape[1], table.num_embeddings, table.embedding_dim)
        table.A = Parameter(A)
        table.B = Parameter(B)
        return table

    @classmethod
    def from_float(cls, table, rank: int, dtype=np.float32) -> FactorizedEmbedding:
        """The best rank-``rank`` approximation of a dense (V, D) float table: its truncated SVD.

        With ``table = U diag(s) Vt``, keeps the ``rank`` largest singular values and splits
        each between the factors as its square root: ``A = U_r diag(sqrt(s_r))`` and
        ``B = diag(sqrt(s_r)) Vt_r``. Both factors then have the same singular values
        (sqrt(s_r)), so neither dominates the gradient when the table trains further.
        The SVD is computed in float64; the factors are stored in ``dtype``.

        Args:
            table: (V, D) float array, or any EmbeddingTable (its ``to_dense()`` is used).
            rank: r in [1, min(V, D)].
            dtype: float32 (default) or float64 factors.

        Raises:
            ValueError: a rank outside [1, min(V, D)] (the message names both), a table
                that is not 2-D, or one with non-finite values.
        """
        dense = as_float_table(table, np.float64)
        num, dim = dense.shape
        rank = _check_rank(rank, check_positive_int(num, "num_embeddings"), check_positive_int(dim, "embedding_dim"))
        dtype = check_float_dtype(dtype)
        u, s, vt = np.linalg.svd(dense.astype(np.float64), full_matrices=False)  # (V, k), (k,), (k, D)
        root = np.sqrt(s[:rank])
        A = (u[:, :rank] * root).astype(dtype)  # (V, r)
        B = (root[:, None] * vt[:rank]).astype(dtype)  # (r, D)
        return cls.from_factors(A, B)

    # -- forward: differentiable, reaching both factors ---------------------------------------
    def forward(self, ids) -> Tensor:
        ids = kernels.check_ids(ids, self.num_embeddings)
        inner = embedding(ids.reshape(-1), self.A)  # (N, r)
        return (inner @ self.B).reshape(ids.shape + (self.embedding_dim,))  # (*ids, D)

    def attend(self, h) -> Tensor:
        """Scores of ``h`` against every row, ``h @ (A @ B).T``, computed as ``(h @ B.T) @ A.T``: (r + V)
        numbers a vector instead of D per row, and no dense table. Differentiable: gradients reach
        A, B and ``h`` (a Tensor).

        Shape:
            h (*, embedding_dim) -> (*, num_embeddings).
        """
        h, _ = attend_input(h, self.embedding_dim)
        h = h if isinstance(h, Tensor) else Tensor(h)
        return (h @ self.B.T) @ self.A.T

    def extra_repr(self) -> str:
        dtype = "" if self.A.dtype == np.float32 else f", dtype={self.A.dtype}"
        return f"{self.num_embeddings}, {self.embedding_dim}, rank={self.rank}{dtype}"

    # -- the table protocol --------------------------------------------------------------------
    def _rows(self, ids: np.ndarray) -> np.ndarray:
        inner = kernels.gather_rows(self.A.data, ids.reshape(-1))  # (N, r)
        return (inner @ self.B.data).astype(np.float32, copy=False).reshape(ids.shape + (self.embedding_dim,))

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {"A": self.A.data, "B": self.B.data}

    def config(self) -> dict:
        return {**super().config(), "rank": self.rank, "dtype": str(self.A.dtype)}

    @classmethod
    def _from_state(cls, arrays, config) -> FactorizedEmbedding:
        num, dim, rank = config["num_embeddings"], config["embedding_dim"], config["rank"]
        A = take_array(arrays, "A", (num, rank), config["dtype"])
        B = take_array(arrays, "B", (rank, dim), config["dtype"])
        return cls.from_factors(A, B)
