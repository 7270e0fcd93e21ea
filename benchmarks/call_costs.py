"""What the bench's misses against torch are made of: a call's fixed cost, a small bag's loop, and
the gather timed alone or in turns with torch.

A benchmark, not a test (the README's performance section quotes its output). Three parts, each
tinyembed against torch with the same threads, medians:

* fixed cost: ``Embedding`` and ``EmbeddingBag`` (sum) on a 1000x16 table with one id, where the
  call is all there is, and with 16,384 ids (bags of 16);
* the float32 bag kernel on one thread, called straight (no checks, no Tensor), against torch's
  ``F.embedding_bag`` on all threads;
* ``Embedding(ids, out=)`` against ``index_select(out=)`` at 50257x768 with 32x512 ids: each timed
  alone (all of ours, then all of torch's) and in turns (A B A B, as ``tinyembed bench`` does).

Needs torch (the test or bench extra) and numba::

    python benchmarks/call_costs.py
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from tinyembed import nn, no_grad
from tinyembed.kernels import bags, get_num_threads, set_num_threads
from tinyembed.kernels.rows import prefetch_distance


def median_us(fn, repeats: int, warmup: int = 20) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        fn()
        times.append(time.perf_counter_ns() - start)
    return float(np.median(times)) / 1e3


def fixed_costs(rng, repeats: int) -> list[str]:
    weight = rng.standard_normal((1000, 16)).astype(np.float32)
    return [_fixed_cost(weight, rng.integers(0, 1000, size=n), repeats) for n in (1, 16384)]


def _fixed_cost(weight: np.ndarray, ids: np.ndarray, repeats: int) -> str:
    emb, bag = nn.Embedding.from_pretrained(weight), nn.EmbeddingBag.from_pretrained(weight, mode="sum")
    offsets = np.arange(0, len(ids), 16)
    weight_t, ids_t, offsets_t = torch.from_numpy(weight), torch.from_numpy(ids), torch.from_numpy(offsets)
    with no_grad():
        ours = median_us(lambda: emb(ids), repeats)
        ours_bag = median_us(lambda: bag(ids, offsets=offsets), repeats)
    theirs = median_us(lambda: torch.nn.functional.embedding(ids_t, weight_t), repeats)
    theirs_bag = median_us(lambda: torch.nn.functional.embedding_bag(ids_t, weight_t, offsets_t, mode="sum"), repeats)
    return (f"1000x16, {len(ids):>5} ids: forward {ours:7.1f} us (torch {theirs:6.1f}); "
            f"bag_sum {ours_bag:7.1f} us (torch {theirs_bag:6.1f})")


def bag_loop(rng, repeats: int) -> list[str]:
    weight = rng.standard_normal((1000, 16)).astype(np.float32)
    ids = rng.integers(0, 1000, size=16384)
    bounds = np.arange(0, 16385, 16)
    out = np.empty((1024, 16), np.float32)
    bags._install_helpers(vars(bags))
    serial = bags._BAG_SUM[1]
    no_weights = bags._weights_or_none(None, np.float32)
    ours = median_us(lambda: serial(weight, ids, bounds, no_weights, False, prefetch_distance(weight), out), repeats)
    ids_t, weight_t, offsets_t = torch.from_numpy(ids), torch.from_numpy(weight), torch.from_numpy(bounds[:-1])
    theirs = median_us(lambda: torch.nn.functional.embedding_bag(ids_t, weight_t, offsets_t, mode="sum"), repeats)
    return [f"1000x16, 1024 bags of 16: our float32 bag loop on 1 thread {ours:.1f} us; "
            f"torch on {torch.get_num_threads()} threads {theirs:.1f} us"]


def gather_alone_and_in_turns(rng, repeats: int) -> list[str]:
    weight = rng.standard_normal((50257, 768)).astype(np.float32)
    emb = nn.Embedding.from_pretrained(weight)
    ids = rng.integers(0, 50257, size=(32, 512))
    out = np.empty((32, 512, 768), np.float32)
    weight_t, ids_t, out_t = torch.from_numpy(weight), torch.from_numpy(ids.ravel()), torch.empty((32 * 512, 768))

    def ours():
        with no_grad():
            emb(ids, out=out)

    def theirs():
        torch.index_select(weight_t, 0, ids_t, out=out_t)

    alone = median_us(ours, repeats, warmup=3), median_us(theirs, repeats, warmup=3)
    turns: tuple[list[int], list[int]] = ([], [])
    for _ in range(repeats):
        for times, fn in zip(turns, (ours, theirs), strict=True):
            start = time.perf_counter_ns()
            fn()
            times.append(time.perf_counter_ns() - start)
    in_turns = tuple(float(np.median(t)) / 1e6 for t in turns)
    return [f"50257x768, 32x512 ids, out=: alone ours {alone[0] / 1e3:.2f} ms, torch {alone[1] / 1e3:.2f} ms; "
            f"in turns ours {in_turns[0]:.2f} ms, torch {in_turns[1]:.2f} ms"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="threads for tinyembed and torch (default 2)")
    parser.add_argument("--repeats", type=int, default=2000, help="calls timed for the small cases (default 2000)")
    args = parser.parse_args()
    set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    print(f"benchmarks/call_costs.py: {get_num_threads()} threads for tinyembed and torch {torch.__version__}; "
          f"medians")
    for line in (fixed_costs(rng, args.repeats) + bag_loop(rng, args.repeats // 4)
                 + gather_alone_and_in_turns(rng, 15)):
        print(line, flush=True)


if __name__ == "__main__":
    main()
