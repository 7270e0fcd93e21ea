"""Tables with fewer rows than ids: the hashing trick and the quotient-remainder trick.

    HashedEmbedding   id -> k buckets of a small table by universal hashing; rows summed
                      (Weinberger et al. 2009, "Feature Hashing for Large Scale Multitask
                      Learning"; several hashes per id as in Svenstrup et al. 2017, "Hash
                      Embeddings for Efficient Word Representations", without their
                      per-id importance weights). Distinct ids may share every bucket.
    QREmbedding       id -> (id // m, id % m): one row of a quotient table and one of a
                      remainder table, combined by product, sum or concatenation (Shi et
                      al. 2020, "Compositional Embeddings Using Complementary
                      Partitions for Memory-Efficient Recommendation Systems").
                      Distinct ids always get distinct index pairs.

Both are trainable Modules: ``forward`` runs :func:`tinyembed.nn.functional.embedding`
on their small tables, so gradients reach them (row-sparse with ``sparse=True``).

The hash is the Carter-Wegman universal family over the Mersenne prime p = 2^61 - 1,
``h(i) = ((a * i + b) mod p) mod num_buckets``, computed exactly on uint64 without
overflow (:func:`universal_hash`; the multiplication is split into 32-bit halves
and reduced with 2^61 = 1 mod p, as in Thorup, "High Speed Hashing for Integers and
Strings", 2015). The (a, b) of every hash are stored with the table, so a saved and
reloaded table sends every id to the same buckets.
"""

from __future__ import annotations

import numpy as np

from .. import kernels
from ..checks import check_choice, check_float_dtype, check_int, check_positive_int
from ..nn import Module, Parameter
from ..nn.functional import embedding
from ..nn.init import get as get_initializer
from ..nn.init import normal
from ..nn.table import EmbeddingTable, attend_input, register_table, take_array
from ..tensor import Tensor, cat

__all__ = ["HashedEmbedding", "QREmbedding", "MERSENNE_61", "universal_hash", "draw_hash_params"]

MERSENNE_61 = (1 << 61) - 1  # the prime p of the hash family

_P = np.uint64(MERSENNE_61)
_LOW32 = np.uint64(0xFFFFFFFF)
_LOW29 = np.uint64((1 << 29) - 1)
_U3, _U29, _U32, _U61 = np.uint64(3), np.uint64(29), np.uint64(32), np.uint64(61)

_HASH_COMBINERS = ("sum", "mean")
_QR_COMBINERS = ("mult", "add", "concat")


# -- the hash family: pure functions on arrays ------------------------------------------------
def _mod_p(v: np.ndarray) -> np.ndarray:
    """``v mod p`` for uint64 ``v`` (any value below 2^64), using 2^61 = 1 (mod p)."""
    v = (v & _P) + (v >> _U61)  # < 2^61 + 8
    v = (v & _P) + (v >> _U61)  # <= p
    return v - np.where(v >= _P, _P, np.uint64(0))  # no v - p where v < p: it would wrap


def _mul_mod_p(a: int, x: np.ndarray) -> np.ndarray:
    """``(a * x) mod p`` for a < p and uint64 x < p, exactly, without 128-bit integers."""
    a_hi, a_lo = np.uint64(a >> 32), np.uint64(a & 0xFFFFFFFF)  # a_hi < 2^29
    x_hi, x_lo = x >> _U32, x & _LOW32                           # x_hi < 2^29
    hi = a_hi * x_hi                   # < 2^58, weighs 2^64 = 8 (mod p)
    mid = a_hi * x_lo + a_lo * x_hi    # < 2^62, weighs 2^32
    lo = a_lo * x_lo                   # < 2^64
    # mid * 2^32 = (mid >> 29) * 2^61 + (mid & (2^29 - 1)) * 2^32, and 2^61 = 1 (mod p).
    total = (hi << _U3) + (mid >> _U29) + ((mid & _LOW29) << _U32) + _mod_p(lo)  # < 2^63
    return _mod_p(total)


