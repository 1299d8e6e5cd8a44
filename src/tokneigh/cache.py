"""The on-disk cache: one folder per model, written atomically, validated on every load.

Layout under the cache root::

    <slug>--<key>/matrix.npy      L2-row-normalized float32 matrix (memory-mapped on load)
                  norms.npy       raw row norms, float32
                  tokenizer.json  the model's tokenizer, padding and truncation removed
                  meta.json       format version, model, fingerprint, vocab size, dim, ...
    .locks/<key>.lock             held while an entry is built (one builder per model)
    .tmp-<key>-*/                 an entry being written; renamed into place when complete
    .trash-<key>-*/               an old entry moved aside by a rebuild, then deleted

Leftovers of a killed process (``.tmp-``/``.trash-``) are deleted by the next load or build of
that model; a user's own files in the root are never touched (see ``is_entry_folder``).

An entry becomes visible only by ``rename`` of a complete folder, so a reader sees a whole
entry or none. Anything that fails validation is reported and rebuilt, never used.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import CacheError

try:  # CPython's own SHA-256, hashlib's digest without loading OpenSSL (~5 ms per query)
    from _sha256 import sha256 as _sha256  # Python <= 3.11
except ImportError:  # pragma: no cover - depends on the Python version
    try:
        from _sha2 import sha256 as _sha256  # Python >= 3.12
    except ImportError:
        from hashlib import sha256 as _sha256

FORMAT_VERSION = 1
MATRIX = "matrix.npy"
NORMS = "norms.npy"
TOKENIZER = "tokenizer.json"
META = "meta.json"
_ENTRY_NAME = re.compile(r"^[A-Za-z0-9._-]+--([0-9a-f]{16})$")
# What an entry folder may hold: its own files, plus files derived from them later (the
# tokenizer index of tokens._tokindex, and that module's hidden scratch file while it writes).
_ENTRY_FILES = frozenset({MATRIX, NORMS, TOKENIZER, META, "tokenizer.index"})
_ENTRY_SCRATCH_FILE = re.compile(r"^\.[A-Za-z0-9._-]+\.[0-9a-f]{32}\.tmp$")
_SCRATCH_NAME = re.compile(r"^\.(tmp|trash)-([0-9a-f]{16})-[0-9a-f-]+$")
_REQUIRED_META = {
    "format_version": int,
    "model": str,
    "source": str,
    "vocab_size": int,
    "dim": int,
    "token_style": str,
    "special_ids": list,
    "tokenizer_size": int,
    "fingerprint": dict,
}


class InvalidEntry(Exception):
    """A cache entry that must not be used; the message says why."""


class MissingEntry(InvalidEntry):
    """No entry at all: the normal first-use case, not worth a warning."""


def default_root() -> Path:
    """``$TOKNEIGH_CACHE_DIR``, else the platform cache folder (``~/.cache/tokneigh`` on Linux)."""
    env = os.environ.get("TOKNEIGH_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("tokneigh", appauthor=False))


def resolve_root(cache_dir: str | os.PathLike[str] | None) -> Path:
    return Path(cache_dir).expanduser() if cache_dir else default_root()


def entry_key(identity: str) -> str:
    # surrogatepass: a folder name with undecodable bytes arrives as lone surrogates.
    return _sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def entry_name(identity: str, display: str) -> str:
    """A folder name that cannot leave the cache root, whatever the model name holds."""
    slug = re.sub(r"[^A-Za-z0-9._]+", "-", display.rsplit("/", 1)[-1])
    slug = re.sub(r"\.{2,}", ".", slug).strip(".-")[:48] or "model"
    return f"{slug}--{entry_key(identity)}"


@dataclass
class Entry:
    """A validated cache entry, ready for queries."""

    path: Path
    meta: dict[str, Any]
    unit: np.ndarray  # memory-mapped, read-only
    norms: np.ndarray

    @property
    def tokenizer_path(self) -> Path:
        return self.path / TOKENIZER


def read_meta(folder: Path) -> dict[str, Any]:
    """An entry's meta.json, checked for the keys and types this version needs."""
    try:
        meta = json.loads((folder / META).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InvalidEntry("meta.json is missing") from exc
    except (OSError, ValueError, RecursionError) as exc:  # RecursionError: absurd nesting
        raise InvalidEntry(f"meta.json is unreadable ({exc.__class__.__name__})") from exc
    if not isinstance(meta, dict):
        raise InvalidEntry("meta.json is not an object")
    if meta.get("format_version") != FORMAT_VERSION:
        raise InvalidEntry(f"format version {meta.get('format_version')!r} != {FORMAT_VERSION}")
    for key, kind in _REQUIRED_META.items():
        if not isinstance(meta.get(key), kind):
            raise InvalidEntry(f"meta.json field {key!r} is missing or malformed")
    if meta["vocab_size"] < 1 or meta["dim"] < 1:
        raise InvalidEntry("meta.json gives an empty matrix")
    return meta


def open_entry(folder: Path) -> Entry:
    """Open and validate an entry; raises MissingEntry or InvalidEntry, never returns a bad one."""
    if not folder.is_dir():
        raise MissingEntry(str(folder))
    meta = read_meta(folder)
    rows, dim = meta["vocab_size"], meta["dim"]
    unit = _load_array(folder / MATRIX, (rows, dim), mmap=True)
    norms = _load_array(folder / NORMS, (rows,), mmap=False)
    if not (folder / TOKENIZER).is_file():
        raise InvalidEntry("tokenizer.json is missing")
    return Entry(folder, meta, unit, norms)


def _load_array(path: Path, shape: tuple[int, ...], mmap: bool) -> np.ndarray:
    try:
        # allow_pickle stays False: a cache file can never execute code.
        array = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except FileNotFoundError as exc:
        raise InvalidEntry(f"{path.name} is missing") from exc
    except (OSError, ValueError, EOFError) as exc:
        raise InvalidEntry(f"{path.name} is truncated or unreadable") from exc
    if array.dtype != np.float32 or array.shape != shape:
        raise InvalidEntry(
            f"{path.name} holds {array.dtype} {array.shape}, expected float32 {shape}"
        )
    if mmap:
        expected = array.offset + array.nbytes  # type: ignore[attr-defined]
        if path.stat().st_size != expected:
            raise InvalidEntry(f"{path.name} has {path.stat().st_size} bytes, not {expected}")
    return array


def _ensure_writable_root(root: Path) -> None:
    try:
        root.mkdir(parents=True, exist_ok=True)
        (root / ".locks").mkdir(exist_ok=True)
        probe = root / f".probe-{uuid.uuid4().hex}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise CacheError(
            f"cannot write to the cache folder {root} ({exc.strerror or exc}); choose another "
            "with --cache-dir or TOKNEIGH_CACHE_DIR"
        ) from exc


