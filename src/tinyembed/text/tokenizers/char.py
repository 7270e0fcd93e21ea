"""The character-level tokenizer: one id per character (Unicode code point) of a vocabulary
learned from a corpus.

Id layout (``k`` special tokens, ``pad, unk, bos, eos`` by default)::

    0 .. k-1          the special tokens, in SpecialTokens order
    k .. k + n - 1    the n characters, most frequent in the corpus first
                      (equal counts: lower code point first)

A character is a code point, not a grapheme: "é" written as "e" + U+0301 is two tokens,
an emoji with a skin tone is two. ``decode(encode(text)) == text`` exactly when every
character of ``text`` is in the vocabulary; any other character encodes as ``unk_id``
(and decodes as the unk token's text), or, with no unk token, is refused with a
ValueError naming it and its position.

Examples:
    >>> tok = CharTokenizer.train("abracadabra")
    >>> tok.id_to_token(4), tok.id_to_token(5), len(tok)  # 'a' x5, then 'b' x2 ('b' < 'r')
    ('a', 'b', 9)
    >>> tok.encode("cab!")  # '!' is unknown
    array([7, 4, 5, 1])
    >>> tok.decode(tok.encode("cab!"))
    'cab<unk>'
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from ...checks import check_positive_int
from .base import SpecialsFirstTokenizer, SpecialTokens, build_checked, check_header, register_tokenizer, require

__all__ = ["CharTokenizer"]


def _texts(text_or_texts: str | Iterable[str]) -> Iterable[str]:
    if isinstance(text_or_texts, str):
        return (text_or_texts,)
    if isinstance(text_or_texts, (bytes, bytearray)):
        raise TypeError("expected text (str) or an iterable of str, got bytes; decode it first")
    return text_or_texts


@register_tokenizer
class CharTokenizer(SpecialsFirstTokenizer):
    """Characters as ids, after the special tokens (layout in the module doc).

    Args:
        chars: the vocabulary's characters in id order, each one code point, no repeats.
        specials: SpecialTokens, a dict of role -> token, or None for pad/unk/bos/eos.

    Shape:
        encode: str -> int64 (len(text),) (+2 with add_special_tokens).
    """

    type_name = "char"

    def __init__(self, chars: Sequence[str], specials=None):
        if isinstance(chars, str):
            chars = list(chars)
        chars = list(chars)
        for i, c in enumerate(chars):
            if not isinstance(c, str) or len(c) != 1:
                raise ValueError(f"chars[{i}] must be one character, got {c!r}")
        if not chars:
            raise ValueError("a character tokenizer needs at least one character")
        self._set_vocab(SpecialTokens.coerce(specials), chars, "character tokenizer")
        self.chars = tuple(chars)

    @classmethod
    def train(cls, text_or_texts: str | Iterable[str], min_count: int = 1,
              vocab_size: int | None = None, specials=None) -> CharTokenizer:
        """The characters of a corpus that occur at least ``min_count`` times.

        Args:
            text_or_texts: the corpus, a str or an iterable of str (lines, documents).
            min_count: rarer characters are left out (they encode as unk).
            vocab_size: at most this many ids in all, special tokens included: the most
                frequent characters are kept. None: every character that qualifies.
            specials: as the constructor.

        Raises:
            ValueError: ``vocab_size`` leaves no room beyond the special tokens (naming
                both numbers); a character of the corpus is also a special token; no
                character qualifies.
        """
        specials = SpecialTokens.coerce(specials)
        check_positive_int(min_count, "min_count")
        n_specials = len(specials.tokens())
        if vocab_size is not None:
            if isinstance(vocab_size, bool) or not isinstance(vocab_size, int):
                raise TypeError(f"vocab_size must be an int or None, got {vocab_size!r}")
            if vocab_size <= n_specials:
                raise ValueError(f"vocab_size {vocab_size} is too small: the {n_specials} special "
                                 f"tokens {specials.tokens()} need {n_specials} ids, so at least "
                                 f"{n_specials + 1} are needed for any character")
        counts: Counter = Counter()
        for text in _texts(text_or_texts):
            if not isinstance(text, str):
                raise TypeError(f"the corpus must be str texts, got {type(text).__name__}")
            counts.update(text)
        clash = sorted(set(counts) & set(specials.tokens()))
        if clash:
            raise ValueError(f"the corpus holds {clash}, which are also special tokens; a special "
                             f"token must not be a character of the text (choose other specials)")
        kept = sorted((c for c, n in counts.items() if n >= min_count), key=lambda c: (-counts[c], ord(c)))
        if vocab_size is not None:
            kept = kept[:vocab_size - n_specials]
        if not kept:
            raise ValueError(f"no character occurs {min_count} times or more in the corpus "
                             f"({sum(counts.values())} characters in all)")
        return cls(kept, specials)

    from_corpus = train

    def _encode_plain(self, text: str) -> np.ndarray:
        unk = self.unk_id
        ids = np.fromiter((self._index.get(c, -1) for c in text), dtype=np.int64, count=len(text))
        unknown = ids < self._num_specials  # also a special token's text when it is one character
        if unknown.any():
            if unk is None:
                pos = int(np.argmax(unknown))
                raise ValueError(f"character {text[pos]!r} (U+{ord(text[pos]):04X}) at position {pos} "
                                 f"is not in the vocabulary, and there is no unk token")
            ids[unknown] = unk
        return ids

    def _decode_run(self, ids: np.ndarray, start: int, **options) -> str:
        vocab = self._vocab
        return "".join([vocab[i] for i in ids.tolist()])

    def _fields(self) -> dict[str, Any]:
        return {"chars": list(self.chars)}

    def _config(self) -> str:
        return f"chars={len(self.chars)}"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CharTokenizer:
        check_header(data, cls.type_name)
        what = "char tokenizer data"
        chars = require(data, "chars", list, what)
        return build_checked(data, what, lambda specials: cls(chars, specials))
