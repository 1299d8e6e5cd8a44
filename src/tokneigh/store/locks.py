"""The per-model lock that makes concurrent first uses extract a matrix once, and the sweep of
what a killed build left behind. Symbolic links are never followed: a linked ``.locks`` is an
error, a linked scratch folder is unlinked."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

from ..errors import CacheError
from .files import remove_tree
from .layout import SCRATCH_NAME, entry_key


def _ensure_writable_root(root: Path) -> None:
    try:
        root.mkdir(parents=True, exist_ok=True)
        if (root / ".locks").is_symlink():  # the lock files would go wherever it points
            raise CacheError(
                f"the lock folder {root / '.locks'} is a symbolic link; the cache never "
                "follows one"
            )
        (root / ".locks").mkdir(exist_ok=True)
        probe = root / f".probe-{uuid.uuid4().hex}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        link = _broken_link(root)
        if link == root:
            raise CacheError(
                f"the cache folder {root} is a broken symbolic link (to {os.readlink(root)})"
            ) from exc
        if link is not None:
            raise CacheError(
                f"the cache folder {root} is under a broken symbolic link ({link})"
            ) from exc
        raise CacheError(
            f"cannot write to the cache folder {root} ({exc.strerror or exc})"
        ) from exc


def _broken_link(path: Path) -> Path | None:
    """``path`` or the first of its parents that is a symbolic link to nothing, if any."""
    for candidate in (path, *path.parents):
        if candidate.is_symlink() and not candidate.exists():
            return candidate
    return None


@contextlib.contextmanager
def build_lock(root: Path, identity: str) -> Iterator[None]:
    """Hold the per-model lock: concurrent first uses extract the matrix once."""
    from filelock import FileLock

    _ensure_writable_root(root)
    lock = FileLock(str(root / ".locks" / f"{entry_key(identity)}.lock"))
    try:
        lock.acquire()
    except OSError as exc:
        raise CacheError(f"cannot lock the cache folder {root} ({exc.strerror or exc})") from exc
    try:
        remove_scratch(root, entry_key(identity))
        yield
    finally:
        lock.release()


@contextlib.contextmanager
def key_lock(root: Path, key: str, timeout: float = -1) -> Iterator[None]:
    from filelock import FileLock

    _ensure_writable_root(root)
    with FileLock(str(root / ".locks" / f"{key}.lock"), timeout=timeout):
        yield


def remove_scratch(root: Path, key: str) -> None:
    # Under the lock, any scratch folder for this key is left over from a killed build.
    for child in root.iterdir():
        match = SCRATCH_NAME.match(child.name)
        if match and match.group(2) == key:
            remove_tree(child)


def sweep_scratch(root: Path, identity: str) -> None:
    """Remove this entry's scratch folders left by a killed process, unless a build is running.

    Costs one directory listing when there is nothing to do, so every load can afford it.
    """
    key = entry_key(identity)
    try:
        stale = any(
            (match := SCRATCH_NAME.match(child.name)) and match.group(2) == key
            for child in root.iterdir()
        )
    except OSError:
        return
    if not stale or (root / ".locks").is_symlink():  # (a link: never followed, see build_lock)
        return
    from filelock import FileLock, Timeout

    try:
        with FileLock(str(root / ".locks" / f"{key}.lock"), timeout=0):
            remove_scratch(root, key)
    except (Timeout, OSError):
        pass  # a build holds the lock (the folder may be its own), or the root is read-only
