"""Reading and writing tensors in files other programs made or will read.

    safetensors   the safetensors format (Hugging Face's), with NumPy alone
    files         atomic writes: a temporary file beside the target, then a rename
"""

from . import files, safetensors
from .files import atomic_open, write_atomic

__all__ = ["safetensors", "files", "atomic_open", "write_atomic"]
