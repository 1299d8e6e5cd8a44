"""Local checkpoint folders whose files are not files (issue 20): a FIFO, a folder, a socket
or a device named ``config.json``, ``tokenizer.json``, ``model.safetensors``, an index, a
shard, or a tokenizer file transformers would read. Each is one ``tokneigh: error:`` line
naming the file and what it is, a non-zero exit, no cache entry, never a hang: a FIFO opened
for reading blocks until a writer comes, which none ever does.

Also a file swapped for a FIFO after it was looked up: every reader opens without blocking
and checks what it opened.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers import assert_one_line_error, run_cli
from helpers_cache import make_tiny_checkpoint
from hostile_paths import in_thread, replaced_by

from tokneigh.errors import ModelNotFoundError
from tokneigh.sources.models import resolve
from tokneigh.store import entries, layout

# A hang becomes a failure: every refusal here takes well under a second.
TIMEOUT = 60

SHARD = "model-00001-of-00001.safetensors"


def _plain(folder: Path) -> Path:
    """config.json, tokenizer.json, model.safetensors: the fast path alone reads it."""
    return make_tiny_checkpoint(folder)


def _sharded(folder: Path) -> Path:
    """The matrix in one shard named by model.safetensors.index.json."""
    make_tiny_checkpoint(folder)
    (folder / "model.safetensors").rename(folder / SHARD)
    index = {"metadata": {}, "weight_map": {"wte.weight": SHARD}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    return folder


def _vocab_files(folder: Path) -> Path:
    """No tokenizer.json: transformers builds the tokenizer from vocab.json, merges.txt,
    tokenizer_config.json and special_tokens_map.json."""
    from tokenizers import Tokenizer

    make_tiny_checkpoint(folder)
    Tokenizer.from_file(str(folder / "tokenizer.json")).model.save(str(folder))
    (folder / "tokenizer.json").unlink()
    end = "<|endoftext|>"
    config = {"tokenizer_class": "GPT2Tokenizer", "model_max_length": 32}
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    special = {"bos_token": end, "eos_token": end, "unk_token": end}
    (folder / "special_tokens_map.json").write_text(json.dumps(special))
    return folder


LAYOUTS: dict[str, Callable[[Path], Path]] = {
    "plain": _plain,
    "sharded": _sharded,
    "vocab-files": _vocab_files,
}

# Each file a reader opens, in the layout where it is read.
FILES = {
    "config.json": "plain",
    "tokenizer.json": "plain",
    "model.safetensors": "plain",
    "model.safetensors.index.json": "sharded",
    SHARD: "sharded",
    "tokenizer_config.json": "vocab-files",
    "special_tokens_map.json": "vocab-files",
}

KINDS = {
    "FIFO": "is a FIFO (named pipe), not a file",
    "folder": "is a folder, not a file",
    "socket": "is a socket, not a file",
    "device": "is a character device, not a file",
}


def _entries(root: Path) -> list[Path]:
    return [p for p in root.iterdir() if layout.is_entry_folder(p)] if root.exists() else []


def _cli(folder: Path, cache: Path):
    return run_cli(
        "neighbors", "Mike", "--model", str(folder),
        env={"TOKNEIGH_CACHE_DIR": str(cache)}, timeout=TIMEOUT,
    )  # fmt: skip


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One pristine folder of each layout; tests damage copies."""
    root = tmp_path_factory.mktemp("layouts")
    return {name: make(root / name) for name, make in LAYOUTS.items()}


def _copy(built: dict[str, Path], layout_name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(built[layout_name], tmp_path / layout_name)).resolve()


@pytest.mark.parametrize("layout_name", list(LAYOUTS))
def test_each_layout_builds_when_its_files_are_files(layout_name, built, tmp_path):
    """The control: each folder these tests damage builds and answers as it is."""
    folder = _copy(built, layout_name, tmp_path)
    result = _cli(folder, tmp_path / "cache")
    assert result.returncode == 0, result.stderr
    assert "Mike" in result.stdout
    assert len(_entries(tmp_path / "cache")) == 1


@pytest.mark.parametrize("name", list(FILES))
def test_a_fifo_in_a_checkpoint_folder_is_refused_through_the_cli(name, built, tmp_path):
    folder = _copy(built, FILES[name], tmp_path)
    path = folder / name
    with replaced_by(path, "FIFO"):
        result = _cli(folder, tmp_path / "cache")
    assert_one_line_error(result, 1, f"{path} {KINDS['FIFO']}")
    assert not _entries(tmp_path / "cache")


