"""The byte-level tokenizer: a text is its UTF-8 bytes, one id per byte.

Id layout (``k`` special tokens, ``pad, unk, bos, eos`` by default)::

    0 .. k-1          the special tokens, in SpecialTokens order
    k + b             byte b, for b in 0..255
    vocab_size        k + 256

Token strings: a byte's token is its character in GPT-2's byte alphabet
(:data:`BYTE_TO_CHAR`): printable Latin-1 bytes stand for themselves, the others (space,
control bytes, ...) are moved to U+0100 and up, so ``" "`` is ``"Ġ"`` and ``"\\n"`` is
``"Ċ"``. These are the strings Hugging Face's byte-level BPE files hold, and the base
vocabulary of :class:`~tinyembed.text.tokenizers.bpe.BPETokenizer`.

Text that UTF-8 cannot encode: a Python str may hold a lone surrogate (U+D800..U+DFFF,
e.g. half of an escaped emoji pair from broken JSON), which is not a character and has no
UTF-8 bytes. ``encode`` refuses such text with a ValueError naming the position and code
point, rather than silently changing it; ``decode(encode(text)) == text`` holds exactly
for every other str (any script, emoji, combining marks, control characters, NUL).

Ids that are not UTF-8: any byte sequence can be decoded. ``decode(ids, errors=...)``
takes the error handlers of ``bytes.decode``; the default, ``"replace"``, puts one U+FFFD
for each maximal invalid subsequence (the Unicode Standard's "substitution of maximal
subparts", as Python and Rust's ``String::from_utf8_lossy`` behind Hugging Face's
byte-level decoder do): ``[0xE2, 0x82]`` (a cut-off "€") -> ``"\\ufffd"``, ``[0xC0, 0xAF]``
(an overlong "/") -> ``"\\ufffd\\ufffd"``. ``errors="strict"`` raises a ValueError naming
the token position and byte.

Examples:
    >>> tok = ByteTokenizer()
    >>> tok.encode("hé!")
    array([108, 199, 173,  37])
    >>> tok.decode([108, 199, 173, 37]), tok.decode([108, 199])
    ('hé!', 'h\\ufffd')
    >>> tok.encode("hi", add_special_tokens=True), tok.bos_id, tok.eos_id
    (array([  2, 108, 109,   3]), 2, 3)
    >>> tok.id_to_token(4 + ord(" "))
    'Ġ'
"""

from __future__ import annotations

import codecs
from collections.abc import Mapping
from typing import Any

import numpy as np

from .base import (
    SpecialsFirstTokenizer,
    SpecialTokens,
    as_ids,
    check_header,
    check_vocab_size,
    read_specials,
    register_tokenizer,
)

__all__ = ["BYTE_TO_CHAR", "CHAR_TO_BYTE", "ByteTokenizer", "bytes_to_text", "text_to_bytes"]


def _byte_alphabet() -> list[str]:
    """GPT-2's map from bytes to printable characters: the 188 bytes that print in Latin-1
    ('!'..'~', '¡'..'¬', '®'..'ÿ') keep their character; the other 68, in byte order, get
    U+0100, U+0101, ... so no token string holds a space or a control character."""
    keeps = set(range(ord("!"), ord("~") + 1)) | set(range(ord("¡"), ord("¬") + 1)) \
        | set(range(ord("®"), ord("ÿ") + 1))
    alphabet, moved = [], 0
    for b in range(256):
        if b in keeps:
            alphabet.append(chr(b))
        else:
            alphabet.append(chr(256 + moved))
            moved += 1
    return alphabet


BYTE_TO_CHAR: tuple[str, ...] = tuple(_byte_alphabet())
CHAR_TO_BYTE: dict[str, int] = {c: b for b, c in enumerate(BYTE_TO_CHAR)}


