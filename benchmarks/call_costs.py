"""What the bench's misses against torch are made of: a call's fixed cost, and a bag call's parts.

A benchmark, not a test (the README's performance section quotes its output). Each part is
tinyembed against torch with the same threads, medians:

* fixed cost: ``Embedding`` and ``EmbeddingBag`` (sum) on a 1000x16 table with one id, where the
  call is all there is, and with 16,384 ids (bags of 16);
* a bag call's parts: the whole call, the checks of its offsets (its ids are checked in the pooling
  loop, as no backward is recorded), the pooling kernel called straight (``kernels.bag_pool``, on every
  thread), and the rest (the layers above, the Tensor), for float32 bags of 1000x16, 50257x64 and
  50257x768, sums and weighted sums, against ``F.embedding_bag`` and int8 and int4 bags of 100000x64 (the bench's qbag
  shape) against torch's quantized ops; the parts in turns, torch in its own rounds;
* the loops alone, on one thread: our pooling kernel against torch's op, int8 bags (torch's quantized
  op) and float32 bags of 50257x64 and 50257x768 (``F.embedding_bag``);
* a lookup's parts: an int4 lookup of 50257x16 rows and its decoding kernel beside the float32
  lookup of the same rows and its copy (both check their ids inside); the float32 lookup into a
  preallocated output (1000x16, 50257x64) and its copy loop against ``index_select(out=)``, on two
  threads and on one; and the embedding layer (tokens plus sinusoidal positions, 1000x16 and 50257x64)
  beside its token lookup, all in turns;
* two threads against one: the float32 copy (1000x16 with 16384 and 65536 ids, 50257x64) and bags of 16
  (50257x64), ours and torch's, each on two threads, on one, and half the work on one thread (what each
  of two threads has to do); ours also each half beside the other, on two Python threads at once. Half
  alone against half beside the other is what the two cores cost each other; the rest of the two-thread
  time is numba's parallel run (its launch of an empty loop is timed too).

Needs torch (the test or bench extra) and numba::

    python benchmarks/call_costs.py
"""

from __future__ import annotations

import argparse
import contextlib
import threading
import time

import numpy as np
import torch

from tinyembed import kernels, nn, no_grad
from tinyembed.kernels import bags, gather, get_num_threads, jit, rows, set_num_threads
from tinyembed.kernels.rows import gather_decoded
from tinyembed.positional import EmbeddingLayer
from tinyembed.profile.timing import interleaved
from tinyembed.tables import QuantizedEmbedding


def median_us(fn, repeats: int, warmup: int = 20) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        fn()
        times.append(time.perf_counter_ns() - start)
    return float(np.median(times)) / 1e3


def medians_us(fns: dict, repeats: int) -> dict[str, float]:
    """Microseconds a call of each of ``fns`` takes, timed in turns as the bench times (5 ms samples)."""
    timed = interleaved(fns, repeats, warmup=2, min_sample_ms=5.0)
    return {key: timing.median_ms * 1e3 for key, timing in timed.items()}


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


def bag_parts(rng, repeats: int) -> list[str]:
    """A bag call and its parts: float32 (1000x16, 50257x64, 50257x768; sums and weighted sums), int8 and int4
    (100000x64, the bench's qbag shape), the parts timed in turns (each timed in its own stretch, they
    drifted apart)."""
    float32 = [_float32_bag_parts(rng, repeats, vocab, dim, weighted)
               for vocab, dim in ((1000, 16), (50257, 64), (50257, 768)) for weighted in (False, True)]
    return float32 + [_quantized_bag_parts(rng, repeats, 8), _quantized_bag_parts(rng, repeats, 4)]


