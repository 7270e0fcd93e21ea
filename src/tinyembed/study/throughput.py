"""How close the language model's training step comes to this machine's matrix-multiply throughput.

The step's FLOPs (:func:`~tinyembed.study.flops.train_flops_per_token` times the batch) over its
median wall time, against NumPy's float32 matrix product of two ``n x n`` matrices (``2 n^3``
FLOPs) measured in the same run: the two take turns (:func:`tinyembed.profile.timing.interleaved`),
so a neighbour that slows the machine slows both alike. Both use every thread they would use
anyway (NumPy's BLAS, tinyembed's kernels).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np

from ..kernels import get_num_threads
from ..optim import AdamW
from ..profile.timing import background_cores, cpu_seconds, interleaved
from ..train.lm import LMConfig, WindowLM, train_step
from .flops import train_flops_per_token

__all__ = ["StepThroughput", "measure_step_throughput", "blas_threads", "set_blas_threads"]

# OpenBLAS's thread setters, by the names its builds export (NumPy's wheels bundle scipy-openblas).
_BLAS_SETTERS = ("scipy_openblas_set_num_threads64_", "openblas_set_num_threads64_", "openblas_set_num_threads")
_BLAS_GETTERS = ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_", "openblas_get_num_threads")


def _openblas():
    """The OpenBLAS library NumPy loaded (ctypes), or None when it is another BLAS or cannot be found."""
    import ctypes  # noqa: PLC0415

    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "openblas" in line and ".so" in line}
    except OSError:
        return None
    for path in sorted(paths):
        try:
            return ctypes.CDLL(path)
        except OSError:
            continue
    return None


def blas_threads() -> int | None:
    """Threads NumPy's OpenBLAS uses for a matrix product (None: not OpenBLAS, or not found)."""
    lib = _openblas()
    for name in _BLAS_GETTERS:
        if lib is not None and hasattr(lib, name):
            return int(getattr(lib, name)())
    return None


def set_blas_threads(n: int) -> bool:
    """Let NumPy's OpenBLAS use ``n`` threads (as ``OPENBLAS_NUM_THREADS`` would at start-up); False
    when NumPy's BLAS is not an OpenBLAS this can reach.

    On a machine whose other cores are busy, a product split over threads waits for the slowest:
    tens of milliseconds for a product of a millisecond. ``tinyembed study capacity --threads 1``
    avoids it.
    """
    lib = _openblas()
    for name in _BLAS_SETTERS:
        if lib is not None and hasattr(lib, name):
            getattr(lib, name)(int(n))
            return True
    return False


@dataclass(frozen=True)
class StepThroughput:
    """The training step of one model shape against the matrix product, medians of interleaved repeats."""

    vocab_size: int
    embedding_dim: int
    hidden: int
    context: int
    batch_size: int
    step_flops: int
    step_seconds: float
    step_flops_per_s: float
    matmul_n: int
    matmul_seconds: float
    matmul_flops_per_s: float
    repeats: int
    kernel_threads: int
    blas_threads: int | None
    background_cores: float | None  # cores other processes kept busy meanwhile (None: unknown)

    @property
    def ratio(self) -> float:
        """The step's FLOPs/s as a share of the matrix product's."""
        return self.step_flops_per_s / self.matmul_flops_per_s

    def to_dict(self) -> dict:
        return {**asdict(self), "ratio": self.ratio}

    def describe(self) -> str:
        return (f"LM training step at V={self.vocab_size}, D={self.embedding_dim}, H={self.hidden}, "
                f"context {self.context}, batch {self.batch_size}: {self.step_flops / 1e9:.2f} GFLOP in "
                f"{self.step_seconds * 1e3:.0f} ms = {self.step_flops_per_s / 1e9:.1f} GFLOP/s; float32 matmul "
                f"{self.matmul_n}x{self.matmul_n}: {self.matmul_flops_per_s / 1e9:.1f} GFLOP/s; "
                f"ratio {self.ratio:.2f}")


def measure_step_throughput(config: LMConfig, repeats: int = 5, matmul_n: int = 2048,
                            seed: int = 0) -> StepThroughput:
    """Time ``repeats`` training steps of a fresh model of ``config`` (batch ``config.batch_size``,
    random ids: the cost does not depend on them) against an ``n x n`` float32 matrix product."""
    model = WindowLM(config)
    optimizer = AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    rng = np.random.default_rng(seed)
    inputs = rng.integers(0, config.vocab_size, (config.batch_size, config.context))
    targets = rng.integers(0, config.vocab_size, config.batch_size)
    a, b = (rng.standard_normal((matmul_n, matmul_n), dtype=np.float32) for _ in range(2))
    before, start = cpu_seconds(), time.perf_counter()
    timings = interleaved({"step": lambda: train_step(model, optimizer, inputs, targets), "matmul": lambda: a @ b},
                          repeats=repeats, warmup=1)
    seconds = time.perf_counter() - start
    step_s, matmul_s = timings["step"].median_ms / 1e3, timings["matmul"].median_ms / 1e3
    step_flops = train_flops_per_token(model) * config.batch_size
    return StepThroughput(
        vocab_size=config.vocab_size, embedding_dim=config.dim, hidden=config.hidden, context=config.context,
        batch_size=config.batch_size, step_flops=step_flops, step_seconds=step_s,
        step_flops_per_s=step_flops / step_s, matmul_n=matmul_n, matmul_seconds=matmul_s,
        matmul_flops_per_s=2 * matmul_n**3 / matmul_s, repeats=repeats, kernel_threads=get_num_threads(),
        blas_threads=blas_threads(),
        background_cores=background_cores(before, cpu_seconds(), seconds))
