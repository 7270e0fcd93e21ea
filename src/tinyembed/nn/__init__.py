"""Layers: modules own parameters and configuration; functional code does the work."""

from . import functional, init
from .embedding import Embedding, EmbeddingBag
from .embedding_layer import EmbeddingLayer
from .layers import Dropout, LayerNorm, Linear
from .module import Module, ModuleList, Parameter, Sequential
from ..positional import LearnedPositionalEmbedding, PositionalEncoding

__all__ = [
    "Module", "ModuleList", "Sequential", "Parameter",
    "Embedding", "EmbeddingBag", "Linear", "LayerNorm", "Dropout",
    "EmbeddingLayer", "PositionalEncoding", "LearnedPositionalEmbedding",
    "functional", "init",
]