def _float32_bag_parts(rng, repeats: int, vocab: int, dim: int, weighted: bool) -> str:
    weight = rng.standard_normal((vocab, dim)).astype(np.float32)
    ids, offsets, bounds, ids_t, offsets_t = _bags(rng, vocab, 16384)
    psw = rng.random(len(ids), dtype=np.float32) if weighted else None
    psw_t = None if psw is None else torch.from_numpy(psw)
    layer, weight_t = nn.EmbeddingBag.from_pretrained(weight, mode="sum"), torch.from_numpy(weight)

    def call():
        with no_grad():
            return layer(ids, offsets=offsets, per_sample_weights=psw)
    return _parts(f"{vocab}x{dim} float32{' weighted' if weighted else ''}", {
        "call": call, "checks": lambda: kernels.check_offsets(offsets, len(ids)),  # the ids: in the pooling loop
        "pooling": lambda: bags.bag_pool(weight, ids, bounds, "sum", psw),
        "torch": lambda: torch.nn.functional.embedding_bag(ids_t, weight_t, offsets_t, mode="sum",
                                                           per_sample_weights=psw_t)}, repeats)


def _quantized_bag_parts(rng, repeats: int, bits: int) -> str:
    weight = rng.standard_normal((100_000, 64)).astype(np.float32)
    ids, offsets, bounds, ids_t, offsets_t = _bags(rng, 100_000, 65536)
    table = QuantizedEmbedding.from_float(weight, bits=bits)
    quantized = torch.ops.quantized
    prepack, bag = ((quantized.embedding_bag_byte_prepack, quantized.embedding_bag_byte_rowwise_offsets) if bits == 8
                    else (quantized.embedding_bag_4bit_prepack, quantized.embedding_bag_4bit_rowwise_offsets))
    packed = prepack(torch.from_numpy(weight))
    return _parts(f"100000x64 int{bits}", {
        "call": lambda: table.bag(ids, offsets),
        "checks": lambda: kernels.check_offsets(offsets, len(ids)),  # the ids: in the pooling loop
        "pooling": lambda: bags.bag_pool_fused(table.fused, 64, bits, ids, bounds),
        "torch.quantized": lambda: bag(packed, ids_t, offsets_t, mode=0)}, repeats)


def _bags(rng, vocab: int, n: int):
    """n ids in bags of 16: (ids, offsets, bounds, and torch's ids and offsets)."""
    ids = rng.integers(0, vocab, size=n)
    offsets = np.arange(0, n, 16)
    return ids, offsets, kernels.check_offsets(offsets, n), torch.from_numpy(ids), torch.from_numpy(offsets)


def _parts(name: str, fns: dict, repeats: int) -> str:
    """Time our call and its parts in turns, the peer (the last of ``fns``) in rounds of its own, and say
    what the call is made of. In turns with torch, our call took ~40 us more (1000x16) than its parts
    add up to: torch's OpenMP workers spin after each op, on the cores our next call wants."""
    *ours, peer = fns
    us = {**medians_us({key: fns[key] for key in ours}, repeats), **medians_us({peer: fns[peer]}, repeats)}
    return (f"{name}, bags of 16: the call {us['call']:.1f} us = checks {us['checks']:.1f} + pooling "
            f"{us['pooling']:.1f} + the rest {us['call'] - us['checks'] - us['pooling']:.1f}; {peer} {us[peer]:.1f} us")


def lookup_parts(rng, repeats: int) -> list[str]:
    """A lookup call and its parts: int4 against float32 rows at 50257x16 (the compressed lookups'
    misses), and the embedding layer (tokens + sinusoidal positions) against its token lookup at 50257x64."""
    ids = rng.integers(0, 50257, size=(32, 512))
    flat = ids.reshape(-1)
    weight = rng.standard_normal((50257, 16)).astype(np.float32)
    dense, int4 = nn.Embedding.from_pretrained(weight), QuantizedEmbedding.from_float(weight, bits=4)
    out = np.empty((32, 512, 16), np.float32)

    def dense_call():
        with no_grad():
            return dense(ids, out=out)
    us = medians_us({
        "int4 call": lambda: int4.lookup(ids, out=out),
        "int4 decode": lambda: gather_decoded(int4.fused, "int4", 16, flat, out=out.reshape(-1, 16)),
        "float32 call": dense_call, "float32 copy": lambda: kernels.gather_rows(weight, flat, out=out.reshape(-1, 16))},
        repeats)
    lines = [f"50257x16, 32x512 ids, out=: int4 lookup {us['int4 call']:.1f} us, its decoding {us['int4 decode']:.1f}; "
             f"float32 lookup {us['float32 call']:.1f} us, its copy {us['float32 copy']:.1f} (both check ids inside)"]

    return (lines + [out_parts(rng, repeats, 1000, 16), out_parts(rng, repeats, 50257, 64)]
            + [layer_parts(rng, repeats, 1000, 16), layer_parts(rng, repeats, 50257, 64)])


