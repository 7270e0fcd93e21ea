"""Word vectors: a vocabulary and its (V, D) float32 table, saved and loaded.

``WordVectors`` holds the words, one float32 row per word and optionally each
word's corpus count. Rows are in the order word2vec and gensim use: **most
frequent word first** when counts are known, so "the N most frequent words" are
the first N rows (``restrict_vocab=N`` everywhere means exactly that).

Two file formats:

* **word2vec text** (:meth:`WordVectors.save_word2vec_text`,
  :meth:`WordVectors.load_word2vec_text`), the format of the original C tool and
  of gensim's ``save_word2vec_format(binary=False)``::

      V D                      the header: number of vectors, dimension
      word v1 v2 ... vD        one line per word, UTF-8, separated by spaces

  We write each value with ``%.9g``: nine significant digits identify every
  float32 uniquely, so a saved table loads back bit for bit. Counts are not
  part of this format and are lost.
* **safetensors** (:meth:`WordVectors.save`, :meth:`WordVectors.load`), one file:
  tensor ``vectors`` (F32, (V, D)), tensor ``counts`` (I64, (V,)) if counts are
  known, and the word list as a JSON array of strings in the metadata under
  ``"words"`` (metadata ``"format"`` is ``"tinyembed.WordVectors"``). One file
  rather than a sidecar ``vocab.json``: it is written atomically as a whole, and
  cannot drift apart from the table it describes.

:func:`load_vectors` reads either, telling them apart by their first bytes.

Words must be non-empty, unique and free of whitespace (the text format
separates fields by spaces; any Unicode whitespace is refused so that every tool
splitting on whitespace sees the same words).

Examples:
    >>> import numpy as np
    >>> wv = WordVectors(["the", "cat", "dog"],
    ...                  np.array([[1, 0], [0, 1], [0.1, 1]], dtype=np.float32))
    >>> len(wv), wv.dim, "cat" in wv, wv.index("dog")
    (3, 2, True, 2)
    >>> [(w, round(c, 3)) for w, c in wv.most_similar("cat", topn=2)]
    [('dog', 0.995), ('the', 0.0)]
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from typing import Union

import numpy as np

from ..checks import check_int, check_positive_int
from ..io import safetensors
from ..io.files import atomic_open

__all__ = ["WordVectors", "load_vectors", "is_safetensors_file"]

PathLike = Union[str, "os.PathLike[str]"]

SAFETENSORS_FORMAT = "tinyembed.WordVectors"
VALUE_FORMAT = "%.9g"  # 9 significant digits: every float32 round-trips exactly

# Bytes that separate fields in the text format (bytes.split() splits on these).
_ASCII_SPACE = b" \t\n\r\x0b\x0c"


def _check_word(word: object, position: int) -> str:
    if not isinstance(word, str):
        raise TypeError(f"words[{position}] must be a str, got {type(word).__name__} {word!r}")
    if not word:
        raise ValueError(f"words[{position}] is the empty string; words must be non-empty")
    if any(ch.isspace() for ch in word):
        raise ValueError(f"words[{position}] = {word!r} contains whitespace, which the "
                         f"word2vec text format uses to separate fields")
    return word


class WordVectors:
    """A vocabulary with one float32 vector per word.

    Args:
        words: V distinct, non-empty words without whitespace; row i is ``words[i]``'s.
        vectors: (V, D) real numbers, all finite, D >= 1; stored as a read-only
            float32 copy (so the cached unit rows can never go stale).
        counts: optional (V,) non-negative integer counts (stored as int64). By
            convention rows are most-frequent-first; this is not enforced.

    Shape:
        ``vectors``: (V, D) float32; ``counts``: (V,) int64 or None;
        ``self[word]``: (D,) float32.

    Raises:
        TypeError / ValueError naming the offending word, row or value.
    """

    def __init__(self, words: Sequence[str], vectors: np.ndarray,
                 counts: np.ndarray | None = None) -> None:
        if isinstance(words, (str, bytes)):
            raise TypeError(f"words must be a sequence of str, got a single {type(words).__name__} "
                            f"{words[:40]!r}")
        words = [_check_word(word, i) for i, word in enumerate(words)]
        index: dict[str, int] = {}
        for i, word in enumerate(words):
            if word in index:
                raise ValueError(f"duplicate word {word!r} at words[{index[word]}] and words[{i}]")
            index[word] = i

        array = np.asarray(vectors)
        if array.dtype == bool or not (np.issubdtype(array.dtype, np.floating)
                                       or np.issubdtype(array.dtype, np.integer)):
            raise TypeError(f"vectors must hold real numbers, got dtype {array.dtype}")
        if array.ndim != 2:
            raise ValueError(f"vectors must be 2-D (V, D), got shape {array.shape}")
        if array.shape[0] != len(words):
            raise ValueError(f"{len(words)} words but vectors has {array.shape[0]} rows "
                             f"(shape {array.shape})")
        if array.shape[1] < 1:
            raise ValueError(f"vectors must have at least one column, got shape {array.shape}")
        with np.errstate(over="ignore"):  # an overflow to inf is reported below, by row and column
            table = np.array(array, dtype=np.float32, order="C", copy=True)
        bad = ~np.isfinite(table)
        if bad.any():
            row, col = (int(i) for i in np.argwhere(bad)[0])
            raise ValueError(f"vectors[{row}, {col}] = {array[row, col]!r} (word {words[row]!r}) "
                             f"is not finite as float32; {int(bad.sum())} such values in all")
        table.setflags(write=False)

        count_array = None
        if counts is not None:
            raw = np.asarray(counts)
            if raw.shape != (len(words),):
                raise ValueError(f"counts must have shape ({len(words)},), one per word, "
                                 f"got {raw.shape}")
            if raw.size and not np.issubdtype(raw.dtype, np.integer):
                if not (np.issubdtype(raw.dtype, np.floating)
                        and np.all(np.isfinite(raw)) and np.all(raw == np.round(raw))):
                    raise TypeError(f"counts must be integers, got dtype {raw.dtype}")
            count_array = np.array(raw, dtype=np.int64, copy=True)
            if count_array.size and count_array.min() < 0:
                i = int(np.argmin(count_array))
                raise ValueError(f"counts[{i}] = {count_array[i]} (word {words[i]!r}) is negative")
            count_array.setflags(write=False)

        self._words = words
        self._index = index
        self._vectors = table
        self._counts = count_array
        self._unit: np.ndarray | None = None

    # -- basic access ------------------------------------------------------

    @property
    def words(self) -> list[str]:
        """The V words in row order (a copy)."""
        return list(self._words)

    @property
    def vectors(self) -> np.ndarray:
        """(V, D) float32, read-only."""
        return self._vectors

    @property
    def counts(self) -> np.ndarray | None:
        """(V,) int64 read-only counts, or None if unknown."""
        return self._counts

    @property
    def dim(self) -> int:
        """D, the length of each vector."""
        return int(self._vectors.shape[1])

    def __len__(self) -> int:
        return len(self._words)

    def __contains__(self, word: object) -> bool:
        return word in self._index

    def index(self, word: str) -> int:
        """The row of ``word``. Raises KeyError naming the word."""
        try:
            return self._index[word]
        except (KeyError, TypeError):
            raise KeyError(f"word {word!r} is not in the vocabulary of {len(self)} words") from None

    def __getitem__(self, word: str) -> np.ndarray:
        """(D,) float32, a read-only view of ``word``'s row."""
        return self._vectors[self.index(word)]

    def __repr__(self) -> str:
        counts = "with counts" if self._counts is not None else "no counts"
        return f"WordVectors(V={len(self)}, D={self.dim}, {counts})"

    def normalized(self) -> np.ndarray:
        """(V, D) float32 rows scaled to unit length (computed once, read-only).

        A zero row stays zero, so its cosine with anything is 0.
        """
        if self._unit is None:
            norms = np.linalg.norm(self._vectors, axis=1, keepdims=True)  # (V, 1)
            unit = np.divide(self._vectors, norms, out=np.zeros_like(self._vectors),
                             where=norms > 0)
            unit.setflags(write=False)
            self._unit = unit
        return self._unit

    # -- similarity ----------------------------------------------------------

    def similarity(self, a: str, b: str) -> float:
        """Cosine similarity of two words' vectors (0 if either is the zero vector)."""
        unit = self.normalized()
        return float(np.dot(unit[self.index(a)], unit[self.index(b)]))

    def most_similar(self, positive: str | Iterable[str] = (),
                     negative: str | Iterable[str] = (), topn: int = 10,
                     restrict_vocab: int | None = None) -> list[tuple[str, float]]:
        """The ``topn`` words closest by cosine to the mean of the query's unit vectors.

        gensim's ``KeyedVectors.most_similar``: the query is the mean of the unit
        vectors of ``positive`` minus those of ``negative`` (so
        ``positive=["king", "woman"], negative=["man"]`` is 3CosAdd), candidates
        are the first ``restrict_vocab`` rows (all if None), and the query words
        themselves are never returned.

        Returns:
            [(word, cosine)], best first, at most ``topn`` pairs.

        Raises:
            KeyError: a query word is not in the vocabulary.
            ValueError: no query word, or a bad ``topn`` / ``restrict_vocab``.
        """
        positive = [positive] if isinstance(positive, str) else list(positive)
        negative = [negative] if isinstance(negative, str) else list(negative)
        if not positive and not negative:
            raise ValueError("most_similar needs at least one positive or negative word")
        check_positive_int(topn, "topn")
        limit = self._restrict(restrict_vocab)
        ids = [self.index(w) for w in positive + negative]
        weights = np.array([1.0] * len(positive) + [-1.0] * len(negative), dtype=np.float32)
        unit = self.normalized()
        query = weights @ unit[ids] / len(ids)  # (D,)
        norm = np.linalg.norm(query)
        if norm > 0:
            query = query / norm
        cosines = unit[:limit] @ query  # (limit,)
        cosines[[i for i in set(ids) if i < limit]] = -np.inf
        k = min(topn, limit - len({i for i in ids if i < limit}))
        if k <= 0:
            return []
        best = np.argpartition(-cosines, k - 1)[:k]
        best = best[np.lexsort((best, -cosines[best]))]  # by cosine, ties by row
        return [(self._words[i], float(cosines[i])) for i in best]

    def _restrict(self, restrict_vocab: int | None) -> int:
        limit = check_int(restrict_vocab, "restrict_vocab", low=1, none_ok=True)
        return len(self) if limit is None else min(limit, len(self))

    # -- word2vec text format -----------------------------------------------

    def save_word2vec_text(self, path: PathLike) -> None:
        """Write the word2vec text format ("V D" header, then "word v1 ... vD" lines),
        UTF-8, values as ``%.9g`` (exact for float32), atomically (temporary file,
        then rename). Counts are not stored."""
        row_format = " ".join([VALUE_FORMAT] * self.dim)

        with atomic_open(path) as out:
            out.write(f"{len(self)} {self.dim}\n".encode())
            chunk: list[str] = []
            for word, row in zip(self._words, self._vectors.tolist(), strict=True):
                chunk.append(f"{word} {row_format % tuple(row)}\n")
                if len(chunk) >= 4096:
                    out.write("".join(chunk).encode("utf-8"))
                    chunk.clear()
            out.write("".join(chunk).encode("utf-8"))

    @classmethod
    def load_word2vec_text(cls, path: PathLike, limit: int | None = None) -> WordVectors:
        """Read a word2vec text-format file (ours, gensim's, word2vec's).

        Args:
            path: the file, UTF-8.
            limit: read only the first ``limit`` vectors (the most frequent ones).

        Lines may end in spaces, tabs or ``\\r\\n`` (word2vec's C tool leaves a
        trailing space); blank lines after the last vector are ignored.

        Raises:
            FileNotFoundError: no such file.
            ValueError: the file is not in this format; the message names the file and
                the line: a bad header, a line without exactly 1 + D fields, a value
                that is not a finite float32 number, a duplicate or invalid word, not
                UTF-8, fewer vector lines than the header says, or more.
        """
        check_int(limit, "limit", low=1, none_ok=True)
        where = os.fspath(path)
        with open(path, "rb") as f:
            header = f.readline()
            fields = header.split()
            try:
                if len(fields) != 2:
                    raise ValueError
                count, dim = int(fields[0]), int(fields[1])
                if count < 0 or dim < 1:
                    raise ValueError
            except ValueError:
                # GloVe's text files are this format without the header line.
                hint = (" (GloVe's format lacks the header: add a first line 'V D')"
                        if len(fields) > 2 and all(_is_float(x) for x in fields[1:]) else "")
                raise ValueError(f"{where}, line 1: the header must be two integers 'V D' "
                                 f"(vectors, dimension >= 1), got {header[:80]!r}; is this a "
                                 f"word2vec text file?{hint}") from None
            wanted = count if limit is None else min(count, int(limit))
            words: list[str] = []
            seen: dict[str, int] = {}
            # float64 while reading, so a value beyond float32's range can be named, not cast to inf.
            table = np.empty((wanted, dim), dtype=np.float64)
            line_no = 1
            for row in range(wanted):
                raw = f.readline()
                line_no += 1
                if not raw:
                    raise ValueError(f"{where}: the file ends after line {line_no - 1} but the "
                                     f"header (line 1) promises {count} vectors; got {row}")
                parts = raw.split()
                if len(parts) != dim + 1:
                    raise ValueError(f"{where}, line {line_no}: expected a word and {dim} values "
                                     f"(the header's dimension), got {len(parts)} fields: "
                                     f"{raw[:60]!r}")
                try:
                    word = parts[0].decode("utf-8")
                except UnicodeDecodeError as e:
                    raise ValueError(f"{where}, line {line_no}: the word {parts[0][:40]!r} is not "
                                     f"valid UTF-8 ({e.reason})") from None
                if any(ch.isspace() for ch in word):
                    raise ValueError(f"{where}, line {line_no}: the word {word!r} contains "
                                     f"whitespace")
                if word in seen:
                    raise ValueError(f"{where}, line {line_no}: duplicate word {word!r}, first "
                                     f"on line {seen[word]}")
                seen[word] = line_no
                words.append(word)
                try:
                    values = [float(x) for x in parts[1:]]
                except ValueError:
                    bad = next(x for x in parts[1:] if not _is_float(x))
                    raise ValueError(f"{where}, line {line_no}: value {bad.decode('utf-8', 'replace')!r} "
                                     f"(word {word!r}) is not a number") from None
                table[row] = values
            if limit is None or limit >= count:
                for extra in f:
                    line_no += 1
                    if extra.strip(_ASCII_SPACE):
                        raise ValueError(f"{where}, line {line_no}: more vector lines than the "
                                         f"{count} the header (line 1) says")
        # float('nan') and float('inf') parse, and 1e39 overflows float32: all refused.
        # (Checked after rounding: '3.4028235e+38' exceeds float32's max yet rounds to it.)
        with np.errstate(over="ignore"):
            single = table.astype(np.float32)
        nonfinite = ~np.isfinite(single)
        if nonfinite.any():
            row, col = (int(i) for i in np.argwhere(nonfinite)[0])
            raise ValueError(f"{where}, line {row + 2}: value {float(table[row, col])!r} (word "
                             f"{words[row]!r}, column {col + 1}) is not a finite float32 number")
        return cls(words, single)

    # -- safetensors ---------------------------------------------------------

    def save(self, path: PathLike) -> None:
        """Write one safetensors file (atomically): ``vectors`` F32 (V, D), ``counts``
        I64 (V,) if known, and the words as a JSON list in the metadata ``"words"``."""
        tensors: dict[str, np.ndarray] = {"vectors": self._vectors}
        if self._counts is not None:
            tensors["counts"] = self._counts
        metadata = {"format": SAFETENSORS_FORMAT,
                    "words": json.dumps(self._words, ensure_ascii=False)}
        safetensors.save(tensors, path, metadata=metadata)

    @classmethod
    def load(cls, path: PathLike) -> WordVectors:
        """Read a file written by :meth:`save`.

        Raises:
            ValueError: not a safetensors file, or not one of word vectors (the
                message says what is missing or inconsistent).
        """
        where = os.fspath(path)
        infos, metadata = safetensors.read_header(path)
        if metadata.get("format") != SAFETENSORS_FORMAT or "words" not in metadata:
            raise ValueError(f"{where}: a safetensors file but not tinyembed word vectors: "
                             f"its metadata has format {metadata.get('format')!r} and "
                             f"{'a' if 'words' in metadata else 'no'} 'words' entry")
        if "vectors" not in infos:
            raise ValueError(f"{where}: no 'vectors' tensor (has {sorted(infos)})")
        try:
            words = json.loads(metadata["words"])
        except ValueError as e:
            raise ValueError(f"{where}: metadata 'words' is not valid JSON: {e}") from None
        if not isinstance(words, list):
            raise ValueError(f"{where}: metadata 'words' must be a JSON list, "
                             f"got {type(words).__name__}")
        arrays = safetensors.load(path, [n for n in ("vectors", "counts") if n in infos])
        try:
            return cls(words, arrays["vectors"], arrays.get("counts"))
        except (TypeError, ValueError) as e:
            raise ValueError(f"{where}: {e}") from None


def _is_float(text: bytes) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def is_safetensors_file(path: PathLike) -> bool:
    """True if the file starts like a safetensors file (u64 header length, then ``{``)."""
    with open(path, "rb") as f:
        head = f.read(9)
    if len(head) < 9 or head[8:9] != b"{":
        return False
    length = int.from_bytes(head[:8], "little")
    return 2 <= length <= os.path.getsize(path) - 8


def load_vectors(path: PathLike, limit: int | None = None) -> WordVectors:
    """Word vectors from a safetensors file written by :meth:`WordVectors.save` or a
    word2vec text file, told apart by content (a text file starts with digits).

    ``limit`` (first N vectors) applies to text files; a safetensors file is
    truncated after loading.
    """
    if is_safetensors_file(path):
        vectors = WordVectors.load(path)
        if limit is not None and limit < len(vectors):
            counts = None if vectors.counts is None else vectors.counts[:limit]
            vectors = WordVectors(vectors.words[:limit], vectors.vectors[:limit], counts)
        return vectors
    return WordVectors.load_word2vec_text(path, limit=limit)
