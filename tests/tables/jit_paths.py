"""Running a call on both paths: the compiled kernels (numba) and the NumPy code they replace."""

import importlib.util
import os

import pytest

from tinyembed.kernels import jit

# numba is optional (pip install tinyembed[fast]); CI installs it, so there these cannot skip.
# TINYEMBED_JIT=0 runs the whole suite on the NumPy path, where there is nothing to compare.
needs_numba = pytest.mark.skipif(
    (importlib.util.find_spec("numba") is None and not os.environ.get("CI"))
    or os.environ.get("TINYEMBED_JIT") == "0",
    reason="numba not installed, or the compiled kernels switched off with TINYEMBED_JIT=0")


def on_numpy_path(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` with the compiled kernels off."""
    old = jit.set_enabled(False)
    try:
        return fn(*args, **kwargs)
    finally:
        jit.set_enabled(old)


def on_both_paths(fn, *args, **kwargs):
    """(compiled result, NumPy result) of ``fn(*args, **kwargs)``; the compiled path must be on."""
    assert jit.available(), "the compiled kernels are off: nothing to compare"
    return fn(*args, **kwargs), on_numpy_path(fn, *args, **kwargs)
