"""Sharded tables on Ray, measured: every shard's traffic against the sharding planner's
prediction, and lookup / training-step throughput against one in-process table.

A benchmark, not a test. It starts Ray on this machine (or joins ``--ray-address``),
puts a 30,522 x 64 float32 table (MiniLM's vocabulary, which the real token stream needs)
on 4 actors under each plan (row, hashed-row, column), trains it on batches of 8,192 ids
drawn uniformly, from Zipf(1.0) and from the real Wikipedia token stream, and counts what
each shard receives and sends; the planner predicts the same table, batch and N
(``tinyembed.profile.sharded``). Then it times lookups and training steps on 1, 2 and 4
shards against ``nn.Embedding`` in this process, with the latency broken into validate
and route, Ray round trip and assemble. With 2 cores the shards share the driver's CPUs:
the point is the overhead and the traffic, not a speed-up. Needs the distributed and
text extras::

    pip install -e '.[distributed,text]'
    python benchmarks/sharded.py                 # about a minute on 2 cores
    python benchmarks/sharded.py --json --out sharded.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

from tinyembed.io.files import write_atomic
from tinyembed.profile.sharded import format_throughput, format_traffic, measure_throughput, measure_traffic
from tinyembed.profile.timing import machine_info


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", type=int, default=4, help="actors of the traffic measurement (default 4)")
    parser.add_argument("--batches", type=int, default=4, help="batches per pattern and plan (default 4)")
    parser.add_argument("--repeats", type=int, default=15, help="timed repeats of each throughput case (default 15)")
    parser.add_argument("--patterns", default="uniform,zipf-1,text", help="access patterns (default %(default)s)")
    parser.add_argument("--ray-address", help="a Ray cluster to join (default: start Ray here)")
    parser.add_argument("--no-per-shard", action="store_true", help="leave out the per-shard table")
    parser.add_argument("--json", action="store_true", help="print the numbers as JSON")
    parser.add_argument("--out", help="also write the JSON to this file")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    traffic = measure_traffic(patterns=args.patterns.split(","), num_shards=args.shards, batches=args.batches,
                              address=args.ray_address)
    throughput = measure_throughput(shard_counts=(1, 2, 4), repeats=args.repeats, address=args.ray_address)
    seconds = time.perf_counter() - start
    import ray  # noqa: PLC0415 - measured above, so installed

    info = machine_info(threads=os.cpu_count() or 1)
    machine = (f"{info['cpu_model']}, {info['usable_cores']} cores, numpy {np.__version__}, ray {ray.__version__}; "
               f"load average {load:.2f} at the start; {seconds:.0f} s")
    payload = {"machine": machine, "traffic": [c.to_dict() for c in traffic],
               "throughput": [r.to_dict() for r in throughput], "seconds": seconds}
    if args.out:
        write_atomic(args.out, json.dumps(payload, indent=1) + "\n")
    if args.json:
        print(json.dumps(payload, indent=1))
        return 0
    print(f"benchmarks/sharded.py: {machine}")
    print()
    print(format_traffic(traffic, per_shard=not args.no_per_shard))
    print()
    print(format_throughput(throughput))
    return 0


if __name__ == "__main__":
    sys.exit(main())