def universal_hash(ids: np.ndarray, a: int, b: int, num_buckets: int) -> np.ndarray:
    """``((a * i + b) mod p) mod num_buckets`` for every non-negative int64 id ``i``, p = 2^61 - 1.

    For 1 <= a < p and 0 <= b < p drawn uniformly, two ids that differ mod p land in
    the same bucket with probability about 1 / num_buckets (Carter and Wegman, 1979).

    Shape:
        ids (*) int64 >= 0 -> (*) int64 in [0, num_buckets).
    """
    x = _mod_p(np.asarray(ids, dtype=np.int64).astype(np.uint64))
    h = _mod_p(_mul_mod_p(int(a), x) + np.uint64(b))  # a*x mod p + b < 2^62
    return (h % np.uint64(num_buckets)).astype(np.int64)


def draw_hash_params(num_hashes: int, rng: np.random.Generator) -> np.ndarray:
    """(num_hashes, 2) int64 rows (a, b) with 1 <= a < p and 0 <= b < p: one hash function each."""
    a = rng.integers(1, MERSENNE_61, size=num_hashes, dtype=np.int64)
    b = rng.integers(0, MERSENNE_61, size=num_hashes, dtype=np.int64)
    return np.stack([a, b], axis=1)


def _check_hash_params(params, num_hashes: int, name: str) -> np.ndarray:
    params = np.asarray(params)
    if params.shape != (num_hashes, 2) or params.dtype != np.int64:
        raise ValueError(f"{name} must be int64 of shape ({num_hashes}, 2), got {params.dtype}{list(params.shape)}")
    a, b = params[:, 0], params[:, 1]
    if ((a < 1) | (a >= MERSENNE_61) | (b < 0) | (b >= MERSENNE_61)).any():
        k = int(np.argmax((a < 1) | (a >= MERSENNE_61) | (b < 0) | (b >= MERSENNE_61)))
        raise ValueError(f"{name} row {k} is (a={int(a[k])}, b={int(b[k])}); a hash needs "
                         f"1 <= a < 2^61 - 1 and 0 <= b < 2^61 - 1")
    return params


def _check_seed(seed) -> None:
    check_int(seed, "seed", low=0, none_ok=True)


def _check_choice(value, choices: tuple, name: str) -> str:
    check_choice(value, choices, name)
    return value


