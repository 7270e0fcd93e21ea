"""Embedding tables sharded over Ray actors, trained exactly as one table.

``pip install 'tinyembed[distributed]'`` adds Ray; only this package uses it, and only
once a table is made (``import tinyembed`` never imports Ray). With no address, Ray starts
on this machine; ``address="host:port"`` joins an existing cluster.

    errors       ShardLostError, ShardTimeoutError, ShardPlacementError, CheckpointError
    layout       TableLayout: the planner's shards of a table, and which shard serves an id;
                 the plans by name (row, hashed-row, column; table, data-parallel for collections)
    shard        TableShard: a block of rows and columns with its optimizer state, and the
                 fused update (tinyembed.optim's functional steps)
    server       ShardServer: the process behind an actor, holding shards of any tables and
                 counting their traffic
    runtime      Ray itself: connect, ShardServers (the actors), calls with timeouts
    engine       ShardedTables: validate and route, one request per actor, assemble
    embedding    ShardedEmbedding: one table, used like nn.Embedding
    collection   ShardedEmbeddingCollection: named tables placed by the sharding planner
    checkpoint   a safetensors file per shard and a JSON manifest; re-sharding on load;
                 to and from one in-process nn.Embedding and its optimizer

Examples (not run as doctests: each starts Ray actors)::

    from tinyembed.distributed import ShardedEmbedding
    t = ShardedEmbedding.from_pretrained(W, num_shards=3, plan="row", optimizer="sparse_adam", lr=0.01)
    x = t(ids)                 # Tensor (..., D), like nn.Embedding
    x.backward(g); t.step()    # each shard applies SparseAdam to its rows
    t.save("ckpt"); t.close()
    t = ShardedEmbedding.load("ckpt", num_shards=2)
"""

from .checkpoint import Checkpoint, load_embedding, read_checkpoint, save_embedding
from .collection import ShardedEmbeddingCollection
from .embedding import ShardedEmbedding
from .errors import CheckpointError, ShardLostError, ShardPlacementError, ShardTimeoutError
from .layout import COLLECTION_PLANS, PLANS, TableLayout, layouts_from_plan, plan_table, plan_tables
from .runtime import DEFAULT_NUM_CPUS, ShardServers, connect, ray_session
from .shard import OPTIMIZERS

__all__ = [
    "ShardedEmbedding", "ShardedEmbeddingCollection", "ShardServers", "TableLayout",
    "ShardLostError", "ShardTimeoutError", "ShardPlacementError", "CheckpointError",
    "Checkpoint", "read_checkpoint", "load_embedding", "save_embedding",
    "PLANS", "COLLECTION_PLANS", "OPTIMIZERS", "DEFAULT_NUM_CPUS",
    "layouts_from_plan", "plan_table", "plan_tables", "connect", "ray_session",
]
