"""What a ``--model`` argument names: a local checkpoint folder, a GGUF file (or an Ollama
model, ``ollama:NAME[:TAG]``, which is one) or a Hugging Face hub id.

Cheap on purpose (no network, no torch): it runs on every query, cached or not.
"""

from __future__ import annotations

import errno
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from stat import S_ISREG

from ..errors import ModelNameError, ModelNotFoundError
from .local_files import NotAFile, kind_of, open_regular, read_regular

DEFAULT_MODEL = "gpt2"

# Hub ids: "name" or "owner/name"; the hub allows letters, digits, '-', '_', '.'.
_HUB_ID = re.compile(r"^(?:[A-Za-z0-9][A-Za-z0-9._-]{0,95}/)?[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")

# Files whose size and mtime decide whether a local checkpoint changed since it was cached.
_TRACKED_SUFFIXES = (".safetensors", ".bin", ".json", ".txt", ".model", ".pt", ".pth")

# Indexes of sharded checkpoints: their weight_map names each shard, possibly in a subfolder.
INDEX_FILES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")


@dataclass(frozen=True)
class ModelSource:
    """Where a model's weights and tokenizer come from."""

    kind: str  # "local" (a folder), "gguf" (a file) or "hub"
    name: str  # as shown to the user: the hub id, the resolved path, or ollama:NAME:TAG
    location: str  # the hub id, or the absolute path of the folder or file

    @property
    def identity(self) -> str:
        """A stable key for the cache entry of this source."""
        return f"{self.kind}:{self.location}"

    @property
    def is_local(self) -> bool:
        """On this machine: fingerprinted by its files' sizes and mtimes, never fetched."""
        return self.kind in ("local", "gguf")


def resolve(spec: str) -> ModelSource:
    """Turn a ``--model`` value into a source, validating it without touching the network."""
    spec = spec.strip()
    if not spec:
        raise ModelNameError("the model name is empty")
    shown = _shown(spec)
    if _is_folder_candidate(spec):
        path = _expand(spec)
        kind = _special_kind(path)
        if kind is not None:
            raise ModelNotFoundError(
                f"model {shown}: is {kind}, neither a checkpoint folder nor a GGUF file"
            )
        if not path.is_dir() and _is_gguf(path):
            real = path.resolve()
            return ModelSource("gguf", str(real), str(real))
        if not path.is_dir():
            raise ModelNotFoundError(
                f"model {shown}: is a file, not the folder that holds config.json and the weights"
            )
        real = path.resolve()
        return ModelSource("local", str(real), str(real))
    if spec.startswith("ollama:"):
        from .ollama import blob_path

        name, blob = blob_path(spec)
        return ModelSource("gguf", name, str(blob))
    if spec.lower().endswith(GGUF_SUFFIX):  # never a hub id: "model.gguf" is a missing file
        raise ModelNotFoundError(f"model {shown}: no such file")
    if spec.startswith(("/", "./", "../", "~")) or spec.count("/") > 1 or ".." in spec:
        raise ModelNotFoundError(f"model {shown}: no such folder")
    if not _HUB_ID.match(spec) or "--" in spec:
        raise ModelNameError(
            f"model {_shown(spec, quoted=True)} is neither an existing folder nor a valid hub "
            "id (like 'gpt2' or 'openai-community/gpt2')"
        )
    return ModelSource("hub", spec, spec)


def model_label(model: str) -> str:
    """A model as titles show it: a hub id as is, a folder as its last two path parts."""
    if not model.startswith("/"):
        return model
    parts = [p for p in model.split("/") if p]
    return "/".join(parts[-2:]) if parts else model


GGUF_SUFFIX = ".gguf"


def _is_gguf(path: Path) -> bool:
    """A file named ``*.gguf``, or one that starts with GGUF's magic (an Ollama blob has no
    suffix); a file that cannot be read is not (the caller says it is not a folder), nor is
    anything but a regular file (a FIFO would block the read)."""
    if not path.is_file():
        return False
    if path.name.lower().endswith(GGUF_SUFFIX):
        return True
    try:
        with open_regular(path) as handle:
            return handle.read(4) == b"GGUF"
    except (OSError, NotAFile):
        return False


