"""The errors of sharded tables: each names the shard, the file or the value at fault."""

from __future__ import annotations

__all__ = ["CheckpointError", "ShardLostError", "ShardPlacementError", "ShardTimeoutError"]


class ShardLostError(RuntimeError):
    """A shard's actor died (its process was killed, crashed or its node left). The table cannot
    go on without the rows it held: load the last checkpoint (``ShardedEmbedding.load(dir)``) or
    restore it in place (``table.restore(dir)``). The message names the shard, its table and actor."""


class ShardTimeoutError(RuntimeError):
    """A shard did not answer within the table's ``timeout`` (its actor is alive but stuck or
    starved). The message names the shards that did not answer and the request."""


class ShardPlacementError(RuntimeError):
    """Ray could not start the shard actors: the cluster lacks the CPUs they ask for (each takes
    ``num_cpus``), or they did not start within the timeout. Nothing is left running."""


class CheckpointError(ValueError):
    """A sharded checkpoint is refused before anything is loaded: a file is missing, truncated or
    disagrees with ``manifest.json``, or the checkpoint does not fit the table it is loaded into.
    The message names the file."""
