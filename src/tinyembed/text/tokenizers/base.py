"""What every tokenizer offers, the special tokens, the JSON file format and the registry.

A tokenizer turns text into a 1-D int64 array of ids in ``[0, vocab_size)``, which an
:class:`tinyembed.nn.Embedding` of ``vocab_size`` rows takes as it is, and back:

    encode(text, add_special_tokens=False) -> np.ndarray int64 (n,)
    encode_batch(texts)                    -> list of those
    decode(ids, skip_special_tokens=False) -> str   (ids: list, array or Tensor, 1-D)
    vocab_size, len(tokenizer), token_to_id(token), id_to_token(id)
    specials, pad_id / unk_id / bos_id / eos_id, special_ids
    save(path), Type.load(path), load_tokenizer(path), to_dict(), Type.from_dict(data)

Conventions (those of Hugging Face ``tokenizers`` and ``transformers``):

* Plain text never encodes to a special token: a text holding ``"<eos>"`` gets the ids
  of its characters or bytes. ``add_special_tokens=True`` adds the ones the tokenizer
  puts around a text (``bos`` before, ``eos`` after, for our own tokenizers).
* ``token_to_id`` gives None for a token not in the vocabulary (as ``tokenizers``);
  ``id_to_token`` and ``decode`` refuse an id outside ``[0, vocab_size)`` with an
  IndexError naming it and its position.
* ``decode`` writes special tokens as their text unless ``skip_special_tokens``.

Our own tokenizers (byte, char, bpe) share one id layout: the special tokens first, in
the order ``pad, unk, bos, eos, *extra`` (roles set to None left out), then the
tokenizer's own tokens. So ids ``0..len(specials) - 1`` are always the special tokens.

File format: one JSON object, written to a temporary file and renamed into place::

    {"format": "tinyembed.tokenizer", "version": 1, "type": "bpe", "vocab_size": 4000,
     "specials": {"pad": "<pad>", "unk": "<unk>", "bos": "<bos>", "eos": "<eos>", "extra": []},
     ...what the type needs (merges, characters, a tokenizer.json)...}

Loading checks everything (format, version, type, every field, the vocabulary size) and
raises ValueError naming the file and the problem. The JSON is ASCII (``\\u`` escapes), so
any Python str, lone surrogates included, survives the trip.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar, Union

import numpy as np

from ...io.files import write_atomic

__all__ = ["FORMAT", "FORMAT_VERSION", "SpecialTokens", "TOKENIZERS", "TokenizationStats", "Tokenizer",
           "as_ids", "load_tokenizer", "register_tokenizer", "tokenization_stats"]

FORMAT = "tinyembed.tokenizer"
FORMAT_VERSION = 1

PathLike = Union[str, "os.PathLike[str]"]

# type name (the file's "type" field) -> class; filled by @register_tokenizer.
TOKENIZERS: dict[str, type[Tokenizer]] = {}

_ROLES = ("pad", "unk", "bos", "eos")


_Tok = TypeVar("_Tok", bound="Tokenizer")


def register_tokenizer(cls: type[_Tok]) -> type[_Tok]:
    """Class decorator: make a tokenizer type loadable by :func:`load_tokenizer` under
    its ``type_name``."""
    TOKENIZERS[cls.type_name] = cls
    return cls


# ---------------------------------------------------------------------------
# Special tokens
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class SpecialTokens:
    """The special tokens of a tokenizer, by role.

    Args:
        pad, unk, bos, eos: the token of each role, or None for none. Roles may share a
            token (GPT-2 uses ``<|endoftext|>`` for several); it is then one token.
        extra: more special tokens with no role (``[MASK]``, ``<sep>``), in id order.

    Examples:
        >>> SpecialTokens().tokens()
        ['<pad>', '<unk>', '<bos>', '<eos>']
        >>> SpecialTokens(pad=None, bos="<s>", eos="</s>", extra=("<mask>",)).tokens()
        ['<unk>', '<s>', '</s>', '<mask>']
        >>> SpecialTokens.none().tokens()
        []
    """

    pad: str | None = "<pad>"
    unk: str | None = "<unk>"
    bos: str | None = "<bos>"
    eos: str | None = "<eos>"
    extra: tuple[str, ...] = field(default=())

    def __post_init__(self):
        for role in _ROLES:
            token = getattr(self, role)
            if token is not None and (not isinstance(token, str) or not token):
                raise ValueError(f"special token {role} must be a non-empty str or None, got {token!r}")
        if isinstance(self.extra, str) or not isinstance(self.extra, (tuple, list)):
            raise TypeError(f"extra special tokens must be a tuple of str, got {self.extra!r}")
        object.__setattr__(self, "extra", tuple(self.extra))
        roles = {getattr(self, role) for role in _ROLES} - {None}
        seen = set()
        for token in self.extra:
            if not isinstance(token, str) or not token:
                raise ValueError(f"extra special tokens must be non-empty str, got {token!r}")
            if token in roles or token in seen:
                raise ValueError(f"special token {token!r} appears twice (extra repeats it)")
            seen.add(token)

    @classmethod
    def none(cls) -> SpecialTokens:
        """No special tokens at all."""
        return cls(pad=None, unk=None, bos=None, eos=None)

    @classmethod
    def coerce(cls, specials) -> SpecialTokens:
        """A SpecialTokens from itself, None (the default four), or a mapping of role ->
        token (with an optional ``extra`` list), as ``to_dict`` writes it."""
        if specials is None:
            return cls()
        if isinstance(specials, cls):
            return specials
        if isinstance(specials, Mapping):
            unknown = set(specials) - set(_ROLES) - {"extra"}
            if unknown:
                raise ValueError(f"unknown special token roles {sorted(unknown)}; "
                                 f"roles are {', '.join(_ROLES)} and extra")
            return cls(**{role: specials.get(role) for role in _ROLES},
                       extra=tuple(specials.get("extra", ())))
        raise TypeError(f"specials must be a SpecialTokens, a dict of role -> token or None, "
                        f"got {type(specials).__name__}")

    def tokens(self) -> list[str]:
        """Every special token once, in id order: pad, unk, bos, eos (those set), then extra."""
        ordered = [getattr(self, role) for role in _ROLES if getattr(self, role) is not None]
        return list(dict.fromkeys(ordered)) + list(self.extra)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["extra"] = list(self.extra)
        return data


# ---------------------------------------------------------------------------
# Ids in, checked
# ---------------------------------------------------------------------------

def as_ids(ids, vocab_size: int) -> np.ndarray:
    """``ids`` (a list, an array, a tinyembed or torch Tensor) as a 1-D int64 array,
    every id in ``[0, vocab_size)``.

    Raises:
        TypeError: not integers (an empty list is fine).
        ValueError: not 1-D.
        IndexError: naming the first id out of range and its position.
    """
    if hasattr(ids, "detach") and hasattr(ids, "cpu"):  # a torch Tensor
        ids = ids.detach().cpu().numpy()
    elif hasattr(ids, "data") and not isinstance(ids, np.ndarray):  # a tinyembed Tensor
        ids = ids.data
    arr = np.asarray(ids)
    if arr.dtype.kind not in "iu":
        if arr.size == 0 and arr.dtype.kind == "f" and not isinstance(ids, np.ndarray):
            arr = arr.astype(np.int64)  # `[]` comes in as float64
        else:
            raise TypeError(f"ids must be integers, got dtype {arr.dtype}")
    if arr.ndim != 1:
        raise ValueError(f"ids must be 1-D (one text), got shape {arr.shape}")
    arr = arr.astype(np.int64, copy=False)
    bad = (arr < 0) | (arr >= vocab_size)
    if bad.any():
        pos = int(np.argmax(bad))
        raise IndexError(f"id {int(arr[pos])} at position {pos} is out of range for a vocabulary "
                         f"of {vocab_size} tokens (valid: 0..{vocab_size - 1})")
    return arr


def check_text(text, what: str = "text") -> str:
    if not isinstance(text, str):
        raise TypeError(f"{what} must be a str, got {type(text).__name__}")
    return text


# ---------------------------------------------------------------------------
# The protocol
# ---------------------------------------------------------------------------

class Tokenizer:
    """Base of every tokenizer. A subclass sets ``type_name`` and defines ``vocab_size``,
    ``token_to_id``, ``id_to_token``, ``encode``, ``_decode`` and ``_fields`` /
    ``from_dict``; the rest (batches, special ids, files, repr) is written here."""

    type_name: ClassVar[str] = ""
    specials: SpecialTokens

    # -- what a tokenizer defines ------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        """Number of ids: every id is in ``[0, vocab_size)``."""
        raise NotImplementedError

    def token_to_id(self, token: str) -> int | None:
        """The id of ``token``, or None when it is not in the vocabulary."""
        raise NotImplementedError

    def id_to_token(self, id: int) -> str:
        """The token of ``id``; IndexError outside ``[0, vocab_size)``."""
        raise NotImplementedError

    def encode(self, text: str, add_special_tokens: bool = False) -> np.ndarray:
        """``text`` as ids, int64 (n,)."""
        raise NotImplementedError

    def _decode(self, ids: np.ndarray, skip_special_tokens: bool, **options) -> str:
        """Text of checked int64 (n,) ids."""
        raise NotImplementedError

    def _fields(self) -> dict[str, Any]:
        """What the file holds beyond format, version, type, vocab_size and specials."""
        raise NotImplementedError

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Tokenizer:
        """The tokenizer ``to_dict`` described; ValueError naming what is wrong."""
        raise NotImplementedError

    def _config(self) -> str:
        """The configuration shown by repr beyond vocab_size and specials."""
        return ""

    # -- what every tokenizer gets -------------------------------------------------------
    def __len__(self) -> int:
        return self.vocab_size

    def encode_batch(self, texts: Iterable[str], add_special_tokens: bool = False) -> list[np.ndarray]:
        """Each text encoded: a list of int64 (n_i,) arrays (ragged, nothing padded)."""
        if isinstance(texts, str):
            raise TypeError("encode_batch takes a list of texts; for one text use encode")
        return [self.encode(text, add_special_tokens=add_special_tokens) for text in texts]

    def tokenize(self, text: str) -> list[str]:
        """The token strings of ``text`` (``id_to_token`` of each id of ``encode``)."""
        return [self.id_to_token(i) for i in self.encode(text).tolist()]

    def decode(self, ids, skip_special_tokens: bool = False) -> str:
        """The text of ``ids`` (a 1-D list, array or Tensor of ints).

        Raises:
            TypeError / ValueError / IndexError: as :func:`as_ids`.
        """
        return self._decode(as_ids(ids, self.vocab_size), skip_special_tokens)

    def _role_id(self, role: str) -> int | None:
        token = getattr(self.specials, role)
        return None if token is None else self.token_to_id(token)

    @property
    def pad_id(self) -> int | None:
        """Id of the padding token (None when there is none)."""
        return self._role_id("pad")

    @property
    def unk_id(self) -> int | None:
        """Id of the unknown token (None when there is none)."""
        return self._role_id("unk")

    @property
    def bos_id(self) -> int | None:
        """Id of the beginning-of-sequence token (None when there is none)."""
        return self._role_id("bos")

    @property
    def eos_id(self) -> int | None:
        """Id of the end-of-sequence token (None when there is none)."""
        return self._role_id("eos")

    @property
    def special_ids(self) -> tuple[int, ...]:
        """Ids of every special token, ascending."""
        ids = (self.token_to_id(token) for token in self.specials.tokens())
        return tuple(sorted(i for i in ids if i is not None))  # never None: the vocabulary holds every special

    def to_dict(self) -> dict[str, Any]:
        """Everything the file holds, JSON-serializable (what :meth:`save` writes)."""
        return {"format": FORMAT, "version": FORMAT_VERSION, "type": self.type_name,
                "vocab_size": self.vocab_size, "specials": self.specials.to_dict(), **self._fields()}

    def save(self, path: PathLike) -> None:
        """Write the tokenizer to ``path`` as JSON, atomically (temporary file, then rename)."""
        text = json.dumps(self.to_dict(), ensure_ascii=True, indent=1) + "\n"
        write_atomic(path, text.encode("ascii"))

    @classmethod
    def load(cls, path: PathLike) -> Tokenizer:
        """Read a tokenizer that :meth:`save` wrote; the file must hold this type."""
        tokenizer = load_tokenizer(path)
        if cls is not Tokenizer and not isinstance(tokenizer, cls):
            raise ValueError(f"{os.fspath(path)!r} holds a {tokenizer.type_name!r} tokenizer, "
                             f"not a {cls.type_name!r} one ({cls.__name__})")
        return tokenizer

    def __repr__(self) -> str:
        config = self._config()
        return (f"{type(self).__name__}(vocab_size={self.vocab_size}, "
                f"specials={self.specials.tokens()}{', ' + config if config else ''})")


def check_header(data: Any, type_name: str | None = None) -> str:
    """The type named by a file's parsed JSON, after checking format and version."""
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got a JSON {type(data).__name__}")
    if data.get("format") != FORMAT:
        raise ValueError(f"not a tinyembed tokenizer: 'format' is {data.get('format')!r}, "
                         f"expected {FORMAT!r}")
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError(f"'version' must be a positive integer, got {version!r}")
    if version > FORMAT_VERSION:
        raise ValueError(f"format version {version} is newer than this tinyembed reads "
                         f"({FORMAT_VERSION}); upgrade tinyembed")
    kind = data.get("type")
    if kind not in TOKENIZERS:
        raise ValueError(f"unknown tokenizer type {kind!r}; known: {', '.join(sorted(TOKENIZERS))}")
    if type_name is not None and kind != type_name:
        raise ValueError(f"the data describes a {kind!r} tokenizer, not a {type_name!r} one")
    return kind


