"""What ``cache list`` and ``cache clear`` see: the entries in a root, the ones a model name
names, and their removal (each under its model's lock, so a build in progress is never broken).
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import CacheError, UsageError
from ..sources.models import ModelSource, model_label
from .entries import check_real, quantization_of, read_meta
from .files import remove_tree
from .layout import (
    EMBEDDINGS_KINDS,
    ENTRY_NAME,
    SCRATCH_NAME,
    InvalidEntry,
    entry_folder_name,
    is_entry_folder,
)
from .locks import key_lock, remove_scratch


@dataclass(slots=True)
class CachedModel:
    """One cache entry as ``cache list`` shows it (``model`` None: a damaged entry)."""

    model: str | None  # the hub id or the full checkpoint path
    source: str | None  # "hub" or "local"
    embeddings: str | None  # "input" or "output"
    vocab_size: int | None
    dim: int | None
    size_bytes: int
    folder: str  # the entry's folder
    quantization: str | None = None  # a GGUF tensor's storage type ("Q8_0"), else None

    @property
    def label(self) -> str | None:
        return None if self.model is None else model_label(self.model)

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.label,
            "path": self.model,
            "source": self.source,
            "embeddings": self.embeddings,
            "vocab_size": self.vocab_size,
            "dim": self.dim,
            "size_bytes": self.size_bytes,
            "entry": self.folder,
            "quantization": self.quantization,
        }


def list_entries(root: Path) -> list[CachedModel]:
    """Each tokneigh entry in the root (``model`` None for a damaged one)."""
    if not root.is_dir():
        return []
    found = []
    for child in sorted(root.iterdir()):
        if is_entry_folder(child):
            try:
                check_real(child)  # a linked file is not read: the entry shows as damaged
                meta: dict[str, Any] | None = read_meta(child)
            except InvalidEntry:
                meta = None
            try:
                size = sum(f.lstat().st_size for f in child.iterdir() if not f.is_symlink())
            except OSError:  # removed by another process while we looked
                continue
            found.append(_described(child, meta, size))
    return found


def _described(folder: Path, meta: dict[str, Any] | None, size: int) -> CachedModel:
    if meta is None:
        return CachedModel(None, None, None, None, None, size, str(folder))
    return CachedModel(
        model=meta["model"],
        source=meta["source"],
        embeddings=meta.get("embeddings", "input"),
        vocab_size=meta["vocab_size"],
        dim=meta["dim"],
        size_bytes=size,
        folder=str(folder),
        quantization=quantization_of(meta),
    )


def matching_entries(root: Path, name: str, source: ModelSource | None) -> list[CachedModel]:
    """The entries a model name names: its hub id or full path as stored, the short label
    ``cache list`` shows (when no other model shares it), or the entries of ``source``."""
    entries = [e for e in list_entries(root) if e.model is not None]
    folders = set()
    if source is not None:
        folders = {str(root / entry_folder_name(source, kind)) for kind in EMBEDDINGS_KINDS}
    exact = [e for e in entries if e.model == name or e.folder in folders]
    if exact:
        return exact
    by_label = [e for e in entries if e.label == name]
    if len({e.model for e in by_label}) > 1:
        names = ", ".join(sorted({str(e.model) for e in by_label}))
        raise AmbiguousName(f"{name!r} names several cached models ({names}); give the full path")
    return by_label


class AmbiguousName(UsageError):
    """A short model label that several cached models share."""


def remove_entries(root: Path, entries: list[CachedModel]) -> list[CachedModel]:
    """Delete these entries (only folders named and filled like tokneigh entries), each under
    its model's lock so that a build in progress is never broken; those removed."""
    removed = []
    for entry in entries:
        folder = Path(entry.folder)
        match = ENTRY_NAME.match(folder.name)
        if match is None or folder.parent != root:
            continue
        with key_lock(root, match.group(1)):
            if remove_entry(root, folder.name):
                removed.append(entry)
    return removed


def remove_entry(root: Path, name: str) -> bool:
    """Delete one entry folder (only a folder named like a tokneigh entry)."""
    match = ENTRY_NAME.match(name)
    target = root / name
    if not match or not is_entry_folder(target):
        return False
    trash = root / f".trash-{match.group(1)}-{uuid.uuid4().hex}"
    try:
        os.rename(target, trash)  # a reader sees the whole entry or nothing
    except FileNotFoundError:  # another process removed it first
        return False
    except OSError as exc:
        raise CacheError(
            f"cannot remove {target} ({exc.strerror or exc}); check the permissions of the "
            "cache folder"
        ) from exc
    remove_tree(trash)
    return True


def clear_all(root: Path) -> list[CachedModel]:
    """Remove every tokneigh entry, and the scratch folders of builds no longer running; leave
    anything else in the root alone."""
    if not root.is_dir():
        return []
    removed = remove_entries(root, list_entries(root))
    keys = set()
    for child in root.iterdir():
        match = SCRATCH_NAME.match(child.name)
        if match and (child.is_symlink() or child.is_dir()):  # a link is removed as a link
            keys.add(match.group(2))
    for key in keys:
        from filelock import Timeout

        try:
            with key_lock(root, key, timeout=0):
                remove_scratch(root, key)
        except (Timeout, OSError):
            pass  # a build holds the lock: its scratch folder is in use
    return removed
