"""Optional compiled kernels (numba), for the loops NumPy cannot make fast.

``tinyembed bench`` shows why this exists: pooling bags in NumPy must first gather
every row into a buffer and then add the buffer up, twice the memory traffic of
PyTorch's fused FBGEMM kernel; a loop that adds each row straight into its bag's sum
moves the bytes once. Decoding a compressed row as it is copied, adding positions
to token rows, adding gradient rows into their table rows: all are one pass in a
loop, two or more in NumPy.

A kernel is a plain Python loop decorated with :func:`kernel`, written in the module
of the NumPy path it replaces (:mod:`.gather`, :mod:`.bags`, :mod:`.segments`,
:mod:`.rows`); numba compiles it on its first call, so importing tinyembed stays
fast and needs no numba. Its parallel loop is ``prange`` (imported from here). A loop
that several kernels share is decorated with :func:`inline` instead: numba compiles it
into each kernel that calls it, so a kernel that passes it a constant (a storage type's
number, in :mod:`.bags` and :mod:`.rows`) gets a loop of its own for that constant. The
callers ask :func:`available` first: without numba (``pip install tinyembed[fast]``)
or with ``TINYEMBED_JIT=0`` the NumPy path runs instead, with the same results.

Ids must be validated first (:mod:`.ids`) unless a kernel says it checks them itself:
compiled code does not check bounds.
"""

from __future__ import annotations

import functools
import os
import threading
import types
from collections.abc import Callable
from typing import Any

__all__ = ["available", "set_enabled", "set_num_threads", "kernel", "inline", "over_parts", "threads", "prange"]

# What a kernel's parallel loop is called in its source; numba's prange replaces it when it compiles.
prange = range

_enabled = os.environ.get("TINYEMBED_JIT", "1") != "0"
_numba: Any = None      # the numba module once imported; False if it is not installed
_import_lock = threading.RLock()  # re-entered: a kernel compiles the kernels it calls (over_parts)
# numba's fallback thread pool (workqueue) aborts the process when two Python threads
# launch parallel kernels at once (the bag pool's workers can); launches take turns.
_launch_lock = threading.Lock()
_wanted_threads: int | None = None


def _import_numba():
    global _numba
    if _numba is None:
        with _import_lock:
            if _numba is None:
                try:
                    import numba  # noqa: PLC0415 - optional dependency, imported on first use
                    _numba = numba
                except ImportError:
                    _numba = False
    return _numba


def available() -> bool:
    """True when numba is installed and the compiled kernels are enabled."""
    return _enabled and bool(_import_numba())


def set_enabled(enabled: bool) -> bool:
    """Turn the compiled kernels on or off (tests run both paths); returns the old setting."""
    global _enabled
    old, _enabled = _enabled, bool(enabled)
    return old


class Kernel:
    """A Python loop that numba compiles on its first call; calls take turns and use the thread
    count :func:`set_num_threads` asked for."""

    def __init__(self, fn: Callable, parallel: bool, fastmath: frozenset[str] = frozenset()):
        self.fn, self.parallel, self.fastmath = fn, parallel, fastmath
        self._compiled: Callable | None = None
        functools.update_wrapper(self, fn)

    def compiled(self) -> Callable:
        if self._compiled is None:
            numba = _import_numba()
            if not numba:
                raise RuntimeError("the compiled kernels need numba: check jit.available() first")
            with _import_lock:
                if self._compiled is None:
                    self.fn.__globals__["prange"] = numba.prange  # the kernel's module sees numba's loop
                    for name, value in list(self.fn.__globals__.items()):  # and numba's build of its inlined loops
                        if isinstance(value, Inline):
                            self.fn.__globals__[name] = numba.njit(inline="always", nogil=True)(value.fn)
                    # cache=True keeps the machine code between runs; nogil lets other threads run meanwhile.
                    fn = _cache_named(self.fn, self.parallel)
                    for name in fn.__code__.co_names:  # the compiled loop of the kernel it calls (over_parts)
                        if isinstance(fn.__globals__.get(name), Kernel):
                            fn.__globals__[name] = fn.__globals__[name].compiled()
                    self._compiled = numba.njit(parallel=self.parallel, fastmath=set(self.fastmath) or False,
                                                cache=True, nogil=True)(fn)
        return self._compiled

    def __call__(self, *args):
        compiled = self.compiled()
        with _launch_lock:
            _use_threads()
            return compiled(*args)


