"""Layers: modules own parameters and configuration; functional code does the work."""

from . import functional, init
from .embedding import Embedding, EmbeddingBag
from .embedding_layer import EmbeddingLayer
from .layers import Dropout, LayerNorm, Linear
from .module import Module, ModuleList, Parameter, Sequential
from ..positional import ALiBi, LearnedPositionalEmbedding, PositionalEncoding, RotaryEmbedding

__all__ = [
    "Module", "ModuleList", "Sequential", "Parameter",
    "Embedding", "EmbeddingBag", "Linear", "LayerNorm", "Dropout",
    "EmbeddingLayer", "PositionalEncoding", "LearnedPositionalEmbedding", "RotaryEmbedding", "ALiBi",
    "functional", "init",
]
