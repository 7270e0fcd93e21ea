"""Skip-gram with both tables sharded gives the unsharded run's vectors: in-process, by the command, and
on a cluster started with `ray start --head` that the command joins by address."""

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from tinyembed.cli import main
from tinyembed.io import safetensors
from tinyembed.train.skipgram import ShardingConfig, SkipGramConfig, train_skipgram

SRC = Path(__file__).resolve().parents[2] / "src"
SENTENCES = [["the", "cat", "sat", "on", "the", "mat"], ["the", "dog", "sat", "on", "the", "log"],
             ["a", "cat", "and", "a", "dog", "ran"]] * 30
FLAGS = ["--min-count", "1", "--dim", "8", "--epochs", "2", "--batch-size", "64", "--quiet"]


@pytest.fixture
def batched(monkeypatch):
    """Unsharded SGD through batches and autograd, as sharded runs train: with numba it would take
    word2vec's per-pair loop (tinyembed.kernels.sgns), a different order of updates."""
    monkeypatch.setattr("tinyembed.train.skipgram.sgns.available", lambda: False)


def _config(optimizer):
    return SkipGramConfig(dim=8, epochs=2, min_count=1, batch_size=64, seed=5, optimizer=optimizer,
                          alpha=0.025 if optimizer == "sgd" else 0.01)


@pytest.mark.parametrize("optimizer, plan", [("sgd", "row"), ("sgd", "column"), ("sparse_adam", "hashed-row")])
def test_sharded_training_gives_the_unsharded_vectors(ray_local, batched, optimizer, plan):
    single = train_skipgram(SENTENCES, _config(optimizer), show_progress=False)
    sharded = train_skipgram(SENTENCES, _config(optimizer), show_progress=False, sharding=ShardingConfig(3, plan))
    np.testing.assert_allclose(sharded.model.input.weight.data, single.model.input.weight.data, atol=1e-5)
    np.testing.assert_allclose(sharded.model.output.weight.data, single.model.output.weight.data, atol=1e-5)
    assert sharded.losses == pytest.approx(single.losses, abs=1e-5)
    assert sharded.to_dict()["sharding"] == {"num_shards": 3, "plan": plan, "address": None, "num_cpus": 0.25}
    assert "sharding" not in single.to_dict()  # the unsharded run's train.json is as before


def _corpus(directory: Path) -> Path:
    path = directory / "corpus.txt"
    path.write_text("\n".join(" ".join(s) for s in SENTENCES) + "\n")
    return path


def _vectors(out: Path) -> np.ndarray:
    return safetensors.load(out / "vectors.safetensors")["vectors"]


def test_the_command_trains_sharded_and_says_where(ray_local, batched, tmp_path, capsys):
    corpus = _corpus(tmp_path)
    assert main(["train", "skipgram", "--corpus", str(corpus), *FLAGS, "--out", str(tmp_path / "one")]) == 0
    assert main(["train", "skipgram", "--corpus", str(corpus), *FLAGS, "--shards", "2", "--shard-plan", "hashed-row",
                 "--out", str(tmp_path / "two")]) == 0
    assert "sharded over 2 actors (hashed-row plan) on a local Ray instance" in capsys.readouterr().out
    np.testing.assert_allclose(_vectors(tmp_path / "two"), _vectors(tmp_path / "one"), atol=1e-5)


def test_placement_flags_without_shards_are_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "skipgram", "--corpus", "lee", "--ray-address", "10.0.0.1:6379", "--out", str(tmp_path)])
    assert exit_.value.code == 2
    assert "give --shards N too" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, head: subprocess.Popen, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if head.poll() is not None:
            raise AssertionError(f"ray start --head exited with {head.returncode}: {head.stdout.read()[-3000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError(f"the Ray head did not listen on port {port} within {seconds} s")


def _stop(head: subprocess.Popen) -> None:
    """Stop the head this test started, and only it: its own process group, TERM then KILL."""
    if head.poll() is None:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
    try:  # whatever of the group is left (the head's GCS, raylet, workers)
        os.killpg(head.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    head.wait(timeout=15)


def test_the_command_joins_a_cluster_started_with_ray_start_by_address(batched, tmp_path):
    ray_cli = Path(sys.executable).with_name("ray")
    if not ray_cli.exists():
        pytest.skip(f"no ray command beside {sys.executable}")
    corpus = _corpus(tmp_path)
    assert main(["train", "skipgram", "--corpus", str(corpus), *FLAGS, "--out", str(tmp_path / "one")]) == 0
    # Ray's socket paths must stay short: its own temp dir under /tmp, not pytest's deep one.
    ray_tmp = tempfile.mkdtemp(prefix="te-ray-", dir="/tmp")
    port = _free_port()
    # A token of our own, given to the head and the command alike (Ray's token authentication).
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16),
           "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    env.pop("RAY_ADDRESS", None)
    head = subprocess.Popen([str(ray_cli), "start", "--head", f"--port={port}", "--num-cpus=1",
                             "--include-dashboard=false", "--disable-usage-stats", "--block", f"--temp-dir={ray_tmp}"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        _wait_for_port(port, head, 90)
        done = subprocess.run([sys.executable, "-m", "tinyembed", "train", "skipgram", "--corpus", str(corpus),
                               *FLAGS, "--shards", "2", "--ray-address", f"127.0.0.1:{port}",
                               "--out", str(tmp_path / "cluster")],
                              env=env, capture_output=True, text=True, timeout=240)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
        assert f"on the Ray cluster at 127.0.0.1:{port}" in done.stdout
        np.testing.assert_allclose(_vectors(tmp_path / "cluster"), _vectors(tmp_path / "one"), atol=1e-5)
    finally:
        _stop(head)
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert head.poll() is not None
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0  # nothing listens there any more


def test_importing_tinyembed_does_not_import_ray():
    code = "import sys, tinyembed, tinyembed.distributed, tinyembed.train, tinyembed.cli; print('ray' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(SRC)})
    assert done.stdout.strip() == "False", done.stderr
