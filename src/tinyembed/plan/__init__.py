"""Estimates with no clock: what embedding tables of real models need, before anything runs.

    models     published configurations (GPT-2, LLaMA-3-8B, ...), each with its source
    memory     parameters, bytes per storage type, optimizer state, rows a batch touches
    zipf       the one Zipf law over a table's rows, exact or closed-form for huge tables
    sharding   placing tables on devices: strategies, a cost model, simulated batches
"""

from .memory import MemoryReport, embedding_memory
from .models import MODELS, ModelConfig

__all__ = ["MODELS", "ModelConfig", "MemoryReport", "embedding_memory"]