@contextlib.contextmanager
def build_lock(root: Path, identity: str) -> Iterator[None]:
    """Hold the per-model lock: concurrent first uses extract the matrix once."""
    from filelock import FileLock

    _ensure_writable_root(root)
    lock = FileLock(str(root / ".locks" / f"{entry_key(identity)}.lock"))
    try:
        lock.acquire()
    except OSError as exc:
        raise CacheError(
            f"cannot lock the cache folder {root} ({exc.strerror or exc}); choose another with "
            "--cache-dir or TOKNEIGH_CACHE_DIR"
        ) from exc
    try:
        _remove_scratch(root, entry_key(identity))
        yield
    finally:
        lock.release()


def _remove_scratch(root: Path, key: str) -> None:
    # Under the lock, any scratch folder for this key is left over from a killed build.
    for child in root.iterdir():
        match = _SCRATCH_NAME.match(child.name)
        if match and match.group(2) == key:
            _remove_tree(child)


def sweep_scratch(root: Path, identity: str) -> None:
    """Remove this entry's scratch folders left by a killed process, unless a build is running.

    Costs one directory listing when there is nothing to do, so every load can afford it.
    """
    key = entry_key(identity)
    try:
        stale = any(
            (match := _SCRATCH_NAME.match(child.name)) and match.group(2) == key
            for child in root.iterdir()
        )
    except OSError:
        return
    if not stale:
        return
    from filelock import FileLock, Timeout

    try:
        with FileLock(str(root / ".locks" / f"{key}.lock"), timeout=0):
            _remove_scratch(root, key)
    except (Timeout, OSError):
        pass  # a build holds the lock (the folder may be its own), or the root is read-only


