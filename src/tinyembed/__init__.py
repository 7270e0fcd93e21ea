"""tinyembed: the embedding systems of a language model, from scratch on NumPy.

The packages, from the bottom up (each imports only those listed before it):
    checks, io        argument checks; files written atomically, safetensors, PyPI assets, progress
    kernels           pure array functions: gather, segment sums, bags, fused quantized rows, threads
    tensor, sparse    Tensor with reverse-mode autograd; row-sparse gradients
    gradcheck         finite-difference gradient checks
    nn                Module, Parameter, Embedding, EmbeddingBag, layers, functional, the table protocol
    positional        sinusoidal, learned, rotary (with scalings), ALiBi; EmbeddingLayer
    tables            compressed tables: reduced precision, int8/int4, hashed, low rank, mixed, pruned
    optim             SGD, Adam, AdamW, SparseAdam, RowWiseAdagrad
    text              real corpora and tokenizers
    vectors           word vectors and their evaluation
    plan              estimates: published models, memory, the Zipf law, sharding plans
    distributed       tables sharded over Ray actors, trained exactly as one table; checkpoints
    train             skip-gram and a small language model, on real text
    profile           measurements: timing, the machine, access patterns, caches, bench, compression
    study             questions answered by training and timing: capacity (IsoFLOPs), decode cost
    report            the `tinyembed report` page: document, rendering, sections, figures
    cli               the `tinyembed` command
"""

from . import kernels, nn, optim, positional, tables
from .gradcheck import gradcheck
from .positional import EmbeddingLayer
from .sparse import RowSparseGrad
from .tensor import Tensor, cat, concatenate, enable_grad, is_grad_enabled, no_grad, stack, tensor

__version__ = "0.1.0"

__all__ = [
    "Tensor", "tensor", "no_grad", "enable_grad", "is_grad_enabled", "cat", "concatenate", "stack",
    "RowSparseGrad", "gradcheck", "kernels", "nn", "optim", "positional", "tables", "EmbeddingLayer",
]