def out_parts(rng, repeats: int, vocab: int, dim: int) -> str:
    """A float32 lookup into a preallocated output (the bench's forward_out): the call, its copy loop (which
    checks the ids inside) and torch's index_select(out=), on two threads and on one."""
    ids = rng.integers(0, vocab, size=(32, 512))
    weight = rng.standard_normal((vocab, dim)).astype(np.float32)
    emb, out = nn.Embedding.from_pretrained(weight), np.empty((32, 512, dim), np.float32)
    weight_t, ids_t, out_t = torch.from_numpy(weight), torch.from_numpy(ids.reshape(-1)), torch.empty(32 * 512, dim)

    def call():
        with no_grad():
            return emb(ids, out=out)
    fns = {"call": call, "copy": lambda: kernels.lookup_rows(weight, ids, out=out)}
    us = {**medians_us(fns, repeats), **medians_us({"torch": lambda: torch.index_select(weight_t, 0, ids_t, out=out_t)},
                                                   repeats)}
    with _on_one_thread():
        one = {**medians_us({"copy": fns["copy"]}, repeats),
               **medians_us({"torch": lambda: torch.index_select(weight_t, 0, ids_t, out=out_t)}, repeats)}
    return (f"{vocab}x{dim}, 32x512 ids, out=: the lookup {us['call']:.1f} us = the copy {us['copy']:.1f} + the rest "
            f"{us['call'] - us['copy']:.1f}; torch index_select {us['torch']:.1f} us; 1 thread: the copy "
            f"{one['copy']:.1f} us, torch {one['torch']:.1f}")


def layer_parts(rng, repeats: int, vocab: int, dim: int) -> str:
    """The embedding layer (tokens plus sinusoidal positions) and its parts, beside its token lookup alone
    and that lookup's copy kernel: 32x512 ids, in turns (the bench's layer/lookup target)."""
    ids = rng.integers(0, vocab, size=(32, 512))
    layer = EmbeddingLayer(vocab, dim, max_len=512, seed=0)
    table, positions = layer.tokens.weight.data, layer.positions.added_rows(512).data

    def layer_call():
        with no_grad():
            return layer(ids)

    def token_call():
        with no_grad():
            return layer.tokens(ids)
    us = medians_us({
        "layer": layer_call, "fused add": lambda: kernels.gather_add_rows(table, ids, positions),
        "lookup": token_call, "copy": lambda: kernels.lookup_rows(table, ids)[0]}, repeats)
    return (f"{vocab}x{dim}, 32x512 ids: the layer {us['layer']:.1f} us = tokens plus positions {us['fused add']:.1f} "
            f"+ the rest {us['layer'] - us['fused add']:.1f}; its token lookup {us['lookup']:.1f} us = the copy "
            f"{us['copy']:.1f} + the rest {us['lookup'] - us['copy']:.1f} (both loops check the ids inside)")


def one_thread(rng, repeats: int) -> list[str]:
    """The loops themselves, without threads: bags of 16 on one thread, our pooling kernel (its serial
    build) against torch's op, int8 from 100000x64 (torch's quantized op, FBGEMM's kernel) and float32
    from 50257x64 and 50257x768 (F.embedding_bag)."""
    weight = rng.standard_normal((100_000, 64)).astype(np.float32)
    ids, offsets, bounds, ids_t, offsets_t = _bags(rng, 100_000, 65536)
    fused = QuantizedEmbedding.from_float(weight, bits=8).fused
    if not rows._compiled_ok(fused, vars(bags)):
        return ["one thread: needs numba"]
    packed = torch.ops.quantized.embedding_bag_byte_prepack(torch.from_numpy(weight))
    int8 = _one_thread("100000x64 int8", bags._BAG_SUMS["int8"][1], fused, 64, ids, bounds, "torch.quantized",
                       lambda: torch.ops.quantized.embedding_bag_byte_rowwise_offsets(packed, ids_t, offsets_t, mode=0),
                       repeats)
    return [int8] + [_float32_one_thread(rng, repeats, 50257, dim) for dim in (64, 768)]


