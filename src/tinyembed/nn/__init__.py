"""Layers: modules own parameters and configuration; functional code does the work."""

from . import init
from .embedding import Embedding, EmbeddingBag
from .module import Module, ModuleList, Parameter, Sequential

__all__ = [
    "Module", "ModuleList", "Sequential", "Parameter",
    "Embedding", "EmbeddingBag",
    "init",
]
