"""Timing on a noisy machine: interleaved repeats, medians, allocation peaks, copy bandwidth.

The measuring primitives that ``tinyembed bench`` and the profiler share. Timing
on a shared 2-core VM is noisy, so contenders take turns (A B A B) and the
median of the repeats is what counts; :func:`cpu_seconds` tells afterwards
whether another process was busy meanwhile. :func:`copy_bandwidth` is the
roofline every lookup is compared with.
"""

from __future__ import annotations

import gc
import math
import os
import platform
import time
import tracemalloc
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Timing", "interleaved", "extra_allocation", "copy_bandwidth", "cpu_seconds", "background_cores",
           "machine_info"]


@dataclass
class Timing:
    """Milliseconds a call took, one value a repeat (each the mean of ``calls`` back-to-back calls)."""

    times_ms: list[float]
    calls: int = 1

    @property
    def median_ms(self) -> float:
        return float(np.median(self.times_ms))

    @property
    def min_ms(self) -> float:
        return float(np.min(self.times_ms))

    @property
    def max_ms(self) -> float:
        return float(np.max(self.times_ms))

    @property
    def iqr_ms(self) -> float:
        q1, q3 = np.percentile(self.times_ms, [25, 75])
        return float(q3 - q1)

    @property
    def spread(self) -> float:
        """(max - min) / median."""
        return (self.max_ms - self.min_ms) / self.median_ms if self.median_ms > 0 else 0.0

    def to_dict(self) -> dict:
        return {"median_ms": self.median_ms, "min_ms": self.min_ms, "max_ms": self.max_ms,
                "iqr_ms": self.iqr_ms, "times_ms": list(self.times_ms), "calls": self.calls}


def interleaved(fns: dict[str, Callable[[], Any]], repeats: int, warmup: int = 1,
                min_sample_ms: float = 0.0, settle_ms: float = 0.0) -> dict[str, Timing]:
    """Time each function ``repeats`` times in turns (A B C A B C ...) after ``warmup`` rounds.

    Taking turns spreads drift (frequency, other processes) over all alike. The result is
    freed after the clock stops, and the garbage collector is off while timing.

    ``min_sample_ms``: a function faster than this is called back to back, as many times as
    one timed call after the warm-up says it takes to fill it, and a repeat's time is the
    sample's divided by the calls (as ``torch.utils.benchmark``'s ``blocked_autorange`` and
    ``timeit``'s ``autorange`` do). One call of 0.1 ms timed alone was measured spreading
    over 2-3x its median on this 2-core machine (a timer read and a thread wake-up per call).

    ``settle_ms``: before each sample the function is called untimed, back to back, for this
    long (at least once), so that the threads the function before it left behind have stopped
    competing for the cores: an OpenMP runtime's workers spin for a while after each parallel
    op, and torch's and numba's are two runtimes, each with its own workers.
    """
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    calls = {name: _calls_per_sample(fn, min_sample_ms) for name, fn in fns.items()}
    times: dict[str, list[float]] = {name: [] for name in fns}
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeats):
            for name, fn in fns.items():
                if settle_ms > 0:
                    _settle(fn, settle_ms)
                n = calls[name]
                start = time.perf_counter()
                for _ in range(n):
                    result = fn()
                times[name].append((time.perf_counter() - start) * 1e3 / n)
                del result
    finally:
        if was_enabled:
            gc.enable()
    return {name: Timing(t, calls[name]) for name, t in times.items()}


def _settle(fn: Callable[[], Any], settle_ms: float) -> None:
    """Call ``fn`` untimed, back to back, until ``settle_ms`` have passed (at least once)."""
    end = time.perf_counter() + settle_ms / 1e3
    while True:
        fn()
        if time.perf_counter() >= end:
            return


def _calls_per_sample(fn: Callable[[], Any], min_sample_ms: float) -> int:
    """Calls of ``fn`` that take at least ``min_sample_ms`` together, by one timed call (at most 10000)."""
    if min_sample_ms <= 0:
        return 1
    start = time.perf_counter()
    fn()
    once_ms = (time.perf_counter() - start) * 1e3
    return max(1, min(10_000, math.ceil(min_sample_ms / max(once_ms, 1e-6))))


def extra_allocation(fn: Callable[[], Any]) -> int:
    """Peak bytes ``fn()`` had allocated beyond what it left allocated (its output), by tracemalloc."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        result = fn()
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del result
    return max(0, peak - after)


def copy_bandwidth(nbytes: int, threads: int, repeats: int = 9) -> float:
    """GB/s of ``np.copyto`` between two ``nbytes`` arrays, one contiguous chunk per thread.

    Counts bytes read plus bytes written (2 * nbytes per copy), as ``bytes_moved`` does.
    """
    src = np.ones(nbytes // 8, dtype=np.float64)
    dst = np.zeros_like(src)
    dst.fill(1.0)  # touch every page before timing
    bounds = np.linspace(0, src.size, threads + 1).astype(np.int64)
    chunks = list(zip(bounds[:-1], bounds[1:], strict=True))
    with ThreadPoolExecutor(max_workers=threads) as pool:
        def copy():
            for f in [pool.submit(np.copyto, dst[a:b], src[a:b]) for a, b in chunks]:
                f.result()
        timing = interleaved({"copy": copy}, repeats, warmup=1)["copy"]
    return 2 * src.nbytes / (timing.median_ms / 1e3) / 1e9


def cpu_seconds() -> tuple[float, float] | None:
    """(CPU seconds all cores have been busy, CPU seconds of this process) so far.

    Busy counts user, nice, system, irq, softirq and steal time from /proc/stat; None
    where there is no /proc/stat. Two readings give how many cores *other* processes
    kept busy meanwhile (:func:`background_cores`): on a 2-core machine one busy
    neighbour halves what two threads can do, so the report says when it happened.
    """
    try:
        with open("/proc/stat") as f:
            ticks = [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = ticks + [0] * (8 - len(ticks))
    own = os.times()
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK"), own.user + own.system


def background_cores(before, after, seconds: float) -> float | None:
    """Cores other processes kept busy on average between two :func:`cpu_seconds` readings."""
    if before is None or after is None or seconds <= 0:
        return None
    return max(0.0, ((after[0] - before[0]) - (after[1] - before[1])) / seconds)


def machine_info(threads: int, torch=None) -> dict:
    """Cores, CPU model and cache (from /proc/cpuinfo), memory, library versions, threads used."""
    cpu: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "cache size", "flags") and key not in cpu:
                    cpu[key] = value.strip()
    except OSError:
        pass
    mem_total = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem_total = int(line.split()[1]) * 1024
    except OSError:
        pass
    usable: int | None  # os.cpu_count() may not know
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    flags = set(cpu.get("flags", "").split())
    return {
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "cpu_model": cpu.get("model name") or platform.processor() or "unknown",
        "cache": cpu.get("cache size"),
        "simd": sorted(f for f in flags if f in ("sse4_2", "avx", "avx2", "avx512f", "fma")),
        "memory_bytes": mem_total,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": None if torch is None else torch.__version__,
        "threads": threads,
        # torch's OpenMP workers spin after each op unless this is PASSIVE (see the module docstring).
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
    }