def _float32_one_thread(rng, repeats: int, vocab: int, dim: int) -> str:
    weight = rng.standard_normal((vocab, dim)).astype(np.float32)
    ids, offsets, bounds, ids_t, offsets_t = _bags(rng, vocab, 16384)
    weight_t = torch.from_numpy(weight)
    return _one_thread(f"{vocab}x{dim} float32", bags._BAG_SUM[1], weight, dim, ids, bounds, "torch",
                       lambda: torch.nn.functional.embedding_bag(ids_t, weight_t, offsets_t, mode="sum"), repeats)


def _one_thread(name: str, kernel, table: np.ndarray, dim: int, ids, bounds, peer: str, peer_fn, repeats: int) -> str:
    out = np.empty((len(bounds) - 1, dim), np.float32)
    ahead = rows.prefetch_distance(table)
    compiled = kernel.compiled()
    with _on_one_thread():
        us = {**medians_us({"ours": lambda: compiled(table, ids, bounds, None, False, ahead, out)}, repeats),
              **medians_us({"peer": peer_fn}, repeats)}
    return f"{name}, bags of 16, 1 thread: our pooling {us['ours']:.1f} us; {peer} {us['peer']:.1f} us"


def two_threads(rng, repeats: int) -> list[str]:
    """Why a second thread helps our float32 loops more or less than torch's: each loop on two threads, on
    one, and half its work on one thread, alone and beside the other half (two Python threads calling the
    serial loop, which releases the GIL). A half beside the other against a half alone is what the two cores
    cost each other; the two-thread call beyond a half beside the other is what numba's parallel run costs,
    of which its launch of an empty parallel loop (timed first)."""
    if not jit.available():
        return ["two threads: needs numba"]
    launch, nothing = _empty.compiled(), np.zeros(2)
    lines = [f"numba's launch of an empty parallel loop on {jit.threads()} threads: "
             f"{medians_us({'launch': lambda: launch(nothing)}, repeats)['launch']:.1f} us"]
    return lines + [_copy_scaling(rng, repeats, *case) for case in ((1000, 16, 16384), (1000, 16, 65536),
                                                                 (50257, 64, 16384))] + [_bag_scaling(rng, repeats)]


def _copy_scaling(rng, repeats: int, vocab: int, dim: int, n: int) -> str:
    weight = rng.standard_normal((vocab, dim)).astype(np.float32)
    ids, out = rng.integers(0, vocab, size=n), np.empty((n, dim), np.float32)
    words, out_words = gather._as_words(weight, out)
    ahead, half = gather._ahead(weight), n // 2
    par, ser = (kernel.compiled() for kernel in gather._GATHER_CHECKED)
    weight_t, ids_t, out_t = torch.from_numpy(weight), torch.from_numpy(ids), torch.empty(n, dim)
    half_t = ids_t[:half].clone()
    return _scaling(
        f"{vocab}x{dim} copy, {n} ids", lambda: par(words, out_words, ids, ahead),
        lambda: ser(words, out_words, ids, ahead),
        (lambda: ser(words, out_words[:half], ids[:half], ahead),
         lambda: ser(words, out_words[half:], ids[half:], ahead)),
        lambda: torch.index_select(weight_t, 0, ids_t, out=out_t),
        lambda: torch.index_select(weight_t, 0, half_t, out=out_t[:half]), repeats)


