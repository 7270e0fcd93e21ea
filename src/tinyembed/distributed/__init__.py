"""Embedding tables sharded over Ray actors, trained exactly as one table.

    errors       ShardLostError, ShardTimeoutError, ShardPlacementError, CheckpointError
    layout       TableLayout: the planner's shards of a table, and which shard serves an id;
                 the plans by name (row, hashed-row, column; table, data-parallel for collections)
    shard        TableShard: a block of rows and columns with its optimizer state, and the
                 fused update (tinyembed.optim's functional steps)
    server       ShardServer: the process behind an actor, holding shards of any tables and
                 counting their traffic
"""

from .errors import CheckpointError, ShardLostError, ShardPlacementError, ShardTimeoutError
from .layout import COLLECTION_PLANS, PLANS, TableLayout, layouts_from_plan, plan_table, plan_tables
from .server import ShardServer
from .shard import OPTIMIZERS, TableShard

__all__ = [
    "TableLayout", "TableShard", "ShardServer",
    "ShardLostError", "ShardTimeoutError", "ShardPlacementError", "CheckpointError",
    "PLANS", "COLLECTION_PLANS", "OPTIMIZERS", "layouts_from_plan", "plan_table", "plan_tables",
]
