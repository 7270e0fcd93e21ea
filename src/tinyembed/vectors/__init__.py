"""Word vectors: a vocabulary and its (V, D) float32 table, and what they are worth.

    word_vectors   WordVectors: word2vec text and safetensors files, most_similar
    evaluate       WordSim-353, SimLex-999 and 3CosAdd analogies (equal to gensim's evaluation)
"""

from .word_vectors import WordVectors, is_safetensors_file, load_vectors

__all__ = ["WordVectors", "load_vectors", "is_safetensors_file"]