# -- HashedEmbedding ----------------------------------------------------------------------------
@register_table
class HashedEmbedding(Module, EmbeddingTable):
    """The hashing trick: ``num_embeddings`` ids share a trainable (num_buckets, dim) table.

    Id ``i`` is sent to ``num_hashes`` buckets ``h_k(i)`` (:func:`universal_hash`, each
    with its own (a_k, b_k) drawn from ``seed``); its row is the sum (or mean) of those
    buckets' rows. With ``signed=True`` each bucket's row is first multiplied by a sign
    ``s_k(i) = +1 if ((c_k * i + d_k) mod p) is even else -1`` from a second, independent
    hash, as in Weinberger et al.: colliding ids then add with random signs, so in
    expectation a collision adds no bias to inner products. The default is unsigned:
    when two hashes of one id pick the same bucket with opposite signs the id's row is
    exactly zero (probability about 1 / (2 * num_buckets) per pair of hashes), which a
    trained table cannot escape.

    Args:
        num_embeddings: ids (the vocabulary size).
        embedding_dim: columns.
        num_buckets: rows of the stored table.
        num_hashes: buckets per id (k).
        seed: seeds the hash functions and the table's initialization (separate streams,
            so a different ``init`` keeps the same hashes).
        combiner: 'sum' or 'mean' of an id's k rows.
        signed: multiply each bucket's row by a hashed +-1 sign.
        sparse: give ``weight.grad`` as a :class:`RowSparseGrad`.
        dtype: float32 (default) or float64 (for gradient checks); lookups are float32.
        init: initializer of the bucket table ('normal' (N(0, 1)), 'uniform', ... as
            :class:`~tinyembed.nn.Embedding`). An id's row then has variance k with
            'sum' and 1/k with 'mean'.

    Stores:
        ``weight`` (num_buckets, dim); ``hash_params`` (k, 2) int64 rows (a, b);
        with ``signed``, ``sign_params`` (k, 2) int64 rows (c, d).

    Shape:
        input (*) integer ids -> output (*, embedding_dim).

    Examples:
        >>> table = HashedEmbedding(1000, 8, num_buckets=64, num_hashes=2, seed=0)
        >>> table([[1, 2], [3, 999]]).shape
        (2, 2, 8)
        >>> table.bucket_ids([5]).shape  # two buckets per id
        (1, 2)
    """

    # Buffers (register_buffer), so declared for the type checker; sign_params only when signed.
    hash_params: np.ndarray
    sign_params: np.ndarray

    def __init__(self, num_embeddings: int, embedding_dim: int, num_buckets: int, num_hashes: int = 2,
                 seed: int | None = 0, combiner: str = "sum", signed: bool = False, sparse: bool = False,
                 dtype=np.float32, init="normal", *, _weight=None, _hash_params=None, _sign_params=None):
        super().__init__()
        self.num_embeddings = check_positive_int(num_embeddings, "num_embeddings")
        self.embedding_dim = check_positive_int(embedding_dim, "embedding_dim")
        self.num_buckets = check_positive_int(num_buckets, "num_buckets")
        self.num_hashes = check_positive_int(num_hashes, "num_hashes")
        self.combiner = _check_choice(combiner, _HASH_COMBINERS, "combiner")
        _check_seed(seed)
        self.signed = bool(signed)
        self.sparse = bool(sparse)
        dtype = check_float_dtype(dtype)
        # Two streams: changing the initializer must not change where ids hash to.
        hash_seq, init_seq = np.random.SeedSequence(seed).spawn(2)
        hash_rng = np.random.default_rng(hash_seq)
        if _hash_params is None:
            _hash_params = draw_hash_params(self.num_hashes, hash_rng)
        if _sign_params is None and self.signed:
            _sign_params = draw_hash_params(self.num_hashes, hash_rng)
        self.register_buffer("hash_params", _check_hash_params(_hash_params, self.num_hashes, "hash_params"))
        if self.signed:
            self.register_buffer("sign_params", _check_hash_params(_sign_params, self.num_hashes, "sign_params"))
        elif _sign_params is not None:
            raise ValueError("sign_params given to an unsigned table (signed=False)")
        if _weight is None:
            shape = (self.num_buckets, self.embedding_dim)
            _weight = get_initializer(init)(shape, np.random.default_rng(init_seq), dtype)
        elif _weight.shape != (self.num_buckets, self.embedding_dim) or _weight.dtype != dtype:
            raise ValueError(f"_weight is {_weight.dtype}{list(_weight.shape)}, expected "
                             f"{dtype}{[self.num_buckets, self.embedding_dim]}")
        self.weight = Parameter(_weight)

    # -- hashing -----------------------------------------------------------------------------
    def _bucket_ids(self, ids: np.ndarray) -> np.ndarray:
        """(*ids.shape, k) buckets of validated ids."""
        return np.stack([universal_hash(ids, a, b, self.num_buckets) for a, b in self.hash_params.tolist()],
                        axis=-1)

    def _signs(self, ids: np.ndarray) -> np.ndarray:
        """(*ids.shape, k) +-1 of validated ids, in the table's dtype (all +1 when unsigned)."""
        if not self.signed:
            return np.ones(ids.shape + (self.num_hashes,), dtype=self.weight.dtype)
        parity = np.stack([universal_hash(ids, c, d, 2) for c, d in self.sign_params.tolist()], axis=-1)
        return (1 - 2 * parity).astype(self.weight.dtype)

    def bucket_ids(self, ids) -> np.ndarray:
        """The k buckets of each id: (*ids.shape, num_hashes) int64."""
        return self._bucket_ids(kernels.check_ids(ids, self.num_embeddings))

    def signs(self, ids) -> np.ndarray:
        """The +-1 sign of each of an id's buckets: (*ids.shape, num_hashes) (ones when unsigned)."""
        return self._signs(kernels.check_ids(ids, self.num_embeddings))

    # -- forward: differentiable ---------------------------------------------------------------
    def forward(self, ids) -> Tensor:
        ids = kernels.check_ids(ids, self.num_embeddings)
        x = embedding(self._bucket_ids(ids), self.weight, sparse=self.sparse)  # (*, k, D)
        if self.signed:
            x = x * Tensor(self._signs(ids)[..., None])
        x = x.sum(axis=-2)  # (*, D)
        return x * (1.0 / self.num_hashes) if self.combiner == "mean" else x

    # -- the table protocol ------------------------------------------------------------------
    def _rows(self, ids: np.ndarray) -> np.ndarray:
        rows = kernels.gather_rows(self.weight.data, self._bucket_ids(ids))  # (*, k, D)
        if self.signed:
            rows *= self._signs(ids)[..., None]
        out = rows.sum(axis=-2)
        if self.combiner == "mean":
            out /= self.num_hashes
        return out.astype(np.float32, copy=False)

    def attend(self, h) -> Tensor:
        """Scores of ``h`` against every id's row, ``h @ to_dense().T``, through the buckets: the scores
        against the B bucket rows (``h @ weight.T``), then for each id the (signed) sum of its k
        buckets' scores (their mean for 'mean'). No dense table; differentiable: gradients reach the
        bucket table and ``h`` (a Tensor).

        Shape:
            h (*, embedding_dim) -> (*, num_embeddings).
        """
        h, _ = attend_input(h, self.embedding_dim)
        h = h if isinstance(h, Tensor) else Tensor(h)
        ids = np.arange(self.num_embeddings, dtype=np.int64)
        buckets, signs = self._bucket_ids(ids), self._signs(ids)  # (V, k) each
        per_bucket = h @ self.weight.T  # (*, B)
        scores = None
        for k in range(self.num_hashes):
            part = per_bucket[..., buckets[:, k]]  # (*, V)
            if self.signed:
                part = part * Tensor(signs[:, k])
            scores = part if scores is None else scores + part
        assert scores is not None  # num_hashes >= 1
        return scores * (1.0 / self.num_hashes) if self.combiner == "mean" else scores

    def state_arrays(self) -> dict[str, np.ndarray]:
        arrays = {"weight": self.weight.data, "hash_params": self.hash_params}
        if self.signed:
            arrays["sign_params"] = self.sign_params
        return arrays

    def config(self) -> dict:
        return {**super().config(), "num_buckets": self.num_buckets, "num_hashes": self.num_hashes,
                "combiner": self.combiner, "signed": self.signed, "sparse": self.sparse,
                "dtype": str(self.weight.dtype)}

    @classmethod
    def _from_state(cls, arrays, config) -> HashedEmbedding:
        k = config["num_hashes"]
        weight = take_array(arrays, "weight", (config["num_buckets"], config["embedding_dim"]), config["dtype"])
        hash_params = take_array(arrays, "hash_params", (k, 2), np.int64)
        sign_params = take_array(arrays, "sign_params", (k, 2), np.int64) if config["signed"] else None
        return cls(config["num_embeddings"], config["embedding_dim"], config["num_buckets"], k,
                   combiner=config["combiner"], signed=config["signed"], sparse=config["sparse"],
                   dtype=config["dtype"], _weight=weight, _hash_params=hash_params, _sign_params=sign_params)

    def extra_repr(self) -> str:
        parts = [f"{self.num_embeddings}, {self.embedding_dim}", f"num_buckets={self.num_buckets}",
                 f"num_hashes={self.num_hashes}", f"combiner={self.combiner!r}"]
        if self.signed:
            parts.append("signed=True")
        if self.sparse:
            parts.append("sparse=True")
        if self.weight.dtype != np.float32:
            parts.append(f"dtype={self.weight.dtype}")
        return ", ".join(parts)


