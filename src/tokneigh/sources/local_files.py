"""Opening a model's local files when any path may name something else: only a regular file
is read. A FIFO would block the first read forever (or the open itself), a device can stream
without end, a folder cannot be read at all; each is refused in one line saying what it is.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from ..errors import ModelNotFoundError

_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


class NotAFile(ModelNotFoundError):
    """A path that names something other than a regular file."""

    def __init__(self, path: Path, kind: str) -> None:
        self.path, self.kind = path, kind
        super().__init__(f"{path} is {kind}, not a file")


def kind_of(mode: int) -> str | None:
    """What a file mode names ("a folder", "a FIFO (named pipe)", ...), None for a file."""
    if stat.S_ISREG(mode):
        return None
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def check_regular(path: Path) -> None:
    """Raise NotAFile unless ``path`` (symlinks followed) is a regular file; OSError (such as
    FileNotFoundError) when it cannot be looked up."""
    kind = kind_of(os.stat(path).st_mode)
    if kind is not None:
        raise NotAFile(path, kind)


def regular_or_none(path: Path) -> Path | None:
    """``path`` if it is a regular file, None if nothing can be looked up there (as
    ``Path.is_file`` says), NotAFile if it is something else: a folder or a FIFO named like a
    file a reader wants is refused, not taken for a missing file."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    kind = kind_of(mode)
    if kind is not None:
        raise NotAFile(path, kind)
    return path


def check_no_special_files(folder: Path) -> None:
    """Raise NotAFile for the first FIFO, socket or device (symlinks followed) in ``folder``:
    none belongs in a model's folder, and a library handed the folder (transformers) may open
    any file in it by name, where a FIFO blocks for ever. Subfolders are left alone."""
    with os.scandir(folder) as scan:
        for entry in sorted(scan, key=lambda e: e.name):
            try:
                kind = kind_of(entry.stat().st_mode)
            except OSError:  # a broken symlink: nothing any reader could open
                continue
            if kind not in (None, "a folder"):
                raise NotAFile(folder / entry.name, kind)


def read_regular(path: Path) -> bytes:
    """The whole of ``path``, read as ``open_regular`` opens it."""
    with open_regular(path) as handle:
        return handle.read()


def open_regular(path: Path, buffering: int = -1) -> BinaryIO:
    """``path`` opened for reading if it is a regular file, else NotAFile; OSError when it
    cannot be opened. Looked up first (a device is never opened), then opened without
    blocking and checked again on the open descriptor: a FIFO put in its place in between
    is refused, not waited on."""
    check_regular(path)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        kind = kind_of(os.fstat(fd).st_mode)
        if kind is not None:
            raise NotAFile(path, kind)
        os.set_blocking(fd, True)  # (no effect on a regular file; plain reads from here)
        return os.fdopen(fd, "rb", buffering=buffering)
    except BaseException:
        os.close(fd)
        raise
