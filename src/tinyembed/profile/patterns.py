"""Access patterns: which ids a batch of lookups asks for.

The speed of a lookup depends less on the table than on the ids: how many
distinct rows a batch touches, and whether they are near each other in memory.
Each pattern is one small function from (vocabulary, batch shape, generator) to
ids, registered by name, so adding a pattern is adding one function.

* ``uniform``: every row equally likely, the worst case for caches.
* ``zipf``: row r with probability ∝ 1 / (r + 1)^alpha, as word frequencies
  (alpha ≈ 1) in a vocabulary sorted by frequency.
* ``sequential``: rows 0, 1, 2, ... (wrapping): the best case, a streaming copy.
* ``sorted``: a Zipf batch sorted, the same rows read in address order.
* ``text``: consecutive windows of real English Wikipedia text tokenized with
  the all-MiniLM-L6-v2 WordPiece tokenizer (:func:`tinyembed.text.minilm_token_ids`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..checks import check_positive_int
from ..plan.zipf import check_alpha, zipf_ids

__all__ = ["PATTERNS", "AccessPattern", "DEFAULT_PATTERNS", "text_stream"]

_stream: np.ndarray | None = None


def text_stream() -> np.ndarray:
    """The real token stream: int64 MiniLM WordPiece ids of the prepared Wikipedia corpus.

    Prepared once and cached outside the repository (see :mod:`tinyembed.text`).
    """
    global _stream
    if _stream is None:
        from ..text import minilm_token_ids  # noqa: PLC0415 - needs tokenizers, only for this pattern
        _stream = minilm_token_ids("wikipedia").ids.astype(np.int64)
    return _stream


def _uniform(vocab, shape, rng, alpha):
    return rng.integers(0, vocab, size=shape, dtype=np.int64)


def _zipf(vocab, shape, rng, alpha):
    return zipf_ids(vocab, alpha, shape, rng)


def _sequential(vocab, shape, rng, alpha):
    return np.arange(math.prod(shape), dtype=np.int64).reshape(shape) % vocab


def _sorted(vocab, shape, rng, alpha):
    return np.sort(zipf_ids(vocab, alpha, shape, rng), axis=None).reshape(shape)


def _text(vocab, shape, rng, alpha):
    stream = text_stream()
    top = int(stream.max())
    if top >= vocab:
        raise ValueError(f"the text pattern holds MiniLM token ids up to {top}: it needs a table of at "
                         f"least {top + 1} rows, got {vocab}")
    n = math.prod(shape)
    if n > len(stream):
        raise ValueError(f"a batch of {n} ids is longer than the text stream ({len(stream)} tokens)")
    start = int(rng.integers(0, len(stream) - n + 1))
    return stream[start:start + n].reshape(shape).copy()


# name -> (vocab, shape, rng, alpha) -> int64 ids of ``shape``; alpha is used by the Zipf ones.
PATTERNS: dict[str, Callable[[int, tuple, np.random.Generator, float], np.ndarray]] = {
    "uniform": _uniform,
    "zipf": _zipf,
    "sequential": _sequential,
    "sorted": _sorted,
    "text": _text,
}
_USES_ALPHA = ("zipf", "sorted")


@dataclass(frozen=True)
class AccessPattern:
    """A named pattern and its Zipf exponent (``zipf`` and ``sorted`` only).

    Examples:
        >>> AccessPattern("zipf", 1.2).label
        'zipf-1.2'
        >>> AccessPattern("zipf", 1.0).ids(1000, (2, 3), np.random.default_rng(0)).shape
        (2, 3)
    """

    name: str
    alpha: float = 1.0

    def __post_init__(self):
        if self.name not in PATTERNS:
            raise ValueError(f"unknown access pattern {self.name!r}; known: {', '.join(PATTERNS)}")
        # Checked for every pattern: an alpha <= 0 is a mistake even where it goes unused.
        check_alpha(self.alpha, "alpha (the Zipf exponent)")

    @property
    def label(self) -> str:
        # repr is the shortest text that reads back as the same float (':g' keeps 6 digits, so
        # two alphas could share a label); '1.0' is written '1'.
        alpha = repr(float(self.alpha)).removesuffix(".0")
        return f"{self.name}-{alpha}" if self.name in _USES_ALPHA else self.name

    def ids(self, vocab: int, shape: tuple, rng: np.random.Generator) -> np.ndarray:
        """int64 ids in [0, vocab) of ``shape``."""
        check_positive_int(vocab, "vocabulary size")
        return PATTERNS[self.name](int(vocab), tuple(shape), rng, float(self.alpha))

    @classmethod
    def parse(cls, text: str) -> AccessPattern:
        """'uniform', 'zipf', 'zipf-1.2', 'sorted-0.8', ... as written by :attr:`label`."""
        name, dash, alpha = str(text).partition("-")
        if not dash:
            return cls(name)
        try:
            value = float(alpha)
        except ValueError:
            raise ValueError(f"bad access pattern {text!r}: {alpha!r} is not a number") from None
        if name in PATTERNS and name not in _USES_ALPHA:  # an unknown name is reported by cls()
            raise ValueError(f"access pattern {name!r} takes no alpha, got {text!r}")
        return cls(name, value)


DEFAULT_PATTERNS = (AccessPattern("uniform"), AccessPattern("zipf", 0.8), AccessPattern("zipf", 1.0),
                    AccessPattern("zipf", 1.2), AccessPattern("sequential"), AccessPattern("sorted", 1.0),
                    AccessPattern("text"))
