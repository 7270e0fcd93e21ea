"""Byte-level byte-pair encoding (GPT-2's BPE): a readable trainer and encoder.

Training (:meth:`BPETokenizer.train`):

1. Pre-tokenize: split each text into words with GPT-2's pattern (:data:`PRETOKENIZERS`
   ``"gpt2"``): contractions (``'s``, ``'ll``...), an optional space and a run of
   letters, of digits, or of other symbols, and runs of whitespace. Merges never cross
   a word boundary. Each distinct word is counted once with its frequency.
2. Start every word as its UTF-8 bytes (256 base tokens, so nothing is ever unknown).
3. Repeatedly merge the most frequent adjacent pair of tokens, counted over all words
   weighted by their frequency, into a new token, until ``vocab_size`` tokens exist or
   no pair occurs ``min_frequency`` times.

   * Ties: among pairs of equal count, the one whose (left bytes, right bytes) is
     smallest, comparing bytes lexicographically (``(b"e", b"s")`` before
     ``(b"s", b"t")``). Training is deterministic: the same corpus gives the same merges.
   * Every merge makes a new token, so the vocabulary is the 256 bytes plus one token
     per merge, each with one id: a pair whose concatenation is already a token
     (``"ab" + "c"`` after ``"a" + "bc"``) would be skipped. (We have not seen one arise:
     none in 28,000 merges of the lee and wikipedia corpora; the check keeps the rule.)
   * Counts are updated incrementally: a merge recounts only the words holding the
     pair (an index pair -> words), and a heap with lazy deletion finds the next best pair.

Encoding applies the merges to each word by rank: repeatedly merge the adjacent pair with
the earliest merge (leftmost first), until no pair has one, with a heap so a long word
costs O(n log n). This gives exactly the segmentation training gave its own words (a
merge's token only enters pairs merged later). Words are cached.

Id layout (``k`` special tokens, ``pad, unk, bos, eos`` by default)::

    0 .. k-1              the special tokens, in SpecialTokens order
    k .. k + 255          the bytes 0..255 (as :class:`~.byte.ByteTokenizer`)
    k + 256 + r           the token made by merge r (r = 0, 1, ...: the merge's rank)

Token strings use GPT-2's byte alphabet (:data:`~.byte.BYTE_TO_CHAR`: ``" the"`` is
``"Ġthe"``), as Hugging Face's byte-level BPE files do. Text is UTF-8 bytes, so decoding
behaves exactly as :class:`~.byte.ByteTokenizer`'s: ``decode(encode(text)) == text`` for
any str without lone surrogates (refused by ``encode``, naming the position), and
``decode(ids, errors="replace")`` for id sequences that are not UTF-8.

Examples:
    >>> words = ["low"] * 5 + ["lower"] * 2 + ["newest"] * 6 + ["widest"] * 3
    >>> tok = BPETokenizer.train(words, vocab_size=256 + 4 + 3)
    >>> tok.merges  # e s (9, ties with s t: b"e" < b"s"), then es t (9), l o (7)
    [('e', 's'), ('es', 't'), ('l', 'o')]
    >>> tok.tokenize("lowest")
    ['lo', 'w', 'est']
"""

from __future__ import annotations

import heapq
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from ...checks import check_positive_int
from .base import (
    SpecialsFirstTokenizer,
    SpecialTokens,
    as_ids,
    build_checked,
    check_header,
    check_text,
    register_tokenizer,
    require,
)
from .byte import BYTE_TO_CHAR, CHAR_TO_BYTE, bytes_to_text, check_errors, text_to_bytes

__all__ = ["BPETokenizer", "PRETOKENIZERS", "learn_merges", "pretokenize"]

# Pre-tokenizers by name (a file records the name). "gpt2" is GPT-2's pattern written for
# the standard library's re, which has no \p{L}: a letter is [^\W\d_] (a word character
# that is not a digit or "_"), a number \d, and "_" joins the symbols, as in GPT-2.
# Every character is matched by some branch, so the words always join back to the text.
PRETOKENIZERS: dict[str, re.Pattern] = {
    "gpt2": re.compile(r"""'(?:[sdmt]|ll|ve|re)| ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+"""),
}

# Words remembered by the encoder (their ids); the cache is emptied when it fills.
CACHE_WORDS = 1 << 16


def pretokenize(text: str, pretokenizer: str = "gpt2") -> list[str]:
    """``text`` split into BPE words; ``"".join(pretokenize(text)) == text``.

    Examples:
        >>> pretokenize("Hello, world's 42 cats!  ")
        ['Hello', ',', ' world', "'s", ' 42', ' cats', '!', '  ']
    """
    return _pattern(pretokenizer).findall(check_text(text))


