"""The file operations every store module shares: durable writes, reading a cached array with
its shape and type checked, deleting a folder without following links, and copying a mapped
array into memory."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .layout import InvalidEntry


def fsync_write(path: Path, data: bytes | None = None, array: np.ndarray | None = None) -> None:
    with open(path, "wb") as handle:
        if array is not None:
            np.save(handle, array, allow_pickle=False)
        else:
            handle.write(data or b"")
        handle.flush()
        os.fsync(handle.fileno())


def create(path: Path) -> BinaryIO:
    """A new file for a writer that streams into it and syncs it itself (matrix.npy, a block of
    rows at a time): the one place every cache file is opened for writing besides
    ``fsync_write``, so a full disk or a killed process can be tested at it."""
    return open(path, "wb")


def fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def remove_tree(path: Path) -> None:
    """Delete a scratch or trash folder. One that is a symbolic link (an entry folder that was
    a link, moved aside by a rebuild) or a file is unlinked: what a link points to is never
    touched, and rmtree does not follow the links inside a folder either."""
    if path.is_symlink() or not path.is_dir():
        with contextlib.suppress(OSError):
            path.unlink()
    else:
        shutil.rmtree(path, ignore_errors=True)


def load_array(
    path: Path, shape: tuple[int, ...], mmap: bool, dtype: type = np.float32
) -> np.ndarray:
    try:
        # allow_pickle stays False: a cache file can never execute code.
        array = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except FileNotFoundError as exc:
        raise InvalidEntry(f"{path.name} is missing") from exc
    except (OSError, ValueError, EOFError) as exc:
        raise InvalidEntry(f"{path.name} is truncated or unreadable") from exc
    if array.dtype != dtype or array.shape != shape:
        raise InvalidEntry(
            f"{path.name} holds {array.dtype} {array.shape}, expected "
            f"{np.dtype(dtype).name} {shape}"
        )
    if mmap:
        expected = array.offset + array.nbytes  # type: ignore[attr-defined]
        if path.stat().st_size != expected:
            raise InvalidEntry(f"{path.name} has {path.stat().st_size} bytes, not {expected}")
    return array


def in_memory(array: np.ndarray) -> np.ndarray:
    """A copy of a (memory-mapped) cache array in anonymous memory, read-only.

    For a long-running process: the kernel backs anonymous memory with huge pages, which a file
    mapping does not get, so a matrix-vector product over the copy is about 15% faster here.
    The mapped pages the copy read are dropped from this process's resident set afterwards
    (they stay in the page cache), so the matrix is not counted twice."""
    copy = np.array(array, order="C")
    copy.flags.writeable = False
    mapping = getattr(array, "_mmap", None)  # numpy's memmap keeps its mmap.mmap here
    with contextlib.suppress(AttributeError, OSError, ValueError):
        import mmap

        mapping.madvise(mmap.MADV_DONTNEED)  # type: ignore[union-attr]
    return copy
