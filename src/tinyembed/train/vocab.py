"""Words of a corpus: tokenization, the vocabulary, subsampling and the noise distribution.

Tokenization follows gensim's ``simple_preprocess`` (the usual preparation for word2vec
on plain text), documented here so that anyone can reproduce it:

* a line of text is a sentence: context windows never cross a line end;
* text is lowercased, then a word is a maximal run of letters (``[^\\W\\d_]+``: Unicode
  letters, no digits, no underscores), so "don't" gives "don" and "t", "h2o" gives "h"
  and "o", "naïve" stays one word;
* words shorter than 2 or longer than 15 letters are dropped (simple_preprocess's
  ``min_len``, ``max_len``);
* lines with no word are dropped.

gensim counts an underscore as part of a word; we split there. Nothing else differs.

The vocabulary keeps words seen at least ``min_count`` times, most frequent first
(ties in alphabetical order, so the order depends on the counts alone). Two
distributions over it drive skip-gram training, both as word2vec.c and gensim define them:

* keep probability (subsampling of frequent words, Mikolov et al. 2013, as in the C code):
  with ``t = sample * total`` (``total`` = tokens of kept words)::

      keep(w) = min(1, (sqrt(count(w) / t) + 1) * t / count(w))

* noise distribution for negative sampling: ``count(w) ** 0.75``, normalized.

Examples:
    >>> tokenize("Anarchism is a political philosophy; H2O isn't.")
    ['anarchism', 'is', 'political', 'philosophy', 'isn']
    >>> vocab = Vocabulary.from_sentences([["a", "b", "a"], ["a", "c", "b"]], min_count=2)
    >>> vocab.words, vocab.counts.tolist()
    (['a', 'b'], [3, 2])
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..checks import check_positive_int
from ..io.files import write_atomic

__all__ = ["WORD_PATTERN", "EncodedCorpus", "Vocabulary", "tokenize", "tokenize_lines"]

WORD_PATTERN = re.compile(r"[^\W\d_]+")
MIN_WORD_LENGTH = 2
MAX_WORD_LENGTH = 15


def tokenize(text: str, min_len: int = MIN_WORD_LENGTH, max_len: int = MAX_WORD_LENGTH) -> list[str]:
    """The words of ``text`` (one sentence), lowercased, as the module docstring says."""
    if not isinstance(text, str):
        raise TypeError(f"tokenize needs a str, got {type(text).__name__}")
    return [w for w in WORD_PATTERN.findall(text.lower()) if min_len <= len(w) <= max_len]


def tokenize_lines(text: str, min_len: int = MIN_WORD_LENGTH, max_len: int = MAX_WORD_LENGTH) -> list[list[str]]:
    """Sentences of ``text``: one per line, each a list of words; lines with no word are left out."""
    if not isinstance(text, str):
        raise TypeError(f"tokenize_lines needs a str, got {type(text).__name__}")
    sentences = (tokenize(line, min_len, max_len) for line in text.split("\n"))
    return [s for s in sentences if s]


@dataclass
class EncodedCorpus:
    """A corpus as vocabulary ids: all sentences end to end, and where each starts.

    Attributes:
        ids: int32 (n,) word ids; words outside the vocabulary are left out.
        bounds: int64 (S + 1,) sentence ``s`` is ``ids[bounds[s]:bounds[s + 1]]``; every
            sentence holds at least one id.
        raw_words: tokens before words outside the vocabulary were left out.
    """

    ids: np.ndarray
    bounds: np.ndarray
    raw_words: int

    @property
    def num_words(self) -> int:
        return int(len(self.ids))

    @property
    def num_sentences(self) -> int:
        return int(len(self.bounds) - 1)

    def sentence_ids(self) -> np.ndarray:
        """int64 (n,): the sentence each id belongs to."""
        return np.repeat(np.arange(self.num_sentences, dtype=np.int64), np.diff(self.bounds))


@dataclass
class Vocabulary:
    """Words kept for training, most frequent first, with their counts.

    Attributes:
        words: the words; a word's id is its position.
        counts: int64 (V,) occurrences in the corpus, non-increasing.
        min_count: words seen fewer times were dropped.
        total_words: tokens in the corpus before dropping (kept and dropped words).
    """

    words: list[str]
    counts: np.ndarray
    min_count: int = 1
    total_words: int = 0
    index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        self.words = list(self.words)
        self.counts = np.asarray(self.counts, dtype=np.int64)
        if self.counts.shape != (len(self.words),):
            raise ValueError(f"{len(self.words)} words need {len(self.words)} counts, got shape {self.counts.shape}")
        if len(set(self.words)) != len(self.words):
            raise ValueError("the vocabulary repeats a word")
        if len(self.counts) and self.counts.min() < 1:
            raise ValueError(f"counts must be >= 1, got {int(self.counts.min())}")
        self.index = {w: i for i, w in enumerate(self.words)}

    @classmethod
    def from_sentences(cls, sentences: Iterable[Sequence[str]], min_count: int = 5,
                       source: str = "corpus") -> Vocabulary:
        """Count the words of ``sentences`` and keep those seen at least ``min_count`` times.

        Args:
            sentences: lists of words (see :func:`tokenize_lines`).
            min_count: the fewest occurrences a kept word has (>= 1).
            source: how errors name the corpus (a file name or a corpus name).

        Raises:
            ValueError: ``min_count`` < 1, the corpus has no words, or none is seen
                ``min_count`` times; the message names ``source`` and ``min_count``.
        """
        check_positive_int(min_count, "min_count")
        counter: Counter = Counter()
        for sentence in sentences:
            counter.update(sentence)
        total = sum(counter.values())
        if total == 0:
            raise ValueError(f"{source} has no words to train on (it is empty, or holds no "
                             f"letters; min_count={min_count})")
        kept = sorted(((w, c) for w, c in counter.items() if c >= min_count), key=lambda wc: (-wc[1], wc[0]))
        if not kept:
            top = max(counter.values())
            raise ValueError(f"no word of {source} occurs min_count={min_count} times "
                             f"({len(counter)} distinct words, the most frequent {top} times); "
                             f"lower min_count or give a larger corpus")
        return cls([w for w, _ in kept], np.array([c for _, c in kept], dtype=np.int64), int(min_count), int(total))

    def __len__(self) -> int:
        return len(self.words)

    @property
    def kept_words(self) -> int:
        """Tokens of the corpus whose word is in the vocabulary."""
        return int(self.counts.sum())

    def encode(self, sentences: Iterable[Sequence[str]]) -> EncodedCorpus:
        """Sentences -> ids; words outside the vocabulary are left out (as word2vec does,
        before any window is drawn), and sentences left with no word are dropped."""
        index, chunks, lengths, raw = self.index, [], [], 0
        for sentence in sentences:
            raw += len(sentence)
            ids = [index[w] for w in sentence if w in index]
            if ids:
                chunks.append(ids)
                lengths.append(len(ids))
        flat = np.fromiter((i for ids in chunks for i in ids), dtype=np.int32, count=sum(lengths))
        bounds = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=bounds[1:])
        return EncodedCorpus(flat, bounds, raw)

    def keep_probabilities(self, sample: float = 1e-3) -> np.ndarray:
        """float64 (V,): the chance each occurrence of a word is kept (word2vec's subsampling).

        ``sample = 0`` keeps everything. See the module docstring for the formula.
        """
        if not 0 <= sample < 1:
            raise ValueError(f"sample must be in [0, 1), got {sample!r}")
        counts = self.counts.astype(np.float64)
        if sample == 0:
            return np.ones_like(counts)
        threshold = sample * counts.sum()
        return np.minimum(1.0, (np.sqrt(counts / threshold) + 1.0) * threshold / counts)

    def noise_distribution(self, power: float = 0.75) -> np.ndarray:
        """float64 (V,) summing to 1: ``count ** power`` normalized, negative sampling's noise."""
        if not np.isfinite(power):
            raise ValueError(f"power must be finite, got {power!r}")
        weights = self.counts.astype(np.float64) ** power
        return weights / weights.sum()

    # -- files --------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"min_count": self.min_count, "total_words": self.total_words,
                "words": list(self.words), "counts": self.counts.tolist()}

    @classmethod
    def from_dict(cls, data: dict) -> Vocabulary:
        missing = {"words", "counts"} - set(data)
        if missing:
            raise ValueError(f"a vocabulary needs keys 'words' and 'counts', missing {sorted(missing)}")
        return cls(data["words"], data["counts"], int(data.get("min_count", 1)), int(data.get("total_words", 0)))

    def save(self, path) -> Path:
        """Write ``to_dict()`` as JSON (UTF-8), through a temporary file renamed into place."""
        path = Path(path)
        write_atomic(path, json.dumps(self.to_dict(), ensure_ascii=False))
        return path

    @classmethod
    def load(cls, path) -> Vocabulary:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
