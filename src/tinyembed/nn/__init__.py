"""Layers: modules own parameters and configuration; functional code does the work.

    module      Module, Parameter, ModuleList, Sequential
    functional  the differentiable functions, each forward beside its backward (embedding,
                embedding_bag, embedding_add, linear, softmax, cross_entropy, ...)
    init        initializers by name
    table       the table protocol every embedding table offers (EmbeddingTable), dense or
                compressed: nn.Embedding offers it here, :mod:`tinyembed.tables` builds on it
    embedding   Embedding and EmbeddingBag, with PyTorch's semantics
    layers      Linear, LayerNorm, Dropout

Positional encodings and the token + position layer are in :mod:`tinyembed.positional`.
"""

from . import functional, init
from .embedding import Embedding, EmbeddingBag
from .layers import Dropout, LayerNorm, Linear
from .module import Module, ModuleList, Parameter, Sequential
from .table import TABLE_TYPES, EmbeddingTable, load_table, pretrained_weight

__all__ = [
    "Module", "ModuleList", "Sequential", "Parameter",
    "Embedding", "EmbeddingBag", "Linear", "LayerNorm", "Dropout",
    "EmbeddingTable", "TABLE_TYPES", "load_table", "pretrained_weight",
    "functional", "init",
]
