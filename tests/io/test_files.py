"""Atomic outputs: a file or a whole directory appears complete or not at all, and a
destination is checked before any work, naming the path."""

import os

import pytest

from tinyembed.io.files import DestinationError, WriteError, atomic_directory, atomic_open, check_destination


def listing(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_a_directory_appears_whole_with_the_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_directory(tmp_path / "run") as staging:
            (staging / "a.txt").write_text("a")
            assert listing(tmp_path) == [staging.name, f"{staging.name}/a.txt"]  # hidden until done
    finally:
        os.umask(old)
    assert listing(tmp_path) == ["run", "run/a.txt"]
    assert (tmp_path / "run").stat().st_mode & 0o777 == 0o755  # mkdtemp would have made it 0700


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()])
def test_an_error_or_ctrl_c_leaves_the_destination_as_it_was(tmp_path, error):
    out = tmp_path / "run"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(type(error)):
        with atomic_directory(out, replace=True) as staging:
            (staging / "new.txt").write_text("new")
            raise error
    assert listing(tmp_path) == ["run", "run/old.txt"]


def test_replace_swaps_the_whole_directory(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "stale.txt").write_text("stale")
    with atomic_directory(out, replace=True) as staging:
        (staging / "new.txt").write_text("new")
    assert listing(tmp_path) == ["run", "run/new.txt"]


def test_an_existing_output_is_not_replaced_unless_asked(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "precious.txt").write_text("x")
    with pytest.raises(DestinationError, match=f"{out} already exists; pass --force"):
        with atomic_directory(out):
            pytest.fail("the block must not run")
    assert listing(tmp_path) == ["run", "run/precious.txt"]


def test_an_empty_directory_counts_as_missing(tmp_path):
    (tmp_path / "run").mkdir()
    with atomic_directory(tmp_path / "run") as staging:
        (staging / "a").write_text("a")
    assert listing(tmp_path) == ["run", "run/a"]


def test_errors_while_writing_name_the_destination_not_the_temporary(tmp_path, monkeypatch):
    real = os.rename

    def rename(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(WriteError) as info:
        with atomic_directory(tmp_path / "run") as staging:
            (staging / "a").write_text("a")
    monkeypatch.setattr(os, "rename", real)
    assert str(tmp_path / "run") in str(info.value) and ".new-" not in str(info.value)
    assert listing(tmp_path) == []


@pytest.mark.parametrize("kind", ["file", "symlink", "file parent"])
def test_check_destination_refuses_naming_the_path_and_creates_nothing(tmp_path, kind):
    target = tmp_path / "out"
    if kind == "file":
        target.write_text("x")
        match = "exists and is a file"
    elif kind == "symlink":
        target.symlink_to(tmp_path)
        match = "symbolic link"
    else:
        (tmp_path / "f").write_text("x")
        target = tmp_path / "f" / "deeper" / "out"
        match = "is a file, not a directory"
    before = listing(tmp_path)
    with pytest.raises(DestinationError, match=match) as info:
        check_destination(target, directory=True)
    assert str(target) in str(info.value)
    assert listing(tmp_path) == before


def test_check_destination_finds_an_unwritable_place_at_once(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        try:
            (locked / "probe").write_text("x")
        except PermissionError:
            pass
        else:
            pytest.skip("running as root: a read-only directory is still writable")
        with pytest.raises(DestinationError, match=f"{locked / 'a' / 'b'}.*Permission denied"):
            check_destination(locked / "a" / "b", directory=True)
    finally:
        locked.chmod(0o755)
    assert listing(tmp_path) == ["locked"]


def test_check_destination_on_a_read_only_file_system_fails_naming_the_path(tmp_path):
    # /proc is read-only for new files: the probe must fail there, not after the work.
    with pytest.raises(DestinationError, match="/proc/tinyembed-out"):
        check_destination("/proc/tinyembed-out")


def test_check_destination_of_a_file_takes_replace_or_a_predicate(tmp_path):
    target = tmp_path / "t.json"
    target.write_text("{}")
    with pytest.raises(DestinationError, match="already exists; pass --force"):
        check_destination(target)
    assert check_destination(target, replace=True) == target
    assert check_destination(target, replace=lambda p: p.read_text() == "{}") == target
    with pytest.raises(DestinationError, match="holds something else"):
        check_destination(target, replace=lambda p: False)


def test_atomic_open_leaves_nothing_behind_on_failure(tmp_path):
    target = tmp_path / "a.bin"
    target.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_open(target) as f:
            f.write(b"half")
            raise KeyboardInterrupt
    assert target.read_bytes() == b"old" and listing(tmp_path) == ["a.bin"]