def _special_kind(path: Path) -> str | None:
    """What ``path`` is when it is neither a folder nor a regular file (a FIFO, a socket, a
    device), else None."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    kind = kind_of(mode)
    return None if kind in (None, "a folder") else kind


def _shown(spec: str, quoted: bool = False) -> str:
    """A --model value as an error message can show it: printable, and not pages long."""
    short = spec if len(spec) <= 200 else spec[:200]
    text = repr(short) if quoted or not short.isprintable() else short
    if not quoted and text != short:
        text = text[1:-1]  # escaped, without the quotes repr adds
    return text if short == spec else text + "..."


def _expand(spec: str) -> Path:
    try:
        return Path(spec).expanduser()
    except RuntimeError:  # "~someone" with no such user: not a folder, so not expanded
        return Path(spec)


def _is_folder_candidate(spec: str) -> bool:
    """Whether ``spec`` names something on disk; any value the OS cannot look up does not."""
    try:
        return _expand(spec).exists()
    except ValueError:  # an embedded NUL, or a lone surrogate the file system cannot encode
        return False
    except OSError as exc:
        if exc.errno in (errno.ENAMETOOLONG, errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
            return False
        raise ModelNotFoundError(
            f"model {_shown(spec)}: cannot be read ({exc.strerror or exc})"
        ) from exc


def local_fingerprint(folder: Path) -> dict[str, list[int]]:
    """Size and mtime of each checkpoint file: a change to any of them means re-extract.

    The top-level files, and every shard the checkpoint's index names (by its path relative
    to ``folder``, subfolders included). Runs on every cached query: it reads the index only
    when there is one, and never raises for a malformed one (the build reports that).
    A GGUF file is its own checkpoint: one ``stat``."""
    prints: dict[str, list[int]] = {}
    info = os.stat(folder)
    if S_ISREG(info.st_mode):
        return {folder.name: [info.st_size, info.st_mtime_ns]}
    for entry in sorted(folder.iterdir()):
        if entry.is_file() and entry.name.endswith(_TRACKED_SUFFIXES):
            stat = entry.stat()
            prints[entry.name] = [stat.st_size, stat.st_mtime_ns]
    for index in INDEX_FILES:
        if index not in prints:
            continue
        for name in sorted(_index_shards(folder / index)):
            key = PurePosixPath(name).as_posix()
            if key in prints or shard_name_problem(name) is not None:
                continue
            path = folder / name
            if not path.is_file() or not _inside(folder, path):
                continue
            stat = path.stat()
            prints[key] = [stat.st_size, stat.st_mtime_ns]
    return prints


def _index_shards(index: Path) -> set[str]:
    """The file names an index's weight_map holds, or none when it cannot be parsed."""
    try:
        data = json.loads(read_regular(index))
    except (ValueError, NotAFile):  # not JSON, or no longer a file (a FIFO swapped in since it
        return set()  # was listed): the build says so
    weight_map = data.get("weight_map") if isinstance(data, dict) else None
    if not isinstance(weight_map, dict):
        return set()
    return {name for name in weight_map.values() if isinstance(name, str)}


def shard_name_problem(name: str) -> str | None:
    """Why a file name from a checkpoint's index cannot name a file of the checkpoint (an
    absolute path, a ``..`` step, an empty or NUL-holding name), or None when it can."""
    if not name or "\x00" in name:
        return "is not a file name"
    path = PurePosixPath(name)
    if path.is_absolute() or name.startswith("~"):
        return "is an absolute path, outside the checkpoint folder"
    if ".." in path.parts:
        return "leads outside the checkpoint folder"
    return None


def checkpoint_file(folder: Path, name: str) -> Path:
    """``folder / name`` for a shard name a local checkpoint's index gives, refused with a
    ModelNotFoundError unless it stays inside ``folder`` (symlinks are followed to check)."""
    problem = shard_name_problem(name)
    path = folder / name
    if problem is None and not _inside(folder, path):
        problem = "is a symlink to a file outside the checkpoint folder"
    if problem is not None:
        raise ModelNotFoundError(
            f"{folder}: its index names the weight file {_shown(name, quoted=True)}, which "
            f"{problem}"
        )
    return path


def _inside(folder: Path, path: Path) -> bool:
    """Whether ``path``, symlinks resolved, is inside ``folder``. A Hugging Face cache snapshot
    (``models--x/snapshots/<commit>``) links each file to its repo's ``blobs`` folder: that
    folder counts as inside too."""
    try:
        root, target = folder.resolve(), path.resolve()
    except (OSError, RuntimeError):  # a symlink loop
        return False
    if target.is_relative_to(root):
        return True
    repo = root.parent.parent
    return (
        root.parent.name == "snapshots"
        and repo.name.startswith("models--")
        and target.is_relative_to(repo / "blobs")
    )
