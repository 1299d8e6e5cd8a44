"""What a metric or the all-pairs pass derives from an entry's matrix (``metric-*.npy``,
``graph-*.npz``): computed on first need, kept beside the matrix, validated when read, and gone
with the entry when it is rebuilt."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CacheError
from ..reporting import Report, note, warning
from . import files
from .entries import Entry, read_meta
from .layout import DERIVED_FILE, ENTRY_NAME, InvalidEntry
from .locks import key_lock


def read_array(
    entry: Entry, name: str, shape: tuple[int, ...], dtype: type, report: Report
) -> np.ndarray | None:
    """A derived array of the entry (memory-mapped), or None when it is not there yet; one that
    fails validation is reported and treated as missing (the caller computes it again)."""
    path = entry.path / name
    if not os.path.lexists(path):
        return None
    try:
        if os.path.islink(path):
            raise InvalidEntry(f"{name} is a symbolic link")
        array = files.load_array(path, shape, mmap=True, dtype=dtype)
        if dtype == np.float64 and not np.isfinite(array).all():
            raise InvalidEntry(f"{name} holds NaN or infinite values")
        return array
    except InvalidEntry as exc:
        report(warning(f"the cached {exc}; computing it again"))
        return None


def read_arrays(
    entry: Entry, name: str, check: Callable[[dict[str, np.ndarray]], None], report: Report
) -> dict[str, np.ndarray] | None:
    """A derived ``.npz`` of the entry, checked by ``check`` (which raises ValueError), or
    None when it is missing or unusable (reported)."""
    import zipfile

    path = entry.path / name
    if not os.path.lexists(path):
        return None
    try:
        if os.path.islink(path):
            raise ValueError(f"{name} is a symbolic link")
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
        check(arrays)
        return arrays
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        report(warning(f"the cached {name} is unusable ({_first_words(exc)}); computing it again"))
        return None


def _first_words(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
    return text[:120]


def save(
    entry: Entry, name: str, arrays: np.ndarray | dict[str, np.ndarray], report: Report
) -> None:
    """Keep a derived array (``.npy``) or set of arrays (``.npz``) in the entry folder:
    written beside it and renamed into place under the entry's lock, and only while the
    folder still holds the entry it was computed from (a rebuild may have replaced it).
    A cache that cannot be written costs a note, not the answer."""
    if not DERIVED_FILE.match(name):
        raise ValueError(f"not a derived file name: {name}")
    match = ENTRY_NAME.match(entry.path.name)
    if match is None:
        return
    root = entry.path.parent
    try:
        with key_lock(root, match.group(1)):
            try:
                current = read_meta(entry.path)
            except InvalidEntry:
                return
            if current.get("created") != entry.meta.get("created") or _is_link(entry.path):
                return  # rebuilt meanwhile: what we computed belongs to the old matrix
            scratch = entry.path / f".{name}.{uuid.uuid4().hex}.tmp"
            try:
                with open(scratch, "wb") as handle:
                    if isinstance(arrays, dict):
                        savez: Any = np.savez  # (its stub reads **arrays as its own flags)
                        savez(handle, **arrays)  # numeric arrays: never pickled
                    else:
                        np.save(handle, np.ascontiguousarray(arrays), allow_pickle=False)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(scratch, entry.path / name)
            finally:
                with contextlib.suppress(OSError):
                    scratch.unlink()
    except (OSError, CacheError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        report(note(f"{name} is not cached ({reason}); it will be computed again next time"))


class SavedState:
    """The state of an unfinished computation kept as a derived ``.npz`` of the entry (the
    all-pairs pass's ``allpairs.Checkpoints``): saved as ``save`` saves (whole or not at
    all), read back without trust (the reader validates it), removed once the result is kept."""

    def __init__(self, entry: Entry, name: str, report: Report) -> None:
        self.entry, self.name, self.report = entry, name, report

    def load(self) -> dict[str, np.ndarray] | None:
        def readable(arrays: dict[str, np.ndarray]) -> None:
            if not arrays:
                raise ValueError("it is empty")

        return read_arrays(self.entry, self.name, readable, self.report)

    def save(self, state: dict[str, np.ndarray]) -> None:
        save(self.entry, self.name, state, self.report)

    def reject(self, reason: str) -> None:
        self.report(note(f"the saved {self.name} is not usable ({reason}); starting over"))

    def remove(self) -> None:
        with contextlib.suppress(OSError):
            (self.entry.path / self.name).unlink()


def _is_link(path: Path) -> bool:
    return os.path.islink(path)
