"""What the int8 bag loop's time is made of, without hardware counters: the loop with one part taken out.

A benchmark, not a test. The int8 bags' pooling loop (``kernels.bags``, rows of up to 64 columns summed
in four 16-column vectors) is rebuilt here from the same helpers, once whole and once with each of its
parts taken out; every build is compiled in this process and timed in turns with the library's kernel
and torch's quantized op, on one thread, over the bench's qbag shape (bags of 16 from 100000x64, and
from 1000000x64, a table beyond the caches). What a part costs is the time it takes out. Each build
gives the kernel's bits on valid ids (checked before timing).

Needs torch (the test or bench extra) and numba::

    python benchmarks/int8_loop.py
"""

from __future__ import annotations

import argparse
import time

import numba
import numpy as np
import torch

from tinyembed import kernels
from tinyembed.kernels import bags, rows
from tinyembed.kernels.lanes import LANES
from tinyembed.tables import QuantizedEmbedding

_NO_BIAS = np.float32(-0.0)
rows._install_helpers(globals())  # the lanes helpers the builds below call, compiled, as in kernels.bags


def build(check_ids: bool = True, prefetch: bool = True, width: int = 0, walks: bool = False):
    """The int8 bag sum over rows of up to 64 columns, as ``kernels.bags`` writes it: ``check_ids`` counts and
    skips an id outside the table, ``prefetch`` asks for the row ``ahead`` ids on, ``width`` (0: the output's)
    fixes the row's width at compile time, its width tests folded away; ``walks`` walks the bag once per 64
    columns, as the kernel does for rows of up to 128 columns (a row of 64: one walk)."""
    @numba.njit(nogil=True)
    def loop(fused, ids, bounds, ahead, out):
        n, num_rows, bad = ids.shape[0], fused.shape[0], 0
        dim = width if width else out.shape[1]
        for b in range(out.shape[0]):
            for col in range(0, dim if walks else 1, 4 * LANES):  # `walks`: the bag walked once per 64 columns
                biases = np.float32(0)
                s0 = s1 = s2 = s3 = _lanes_zero(out)  # noqa: F821 - helpers installed above
                for j in range(bounds[b], bounds[b + 1]):
                    if prefetch and col == 0 and j + ahead < n:  # as the kernel: the first walk prefetches
                        _prefetch_row(fused, ids[j + ahead])  # noqa: F821
                    i = ids[j]
                    if check_ids and (i < 0 or i >= num_rows):
                        bad += col == 0
                        continue
                    scale, bias = _scale_and_bias(fused, 3, i, dim)  # noqa: F821
                    biases += bias
                    s0 += _stored_lanes(fused, 3, i, col, dim - col, scale, _NO_BIAS)  # noqa: F821
                    s1 += _stored_lanes(fused, 3, i, col + LANES, dim - col - LANES, scale, _NO_BIAS)  # noqa: F821
                    s2 += _stored_lanes(fused, 3, i, col + 2 * LANES, dim - col - 2 * LANES, scale,  # noqa: F821
                                        _NO_BIAS)
                    s3 += _stored_lanes(fused, 3, i, col + 3 * LANES, dim - col - 3 * LANES, scale,  # noqa: F821
                                        _NO_BIAS)
                _store_lanes(out, b, col, dim - col, s0 + biases)  # noqa: F821
                _store_lanes(out, b, col + LANES, dim - col - LANES, s1 + biases)  # noqa: F821
                _store_lanes(out, b, col + 2 * LANES, dim - col - 2 * LANES, s2 + biases)  # noqa: F821
                _store_lanes(out, b, col + 3 * LANES, dim - col - 3 * LANES, s3 + biases)  # noqa: F821
        return bad
    return loop


BUILDS = {"the loop rebuilt": {}, "without the id check": {"check_ids": False},
          "width fixed at 64": {"width": 64}, "without prefetching": {"prefetch": False},
          "walked per 64 columns": {"walks": True}}


def parts(vocab: int, rounds: int, seed: int = 0) -> str:
    """One line: the kernel, each build and torch's op on bags of 16 from ``vocab`` x 64, best of ``rounds``."""
    rng = np.random.default_rng(seed)
    weight = rng.standard_normal((vocab, 64)).astype(np.float32)
    n = 65536
    ids, offsets = rng.integers(0, vocab, n), np.arange(0, n, 16)
    bounds = kernels.check_offsets(offsets, n)
    fused = QuantizedEmbedding.from_float(weight, bits=8).fused
    ahead = rows.prefetch_distance(fused)
    kernel = bags._BAG_SUMS["int8"][1].compiled()
    expected = bags.bag_pool_fused(fused, 64, 8, ids, bounds)
    packed = torch.ops.quantized.embedding_bag_byte_prepack(torch.from_numpy(weight))
    ids_t, offsets_t = torch.from_numpy(ids), torch.from_numpy(offsets)
    calls = {"the kernel": lambda out: kernel(fused, ids, bounds, None, False, ahead, out)}
    for name, flags in BUILDS.items():
        loop = build(**flags)
        calls[name] = lambda out, loop=loop: loop(fused, ids, bounds, ahead, out)
    outs = {name: np.empty_like(expected) for name in calls}
    for name, call in calls.items():
        call(outs[name])
        if not np.array_equal(outs[name].view(np.uint32), expected.view(np.uint32)):
            raise AssertionError(f"{name}: not the kernel's bits")
    calls["torch.quantized"] = lambda out: torch.ops.quantized.embedding_bag_byte_rowwise_offsets(
        packed, ids_t, offsets_t, mode=0)
    outs["torch.quantized"] = None
    best = {name: float("inf") for name in calls}
    for _ in range(rounds):  # in turns: a slow stretch of the machine falls on every build alike
        for name, call in calls.items():
            call(outs[name])
            start, count = time.perf_counter(), 0
            while time.perf_counter() - start < 0.01:
                call(outs[name])
                count += 1
            best[name] = min(best[name], (time.perf_counter() - start) / count * 1e6)
    whole = best["the loop rebuilt"]
    cells = [f"{name} {us:.1f} us" + (f" ({whole - us:+.1f})" if name in BUILDS and name != "the loop rebuilt" else "")
             for name, us in best.items()]
    return f"{vocab}x64 int8, bags of 16, 1 thread, best of {rounds}: " + "; ".join(cells)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20, help="rounds of 10 ms samples, each build in turn")
    args = parser.parse_args()
    kernels.set_num_threads(1)
    numba.set_num_threads(1)
    torch.set_num_threads(1)
    print(f"benchmarks/int8_loop.py: 1 thread, numba {numba.__version__}, torch {torch.__version__}; "
          f"(+-x): the time a part takes out of the rebuilt loop")
    for vocab in (100_000, 1_000_000):
        print(parts(vocab, args.rounds), flush=True)


if __name__ == "__main__":
    main()