def _remove_tree(path: Path) -> None:
    """Delete a folder tokneigh made; a symlink (never made by tokneigh) is left alone."""
    if not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)


def is_entry_folder(path: Path) -> bool:
    """A real folder named like an entry that holds nothing but entry files: a user's own folder
    that merely looks like one is never listed or deleted."""
    if not _ENTRY_NAME.match(path.name) or path.is_symlink() or not path.is_dir():
        return False
    try:
        return all(
            (child.name in _ENTRY_FILES or _ENTRY_SCRATCH_FILE.match(child.name))
            and not child.is_dir()
            for child in path.iterdir()
        )
    except OSError:
        return False


def _fsync_write(path: Path, data: bytes | None = None, array: np.ndarray | None = None) -> None:
    with open(path, "wb") as handle:
        if array is not None:
            np.save(handle, array, allow_pickle=False)
        else:
            handle.write(data or b"")
        handle.flush()
        os.fsync(handle.fileno())


def write_entry(
    root: Path,
    name: str,
    unit: np.ndarray,
    norms: np.ndarray,
    tokenizer_json: str,
    meta: dict[str, Any],
) -> Path:
    """Write a complete entry beside the root, then rename it into place (call under build_lock)."""
    match = _ENTRY_NAME.match(name)
    if not match:
        raise ValueError(f"not an entry name: {name}")
    key = match.group(1)
    final = root / name
    scratch = root / f".tmp-{key}-{uuid.uuid4().hex}"
    trash: Path | None = None
    try:
        scratch.mkdir()
        _fsync_write(scratch / MATRIX, array=np.ascontiguousarray(unit, dtype=np.float32))
        _fsync_write(scratch / NORMS, array=np.ascontiguousarray(norms, dtype=np.float32))
        _fsync_write(scratch / TOKENIZER, tokenizer_json.encode("utf-8", "surrogatepass"))
        # meta.json last: an entry is only ever complete with it.
        _fsync_write(scratch / META, json.dumps(meta, indent=2).encode("utf-8"))
        if os.path.lexists(final):
            trash = root / f".trash-{key}-{uuid.uuid4().hex}"
            os.rename(final, trash)
        os.rename(scratch, final)
        _fsync_dir(root)
    except BaseException as exc:
        if trash is not None and not os.path.lexists(final) and os.path.lexists(trash):
            # The new entry did not make it: put the old one back, a failed rebuild loses nothing.
            with contextlib.suppress(OSError):
                os.rename(trash, final)
        shutil.rmtree(scratch, ignore_errors=True)
        if not isinstance(exc, OSError):
            raise
        reason = "the disk is full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
        raise CacheError(
            f"cannot write the cache entry in {root}: {reason}; free space or choose another "
            "folder with --cache-dir or TOKNEIGH_CACHE_DIR"
        ) from exc
    if trash is not None:
        _remove_tree(trash)
    return final


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def list_entries(root: Path) -> list[tuple[Path, dict[str, Any] | None, int]]:
    """(folder, meta or None when invalid, bytes on disk) for each tokneigh entry in the root."""
    if not root.is_dir():
        return []
    found = []
    for child in sorted(root.iterdir()):
        if is_entry_folder(child):
            try:
                meta: dict[str, Any] | None = read_meta(child)
            except InvalidEntry:
                meta = None
            try:
                size = sum(f.stat().st_size for f in child.iterdir() if f.is_file())
            except OSError:  # removed by another process while we looked
                continue
            found.append((child, meta, size))
    return found


def remove_entry(root: Path, name: str) -> bool:
    """Delete one entry folder (only a folder named like a tokneigh entry)."""
    match = _ENTRY_NAME.match(name)
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
            "cache folder (--cache-dir or TOKNEIGH_CACHE_DIR)"
        ) from exc
    _remove_tree(trash)
    return True


def clear_all(root: Path) -> int:
    """Remove every tokneigh entry and scratch folder; leave anything else in the root alone."""
    removed = 0
    if not root.is_dir():
        return removed
    for child in root.iterdir():
        if is_entry_folder(child):
            removed += remove_entry(root, child.name)
        elif _SCRATCH_NAME.match(child.name) and child.is_dir():
            _remove_tree(child)
    return removed
