"""Reading and writing tensors in files other programs made or will read.

    safetensors   the safetensors format (Hugging Face's), with NumPy alone
"""

from . import safetensors

__all__ = ["safetensors"]
