"""Where `tokneigh graph --output` may write (issue 20, case 9): a name the file system cannot
hold, or a path that is not a regular file, is refused before the all-pairs pass; a file that
is replaced keeps its permission bits."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest
from helpers import assert_one_line_error, cli

import tokneigh
from tokneigh.api.embeddings import Embeddings

SHARED_CACHE = True


@pytest.fixture(scope="module")
def tiny(tiny_dir, module_cache):
    return tokneigh.load(str(tiny_dir), cache_dir=module_cache)


@pytest.fixture
def passes(monkeypatch):
    """How many all-pairs passes the CLI started (a refusal must come before the first)."""
    calls: list[int] = []
    real = Embeddings.graph

    def counted(self, *args, **kwargs):
        calls.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Embeddings, "graph", counted)
    return calls


def graph_to(path, tiny_dir):
    return cli("graph", "--top", "3", "--output", str(path), "--model", str(tiny_dir))


def name_max(folder) -> int:
    return os.pathconf(folder, "PC_NAME_MAX")


def test_the_longest_name_the_folder_allows_is_written(tiny, tiny_dir, tmp_path, passes):
    longest = "k" * (name_max(tmp_path) - 4) + ".npz"  # 255 bytes on most file systems
    result = graph_to(tmp_path / longest, tiny_dir)
    assert result.exit_code == 0, result.stderr
    with np.load(tmp_path / longest) as data:
        assert np.array_equal(data["neighbors"], tiny.graph(3).neighbors)
    assert [p.name for p in tmp_path.iterdir()] == [longest]  # no scratch file left


def test_a_name_too_long_for_the_folder_is_refused_before_the_pass(tiny, tiny_dir, tmp_path,
                                                                  passes):
    too_long = "k" * (name_max(tmp_path) - 3) + ".npz"
    result = graph_to(tmp_path / too_long, tiny_dir)
    assert_one_line_error(result, 2, "file name", str(name_max(tmp_path)))
    assert passes == [] and list(tmp_path.iterdir()) == []
    # bytes, not characters: 128 two-byte characters are 256 bytes
    result = graph_to(tmp_path / ("é" * 128 + ".npz"), tiny_dir)
    assert_one_line_error(result, 2, "file name")
    assert passes == []


def test_a_replaced_file_keeps_its_permission_bits(tiny, tiny_dir, tmp_path):
    out = tmp_path / "knn.jsonl"
    out.write_text("old\n")
    out.chmod(0o600)
    assert graph_to(out, tiny_dir).exit_code == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert out.read_text().count("\n") == tiny.graph(3).ids.size
    out.chmod(0o640)
    assert graph_to(out, tiny_dir).exit_code == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o640
    # a new file gets what the umask gives, as any new file does
    fresh = tmp_path / "fresh.npz"
    assert graph_to(fresh, tiny_dir).exit_code == 0
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o666 & ~umask


def test_a_fifo_or_device_is_refused_before_the_pass_and_left_alone(tiny, tiny_dir, tmp_path,
                                                                   passes):
    fifo = tmp_path / "x.npz"
    os.mkfifo(fifo)
    assert_one_line_error(graph_to(fifo, tiny_dir), 2, str(fifo), "not a regular file")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    device = tmp_path / "null.npz"
    device.symlink_to("/dev/null")  # a link to a character device
    assert_one_line_error(graph_to(device, tiny_dir), 2, "not a regular file")
    assert device.is_symlink() and os.readlink(device) == "/dev/null"
    assert passes == []


def test_a_link_to_a_regular_file_is_written_through(tiny, tiny_dir, tmp_path):
    """The link stays a link; the file it names is replaced, whole, in its own folder."""
    real_folder = tmp_path / "real"
    real_folder.mkdir()
    real = real_folder / "knn.npz"
    real.write_bytes(b"old")
    link = tmp_path / "link.npz"
    link.symlink_to(real)
    assert graph_to(link, tiny_dir).exit_code == 0
    assert link.is_symlink()
    with np.load(real) as data:
        assert np.array_equal(data["ids"], tiny.graph(3).ids)
    assert sorted(p.name for p in real_folder.iterdir()) == ["knn.npz"]


def test_a_fifo_that_appears_during_the_pass_is_not_replaced(tiny, tiny_dir, tmp_path,
                                                            monkeypatch):
    out = tmp_path / "late.npz"
    real = Embeddings.graph

    def meanwhile(self, *args, **kwargs):
        os.mkfifo(out)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Embeddings, "graph", meanwhile)
    assert_one_line_error(graph_to(out, tiny_dir), 2, "not a regular file")
    assert stat.S_ISFIFO(os.lstat(out).st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["late.npz"]
