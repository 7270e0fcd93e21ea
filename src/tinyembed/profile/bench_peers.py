"""The libraries ``tinyembed bench`` times tinyembed against: PyTorch and FBGEMM, imported only when it runs.

Neither is a dependency of tinyembed: the library never imports them, the bench does
when it starts (``pip install 'tinyembed[bench]'`` installs both, pinned). What each
peer runs is built here from *our* tables, so that both sides hold the same rows:

* torch: tensors sharing our arrays (``torch.from_numpy`` copies nothing), its
  quantized bags on rows prepacked by ``torch.ops.quantized.embedding_bag_*_prepack``,
  and Hugging Face's ``rotate_half`` RoPE on float32 cos/sin tables.
* FBGEMM: one ``IntNBitTableBatchedEmbeddingBagsCodegen`` table (CPU, host memory,
  float32 output) per bit width and pooling mode, its rows copied from our fused rows
  (:func:`fbgemm_bag_table`). Its row is float16 scale and bias *first*, then the codes;
  ours (and torch's prepack) is codes first, then the scale and bias, float32 for 8-bit
  and float16 for 4-bit. So our 4-bit rows move over bit for bit, and our 8-bit rows
  keep their codes while FBGEMM's table rounds their scale and bias to float16, the only
  8-bit layout it has: its bags differ from ours by at most :func:`fbgemm_int8_bound`
  (what that rounding moves, value by value), which the bench checks before timing.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np

__all__ = ["Peers", "load_peers", "fbgemm_bag_table", "fbgemm_int8_bound", "hf_rope"]

@dataclass
class Peers:
    """The peer libraries this run has: a module (or namespace) each, None where missing, and why."""

    torch: Any = None
    fbgemm: Any = None
    notes: dict[str, str] | None = None

    def note(self, name: str) -> str | None:
        return (self.notes or {}).get(name)


def _import_torch():
    import torch

    return torch


def _import_fbgemm() -> SimpleNamespace:
    """FBGEMM's table-batched inference kernels and the enums that configure them."""
    import fbgemm_gpu  # noqa: F401  (registers torch.ops.fbgemm)
    from fbgemm_gpu.split_embedding_configs import SparseType
    from fbgemm_gpu.split_table_batched_embeddings_ops_inference import IntNBitTableBatchedEmbeddingBagsCodegen
    from fbgemm_gpu.tbe.config import BoundsCheckMode, EmbeddingLocation, PoolingMode

    return SimpleNamespace(version=getattr(fbgemm_gpu, "__version__", "unknown"), torch=_import_torch(),
                           SparseType=SparseType,
                           TBE=IntNBitTableBatchedEmbeddingBagsCodegen, PoolingMode=PoolingMode,
                           EmbeddingLocation=EmbeddingLocation, BoundsCheckMode=BoundsCheckMode)


def load_peers(use_torch: bool = True, use_fbgemm: bool = True) -> Peers:
    """Import the peers this run may use; a missing or broken one is None with a note saying why."""
    peers, notes = Peers(), {}
    if not use_torch:
        notes["torch"] = "torch not used (use_torch=False)"
    else:
        try:
            peers.torch = _import_torch()
        except ImportError:
            notes["torch"] = "torch not installed (pip install 'tinyembed[bench]')"
    if peers.torch is None:
        notes["fbgemm"] = "FBGEMM needs torch"
    elif not use_fbgemm:
        notes["fbgemm"] = "FBGEMM not used (use_fbgemm=False)"
    else:
        try:
            peers.fbgemm = _import_fbgemm()
        except ImportError:
            notes["fbgemm"] = "fbgemm-gpu-cpu not installed (pip install 'tinyembed[bench]')"
        except (OSError, RuntimeError, AttributeError) as e:  # a build for another torch fails to load its library
            notes["fbgemm"] = f"fbgemm_gpu failed to load with torch {peers.torch.__version__}: {e}"[:300]
    peers.notes = notes
    return peers


