"""PrunedEmbedding: keep the rows of the most frequent ids, hash the rest into a few shared rows.

Token frequencies are heavily skewed (Zipf): a small share of a vocabulary covers
most of the text. Pruning keeps the K most frequent ids' rows exactly and sends
every other id to one of B out-of-vocabulary (OOV) rows chosen by a hash of the id,
so a rare id still gets a row of its own neighbourhood rather than one shared
``[UNK]``. The table stores::

    weight  (K + B, D) float32   rows 0..K-1: the kept rows, most frequent id first;
                                 rows K..K+B-1: the OOV buckets
    id_map  (V,) int32           the row of each id: its kept row, or K + its bucket

The id map is an index, not a parameter: it counts in ``nbytes`` but not in
``num_parameters``. The table is frozen (it has no gradient path).
"""

from __future__ import annotations

import numpy as np

from .. import kernels
from ..checks import check_int, check_nonnegative_int, check_positive_int
from ..nn import Module
from ..nn.table import EmbeddingTable, as_float_table, register_table, take_array

__all__ = ["PrunedEmbedding", "oov_bucket"]

_MAX_ROWS = 2**31 - 1  # the id map is int32
_MASK64 = (1 << 64) - 1


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's output function (Steele, Lea and Flood 2014) on uint64: a bijection
    whose every input bit affects every output bit. uint64 arithmetic wraps modulo 2**64."""
    z = x + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def oov_bucket(ids, seed: int, num_buckets: int) -> np.ndarray:
    """The OOV bucket of each id: ``splitmix64(id XOR splitmix64(seed)) mod num_buckets`` (int64).

    Deterministic (no process salt, unlike Python's ``hash``), so a saved table and a
    rebuilt one agree.
    """
    seed = check_nonnegative_int(seed, "seed")
    if seed > _MASK64:
        raise ValueError(f"seed must be below 2**64, got {seed}")
    num_buckets = check_positive_int(num_buckets, "num_buckets")
    ids = np.asarray(ids, dtype=np.int64)
    key = _splitmix64(np.array([seed], dtype=np.uint64))  # (1,): arrays wrap silently, scalars warn
    mixed = _splitmix64(ids.reshape(-1).astype(np.uint64) ^ key)
    return (mixed % np.uint64(num_buckets)).astype(np.int64).reshape(ids.shape)


def _check_counts(counts, num_embeddings: int) -> np.ndarray:
    counts = np.asarray(counts)
    if counts.shape != (num_embeddings,):
        raise ValueError(f"counts must have one entry per id, shape ({num_embeddings},), got shape {counts.shape}")
    if counts.dtype.kind not in "fiu":
        raise ValueError(f"counts must be numbers, got dtype {counts.dtype}")
    bad = ~np.isfinite(counts) | (counts < 0) if counts.dtype.kind == "f" else counts < 0
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"counts must be finite and >= 0, got counts[{i}] = {counts[i]}")
    return counts


def _frequency_order(counts: np.ndarray) -> np.ndarray:
    """Ids from most to least frequent; equal counts keep the lower id first."""
    return np.argsort(-counts.astype(np.float64), kind="stable")


@register_table
class PrunedEmbedding(EmbeddingTable, Module):
    """The K most frequent ids keep their rows; every other id shares one of B hashed OOV rows.

    Build one with :meth:`from_counts`; the constructor takes the stored arrays.

    Args:
        weight: (keep + oov_buckets, D) float32 rows, the kept rows first.
        id_map: (V,) ints in [0, keep + oov_buckets): the row of each id.
        keep: K, the number of kept rows.
        seed: the hash seed the OOV buckets were chosen with (kept for the record).

    Shape:
        input (*) integer ids -> output (*, embedding_dim), float32.

    Examples:
        >>> table = np.arange(12, dtype=np.float32).reshape(6, 2)
        >>> pruned = PrunedEmbedding.from_counts(table, [5, 0, 9, 1, 7, 0], keep=3, oov_buckets=1)
        >>> pruned.lookup([2, 4, 0, 1])  # kept ids are exact; 1, 3 and 5 share the mean of their rows
        array([[4., 5.],
               [8., 9.],
               [0., 1.],
               [6., 7.]], dtype=float32)
    """

    # Buffers (register_buffer), so declared for the type checker.
    weight: np.ndarray
    id_map: np.ndarray

    def __init__(self, weight, id_map, keep: int, seed: int = 0):
        Module.__init__(self)
        weight = np.asarray(weight)
        id_map = np.asarray(id_map)
        if weight.ndim != 2 or weight.dtype != np.float32:
            raise ValueError(f"weight must be a 2-D float32 array, got {weight.dtype} shape {weight.shape}")
        rows, dim = weight.shape
        self.embedding_dim = check_positive_int(dim, "embedding_dim")
        if id_map.ndim != 1 or id_map.dtype.kind not in "iu":
            raise ValueError(f"id_map must be a 1-D integer array, got {id_map.dtype} shape {id_map.shape}")
        self.num_embeddings = check_positive_int(len(id_map), "num_embeddings")
        if self.num_embeddings > _MAX_ROWS:
            raise ValueError(f"num_embeddings must be at most {_MAX_ROWS} (int32 id map), got {self.num_embeddings}")
        self.keep = check_positive_int(keep, "keep")
        if self.keep > min(rows, self.num_embeddings):
            raise ValueError(f"keep={keep} exceeds the {rows} rows or the {self.num_embeddings} ids")
        self.oov_buckets = rows - self.keep
        bad = (id_map < 0) | (id_map >= rows)
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"id_map[{i}] = {int(id_map[i])} is not a row of the {rows}-row weight")
        self.seed = check_nonnegative_int(seed, "seed")
        self.register_buffer("weight", weight)  # (K + B, D); buffers: in state_dict, not trained
        self.register_buffer("id_map", id_map.astype(np.int32, copy=False))  # (V,)

    @classmethod
    def from_counts(cls, table, counts, keep: int, oov_buckets: int, seed: int = 0) -> PrunedEmbedding:
        """Prune a dense table by token frequency.

        Ids are ranked by ``counts``, most frequent first, equal counts by the lower id.
        The first ``keep`` ids keep their rows exactly (kept row r is the id of rank r).
        Every other id goes to OOV bucket :func:`oov_bucket` (id, seed, oov_buckets), and
        each bucket's row starts as the unweighted mean of the original rows of the
        pruned ids it serves (zero if it serves none): the point nearest, in squared
        error, to every row it replaces.

        Args:
            table: (V, D) float array, or any EmbeddingTable (its ``to_dense()`` is used).
            counts: (V,) non-negative frequencies (ints or floats).
            keep: K in [1, V].
            oov_buckets: B >= 0; 0 only when keep == V (no id would have a row otherwise).
            seed: the hash seed, an int >= 0.
        """
        dense = as_float_table(table)
        num, dim = dense.shape
        check_positive_int(num, "num_embeddings")
        keep = check_int(keep, "keep (at most V)", low=1, high=num)
        oov_buckets = check_nonnegative_int(oov_buckets, "oov_buckets")
        if oov_buckets == 0 and keep < num:
            raise ValueError(f"oov_buckets=0 leaves the {num - keep} pruned ids without a row: "
                             f"give oov_buckets >= 1 or keep=V={num}")
        seed = check_nonnegative_int(seed, "seed")
        counts = _check_counts(counts, num)

        order = _frequency_order(counts)
        kept, pruned = order[:keep], order[keep:]
        id_map = np.empty(num, dtype=np.int32)
        id_map[kept] = np.arange(keep, dtype=np.int32)
        weight = np.zeros((keep + oov_buckets, dim), dtype=np.float32)
        weight[:keep] = dense[kept]
        if len(pruned):
            bucket = oov_bucket(pruned, seed, oov_buckets)
            id_map[pruned] = keep + bucket
            sums = np.zeros((oov_buckets, dim), dtype=np.float64)
            np.add.at(sums, bucket, dense[pruned].astype(np.float64))  # once, at build time
            served = np.bincount(bucket, minlength=oov_buckets)
            weight[keep:] = sums / np.maximum(served, 1)[:, None]
        return cls(weight, id_map, keep, seed)

    def __repr__(self) -> str:
        return (f"PrunedEmbedding({self.num_embeddings}, {self.embedding_dim}, keep={self.keep}, "
                f"oov_buckets={self.oov_buckets}, seed={self.seed})")

    # -- the table protocol --------------------------------------------------------------------
    def _rows(self, ids: np.ndarray) -> np.ndarray:
        return self.weight[self.id_map[ids]]  # (*ids, D)

    def _rows_into(self, ids: np.ndarray, out: np.ndarray) -> None:
        kernels.gather_rows(self.weight, self.id_map[ids], out=out)

    def _scores(self, h: np.ndarray) -> np.ndarray:
        # The scores against the K + B stored rows, then each id takes its row's: no dense table.
        return np.take(h @ self.weight.T, self.id_map, axis=1)

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {"weight": self.weight, "id_map": self.id_map}

    def config(self) -> dict:
        return {**super().config(), "keep": self.keep, "oov_buckets": self.oov_buckets, "seed": self.seed}

    @classmethod
    def _from_state(cls, arrays, config) -> PrunedEmbedding:
        num, dim = config["num_embeddings"], config["embedding_dim"]
        rows = config["keep"] + config["oov_buckets"]
        weight = take_array(arrays, "weight", (rows, dim), np.float32)
        id_map = take_array(arrays, "id_map", (num,), np.int32)
        return cls(weight, id_map, config["keep"], config["seed"])
