"""What a ``--model`` argument names: a local checkpoint folder or a Hugging Face hub id.

Cheap on purpose (no network, no torch): it runs on every query, cached or not.
"""

from __future__ import annotations

import errno
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelNameError, ModelNotFoundError

DEFAULT_MODEL = "gpt2"

# Hub ids: "name" or "owner/name"; the hub allows letters, digits, '-', '_', '.'.
_HUB_ID = re.compile(r"^(?:[A-Za-z0-9][A-Za-z0-9._-]{0,95}/)?[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")

# Files whose size and mtime decide whether a local checkpoint changed since it was cached.
_TRACKED_SUFFIXES = (".safetensors", ".bin", ".json", ".txt", ".model", ".pt", ".pth")


@dataclass(frozen=True)
class ModelSource:
    """Where a model's weights and tokenizer come from."""

    kind: str  # "local" or "hub"
    name: str  # as shown to the user: the hub id or the resolved folder
    location: str  # the hub id, or the absolute path of the folder

    @property
    def identity(self) -> str:
        """A stable key for the cache entry of this source."""
        return f"{self.kind}:{self.location}"

    @property
    def is_local(self) -> bool:
        return self.kind == "local"


def resolve(spec: str) -> ModelSource:
    """Turn a ``--model`` value into a source, validating it without touching the network."""
    spec = spec.strip()
    if not spec:
        raise ModelNameError("the model name is empty")
    shown = _shown(spec)
    if _is_folder_candidate(spec):
        path = _expand(spec)
        if not path.is_dir():
            raise ModelNotFoundError(
                f"model {shown}: is a file, not the folder that holds config.json and the weights"
            )
        real = path.resolve()
        return ModelSource("local", str(real), str(real))
    if spec.startswith(("/", "./", "../", "~")) or spec.count("/") > 1 or ".." in spec:
        raise ModelNotFoundError(f"model {shown}: no such folder")
    if not _HUB_ID.match(spec) or "--" in spec:
        raise ModelNameError(
            f"model {_shown(spec, quoted=True)} is neither an existing folder nor a valid hub "
            "id (like 'gpt2' or 'openai-community/gpt2')"
        )
    return ModelSource("hub", spec, spec)


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
    """Size and mtime of each checkpoint file: a change to any of them means re-extract."""
    prints: dict[str, list[int]] = {}
    for entry in sorted(folder.iterdir()):
        if entry.is_file() and entry.name.endswith(_TRACKED_SUFFIXES):
            stat = entry.stat()
            prints[entry.name] = [stat.st_size, stat.st_mtime_ns]
    return prints