def _pattern(name: str) -> re.Pattern:
    if name not in PRETOKENIZERS:
        raise ValueError(f"unknown pretokenizer {name!r}; known: {', '.join(sorted(PRETOKENIZERS))}")
    return PRETOKENIZERS[name]


def _merge_pair(symbols: list[int], left: int, right: int, new: int) -> list[int]:
    """``symbols`` with every (left, right), scanned left to right, replaced by ``new``
    (so "a a a" with (a, a) gives "aa a")."""
    out, i, n = [], 0, len(symbols)
    while i < n:
        if i + 1 < n and symbols[i] == left and symbols[i + 1] == right:
            out.append(new)
            i += 2
        else:
            out.append(symbols[i])
            i += 1
    return out


def _apply_merges(ids: list[int], merge_ids: dict[tuple[int, int], int]) -> list[int]:
    """A word's byte ids with the merges applied by rank, in O(n log n).

    The earliest merge first (a merged id is k + 256 + rank, so the smallest merged id is
    the earliest merge), and its occurrences left to right: a heap of (merged id,
    position) over the adjacent pairs of a linked list of symbols. Entries made stale by a
    merge next to them are skipped when popped. A merge's new pairs always rank after it,
    so this is exactly "merge r applied everywhere, for r = 0, 1, ...", without rescanning
    a long word (a run of 10,000 letters) once per merge.
    """
    n = len(ids)
    if n < 2:
        return ids
    symbols = list(ids)                    # the token starting at position i, while alive
    alive = [True] * n
    after = list(range(1, n + 1))          # next live position (n: the end)
    before = list(range(-1, n - 1))        # previous live position (-1: none)
    heap = [(merge_ids[pair], i, pair) for i, pair in enumerate(zip(ids, ids[1:], strict=False)) if pair in merge_ids]
    heapq.heapify(heap)
    while heap:
        merged, i, pair = heapq.heappop(heap)
        j = after[i]
        if not alive[i] or j >= n or (symbols[i], symbols[j]) != pair:
            continue  # one side was merged into something else since this entry was pushed
        symbols[i] = merged
        alive[j] = False
        after[i] = after[j]
        if after[j] < n:
            before[after[j]] = i
        for left in (before[i], i):        # the new pairs on each side of the merged token
            right = after[left] if left >= 0 else n
            if left >= 0 and right < n:
                new_pair = (symbols[left], symbols[right])
                if new_pair in merge_ids:
                    heapq.heappush(heap, (merge_ids[new_pair], left, new_pair))
    return [s for s, live in zip(symbols, alive, strict=True) if live]


def learn_merges(word_counts: Mapping[bytes, int], num_merges: int,
                 min_frequency: int = 2) -> tuple[list[tuple[bytes, bytes]], list[int]]:
    """BPE merges of a bag of words (the training algorithm of the module doc).

    Args:
        word_counts: each distinct word's bytes -> its count.
        num_merges: at most this many merges.
        min_frequency: stop when the best pair occurs fewer times.

    Returns:
        merges: (left bytes, right bytes) of each merge, in rank order.
        counts: how often each merged pair occurred when it was merged.
    """
    token_bytes = [bytes([b]) for b in range(256)]  # symbol -> its bytes
    known = set(token_bytes)
    words = [list(word) for word in word_counts]     # each word as symbols
    freqs = list(word_counts.values())
    pair_counts: dict[tuple[int, int], int] = defaultdict(int)
    where: dict[tuple[int, int], set[int]] = defaultdict(set)  # pair -> words holding it
    for w, (symbols, freq) in enumerate(zip(words, freqs, strict=True)):
        for pair in zip(symbols, symbols[1:], strict=False):
            pair_counts[pair] += freq
            where[pair].add(w)

    def entry(pair, count):  # the heap pops the highest count, then the smallest bytes
        return (-count, token_bytes[pair[0]], token_bytes[pair[1]], pair)

    heap = [entry(pair, count) for pair, count in pair_counts.items()]
    heapq.heapify(heap)
    merges: list[tuple[bytes, bytes]] = []
    counts: list[int] = []
    while heap and len(merges) < num_merges:
        neg_count, left_bytes, right_bytes, pair = heapq.heappop(heap)
        count = pair_counts.get(pair, 0)
        if count != -neg_count:
            continue  # stale: the pair's count changed since this entry was pushed
        if count < min_frequency:
            break     # the best pair is too rare, so is every other
        if left_bytes + right_bytes in known:
            continue  # would give an existing token a second id (module doc)
        new = len(token_bytes)
        token_bytes.append(left_bytes + right_bytes)
        known.add(token_bytes[new])
        merges.append((left_bytes, right_bytes))
        counts.append(count)

        changed = set()
        for w in where.pop(pair):
            old, freq = words[w], freqs[w]
            merged = _merge_pair(old, pair[0], pair[1], new)
            old_pairs, new_pairs = list(zip(old, old[1:], strict=False)), list(zip(merged, merged[1:], strict=False))
            for p in old_pairs:
                pair_counts[p] -= freq
            for p in new_pairs:
                pair_counts[p] += freq
            old_set, new_set = set(old_pairs), set(new_pairs)
            for p in old_set - new_set:
                if p != pair:
                    where[p].discard(w)
            for p in new_set - old_set:
                where[p].add(w)
            changed |= old_set | new_set
            words[w] = merged
        for p in changed:
            c = pair_counts[p]
            if c > 0:
                heapq.heappush(heap, entry(p, c))
            else:
                del pair_counts[p]
                where.pop(p, None)
    return merges, counts