# -- QREmbedding ----------------------------------------------------------------------------------
@register_table
class QREmbedding(Module, EmbeddingTable):
    """The quotient-remainder trick: id ``i`` is the pair (i // m, i % m), m = num_collisions.

    A quotient table Q has ceil(num_embeddings / m) rows, a remainder table R has m rows;
    the row of ``i`` is ``Q[i // m] * R[i % m]`` ('mult', the paper's default),
    ``Q[i // m] + R[i % m]`` ('add') or ``[Q[i // m], R[i % m]]`` ('concat': each table
    has embedding_dim / 2 columns). Different ids always have different (quotient,
    remainder) pairs (the two partitions are complementary), so unlike hashing with the
    same memory no two ids are forced to share a row; with generic tables their rows differ.

    Args:
        num_embeddings: ids (the vocabulary size).
        embedding_dim: columns of a row; even for 'concat'.
        num_collisions: m, the number of ids that share each quotient row.
        combiner: 'mult', 'add' or 'concat'.
        seed: seed of the initializer's random generator.
        sparse: give the tables' gradients as :class:`RowSparseGrad`.
        dtype: float32 (default) or float64 (for gradient checks); lookups are float32.
        init: initializer of both tables (a name or callable, as :class:`~tinyembed.nn.Embedding`).
            The default, None, is N(0, s^2) with s chosen so that each entry of a row has
            mean 0 and variance 1, as Embedding's N(0, 1): s = 1 for 'mult' and 'concat',
            s = 1/sqrt(2) for 'add'. To fit a pretrained table, match its scale instead
            (for 'mult', entries of std sqrt(sigma) give products of std sigma).

    Stores:
        ``quotient_weight`` (ceil(V / m), d) and ``remainder_weight`` (m, d), d = embedding_dim
        (embedding_dim / 2 for 'concat').

    Shape:
        input (*) integer ids -> output (*, embedding_dim).

    Examples:
        >>> table = QREmbedding(1000, 8, num_collisions=32, seed=0)
        >>> table.quotient_weight.shape, table.remainder_weight.shape
        ((32, 8), (32, 8))
        >>> table([[1, 2], [3, 999]]).shape
        (2, 2, 8)
    """

    # Set by setattr in the loop that checks both given weights.
    quotient_weight: Parameter
    remainder_weight: Parameter

    def __init__(self, num_embeddings: int, embedding_dim: int, num_collisions: int, combiner: str = "mult",
                 seed: int | None = None, sparse: bool = False, dtype=np.float32, init=None, *,
                 _quotient_weight=None, _remainder_weight=None):
        super().__init__()
        self.num_embeddings = check_positive_int(num_embeddings, "num_embeddings")
        self.embedding_dim = check_positive_int(embedding_dim, "embedding_dim")
        self.num_collisions = check_positive_int(num_collisions, "num_collisions")
        self.combiner = _check_choice(combiner, _QR_COMBINERS, "combiner")
        if combiner == "concat" and self.embedding_dim % 2:
            raise ValueError(f"combiner 'concat' splits embedding_dim between the two tables: "
                             f"it must be even, got {self.embedding_dim}")
        _check_seed(seed)
        self.sparse = bool(sparse)
        dtype = check_float_dtype(dtype)
        self.num_quotients = -(-self.num_embeddings // self.num_collisions)  # ceil(V / m)
        width = self.embedding_dim // 2 if combiner == "concat" else self.embedding_dim
        rng = np.random.default_rng(seed)
        if init is None:  # each entry of a row: mean 0, variance 1
            init = normal(std=np.sqrt(0.5) if combiner == "add" else 1.0)
        initializer = get_initializer(init)
        given = {"_quotient_weight": (_quotient_weight, self.num_quotients),
                 "_remainder_weight": (_remainder_weight, self.num_collisions)}
        for name, (array, rows) in given.items():
            if array is None:
                array = initializer((rows, width), rng, dtype)
            elif array.shape != (rows, width) or array.dtype != dtype:
                raise ValueError(f"{name} is {array.dtype}{list(array.shape)}, expected {dtype}{[rows, width]}")
            setattr(self, name[1:], Parameter(array))

    def split_ids(self, ids) -> tuple[np.ndarray, np.ndarray]:
        """(quotient, remainder) indices of ``ids``: ``(ids // m, ids % m)``, each of ids' shape."""
        ids = kernels.check_ids(ids, self.num_embeddings)
        return ids // self.num_collisions, ids % self.num_collisions

    # -- forward: differentiable ---------------------------------------------------------------
    def forward(self, ids) -> Tensor:
        q, r = self.split_ids(ids)
        xq = embedding(q, self.quotient_weight, sparse=self.sparse)   # (*, d)
        xr = embedding(r, self.remainder_weight, sparse=self.sparse)  # (*, d)
        if self.combiner == "mult":
            return xq * xr
        if self.combiner == "add":
            return xq + xr
        return cat([xq, xr], dim=-1)  # (*, 2d)

    # -- the table protocol ------------------------------------------------------------------
    def _rows(self, ids: np.ndarray) -> np.ndarray:
        xq = kernels.gather_rows(self.quotient_weight.data, ids // self.num_collisions)
        xr = kernels.gather_rows(self.remainder_weight.data, ids % self.num_collisions)
        if self.combiner == "mult":
            out = xq * xr
        elif self.combiner == "add":
            out = xq + xr
        else:
            out = np.concatenate([xq, xr], axis=-1)
        return out.astype(np.float32, copy=False)

    def attend(self, h) -> Tensor:
        """Scores of ``h`` against every id's row, ``h @ to_dense().T``, through the two tables: id
        ``q * m + r`` scores ``sum_d h_d Q[q, d] R[r, d]`` ('mult': ``(h * Q) @ R.T``, a (*, ceil(V/m), D)
        temporary), ``h @ Q[q] + h @ R[r]`` ('add') or ``h[:d] @ Q[q] + h[d:] @ R[r]`` ('concat'), laid
        out as a (*, ceil(V/m), m) grid whose first V entries are the ids in order. No dense table;
        differentiable: gradients reach both tables and ``h`` (a Tensor).

        Shape:
            h (*, embedding_dim) -> (*, num_embeddings).
        """
        h, lead = attend_input(h, self.embedding_dim)
        h = h if isinstance(h, Tensor) else Tensor(h)
        q, r = self.quotient_weight, self.remainder_weight
        if self.combiner == "mult":
            grid = (h.unsqueeze(-2) * q) @ r.T                                    # (*, nq, m)
        elif self.combiner == "add":
            grid = (h @ q.T).unsqueeze(-1) + (h @ r.T).unsqueeze(-2)
        else:
            half = self.embedding_dim // 2
            grid = (h[..., :half] @ q.T).unsqueeze(-1) + (h[..., half:] @ r.T).unsqueeze(-2)
        flat = grid.reshape(*lead, self.num_quotients * self.num_collisions)
        return flat[..., :self.num_embeddings]

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {"quotient_weight": self.quotient_weight.data, "remainder_weight": self.remainder_weight.data}

    def config(self) -> dict:
        return {**super().config(), "num_collisions": self.num_collisions, "combiner": self.combiner,
                "sparse": self.sparse, "dtype": str(self.quotient_weight.dtype)}

    @classmethod
    def _from_state(cls, arrays, config) -> QREmbedding:
        num, dim, m = config["num_embeddings"], config["embedding_dim"], config["num_collisions"]
        for key, value in (("num_embeddings", num), ("embedding_dim", dim), ("num_collisions", m)):
            check_positive_int(value, key)  # before they size the expected arrays
        width = dim // 2 if config["combiner"] == "concat" else dim
        quotient = take_array(arrays, "quotient_weight", (-(-num // m), width), config["dtype"])
        remainder = take_array(arrays, "remainder_weight", (m, width), config["dtype"])
        return cls(num, dim, m, combiner=config["combiner"], sparse=config["sparse"], dtype=config["dtype"],
                   _quotient_weight=quotient, _remainder_weight=remainder)

    def extra_repr(self) -> str:
        parts = [f"{self.num_embeddings}, {self.embedding_dim}", f"num_collisions={self.num_collisions}",
                 f"combiner={self.combiner!r}"]
        if self.sparse:
            parts.append("sparse=True")
        if self.quotient_weight.dtype != np.float32:
            parts.append(f"dtype={self.quotient_weight.dtype}")
        return ", ".join(parts)
