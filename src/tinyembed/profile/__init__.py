"""Profiling: what embedding lookups cost on this machine, and why.

* :class:`EmbeddingProfiler` measures lookups (throughput on a bandwidth
  roofline, access patterns, positional encodings, memory scaling) and simulates
  caches; every method returns dataclasses with ``to_dict``.
* :mod:`.machine`: cores, caches (sysfs) and copy bandwidth.
* :mod:`.patterns`: the access patterns, real text included; :mod:`.zipf` the
  Zipf distribution they and the sharding planner share.
* :mod:`.cachesim`: set-associative LRU caches replaying the lines lookups touch.
* :mod:`.rowcache`: LRU and LFU row caches (FBGEMM's embedding cache).
* :mod:`.sharding`: table-, row- and column-wise sharding plans with a cost model.
* :mod:`.sharded`: sharded tables on Ray (:mod:`tinyembed.distributed`) measured: each
  shard's traffic beside the planner's prediction, throughput against one table.
"""

from .machine import CacheLevel, MachineInfo, measure_machine, read_cache_levels
from .patterns import DEFAULT_PATTERNS, PATTERNS, AccessPattern
from .profiler import (
                       AccessPatternResult,
                       CacheAnalysis,
                       EmbeddingProfiler,
                       LookupMeasurement,
                       MemoryScaling,
                       PositionalComparison,
                       make_table,
)

__all__ = [
    "EmbeddingProfiler", "LookupMeasurement", "MemoryScaling", "PositionalComparison", "AccessPatternResult",
    "CacheAnalysis", "AccessPattern", "PATTERNS", "DEFAULT_PATTERNS", "CacheLevel", "MachineInfo",
    "measure_machine", "read_cache_levels", "make_table",
]