def _to_chars(data: bytes) -> str:
    return "".join(BYTE_TO_CHAR[b] for b in data)


def _word_counts(text_or_texts: str | Iterable[str], pattern: re.Pattern) -> Counter:
    if isinstance(text_or_texts, str):
        text_or_texts = (text_or_texts,)
    elif isinstance(text_or_texts, (bytes, bytearray)):
        raise TypeError("expected text (str) or an iterable of str, got bytes; decode it first")
    words: Counter = Counter()
    for i, text in enumerate(text_or_texts):
        if not isinstance(text, str):
            raise TypeError(f"the corpus must be str texts, got {type(text).__name__} at item {i}")
        try:
            text_to_bytes(text)
        except ValueError as e:
            raise ValueError(f"corpus text {i}: {e}") from None
        words.update(pattern.findall(text))
    return Counter({word.encode("utf-8"): n for word, n in words.items()})


@register_tokenizer
class BPETokenizer(SpecialsFirstTokenizer):
    """Byte-level BPE: the bytes, then one token per merge (layout in the module doc).

    Args:
        merges: the merges in rank order, each a (left, right) pair of token strings in
            GPT-2's byte alphabet (``("Ġ", "t")``); both sides must be tokens by then
            (bytes or earlier merges) and the result a new token.
        specials: SpecialTokens, a dict of role -> token, or None for pad/unk/bos/eos.
        pretokenizer: a name in :data:`PRETOKENIZERS`.
        merge_counts: optional, each merged pair's count in training (for inspection).

    Shape:
        encode: str -> int64 (n_tokens,) (+2 with add_special_tokens).
    """

    type_name = "bpe"

    def __init__(self, merges: Sequence[Sequence[str]], specials=None, pretokenizer: str = "gpt2",
                 merge_counts: Sequence[int] | None = None):
        specials = SpecialTokens.coerce(specials)
        self._pattern = _pattern(pretokenizer)
        self.pretokenizer = pretokenizer
        k = len(specials.tokens())
        # token string -> id among the bytes and merges, to check each merge as it comes
        ids = {c: k + b for b, c in enumerate(BYTE_TO_CHAR)}
        self.merges: list[tuple[str, str]] = []
        self._merge_ids: dict[tuple[int, int], int] = {}  # (left id, right id) -> merged id
        for r, merge in enumerate(merges):
            if (not isinstance(merge, (list, tuple)) or len(merge) != 2
                    or not all(isinstance(side, str) for side in merge)):
                raise ValueError(f"merge {r} must be a pair of token strings, got {merge!r:.80}")
            left, right = merge
            for side in (left, right):
                if side not in ids:
                    raise ValueError(f"merge {r} {[left, right]} uses {side!r}, which is not a token "
                                     f"before it (neither a byte nor an earlier merge)")
            token = left + right
            if token in ids:
                raise ValueError(f"merge {r} {[left, right]} gives {token!r}, which is already "
                                 f"token {ids[token]}: a token appears twice")
            ids[token] = k + 256 + r
            self._merge_ids[(ids[left], ids[right])] = ids[token]
            self.merges.append((left, right))
        if merge_counts is not None:
            merge_counts = list(merge_counts)
            if len(merge_counts) != len(self.merges) or not all(
                    isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in merge_counts):
                raise ValueError(f"merge_counts must be {len(self.merges)} integers >= 0 (one per "
                                 f"merge), got {len(merge_counts)} values")
        self.merge_counts: list[int] | None = merge_counts
        self._set_vocab(specials, list(BYTE_TO_CHAR) + [left + right for left, right in self.merges],
                        "BPE tokenizer")
        self._offset = k
        self._token_bytes = [b""] * k + [bytes([CHAR_TO_BYTE[c] for c in token])
                                         for token in self._vocab[k:]]
        self._cache: dict[str, list[int]] = {}

    # -- training ------------------------------------------------------------------------
    @classmethod
    def train(cls, text_or_texts: str | Iterable[str], vocab_size: int, specials=None,
              min_frequency: int = 2, pretokenizer: str = "gpt2") -> BPETokenizer:
        """Learn merges from a corpus until there are ``vocab_size`` ids (special tokens
        and the 256 bytes included) or no pair occurs ``min_frequency`` times.

        Args:
            text_or_texts: the corpus, a str or an iterable of str (lines, documents).
                Every text is pre-tokenized on its own.
            vocab_size: the number of ids wanted; at least 256 + the special tokens.
            specials: SpecialTokens, a dict of role -> token, or None for pad/unk/bos/eos.
            min_frequency: pairs rarer than this are never merged (>= 1).
            pretokenizer: a name in :data:`PRETOKENIZERS`.

        Raises:
            ValueError: ``vocab_size`` below 256 + the number of special tokens (naming
                both), a text with a lone surrogate, or a bad argument.
        """
        specials = SpecialTokens.coerce(specials)
        pattern = _pattern(pretokenizer)
        if isinstance(vocab_size, bool) or not isinstance(vocab_size, int):
            raise TypeError(f"vocab_size must be an int, got {vocab_size!r}")
        n_specials = len(specials.tokens())
        if vocab_size < 256 + n_specials:
            raise ValueError(f"vocab_size {vocab_size} is too small: the 256 byte tokens and the "
                             f"{n_specials} special tokens {specials.tokens()} need "
                             f"{256 + n_specials} ids")
        check_positive_int(min_frequency, "min_frequency")
        word_counts = _word_counts(text_or_texts, pattern)
        merges, counts = learn_merges(word_counts, vocab_size - 256 - n_specials, min_frequency)
        return cls([(_to_chars(left), _to_chars(right)) for left, right in merges], specials, pretokenizer, counts)

    # -- encoding and decoding -----------------------------------------------------------
    def _encode_word(self, word: str) -> list[int]:
        ids = self._cache.get(word)
        if ids is not None:
            return ids
        ids = _apply_merges([self._offset + b for b in word.encode("utf-8")], self._merge_ids)
        if len(self._cache) >= CACHE_WORDS:
            self._cache.clear()
        self._cache[word] = ids
        return ids

    def _encode_plain(self, text: str) -> np.ndarray:
        text_to_bytes(text)  # refuses lone surrogates, naming the position
        ids: list[int] = []
        for word in self._pattern.findall(text):
            ids.extend(self._encode_word(word))
        return np.array(ids, dtype=np.int64)

    def decode(self, ids, skip_special_tokens: bool = False, errors: str = "replace") -> str:
        """The text of ``ids`` (1-D list, array or Tensor): their bytes decoded as UTF-8 with
        ``errors`` as ``bytes.decode`` (default 'replace', as :class:`~.byte.ByteTokenizer`);
        each special token's text unless ``skip_special_tokens``.

        Raises:
            ValueError: errors='strict' and the bytes are not UTF-8 (naming the token's
                position), or an unknown error handler.
            and those of :func:`~tinyembed.text.tokenizers.base.as_ids`.
        """
        check_errors(errors)
        return self._decode(as_ids(ids, self.vocab_size), skip_special_tokens, errors=errors)

    def _decode_run(self, ids: np.ndarray, start: int, errors: str = "replace", **options: Any) -> str:
        # **options as the base declares; decode passes only errors.
        pieces = [self._token_bytes[i] for i in ids.tolist()]
        data = b"".join(pieces)
        if errors != "strict":
            return data.decode("utf-8", errors)
        ends = np.cumsum([len(p) for p in pieces])
        return bytes_to_text(data, errors, ends, start, ids)

    def token_bytes(self, id: int) -> bytes:
        """The bytes of ``id`` (empty for a special token)."""
        self.id_to_token(id)  # checks the id
        return self._token_bytes[int(id)]

    # -- files ---------------------------------------------------------------------------
    def _fields(self) -> dict[str, Any]:
        return {"pretokenizer": self.pretokenizer, "merges": [list(m) for m in self.merges],
                "merge_counts": self.merge_counts}

    def _config(self) -> str:
        return f"merges={len(self.merges)}, pretokenizer={self.pretokenizer!r}"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BPETokenizer:
        check_header(data, cls.type_name)
        what = "bpe tokenizer data"
        merges = require(data, "merges", list, what)
        pretokenizer = require(data, "pretokenizer", str, what)
        counts = data.get("merge_counts")
        if counts is not None and not isinstance(counts, list):
            raise ValueError(f"{what}: 'merge_counts' must be a list or null, got {type(counts).__name__}")
        return build_checked(data, what, lambda specials: cls(merges, specials, pretokenizer, counts))
