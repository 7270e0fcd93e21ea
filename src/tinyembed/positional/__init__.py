"""Positional encodings: how a transformer learns where each token is, and the layer that adds them.

    sinusoidal   fixed sin/cos pairs (Vaswani et al.), any length
    learned      a trainable table per position (GPT-2, BERT), up to max_len
    rope         rotary embeddings of queries and keys, with context-extension scalings
    alibi        linear attention biases by distance (Press et al.)
    layer        EmbeddingLayer: token table + scale + positions + dropout, the input of a transformer

Built on :mod:`tinyembed.nn`'s public names only.
"""

from .alibi import ALiBi
from .layer import POSITIONAL, EmbeddingLayer
from .learned import LearnedPositionalEmbedding
from .rope import ROPE_SCALINGS, RotaryEmbedding
from .sinusoidal import PositionalEncoding, sinusoidal_table

__all__ = ["PositionalEncoding", "sinusoidal_table", "LearnedPositionalEmbedding", "RotaryEmbedding",
           "ROPE_SCALINGS", "ALiBi", "EmbeddingLayer", "POSITIONAL"]