def _bag_scaling(rng, repeats: int) -> str:
    weight = rng.standard_normal((50257, 64)).astype(np.float32)
    ids, offsets, bounds, ids_t, offsets_t = _bags(rng, 50257, 16384)
    out, half = kernels.empty_aligned((len(offsets), 64), np.float32), len(offsets) // 2
    ahead, (par, ser) = rows.prefetch_distance(weight), (kernel.compiled() for kernel in bags._BAG_SUM)
    weight_t, half_ids_t, half_offsets_t = torch.from_numpy(weight), ids_t[:half * 16].clone(), offsets_t[:half].clone()
    return _scaling(
        "50257x64 bags of 16, 16384 ids", lambda: par(weight, ids, bounds, None, False, ahead, out),
        lambda: ser(weight, ids, bounds, None, False, ahead, out),
        (lambda: ser(weight, ids, bounds[:half + 1], None, False, ahead, out[:half]),
         lambda: ser(weight, ids, bounds[half:], None, False, ahead, out[half:])),
        lambda: torch.nn.functional.embedding_bag(ids_t, weight_t, offsets_t, mode="sum"),
        lambda: torch.nn.functional.embedding_bag(half_ids_t, weight_t, half_offsets_t, mode="sum"), repeats)


@jit.kernel(parallel=True)
def _empty(x):
    for i in jit.prange(x.shape[0]):
        x[i] += 1.0


def _scaling(name: str, ours_two, ours_one, ours_halves, torch_all, torch_half, repeats: int) -> str:
    """One loop of ours and torch's: on two threads, on one, half the work on one (each in turns with its
    own); ours also each half beside the other."""
    us = {**medians_us({"ours two": ours_two, "ours one": ours_one, "ours half": ours_halves[0]}, repeats),
          "ours side by side": _side_by_side_us(*ours_halves, rounds=repeats),
          **medians_us({"torch two": torch_all}, repeats)}
    with _on_one_thread():
        us |= medians_us({"torch one": torch_all, "torch half": torch_half}, repeats)
    ours, torch_ = (f"{us[f'{who} two']:.1f} us on 2 threads, {us[f'{who} one']:.1f} on 1 "
                    f"({us[f'{who} one'] / us[f'{who} two']:.2f}x), half on 1 {us[f'{who} half']:.1f}"
                    for who in ("ours", "torch"))
    side, torch_extra = us["ours side by side"], us["torch two"] - us["torch half"]
    return (f"{name}: ours {ours}, each half beside the other {side:.1f} (numba's two threads "
            f"{us['ours two'] - side:+.1f}); torch {torch_} (its two threads {torch_extra:+.1f})")


def _side_by_side_us(first, second, rounds: int, calls: int = 50) -> float:
    """Microseconds a call of ``first`` takes while another Python thread calls ``second`` (median per round
    of ``calls``; both start each round together). The loops release the GIL, so the two run at once."""
    barrier, times = threading.Barrier(2), []

    def run(fn, record: bool) -> None:
        for _ in range(rounds):
            barrier.wait()
            start = time.perf_counter_ns()
            for _ in range(calls):
                fn()
            if record:
                times.append((time.perf_counter_ns() - start) / calls / 1e3)
    for fn in (first, second):  # warm
        fn()
    other = threading.Thread(target=run, args=(second, False))
    other.start()
    run(first, True)
    other.join()
    return float(np.median(times))


@contextlib.contextmanager
def _on_one_thread():
    """tinyembed and torch on one thread inside, on as many as before after."""
    threads = torch.get_num_threads()
    set_num_threads(1)
    torch.set_num_threads(1)
    try:
        yield
    finally:
        set_num_threads(threads)
        torch.set_num_threads(threads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="threads for tinyembed and torch (default 2)")
    parser.add_argument("--repeats", type=int, default=2000, help="calls timed for the small cases (default 2000)")
    parser.add_argument("--samples", type=int, default=45,
                        help="5 ms samples per part of a call (default 45: spread over a few seconds, a median passes "
                             "over the slow stretches this machine has)")
    args = parser.parse_args()
    set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    print(f"benchmarks/call_costs.py: {get_num_threads()} threads for tinyembed and torch {torch.__version__}; "
          f"medians")
    samples = args.samples
    for line in (fixed_costs(rng, args.repeats) + bag_parts(rng, samples) + one_thread(rng, samples)
                 + lookup_parts(rng, samples) + two_threads(rng, samples)):
        print(line, flush=True)


if __name__ == "__main__":
    main()
