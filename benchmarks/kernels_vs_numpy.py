"""Are the kernels faster than the textbook NumPy one-liners they replace?

Forward: ``gather_rows`` vs ``weight[ids]``. Dense backward: ``scatter_add_rows``
vs ``np.add.at``. Interleaved A B A B in one process, medians of the repeats;
the ratio is numpy_time / tinyembed_time (above 1: the kernel is faster).

    python benchmarks/kernels_vs_numpy.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from tinyembed import kernels

CASES = [(50257, 768), (32000, 4096), (50257, 64), (1000, 16)]


def zipf_ids(rng, vocab, shape, alpha=1.0):
    p = 1.0 / np.arange(1, vocab + 1) ** alpha
    return rng.choice(vocab, size=shape, p=p / p.sum())


def interleaved(fns, repeats):
    """Median seconds of each function, run in turns so drift hits all alike."""
    for f in fns:
        f()  # warm-up
    times = [[] for _ in fns]
    for _ in range(repeats):
        for t, f in zip(times, fns):
            start = time.perf_counter()
            f()
            t.append(time.perf_counter() - start)
    return [float(np.median(t)) for t in times]


def numpy_dense_backward(ids, grads, vocab):
    out = np.zeros((vocab, grads.shape[1]), dtype=grads.dtype)
    np.add.at(out, ids, grads)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"threads={kernels.get_num_threads()}  ids=(32, 512)  medians of {args.repeats}")
    print(f"{'V':>6} {'D':>5} {'ids':>7} | {'weight[ids]':>11} {'gather':>8} {'ratio':>5} | "
          f"{'add.at':>8} {'scatter':>8} {'ratio':>5}")
    for vocab, dim in CASES:
        weight = rng.standard_normal((vocab, dim), dtype=np.float32)
        for name in ("uniform", "zipf"):
            ids = rng.integers(0, vocab, (32, 512)) if name == "uniform" else zipf_ids(rng, vocab, (32, 512))
            flat = ids.reshape(-1)
            grads = rng.standard_normal((flat.size, dim), dtype=np.float32)
            t_np, t_te = interleaved([lambda: weight[ids], lambda: kernels.gather_rows(weight, ids)], args.repeats)
            b_np, b_te = interleaved([lambda: numpy_dense_backward(flat, grads, vocab),
                                      lambda: kernels.scatter_add_rows(flat, grads, vocab)], args.repeats)
            print(f"{vocab:>6} {dim:>5} {name:>7} | {t_np * 1e3:>9.2f}ms {t_te * 1e3:>6.2f}ms {t_np / t_te:>5.2f} | "
                  f"{b_np * 1e3:>6.1f}ms {b_te * 1e3:>6.1f}ms {b_np / b_te:>5.2f}")


if __name__ == "__main__":
    main()
