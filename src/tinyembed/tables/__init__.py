"""Embedding tables: one protocol, many ways to store a vocabulary.

    base         the protocol (lookup, nbytes, compression_ratio, to_dense, bag, save/load)
"""

from .base import TABLE_TYPES, EmbeddingTable, load_table, register_table, take_array

__all__ = ["EmbeddingTable", "TABLE_TYPES", "load_table", "register_table", "take_array"]
