"""tinyembed: the embedding systems of a language model, from scratch on NumPy.

Layout (one concept per module):
    tensor, sparse, gradcheck   Tensor with reverse-mode autograd; row-sparse gradients
    kernels                     pure array functions: gather, segment sums, bag pooling
    nn                          Module, Parameter, Embedding, EmbeddingBag, layers, functional
    optim                       SGD, Adam, AdamW, SparseAdam, RowWiseAdagrad
    positional                  sinusoidal, learned, rotary (with scalings), ALiBi
    tables                      the table protocol and compressed tables (quantized, hashed, low-rank, ...)
    compress                    what each compression costs, measured
    io, assets                  safetensors; real data from PyPI wheels
    models, memory              published model configurations; their embedding memory
    cli                         the `tinyembed` command
"""

from .tensor import Tensor, cat, concatenate, enable_grad, is_grad_enabled, no_grad, stack, tensor
from .sparse import RowSparseGrad
from .gradcheck import gradcheck
from . import kernels, nn, optim, tables

__version__ = "0.1.0"

__all__ = [
    "Tensor", "tensor", "no_grad", "enable_grad", "is_grad_enabled", "cat", "concatenate", "stack",
    "RowSparseGrad", "gradcheck", "kernels", "nn", "optim", "tables",
]