def text_to_bytes(text: str) -> bytes:
    """``text`` in UTF-8; a lone surrogate is refused with its position (see the module doc)."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError(f"text has a lone surrogate U+{ord(text[e.start]):04X} at position "
                         f"{e.start}, which is not a character and has no UTF-8 bytes") from None


def check_errors(errors: str) -> str:
    """A ``bytes.decode`` error handler name, checked up front."""
    if not isinstance(errors, str):
        raise TypeError(f"errors must be a str, got {type(errors).__name__}")
    try:
        codecs.lookup_error(errors)
    except LookupError:
        raise ValueError(f"unknown error handler errors={errors!r}; use 'replace' (the "
                         f"default), 'strict', 'ignore', 'backslashreplace' or "
                         f"'surrogateescape'") from None
    return errors


def bytes_to_text(data: bytes, errors: str, token_ends: np.ndarray | None = None,
                  start: int = 0, ids: np.ndarray | None = None) -> str:
    """``data`` decoded as UTF-8 with ``errors``; a strict failure names the token holding
    the bad byte: ``token_ends`` are the cumulative byte ends of the tokens (None: one
    byte per token), ``start`` the first token's position in the input, ``ids`` the ids."""
    try:
        return data.decode("utf-8", errors)
    except UnicodeDecodeError as e:
        token = e.start if token_ends is None else int(np.searchsorted(token_ends, e.start, side="right"))
        id_text = f" (id {int(ids[token])})" if ids is not None else ""
        raise ValueError(f"ids are not UTF-8: byte 0x{data[e.start]:02X} of the token at position "
                         f"{start + token}{id_text}: {e.reason} (errors='strict'; "
                         f"errors='replace' writes U+FFFD instead)") from None


@register_tokenizer
class ByteTokenizer(SpecialsFirstTokenizer):
    """UTF-8 bytes as ids, after the special tokens (layout in the module doc).

    Args:
        specials: SpecialTokens, a dict of role -> token, or None for pad/unk/bos/eos.
            (Nothing is ever unknown to a byte tokenizer; ``unk`` is kept for a uniform
            layout and can be set to None.)

    Shape:
        encode: str -> int64 (n_bytes,) (+2 with add_special_tokens).
    """

    type_name = "byte"

    def __init__(self, specials=None):
        specials = SpecialTokens.coerce(specials)
        self._set_vocab(specials, BYTE_TO_CHAR, "byte tokenizer")
        self._offset = self._num_specials

    def _encode_plain(self, text: str) -> np.ndarray:
        return np.frombuffer(text_to_bytes(text), dtype=np.uint8).astype(np.int64) + self._offset

    def decode(self, ids, skip_special_tokens: bool = False, errors: str = "replace") -> str:
        """The text of ``ids`` (1-D list, array or Tensor): the bytes, decoded as UTF-8 with
        ``errors`` as ``bytes.decode`` (default 'replace': one U+FFFD per maximal invalid
        subsequence); each special token's text unless ``skip_special_tokens``.

        Raises:
            ValueError: errors='strict' and the bytes are not UTF-8 (naming the position),
                or an unknown error handler.
            and those of :func:`~tinyembed.text.tokenizers.base.as_ids`.
        """
        check_errors(errors)
        return self._decode(as_ids(ids, self.vocab_size), skip_special_tokens, errors=errors)

    def _decode_run(self, ids: np.ndarray, start: int, errors: str = "replace", **options: Any) -> str:
        # **options as the base declares; decode passes only errors.
        data = (ids - self._offset).astype(np.uint8).tobytes()
        return bytes_to_text(data, errors, None, start, ids)

    def token_bytes(self, id: int) -> bytes:
        """The bytes of ``id`` (empty for a special token)."""
        token = self.id_to_token(id)
        return b"" if id < self._offset else bytes([CHAR_TO_BYTE[token]])

    def _fields(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ByteTokenizer:
        check_header(data, cls.type_name)
        what = "byte tokenizer data"
        return check_vocab_size(data, cls(read_specials(data, what)), what)
