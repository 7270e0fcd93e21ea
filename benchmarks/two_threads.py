"""Inside numba's parallel loop: when each of two threads starts its half and how long it takes.

A benchmark, not a test. ``call_costs.py`` shows our float32 loops gaining less from a second
thread than torch's, while half the work runs as fast on one thread whether or not the other
half runs beside it on another Python thread. This looks inside the parallel run, with the
CPU's cycle counter read by each thread as its part starts and ends (``llvm.readcyclecounter``:
no hardware counters are needed).

The loop is the float32 lookup's (rows of 16 float32 copied as 8-byte words from a 1000x16
table, 16384 ids), written here once more, a half per thread, so that it can read the clock:
the kernel itself has no timer in it. Beside it, in the same windows: the main thread's half
alone, the kernel itself (``kernels.lookup_rows``' parallel loop), and torch's ``index_select``
of the same rows into a preallocated output on two threads and half of it on one (needs torch:
the test or bench extra). Windows of calls are timed one after another for ``--seconds``; a
window is slow when its median call takes over 1.3x the median window's. For the usual and the
slow windows, the script prints the medians of each::

    python benchmarks/two_threads.py
"""

from __future__ import annotations

import argparse
import time

import numba
import numpy as np
import torch
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from tinyembed.kernels import gather


@intrinsic
def _cycles(typingctx):
    """The CPU's time-stamp counter (x86 rdtsc; a constant rate, read in a few cycles)."""
    def codegen(context, builder, signature, args):
        clock = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.IntType(64), []),
                                               "llvm.readcyclecounter")
        return builder.call(clock, [])
    return types.uint64(), codegen


@njit(nogil=True)
def _copy(words, out, ids, lo, hi):
    for t in range(lo, hi):
        row, o = words[ids[t]], out[t]
        for d in range(row.shape[0]):
            o[d] = row[d]


@njit(parallel=True, nogil=True)
def _two_parts(words, out, ids, stamps):
    # stamps[p] = (cycles from the call's start to part p's start, cycles part p took, the thread that ran it:
    # 0 is the calling thread); returns the call's cycles.
    n, begin = ids.shape[0], _cycles()
    for p in prange(2):
        start = _cycles()
        _copy(words, out, ids, n * p // 2, n * (p + 1) // 2)
        stamps[p, 0], stamps[p, 1], stamps[p, 2] = start - begin, _cycles() - start, numba.get_thread_id()
    return _cycles() - begin


@njit(nogil=True)
def _now():
    return _cycles()


def cycles_per_us() -> float:
    start, clock = _now(), time.perf_counter()
    time.sleep(0.2)
    return (_now() - start) / (time.perf_counter() - clock) / 1e6


def windows(seconds: float, calls: int) -> np.ndarray:
    """Per window, medians in cycles: (the call, part 0's start, its time, part 1's start, its time, the main
    thread's half alone, tinyembed's lookup kernel on 2 threads, torch's index_select of the same rows on 2
    threads and its half on 1)."""
    rng = np.random.default_rng(0)
    words = rng.standard_normal((1000, 16)).astype(np.float32).view(np.uint64)
    ids, out = rng.integers(0, 1000, size=16384), np.empty((16384, 8), np.uint64)
    stamps, half = np.zeros((2, 3), np.uint64), len(ids) // 2
    _two_parts(words, out, ids, stamps)
    if list(stamps[:, 2]) != [0, 1]:
        raise RuntimeError(f"the parts ran on threads {list(stamps[:, 2])}, not the calling thread and one worker")
    _copy(words, out, ids, 0, half)
    lookup, ahead = gather._GATHER_CHECKED[0].compiled(), gather._ahead(words)  # the float32 lookup's kernel
    table_t, ids_t, out_t = torch.from_numpy(words.view(np.float32)), torch.from_numpy(ids), torch.empty(len(ids), 16)
    half_t = ids_t[:half].clone()
    beside = (lambda: _copy(words, out, ids, 0, half), lambda: lookup(words, out, ids, ahead),
              lambda: torch.index_select(table_t, 0, ids_t, out=out_t))
    torch_half = lambda: torch.index_select(table_t, 0, half_t, out=out_t[:half])  # noqa: E731
    rows, end = [], time.perf_counter() + seconds
    while time.perf_counter() < end:
        window = []
        for _ in range(calls):
            call = _two_parts(words, out, ids, stamps)
            window.append((call, *stamps[:, :2].reshape(-1)))
        timed = [_cycles_of(fn, calls // 10) for fn in beside]
        torch.set_num_threads(1)
        timed.append(_cycles_of(torch_half, calls // 10))
        torch.set_num_threads(2)
        rows.append((*np.median(np.array(window, dtype=np.float64), axis=0), *timed))
    return np.array(rows)


def _cycles_of(fn, calls: int) -> float:
    """The median cycles of ``calls`` calls of ``fn``, each timed alone."""
    times = []
    for _ in range(calls):
        start = _now()
        fn()
        times.append(_now() - start)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to time windows (default 60)")
    parser.add_argument("--calls", type=int, default=1000, help="parallel calls per window (default 1000)")
    args = parser.parse_args()
    numba.set_num_threads(2)
    torch.set_num_threads(2)
    rate = cycles_per_us()
    rows = windows(args.seconds, args.calls) / rate
    slow = rows[:, 0] > 1.3 * np.median(rows[:, 0])
    print(f"benchmarks/two_threads.py: numba {numba.__version__}, {numba.threading_layer()} threads, 2 of them; "
          f"1000x16 float32 rows at 16384 ids; {len(rows)} windows of {args.calls} calls; medians")
    for name, chosen in (("usual windows", ~slow), ("slow windows", slow)):
        if not chosen.any():
            print(f"{name}: none")
            continue
        call, start0, took0, start1, took1, alone, kernel, torch_two, torch_half = np.median(rows[chosen], axis=0)
        print(f"{name} ({chosen.sum()}): the call {call:.1f} us; part 0 (the main thread) starts +{start0:.1f}, "
              f"takes {took0:.1f}; part 1 (numba's worker) starts +{start1:.1f}, takes {took1:.1f}; "
              f"the main thread's half alone {alone:.1f}; tinyembed's lookup kernel {kernel:.1f}; "
              f"torch on 2 threads {torch_two:.1f}, its half on 1 {torch_half:.1f}")


if __name__ == "__main__":
    main()