def require(data: Mapping[str, Any], key: str, kind: type | tuple, what: str) -> Any:
    """``data[key]``, checked to be a ``kind``; for ``from_dict`` to name a missing or bad field."""
    if key not in data:
        raise ValueError(f"{what} has no {key!r} field")
    value = data[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        names = " or ".join(k.__name__ for k in kinds)
        raise ValueError(f"{what}: {key!r} must be a {names}, got {type(value).__name__} {value!r:.60}")
    return value


def read_specials(data: Mapping[str, Any], what: str) -> SpecialTokens:
    """The 'specials' field of a file, as SpecialTokens."""
    specials = require(data, "specials", dict, what)
    try:
        return SpecialTokens.coerce(specials)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{what}: bad 'specials': {e}") from None


def check_vocab_size(data: Mapping[str, Any], tokenizer: _Tok, what: str) -> _Tok:
    """Refuse a file whose recorded vocab_size is not what its contents give."""
    recorded = require(data, "vocab_size", int, what)
    if recorded != tokenizer.vocab_size:
        raise ValueError(f"{what}: 'vocab_size' says {recorded} but its contents give "
                         f"{tokenizer.vocab_size} tokens")
    return tokenizer


def build_checked(data: Mapping[str, Any], what: str, make: Callable[[SpecialTokens], _Tok]) -> _Tok:
    """``make(specials)`` with the file's special tokens; its ValueError named as the file's
    (``what``), and the recorded vocab_size checked against the result."""
    try:
        tokenizer = make(read_specials(data, what))
    except ValueError as e:
        raise ValueError(f"{what}: {e}") from None
    return check_vocab_size(data, tokenizer, what)


def from_dict(data: Any) -> Tokenizer:
    """Any tokenizer from its :meth:`Tokenizer.to_dict` data, dispatching on 'type'."""
    kind = check_header(data)
    return TOKENIZERS[kind].from_dict(data)


def load_tokenizer(path: PathLike) -> Tokenizer:
    """Any tokenizer that ``save`` wrote; the class comes from the file's 'type' field.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not UTF-8 JSON (truncated, say), not a tinyembed tokenizer, an unknown
            type or version, or contents that do not make a valid tokenizer; the message
            names the file and the problem.
    """
    where = os.fspath(path)
    raw = Path(path).read_bytes()
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise ValueError(f"{where!r} is not a tokenizer file: not UTF-8 ({e})") from None
    except json.JSONDecodeError as e:
        # Our files are one JSON object: one that does not end with "}" was cut short.
        hint = " (the file ends early: truncated?)" if not raw.rstrip().endswith(b"}") else ""
        raise ValueError(f"{where!r} is not a tokenizer file: invalid JSON{hint}: {e}") from None
    try:
        return from_dict(data)
    except (ValueError, TypeError, KeyError) as e:
        raise ValueError(f"{where!r}: {e}") from None


def specials_first_layout(specials: SpecialTokens, tokens: Sequence[str],
                          what: str) -> tuple[list[str], dict[str, int]]:
    """Our own tokenizers' vocabulary: the special tokens, then ``tokens``; (id -> token,
    token -> id). Refuses a token that appears twice, naming both ids."""
    vocab = specials.tokens() + list(tokens)
    index: dict[str, int] = {}
    for i, token in enumerate(vocab):
        if token in index:
            raise ValueError(f"{what}: token {token!r} appears twice, as ids {index[token]} and {i}")
        index[token] = i
    return vocab, index


class SpecialsFirstTokenizer(Tokenizer):
    """Our own tokenizers: ids ``0..k-1`` are the k special tokens, then the tokenizer's
    own. A subclass calls ``_set_vocab`` and defines ``_encode_plain`` and ``_decode_run``."""

    _vocab: list[str]
    _index: dict[str, int]
    _num_specials: int

    def _set_vocab(self, specials: SpecialTokens, tokens: Sequence[str], what: str) -> None:
        self.specials = specials
        self._vocab, self._index = specials_first_layout(specials, tokens, what)
        self._num_specials = len(specials.tokens())

    def _encode_plain(self, text: str) -> np.ndarray:
        """Ids of ``text`` without special tokens, int64 (n,)."""
        raise NotImplementedError

    def _decode_run(self, ids: np.ndarray, start: int, **options) -> str:
        """Text of a run of non-special ids that begins at position ``start`` of the input."""
        raise NotImplementedError

    @property
    def vocab_size(self) -> int:
        return len(self._vocab)

    def token_to_id(self, token: str) -> int | None:
        return self._index.get(token)

    def id_to_token(self, id: int) -> str:
        if isinstance(id, (bool, np.bool_)) or not isinstance(id, (int, np.integer)):
            raise TypeError(f"id must be an int, got {type(id).__name__} {id!r}")
        if not 0 <= id < len(self._vocab):
            raise IndexError(f"id {id} is out of range for a vocabulary of {len(self._vocab)} "
                             f"tokens (valid: 0..{len(self._vocab) - 1})")
        return self._vocab[int(id)]

    def encode(self, text: str, add_special_tokens: bool = False) -> np.ndarray:
        """``text`` as ids, int64 (n,). Plain text never gives a special id;
        ``add_special_tokens`` puts ``bos_id`` before and ``eos_id`` after (those set)."""
        ids = self._encode_plain(check_text(text))
        if add_special_tokens:
            before = [] if self.bos_id is None else [self.bos_id]
            after = [] if self.eos_id is None else [self.eos_id]
            if before or after:
                ids = np.concatenate([np.asarray(before, np.int64), ids, np.asarray(after, np.int64)])
        return ids

    def _decode(self, ids: np.ndarray, skip_special_tokens: bool, **options) -> str:
        special = ids < self._num_specials
        if not special.any():
            return self._decode_run(ids, 0, **options)
        # Runs of ordinary ids decode together (a character's bytes may span tokens);
        # each special token is its own text.
        bounds = np.concatenate([[0], np.flatnonzero(np.diff(special)) + 1, [ids.size]])
        parts: list[str] = []
        for start, stop in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
            if special[start]:
                if not skip_special_tokens:
                    parts.extend(self._vocab[i] for i in ids[start:stop].tolist())
            else:
                parts.append(self._decode_run(ids[start:stop], start, **options))
        return "".join(parts)


# ---------------------------------------------------------------------------
# How a tokenizer does on a corpus
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class TokenizationStats:
    """A corpus under a tokenizer (no special tokens added).

    Attributes:
        tokenizer: its repr; type: its type name; vocab_size: its ids.
        texts, characters, utf8_bytes, tokens: totals over the corpus.
        unknown: tokens that are the unk token (characters a vocabulary lacks).
        bytes_per_token, characters_per_token: the compression (0 for an empty corpus).
        distinct_ids: how many ids of the vocabulary the corpus uses.
    """

    tokenizer: str
    type: str
    vocab_size: int
    texts: int
    characters: int
    utf8_bytes: int
    tokens: int
    unknown: int
    distinct_ids: int
    bytes_per_token: float
    characters_per_token: float

    def to_dict(self) -> dict:
        return asdict(self)


def tokenization_stats(tokenizer: Tokenizer, texts: Iterable[str]) -> TokenizationStats:
    """Token counts and compression of ``texts`` (a str or an iterable of str) under ``tokenizer``.

    Examples:
        >>> from tinyembed.text.tokenizers import ByteTokenizer
        >>> stats = tokenization_stats(ByteTokenizer(), ["héllo", "world"])
        >>> stats.tokens, stats.characters, stats.bytes_per_token
        (11, 10, 1.0)
    """
    texts = [texts] if isinstance(texts, str) else list(texts)
    ids = tokenizer.encode_batch(texts)
    flat = np.concatenate(ids) if ids else np.zeros(0, np.int64)
    n_bytes = sum(len(t.encode("utf-8", "surrogatepass")) for t in texts)
    n_chars = sum(len(t) for t in texts)
    unk = tokenizer.unk_id
    return TokenizationStats(
        tokenizer=repr(tokenizer), type=tokenizer.type_name, vocab_size=tokenizer.vocab_size,
        texts=len(texts), characters=n_chars, utf8_bytes=n_bytes, tokens=int(flat.size),
        unknown=int((flat == unk).sum()) if unk is not None else 0,
        distinct_ids=int(np.unique(flat).size),
        bytes_per_token=n_bytes / flat.size if flat.size else 0.0,
        characters_per_token=n_chars / flat.size if flat.size else 0.0)
