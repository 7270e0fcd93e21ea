"""What ``tinyembed bench`` times: each operation's contenders, on the workloads of its suite.

An operation (the ``OPS`` registry) belongs to one suite; a suite has its own shapes
(``BenchConfig``'s ``*_cases``) and builds, per shape, the data its operations read,
then per id distribution the ids. Every contender of an operation returns the same
numbers as tinyembed's (the bench checks it before timing, the tests on tiny cases);
a ratio is the peer's time over tinyembed's, above 1 when tinyembed is faster.

    suite    op                 tinyembed                         peers
    table    forward            Embedding(ids)                    torch: nn.Embedding(ids); numpy: weight[ids]
    (V, D)   forward_out        Embedding(ids, out=buf)           torch: index_select(out=buf) (1); numpy: np.take(out=)
             dense_backward     kernels.scatter_add_rows (2)      torch: aten.embedding_dense_backward; numpy: np.add.at
             sparse_backward    RowSparseGrad.from_rows           torch: aten.embedding_sparse_backward
                                                              + .coalesce() (3)
             bag_sum, bag_mean  EmbeddingBag(ids, offsets)        torch: F.embedding_bag; numpy: reshape(B, n, D).sum
             bag_weighted       ... per_sample_weights (sum)      torch: F.embedding_bag(per_sample_weights=)
             layer_forward      EmbeddingLayer(ids): token +      torch: nn.Embedding(ids) + pe[:seq]; numpy: likewise
                                sinusoidal positions
    storage  lookup_<type>      as_storage(w, type).lookup(ids)   float32: the lookup of the same table decoded to
    (V, D)   (float16, bfloat16, float8_e4m3fn, int8, int4)       float32 (Embedding, so the very same numbers) (4)
    qbag     int8_bag_<mode>,   QuantizedEmbedding.bag(ids,       torch.quantized: embedding_bag_byte_rowwise_offsets /
    (V, D,   int4_bag_<mode>    offsets, mode, per_sample_        embedding_bag_4bit_rowwise_offsets on torch's prepack
    B, n)    (sum, mean,        weights)                          (5); fbgemm: IntNBitTableBatchedEmbeddingBagsCodegen,
             weighted)                                            one table of our rows (:mod:`.bench_peers`)
    rope     rope               RotaryEmbedding.apply(q, k)       torch: Hugging Face's q * cos + rotate_half(q) * sin,
    (B, H,   rope_backward      the same, then backward of both   float32 cos/sin precomputed; backward by autograd
    S, Dh)                      (forward and backward timed)
    attend   attend             Embedding.attend(h), one token    torch: h @ W.T
    (V, D)   attend_int8        QuantizedEmbedding.attend(h)      float32: Embedding.attend of the same table decoded

(1) torch has no ``embedding(out=)``; its CPU embedding *is* ``index_select`` on the
    flattened ids, so this is the same work writing into a preallocated tensor.
(2) What ``Embedding``'s backward calls for a dense gradient.
(3) torch's sparse backward only wraps the ids and gradient rows in an uncoalesced
    sparse tensor; ``.coalesce()`` sums repeated rows, which is what ``RowSparseGrad``
    always holds. Without it the two are not the same result.
(4) Both write into a preallocated output: ``lookup(ids, out=)``.
(5) torch's quantized bags ignore their ``mode`` argument and always sum (found by the
    check before timing: mode=1 returned the sums); for 'mean' the peer divides the sums
    by the bag sizes in place, as a torch user must.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from .. import kernels
from ..kernels.rows import storage_row_bytes
from ..nn.embedding import Embedding, EmbeddingBag
from ..plan.zipf import zipf_ids
from ..positional import EmbeddingLayer, PositionalEncoding, RotaryEmbedding
from ..sparse import RowSparseGrad
from ..tables.quantized import QuantizedEmbedding
from ..tables.storage import as_storage
from ..tensor import Tensor
from .bench_peers import Peers, fbgemm_bag_table, fbgemm_int8_bound, hf_rope
from .traffic import bytes_moved

__all__ = ["DISTRIBUTIONS", "Env", "Op", "OPS", "SUITES", "STORAGE_LOOKUPS", "Suite", "draw_ids", "to_numpy",
           "workload"]

DISTRIBUTIONS = ("uniform", "zipf")
STORAGE_LOOKUPS = ("float16", "bfloat16", "float8_e4m3fn", "int8", "int4")
FLOAT32_EPS = float(np.finfo(np.float32).eps)


@dataclass(frozen=True)
class Env:
    """What every workload is built with: the peers, the ids of the table suite, the seed."""

    peers: Peers = field(default_factory=Peers)
    ids_shape: tuple[int, int] = (32, 512)
    bag_size: int = 16
    seed: int = 0

    @property
    def torch(self):
        return self.peers.torch


@dataclass
class Op:
    """The contenders of one operation on one workload, and what it moves.

    ``tinyembed`` is None when the operation does not exist yet (``note`` says so).
    ``peers`` are timed interleaved with it and give the ratios; ``numpy`` is the textbook
    baseline, timed in its own rounds; ``extra`` are further tinyembed calls timed with
    it (the layer's token lookup alone). ``compare`` maps a peer (or 'numpy') to a function
    of (ours, theirs) giving the |difference| allowed, elementwise (default: 1e-5 relative);
    ``missing`` says why a peer is not there.
    """

    tinyembed: Callable[[], Any] | None
    peers: dict[str, Callable[[], Any]] = field(default_factory=dict)
    numpy: Callable[[], Any] | None = None
    extra: dict[str, Callable[[], Any]] = field(default_factory=dict)
    bytes_moved: int | None = None
    output_bytes: int | None = None
    rows: int | None = None            # rows each call looks up, for rows per second
    compare: dict[str, Callable[[np.ndarray, np.ndarray], Any]] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    note: str | None = None


def draw_ids(rng: np.random.Generator, vocab: int, shape: tuple, distribution: str) -> np.ndarray:
    """int64 ids in [0, vocab): uniform, or Zipf(1.0) with id i drawn with probability ∝ 1 / (i + 1)."""
    if distribution == "uniform":
        return rng.integers(0, vocab, size=shape, dtype=np.int64)
    return zipf_ids(vocab, 1.0, shape, rng)


def to_numpy(result) -> np.ndarray:
    """Any contender's result as an ndarray: Tensor, ndarray, RowSparseGrad, torch dense or sparse;
    a tuple (RoPE's q and k) as its parts raveled end to end."""
    if isinstance(result, (tuple, list)):
        return np.concatenate([to_numpy(part).reshape(-1) for part in result])
    if isinstance(result, Tensor):
        return result.data
    if isinstance(result, RowSparseGrad):
        return result.to_dense()
    if isinstance(result, np.ndarray):
        return result
    if getattr(result, "is_sparse", False):
        result = result.to_dense()
    return result.detach().numpy()


def close(rtol: float = 1e-5) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Allowed |difference|: ``rtol`` of each value plus ``rtol`` of the largest (sums added in other orders)."""
    def allowed(ours: np.ndarray, theirs: np.ndarray) -> np.ndarray:
        bound = np.abs(theirs)                      # one temporary, then in place
        largest = float(bound.max(initial=0.0))
        bound *= rtol
        bound += rtol * max(1.0, largest)
        return bound
    return allowed


def exact(ours: np.ndarray, theirs: np.ndarray) -> float:
    return 0.0


# == suite "table": one (V, D) float32 table, (32, 512) ids, bags of 16 ===============================
class Table:
    """One (V, D) table and everything built from it, each built the first time an op asks."""

    def __init__(self, vocab: int, dim: int, env: Env):
        self.vocab, self.dim, self.torch = vocab, dim, env.torch
        self.n, self.seq = env.ids_shape[0] * env.ids_shape[1], env.ids_shape[1]
        rng = np.random.default_rng([env.seed, vocab, dim])
        self.weight = rng.standard_normal((vocab, dim), dtype=np.float32)     # (V, D)
        self.grad = rng.standard_normal((self.n, dim), dtype=np.float32)      # (n, D): gradient of each looked-up row

    # tinyembed: frozen modules over the same array (no autograd graph, like torch's below)
    @cached_property
    def emb(self) -> Embedding:
        return Embedding.from_pretrained(self.weight, freeze=True)

    @cached_property
    def bags(self) -> dict[str, EmbeddingBag]:
        return {mode: EmbeddingBag.from_pretrained(self.weight, mode=mode) for mode in ("sum", "mean")}

    @cached_property
    def sinusoidal(self) -> PositionalEncoding:
        """The layer's positions, what positional="sinusoidal" builds; kept here typed, for ``pe``."""
        return PositionalEncoding(self.dim, max_len=self.seq)

    @cached_property
    def layer(self) -> EmbeddingLayer:
        return EmbeddingLayer(self.vocab, self.dim, max_len=self.seq, positional=self.sinusoidal, token_table=self.emb)

    @cached_property
    def pe(self) -> np.ndarray:
        """(seq, D) float32 positions, as the layer adds them."""
        return self.sinusoidal.encoding(np.arange(self.seq))

    # torch: tensors sharing our arrays (torch.from_numpy copies nothing)
    @cached_property
    def weight_t(self):
        return self.torch.from_numpy(self.weight)

    @cached_property
    def grad_t(self):
        return self.torch.from_numpy(self.grad)

    @cached_property
    def emb_t(self):
        return self.torch.nn.Embedding.from_pretrained(self.weight_t, freeze=True)

    @cached_property
    def pe_t(self):
        return self.torch.from_numpy(self.pe)


class Workload:
    """A table and one draw of ids: what every op of a row reads."""

    def __init__(self, table: Table, distribution: str, env: Env):
        self.table, self.distribution = table, distribution
        rng = np.random.default_rng([env.seed, table.vocab, table.dim, DISTRIBUTIONS.index(distribution)])
        self.ids = draw_ids(rng, table.vocab, env.ids_shape, distribution)          # (batch, seq)
        self.flat = self.ids.reshape(-1)                                            # (n,)
        self.offsets = np.arange(0, self.flat.size, env.bag_size, dtype=np.int64)   # (B,)
        self.bag_size = env.bag_size
        self.weights = rng.random(self.flat.size, dtype=np.float32)                 # (n,) per-sample weights

    @property
    def torch(self):
        return self.table.torch

    @cached_property
    def distinct(self) -> int:
        return int(np.unique(self.flat).size)

    @cached_property
    def ids_t(self):
        return self.torch.from_numpy(self.ids)

    @cached_property
    def flat_t(self):
        return self.torch.from_numpy(self.flat)

    @cached_property
    def offsets_t(self):
        return self.torch.from_numpy(self.offsets)

    @cached_property
    def weights_t(self):
        return self.torch.from_numpy(self.weights)


def _moved(op: str, w: Workload) -> int:
    """Bytes moved by ``op`` on ``w``'s float32 table (:mod:`.traffic`)."""
    t = w.table
    return bytes_moved(op, n=w.flat.size, dim=t.dim, row_bytes=t.dim * 4, out_itemsize=4, vocab=t.vocab,
                       bags=w.offsets.size, distinct=w.distinct, positions=w.ids.shape[1])


def _forward(w: Workload) -> Op:
    t = w.table
    return Op(tinyembed=lambda: t.emb(w.ids),
              peers={"torch": lambda: t.emb_t(w.ids_t)} if w.torch else {},
              numpy=lambda: t.weight[w.ids],
              bytes_moved=_moved("forward", w), output_bytes=w.flat.size * t.dim * 4, rows=w.flat.size)


def _forward_out(w: Workload) -> Op:
    t = w.table
    out = np.empty(w.ids.shape + (t.dim,), np.float32)
    out_np = np.empty_like(out)
    peers = {}
    if w.torch:
        out_t = w.torch.empty(w.ids.shape + (t.dim,), dtype=w.torch.float32)
        out_rows = out_t.view(-1, t.dim)  # (n, D) view: index_select writes straight into out_t

        def torch_fn():
            w.torch.index_select(t.weight_t, 0, w.flat_t, out=out_rows)
            return out_t
        peers["torch"] = torch_fn
    return Op(tinyembed=lambda: t.emb(w.ids, out=out), peers=peers,
              numpy=lambda: np.take(t.weight, w.ids, axis=0, out=out_np),
              bytes_moved=_moved("forward_out", w), output_bytes=out.nbytes, rows=w.flat.size)


def _numpy_add_at(rows: np.ndarray, values: np.ndarray, num_rows: int) -> np.ndarray:
    out = np.zeros((num_rows, values.shape[1]), dtype=values.dtype)
    np.add.at(out, rows, values)
    return out


def _dense_backward(w: Workload) -> Op:
    t = w.table
    peers = {}
    if w.torch:
        grad3 = t.grad_t.view(*w.ids.shape, t.dim)  # (batch, seq, D), as autograd passes it
        peers["torch"] = lambda: w.torch.ops.aten.embedding_dense_backward(grad3, w.ids_t, t.vocab, -1, False)
    return Op(tinyembed=lambda: kernels.scatter_add_rows(w.flat, t.grad, t.vocab), peers=peers,
              numpy=lambda: _numpy_add_at(w.flat, t.grad, t.vocab),
              bytes_moved=_moved("dense_backward", w), output_bytes=t.vocab * t.dim * 4)


def _sparse_backward(w: Workload) -> Op:
    t = w.table
    peers = {}
    if w.torch:
        grad3 = t.grad_t.view(*w.ids.shape, t.dim)
        peers["torch"] = lambda: w.torch.ops.aten.embedding_sparse_backward(
            grad3, w.ids_t, t.vocab, -1, False).coalesce()
    return Op(tinyembed=lambda: RowSparseGrad.from_rows(w.flat, t.grad, (t.vocab, t.dim)), peers=peers,
              bytes_moved=_moved("sparse_backward", w), output_bytes=w.distinct * (8 + t.dim * 4))


def _bag(mode: str, weighted: bool = False) -> Callable[[Workload], Op]:
    """EmbeddingBag against F.embedding_bag; ``weighted``: sum with per-sample weights."""
    def build(w: Workload) -> Op:
        t = w.table
        bag = t.bags[mode]
        weights, weights_t = (w.weights, w.weights_t if w.torch else None) if weighted else (None, None)
        peers = {}
        if w.torch:
            peers["torch"] = lambda: w.torch.nn.functional.embedding_bag(
                w.flat_t, t.weight_t, w.offsets_t, mode=mode, per_sample_weights=weights_t)
        rows = t.weight[w.flat] if not weighted else t.weight[w.flat] * w.weights[:, None]
        reduce = getattr(np, mode)
        moved = _moved(f"bag_{mode}", w) + (4 * w.flat.size if weighted else 0)  # + the float32 weights read
        return Op(tinyembed=lambda: bag(w.flat, w.offsets, per_sample_weights=weights), peers=peers,
                  numpy=lambda: reduce((rows if weighted else t.weight[w.flat]).reshape(-1, w.bag_size, t.dim),
                                       axis=1),
                  bytes_moved=moved, output_bytes=w.offsets.size * t.dim * 4)
    return build


def _layer_forward(w: Workload) -> Op:
    t = w.table
    layer, pe, seq = t.layer, t.pe, w.ids.shape[1]
    peers = {}
    if w.torch:
        pe_t = t.pe_t
        peers["torch"] = lambda: t.emb_t(w.ids_t) + pe_t[:seq]
    return Op(tinyembed=lambda: layer(w.ids), peers=peers,
              numpy=lambda: t.weight[w.ids] + pe[:seq],
              bytes_moved=_moved("layer_forward", w), output_bytes=w.flat.size * t.dim * 4, rows=w.flat.size,
              extra={"lookup": lambda: t.emb(w.ids)})


# == suite "storage": the compressed lookups against the dense float32 lookup of the same rows =========
class StorageData:
    """A (V, D) float32 table, and the one storage type being timed built from it (one at a time: at
    D = 4096 each is up to 0.4 GB, and its float32 twin 0.8 GB)."""

    def __init__(self, vocab: int, dim: int, env: Env):
        self.vocab, self.dim = vocab, dim
        self.weight = np.random.default_rng([env.seed, 1, vocab, dim]).standard_normal((vocab, dim), dtype=np.float32)
        self._built: tuple[str, Any, Embedding] | None = None

    def tables(self, storage: str) -> tuple[Any, Embedding]:
        """(the table stored as ``storage``, an Embedding of that table decoded to float32)."""
        if self._built is None or self._built[0] != storage:
            self._built = None  # free the previous pair first
            table = as_storage(self.weight, storage)
            self._built = (storage, table, Embedding.from_pretrained(table.to_dense(), freeze=True))
        return self._built[1], self._built[2]


class StorageWorkload:
    def __init__(self, data: StorageData, distribution: str, env: Env):
        self.data, self.distribution = data, distribution
        rng = np.random.default_rng([env.seed, 1, data.vocab, data.dim, DISTRIBUTIONS.index(distribution)])
        self.ids = draw_ids(rng, data.vocab, env.ids_shape, distribution)   # (batch, seq)


def _lookup(storage: str) -> Callable[[StorageWorkload], Op]:
    def build(w: StorageWorkload) -> Op:
        table, dense = w.data.tables(storage)
        ids, dim = w.ids, w.data.dim
        n = ids.size
        out, out_dense = np.empty(ids.shape + (dim,), np.float32), np.empty(ids.shape + (dim,), np.float32)
        moved = bytes_moved("forward", n=n, dim=dim, row_bytes=storage_row_bytes(storage, dim))
        return Op(tinyembed=lambda: table.lookup(ids, out=out),
                  peers={"float32": lambda: dense.lookup(ids, out=out_dense)}, compare={"float32": exact},
                  bytes_moved=moved, output_bytes=n * dim * 4, rows=n)
    return build


# == suite "qbag": int8 and int4 bags against torch's quantized ops and FBGEMM ==========================
class QBagData:
    """A (V, D) float32 table quantized to 8 and 4 bits by us, prepacked by torch, copied into FBGEMM."""

    def __init__(self, vocab: int, dim: int, bags: int, bag_size: int, env: Env):
        self.vocab, self.dim, self.bags, self.bag_size = vocab, dim, bags, bag_size
        self.seed, self.peers = env.seed, env.peers
        self.weight = np.random.default_rng([env.seed, 2, vocab, dim]).standard_normal((vocab, dim), dtype=np.float32)
        self._fbgemm: dict[tuple[int, str], Any] = {}

    @cached_property
    def quantized(self) -> dict[int, QuantizedEmbedding]:
        return {bits: QuantizedEmbedding.from_float(self.weight, bits=bits) for bits in (8, 4)}

    @cached_property
    def packed_t(self) -> dict:
        """torch's own prepack of the same float table, as its users build it."""
        torch = self.peers.torch
        weight_t = torch.from_numpy(self.weight)
        return {8: torch.ops.quantized.embedding_bag_byte_prepack(weight_t),
                4: torch.ops.quantized.embedding_bag_4bit_prepack(weight_t)}

    def fbgemm(self, bits: int, mode: str):
        """FBGEMM's table of our ``bits``-bit rows, pooling ``mode`` ('sum' or 'mean')."""
        if (bits, mode) not in self._fbgemm:
            self._fbgemm[bits, mode] = fbgemm_bag_table(self.peers.fbgemm, self.quantized[bits].fused, self.dim,
                                                        bits, mode)
        return self._fbgemm[bits, mode]


class QBagWorkload:
    def __init__(self, data: QBagData, distribution: str, env: Env):
        self.data, self.distribution, self.torch = data, distribution, env.torch
        rng = np.random.default_rng([env.seed, 2, data.vocab, data.dim, DISTRIBUTIONS.index(distribution)])
        self.flat = draw_ids(rng, data.vocab, (data.bags * data.bag_size,), distribution)   # (n,)
        self.offsets = np.arange(0, self.flat.size, data.bag_size, dtype=np.int64)          # (B,)
        self.weights = rng.random(self.flat.size, dtype=np.float32)                         # (n,)

    @cached_property
    def torch_args(self) -> tuple:
        """ids, offsets (B,), offsets with the end (B + 1,: FBGEMM's), weights: tensors sharing our arrays."""
        t = self.torch
        return (t.from_numpy(self.flat), t.from_numpy(self.offsets),
                t.from_numpy(np.append(self.offsets, self.flat.size)), t.from_numpy(self.weights))


def _qbag(bits: int, mode: str) -> Callable[[QBagWorkload], Op]:
    """``mode``: 'sum', 'mean' or 'weighted' (sum with per-sample weights)."""
    pool = "sum" if mode == "weighted" else mode

    def build(w: QBagWorkload) -> Op:
        d = w.data
        table = d.quantized[bits]
        weights = w.weights if mode == "weighted" else None
        peers: dict[str, Callable[[], Any]] = {}
        compare: dict[str, Callable[[np.ndarray, np.ndarray], Any]] = {}
        missing: dict[str, str] = {}
        if w.torch:  # FBGEMM comes only with torch
            ids_t, offsets_t, ends_t, weights_t = w.torch_args
            psw = weights_t if mode == "weighted" else None
            packed = d.packed_t[bits]
            quantized_bag = (w.torch.ops.quantized.embedding_bag_byte_rowwise_offsets if bits == 8
                             else w.torch.ops.quantized.embedding_bag_4bit_rowwise_offsets)
            # torch's quantized bags ignore ``mode`` and always sum (mode=1 returns the sums): its mean is
            # what a torch user has to write, the sums divided by the bag sizes, in place.
            sizes_t = w.torch.from_numpy(np.diff(np.append(w.offsets, w.flat.size)).astype(np.float32)[:, None])

            def torch_quantized():
                pooled = quantized_bag(packed, ids_t, offsets_t, scale_grad_by_freq=False, mode=0,
                                       pruned_weights=False, per_sample_weights=psw, include_last_offset=False)
                return pooled.div_(sizes_t) if pool == "mean" else pooled
            peers["torch.quantized"] = torch_quantized
        else:
            missing["torch.quantized"] = d.peers.note("torch") or "torch not available"
        fb_table = None
        if d.peers.fbgemm is not None:
            try:
                fb_table = d.fbgemm(bits, pool)
            except Exception as e:  # a third-party build that fails is reported, not fatal
                missing["fbgemm"] = f"FBGEMM's table could not be built: {type(e).__name__}: {e}"[:300]
        elif "fbgemm" not in missing:
            missing["fbgemm"] = d.peers.note("fbgemm") or "FBGEMM not available"
        if fb_table is not None:
            peers["fbgemm"] = lambda: fb_table(ids_t, ends_t, psw)
            if bits == 8:  # its float16 scale and bias: allowed what they can change, plus summation order
                bound = fbgemm_int8_bound(table.fused, d.dim, w.flat, w.offsets, pool, weights)
                compare["fbgemm"] = lambda ours, theirs: bound + close()(ours, theirs)
        moved = bytes_moved("bag_sum", n=w.flat.size, dim=d.dim, row_bytes=storage_row_bytes(f"int{bits}", d.dim),
                            bags=w.offsets.size) + (4 * w.flat.size if weights is not None else 0)
        return Op(tinyembed=lambda: table.bag(w.flat, w.offsets, mode=pool, per_sample_weights=weights),
                  peers=peers, compare=compare, missing=missing, bytes_moved=moved,
                  output_bytes=w.offsets.size * d.dim * 4)
    return build


# == suite "rope": rotary embeddings of q and k, (B, H, S, Dh) float32 ================================
class RopeWorkload:
    def __init__(self, batch: int, heads: int, seq: int, head_dim: int, env: Env):
        self.shape, self.torch = (batch, heads, seq, head_dim), env.torch
        rng = np.random.default_rng([env.seed, 3, batch, heads, seq, head_dim])
        self.q, self.k, self.grad_q, self.grad_k = (rng.standard_normal(self.shape, dtype=np.float32)
                                                    for _ in range(4))
        self.rope = RotaryEmbedding(head_dim)

    @cached_property
    def hf_apply(self):
        """HF's formula on float32 tables of the very angles ours uses (so the two agree to float32 rounding)."""
        cos, sin = self.rope.cos_sin(np.arange(self.shape[2]))     # (S, Dh) float64
        return hf_rope(self.torch, cos.astype(np.float32), sin.astype(np.float32))

    @cached_property
    def tensors_t(self) -> tuple:
        return tuple(self.torch.from_numpy(a) for a in (self.q, self.k, self.grad_q, self.grad_k))


def _rope_forward(w: RopeWorkload) -> Op:
    peers = {}
    if w.torch:
        q_t, k_t, _, _ = w.tensors_t
        peers["torch"] = lambda: w.hf_apply(q_t, k_t)
    # q and k read, both written (the (S, Dh) cos and sin tables are small beside them)
    return Op(tinyembed=lambda: w.rope.apply(w.q, w.k), peers=peers, bytes_moved=2 * (w.q.nbytes + w.k.nbytes),
              output_bytes=w.q.nbytes + w.k.nbytes)


def _rope_backward(w: RopeWorkload) -> Op:
    q, k = Tensor(w.q, requires_grad=True), Tensor(w.k, requires_grad=True)

    def ours():
        q.grad = k.grad = None
        rotated_q, rotated_k = w.rope.apply(q, k)
        rotated_q.backward(w.grad_q)
        rotated_k.backward(w.grad_k)
        return q.grad, k.grad

    peers = {}
    if w.torch:
        torch = w.torch
        q_t, k_t, grad_q_t, grad_k_t = (t.clone() for t in w.tensors_t)
        q_t.requires_grad_()
        k_t.requires_grad_()

        def theirs():
            q_t.grad = k_t.grad = None
            torch.autograd.backward(w.hf_apply(q_t, k_t), (grad_q_t, grad_k_t))
            return q_t.grad, k_t.grad
        peers["torch"] = theirs
    # the forward's, then the gradients read and written
    return Op(tinyembed=ours, peers=peers, bytes_moved=4 * (w.q.nbytes + w.k.nbytes),
              output_bytes=w.q.nbytes + w.k.nbytes)


# == suite "attend": scores of one token against every row (the tied output projection) ================
class AttendWorkload:
    def __init__(self, vocab: int, dim: int, env: Env):
        self.vocab, self.dim, self.torch = vocab, dim, env.torch
        rng = np.random.default_rng([env.seed, 4, vocab, dim])
        self.weight = rng.standard_normal((vocab, dim), dtype=np.float32)   # (V, D)
        self.h = rng.standard_normal((1, dim), dtype=np.float32)            # (1, D): one token

    @cached_property
    def emb(self) -> Embedding:
        return Embedding.from_pretrained(self.weight, freeze=True)

    @cached_property
    def int8(self) -> tuple[QuantizedEmbedding, Embedding]:
        table = QuantizedEmbedding.from_float(self.weight, bits=8)
        return table, Embedding.from_pretrained(table.to_dense(), freeze=True)


def _attend(w: AttendWorkload) -> Op:
    emb, h = w.emb, w.h
    peers = {}
    if w.torch:
        weight_t, h_t = w.torch.from_numpy(w.weight), w.torch.from_numpy(h)
        peers["torch"] = lambda: h_t @ weight_t.T
    return Op(tinyembed=lambda: emb.attend(h), peers=peers, compare={"torch": _dot_bound(w.weight, h)},
              bytes_moved=4 * (w.vocab * w.dim + w.dim + w.vocab), output_bytes=4 * w.vocab)


def _attend_int8(w: AttendWorkload) -> Op:
    table, dense = w.int8
    h = w.h
    moved = w.vocab * storage_row_bytes("int8", w.dim) + 4 * (w.dim + w.vocab)
    return Op(tinyembed=lambda: table.attend(h), peers={"float32": lambda: dense.attend(h)},
              compare={"float32": _dot_bound(dense.weight.data, h)}, bytes_moved=moved, output_bytes=4 * w.vocab)


def _dot_bound(weight: np.ndarray, h: np.ndarray) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Allowed |difference| of two float32 ``h @ weight.T`` summed in any order, one side perhaps from
    ``code * scale + bias``: 4 D eps sum|h| times the row's largest |value|, per score ((1, V))."""
    scale = 4 * h.shape[-1] * FLOAT32_EPS * np.abs(h).sum(axis=-1, keepdims=True) * np.abs(weight).max(axis=1)
    return lambda ours, theirs: scale


# == the registries ==================================================================================
@dataclass(frozen=True)
class Suite:
    """A family of operations sharing shapes: ``data(shape, env)`` builds what they read; with
    ``draws_ids``, ``workload(data, distribution, env)`` adds ids drawn from a distribution."""

    name: str
    data: Callable[..., Any]
    workload: Callable[[Any, str, Env], Any] | None
    label: Callable[[tuple], str]
    memory: Callable[[tuple, int], int]    # (shape, ids per call) -> bytes its data holds at its peak, about

    @property
    def draws_ids(self) -> bool:
        return self.workload is not None


def _table_memory(shape: tuple, n: int) -> int:
    # About 8 tables at once: ours and torch's, gradients, the NumPy baseline's dense gradient, bags.
    return 8 * shape[0] * shape[1] * 4


def _storage_memory(shape: tuple, n: int) -> int:
    # The float32 table, its compressed copy, their decoded float32 twin, the decoding's temporaries
    # (about 5 tables), and two outputs.
    return 5 * shape[0] * shape[1] * 4 + 2 * n * shape[1] * 4


def _qbag_memory(shape: tuple, n: int) -> int:
    # The float32 table, and 8-bit and 4-bit rows 4 times each (ours, torch's, FBGEMM's sum and mean).
    return shape[0] * shape[1] * 4 + 4 * shape[0] * (storage_row_bytes("int8", shape[1]) +
                                                     storage_row_bytes("int4", shape[1]))


SUITES: dict[str, Suite] = {
    "table": Suite("table", lambda s, env: Table(s[0], s[1], env), Workload, lambda s: f"{s[0]}x{s[1]}",
                   _table_memory),
    "storage": Suite("storage", lambda s, env: StorageData(s[0], s[1], env), StorageWorkload,
                     lambda s: f"{s[0]}x{s[1]}", _storage_memory),
    "qbag": Suite("qbag", lambda s, env: QBagData(s[0], s[1], s[2], s[3], env), QBagWorkload,
                  lambda s: f"{s[0]}x{s[1]} {s[2]}x{s[3]}", _qbag_memory),
    # q, k, their gradients, outputs, and float64 temporaries
    "rope": Suite("rope", lambda s, env: RopeWorkload(s[0], s[1], s[2], s[3], env), None,
                  lambda s: "x".join(map(str, s)), lambda s, n: 24 * int(np.prod(s)) * 4),
    # the float32 table, the int8 one and its decoded float32 twin
    "attend": Suite("attend", lambda s, env: AttendWorkload(s[0], s[1], env), None,
                    lambda s: f"{s[0]}x{s[1]} 1 token", lambda s, n: 3 * s[0] * s[1] * 4),
}

# name -> (suite, workload -> Op). Adding an operation is adding one function and one entry.
OPS: dict[str, tuple[str, Callable[[Any], Op]]] = {
    "forward": ("table", _forward),
    "forward_out": ("table", _forward_out),
    "dense_backward": ("table", _dense_backward),
    "sparse_backward": ("table", _sparse_backward),
    "bag_sum": ("table", _bag("sum")),
    "bag_mean": ("table", _bag("mean")),
    "bag_weighted": ("table", _bag("sum", weighted=True)),
    "layer_forward": ("table", _layer_forward),
    **{f"lookup_{storage}": ("storage", _lookup(storage)) for storage in STORAGE_LOOKUPS},
    **{f"int{bits}_bag_{mode}": ("qbag", _qbag(bits, mode)) for bits in (8, 4) for mode in ("sum", "mean", "weighted")},
    "rope": ("rope", _rope_forward),
    "rope_backward": ("rope", _rope_backward),
    "attend": ("attend", _attend),
    "attend_int8": ("attend", _attend_int8),
}


def workload(suite: str, shape: tuple, distribution: str | None = "uniform", env: Env | None = None):
    """The workload of ``suite`` at ``shape`` (and ``distribution`` where it draws ids): what its ops read."""
    env = env or Env()
    s = SUITES[suite]
    data = s.data(tuple(shape), env)
    return s.workload(data, distribution or "uniform", env) if s.workload else data