def _cache_named(fn: Callable, parallel: bool) -> Callable:
    """``fn``, or for a serial kernel a copy named ``<name>_serial``. numba's on-disk cache keys a function
    by its name and code but not by ``parallel``: a loop compiled both ways under one name got whichever
    was compiled first for both (the float32 gather's parallel kernel ran on one thread, 1.7x slower)."""
    if parallel:
        return fn
    copy = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__ + "_serial", fn.__defaults__, fn.__closure__)
    copy.__qualname__ = fn.__qualname__ + "_serial"
    copy.__doc__ = fn.__doc__
    return copy


class Inline:
    """A loop that kernels call, compiled into each of them (numba's ``inline="always"``): a kernel that
    passes it a constant gets a loop specialized for that constant (branches on it folded away)."""

    def __init__(self, fn: Callable):
        self.fn = fn
        functools.update_wrapper(self, fn)

    def __call__(self, *args):
        return self.fn(*args)


def inline(fn: Callable) -> Inline:
    """Decorator: ``fn`` is a loop the kernels of its module call, compiled into each (:class:`Inline`)."""
    return Inline(fn)


def over_parts(loop: Kernel, template: Callable) -> Kernel:
    """A parallel kernel that runs the serial kernel ``loop`` over ranges of its work, a range at a time:
    ``template``, a ``prange`` over the ranges calling its global ``loop`` on each, with ``loop`` bound to
    the one given. A loop compiled on its own ran 9-10% faster per thread than the same loop inside
    numba's parallel loop (bags, :mod:`.bags`)."""
    name = f"{loop.fn.__name__}_parts"
    fn = types.FunctionType(template.__code__, {**template.__globals__, "loop": loop}, name, template.__defaults__,
                            template.__closure__)
    fn.__qualname__ = name  # numba's on-disk cache tells the kernels made from one template apart by name
    fn.__doc__ = template.__doc__
    return Kernel(fn, parallel=True)


def kernel(*, parallel: bool = False, fastmath: tuple[str, ...] = ()) -> Callable[[Callable], Kernel]:
    """Decorator: the function is a loop numba compiles on first use (``parallel``: its ``prange``
    runs on the kernels' threads; ``fastmath``: LLVM's fast-math flags, ``("reassoc",)`` lets a float
    sum be vectorized, in another order than the loop's)."""
    return lambda fn: Kernel(fn, parallel, frozenset(fastmath))


def set_num_threads(n: int) -> None:
    """Threads the compiled kernels use (:func:`tinyembed.kernels.set_num_threads` calls this)."""
    global _wanted_threads
    _wanted_threads = int(n)


def _use_threads() -> None:
    """Apply the wanted thread count to numba (per calling thread, as numba keeps it), once per change:
    asking numba for its count on every launch cost 1.4 us of a lookup's few."""
    if _wanted_threads is None or getattr(_applied, "threads", None) == _wanted_threads:
        return
    numba = _import_numba()
    if not numba:
        return
    # numba.config sets its NUMBA_* settings from the environment at run time, where mypy cannot see them.
    numba.set_num_threads(min(_wanted_threads, numba.config.NUMBA_NUM_THREADS))
    _applied.threads = _wanted_threads


_applied = threading.local()  # the count _use_threads last gave numba on this thread


def threads() -> int:
    """Threads a parallel kernel runs on now."""
    numba = _import_numba()
    if not numba:
        return 1
    _use_threads()
    return int(numba.get_num_threads())