@pytest.mark.parametrize(
    ("name", "kind"), [("config.json", "folder"), ("tokenizer.json", "socket")]
)
def test_a_folder_or_socket_in_a_checkpoint_folder_is_refused_through_the_cli(
    name, kind, built, tmp_path
):
    folder = _copy(built, FILES[name], tmp_path)
    path = folder / name
    with replaced_by(path, kind):
        result = _cli(folder, tmp_path / "cache")
    assert_one_line_error(result, 1, f"{path} {KINDS[kind]}")
    assert not _entries(tmp_path / "cache")


# (A shard linked to /dev/null is refused first for leading outside the folder.)
@pytest.mark.parametrize(
    ("name", "kind"),
    [(n, k) for n in FILES for k in ("folder", "socket", "device") if (n, k) != (SHARD, "device")],
)
def test_any_file_that_is_not_a_file_is_refused_by_the_library(name, kind, built, tmp_path):
    """The same refusal, in this process (quicker than a CLI run per case): the library's
    error names the file and what it is, and nothing is cached."""
    from tokneigh.cli.errors import describe

    folder = _copy(built, FILES[name], tmp_path)
    path = folder / name
    cache = tmp_path / "cache"
    with replaced_by(path, kind), pytest.raises(ModelNotFoundError) as caught:
        entries.get(resolve(str(folder)), cache, report=lambda _: None)
    line, code = describe(caught.value)
    assert code == 1 and "\n" not in line, line
    assert f"{path} {KINDS[kind]}" in line, line
    assert not _entries(cache)


# --- a file swapped for a FIFO after it was looked up ----------------------------------------


def test_the_safetensors_readers_refuse_a_fifo(built, tmp_path):
    from tokneigh.formats.safetensors import read_safetensors, safetensors_names

    path = _copy(built, "plain", tmp_path) / "model.safetensors"
    with replaced_by(path, "FIFO"):
        for read in (
            lambda: safetensors_names(path),
            lambda: read_safetensors(path, "wte.weight", lambda _: None),
        ):
            with pytest.raises(ModelNotFoundError, match="is a FIFO"):
                in_thread(read, path)


def test_config_json_swapped_for_a_fifo_is_refused_when_read(built, tmp_path):
    from tokneigh.formats.hf_checkpoint import output_tensor

    folder = _copy(built, "plain", tmp_path)
    source = resolve(str(folder))
    path = folder / "config.json"
    with replaced_by(path, "FIFO"), _looked_up_before(path):
        with pytest.raises(ModelNotFoundError, match="is a FIFO"):
            in_thread(lambda: output_tensor(source, lambda _: None), path)


@pytest.mark.parametrize(
    ("name", "layout_name"),
    [("tokenizer.json", "plain"), ("model.safetensors.index.json", "sharded")],
)
def test_a_json_file_swapped_for_a_fifo_is_refused_when_read(name, layout_name, built, tmp_path):
    from tokneigh.formats.hf_checkpoint import extract

    folder = _copy(built, layout_name, tmp_path)
    source = resolve(str(folder))
    path = folder / name
    with replaced_by(path, "FIFO"), _looked_up_before(path):
        with pytest.raises(ModelNotFoundError, match="is a FIFO"):
            in_thread(lambda: extract(source, lambda _: None, "input"), path)


def test_the_fingerprint_skips_an_index_swapped_for_a_fifo(built, tmp_path):
    """The cached path's fingerprint reads the index to find the shards: a FIFO there is not
    waited on (the build that follows refuses it)."""
    from tokneigh.sources import models

    folder = _copy(built, "sharded", tmp_path)
    path = folder / "model.safetensors.index.json"
    with replaced_by(path, "FIFO"):
        assert in_thread(lambda: models._index_shards(path), path) == set()


@contextlib.contextmanager
def _looked_up_before(path: Path) -> Iterator[None]:
    """The checkpoint's file lookups see ``path`` as the regular file it was when looked up:
    the FIFO took its place between the lookup and the read."""
    from tokneigh.formats import checkpoint_files

    real_get = checkpoint_files.LocalFiles.get

    def get(self, name: str) -> Path | None:
        return self.folder / name if self.folder / name == path else real_get(self, name)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(checkpoint_files.LocalFiles, "get", get)
        patch.setattr(checkpoint_files.LocalFiles, "check_files", lambda self: None)
        yield