# -- FBGEMM's table, built from our rows -------------------------------------------------------
def fbgemm_bag_table(fb, fused: np.ndarray, dim: int, bits: int, mode: str):
    """FBGEMM's ``IntNBitTableBatchedEmbeddingBagsCodegen`` holding the rows of our (V, row_bytes) fused table.

    One table, on the CPU in host memory, pooling ``mode`` ('sum' or 'mean'), float32
    output (its default is float16), its default bounds check (ids are checked, as ours are).
    Call it as ``table(ids, offsets_with_the_end)``, per-sample weights third.
    """
    num = fused.shape[0]
    weight_type = fb.SparseType.INT8 if bits == 8 else fb.SparseType.INT4
    pooling = fb.PoolingMode.SUM if mode == "sum" else fb.PoolingMode.MEAN
    table = fb.TBE([("table", num, dim, weight_type, fb.EmbeddingLocation.HOST)], pooling_mode=pooling,
                   device="cpu", output_dtype=fb.SparseType.FP32)
    table.initialize_weights()
    ((codes, scale_bias),) = table.split_embedding_weights()  # views of its rows: (V, codes), (V, 4)
    width = dim if bits == 8 else (dim + 1) // 2
    if codes.shape[1] != width or scale_bias.shape[1] != 4:
        raise RuntimeError(f"FBGEMM's {bits}-bit rows are {tuple(codes.shape)} codes and {tuple(scale_bias.shape)} "
                           f"scale/bias, expected ({num}, {width}) and ({num}, 4)")
    ours = fused[:, width:]                                      # 8-bit: float32 scale, bias; 4-bit: float16
    if bits == 8:
        ours = ours.view("<f4").astype("<f2").view(np.uint8)     # FBGEMM's 8-bit rows hold float16 scale and bias
    codes.copy_(fb.torch.from_numpy(fused[:, :width]))
    scale_bias.copy_(fb.torch.from_numpy(np.ascontiguousarray(ours)))
    return table


def fbgemm_int8_bound(fused: np.ndarray, dim: int, ids: np.ndarray, offsets: np.ndarray, mode: str,
                      weights: np.ndarray | None) -> np.ndarray:
    """(B, D): how far an 8-bit bag of FBGEMM's table may be from ours, from its float16 scale and bias.

    Row i decodes to ``code * scale + bias`` for us and ``code * fp16(scale) + fp16(bias)`` for
    FBGEMM: each value moves by at most ``code |fp16(scale) - scale| + |fp16(bias) - bias|``. A bag
    adds those of its rows, times their |weights|, over the bag's size for 'mean'.
    """
    scale_bias = np.ascontiguousarray(fused[:, dim:dim + 8]).view("<f4")                     # (V, 2)
    moved = np.abs(scale_bias.astype("<f2").astype(np.float64) - scale_bias)                  # (V, 2)
    per_id = fused[ids, :dim] * moved[ids, :1] + moved[ids, 1:]                               # (n, D)
    if weights is not None:
        per_id *= np.abs(weights)[:, None]
    ends = np.append(offsets[1:], ids.size)
    running = np.concatenate([np.zeros((1, dim)), np.cumsum(per_id, axis=0)])                 # (n + 1, D)
    bound = running[ends] - running[offsets]                                                  # (B, D)
    if mode == "mean":
        bound /= np.maximum(ends - offsets, 1)[:, None]
    return bound


# -- Hugging Face's RoPE, in torch ---------------------------------------------------------------
def hf_rope(torch, cos: np.ndarray, sin: np.ndarray):
    """Hugging Face's ``apply_rotary_pos_emb`` (half-split, ``rotate_half``) on float32 cos/sin tables.

    ``cos``, ``sin``: (S, D) float32, precomputed once as HF's rotary module caches them.
    Returns ``apply(q, k) -> (q_embed, k_embed)`` for (B, H, S, D) tensors.
    """
    cos_t = torch.from_numpy(np.ascontiguousarray(cos, np.float32))[None, None]   # (1, 1, S, D)
    sin_t = torch.from_numpy(np.ascontiguousarray(sin, np.float32))[None, None]

    def rotate_half(x):
        half = x.shape[-1] // 2
        return torch.cat((-x[..., half:], x[..., :half]), dim=-1)

    def apply(q, k):
        return q * cos_t + rotate_half(q) * sin_t, k * cos_t + rotate_half(k) * sin_t

    return apply
