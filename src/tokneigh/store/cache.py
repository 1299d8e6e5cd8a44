"""The cache store: the one owner of cache entries, end to end.

An entry is one folder per (model, matrix) under the cache root::

    <slug>--<key>/matrix.npy       L2-row-normalized float32 matrix (memory-mapped on load)
                  norms.npy        raw row norms, float32
                  tokenizer.json   the model's tokenizer, padding and truncation removed
                  tokenizer.index  derived from tokenizer.json, for a fast start (tokindex.py)
                  meta.json        format version, model, fingerprint, vocab size, dim, ...
    .locks/<key>.lock              held while an entry is built or cleared (one at a time)
    .tmp-<key>-*/                  an entry being written; renamed into place when complete
    .trash-<key>-*/                an old entry moved aside by a rebuild or a clear, then deleted

``get`` is the whole life of an entry for a query: its name, freshness against the source,
validation, the build under the per-model lock (everything, the tokenizer index included, is
written in the scratch folder before the rename), and the re-check after it. Leftovers of a
killed process (``.tmp-``/``.trash-``) are deleted by the next load or build of that model; a
user's own files in the root are never touched (see ``is_entry_folder``).

An entry becomes visible only by ``rename`` of a complete folder, so a reader sees a whole
entry or none. Anything that fails validation is reported and rebuilt, never used.

Symbolic links inside the root are never followed: an entry folder or an entry file that is a
link fails validation (a linked folder is replaced as a link, its target untouched), a scratch
or trash link is unlinked, and a linked ``.locks`` is an error. The root itself may be a link.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import stat
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import CacheError, UsageError
from ..reporting import Report, info, note, warning
from ..results import CachedModel
from ..sources.models import ModelSource, local_fingerprint
from ..version import __version__

if TYPE_CHECKING:
    from ..tokens.codec import TokenCodec

try:  # CPython's own SHA-256, hashlib's digest without loading OpenSSL (~5 ms per query)
    from _sha256 import sha256 as _sha256  # type: ignore[import-not-found]  # Python <= 3.11
except ImportError:  # pragma: no cover - depends on the Python version
    try:
        from _sha2 import sha256 as _sha256  # type: ignore[import-not-found]  # Python >= 3.12
    except ImportError:
        from hashlib import sha256 as _sha256

# 2: norms in float64, and meta.json lists the unusable rows (NaN, infinite or zero), which
# version 1 entries may have cached as NaN: they are rebuilt.
FORMAT_VERSION = 2
MATRIX = "matrix.npy"
NORMS = "norms.npy"
TOKENIZER = "tokenizer.json"
INDEX = "tokenizer.index"
META = "meta.json"
EMBEDDINGS_KINDS = ("input", "output")
_ENTRY_NAME = re.compile(r"^[A-Za-z0-9._-]+--([0-9a-f]{16})$")
# What an entry folder may hold: its own files, and the hidden scratch file of a tokenizer index
# being refreshed (after an upgrade of the tokenizers library, say).
_ENTRY_FILES = frozenset({MATRIX, NORMS, TOKENIZER, META, INDEX})
_ENTRY_SCRATCH_FILE = re.compile(r"^\.[A-Za-z0-9._-]+\.[0-9a-f]{32}\.tmp$")
# What a metric or the all-pairs pass derives from the matrix, computed on first need and kept
# beside it (``load_derived``/``save_derived``): gone with the entry when it is rebuilt.
_DERIVED_FILE = re.compile(r"^(metric|graph)-[A-Za-z0-9._-]+\.(npy|npz)$")
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
    "unusable_rows": dict,
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


def entry_identity(source: ModelSource, embeddings: str = "input") -> str:
    """The cache identity of one of a model's matrices. The input matrix keeps the model's plain
    identity, so entries built before output matrices existed keep their names."""
    return source.identity if embeddings == "input" else f"{source.identity}#{embeddings}"


def entry_folder_name(source: ModelSource, embeddings: str = "input") -> str:
    """The cache folder name of one of a model's matrices (``<slug>-output--<key>``)."""
    if embeddings == "input":
        return entry_name(source.identity, source.name)
    return entry_name(entry_identity(source, embeddings), f"{source.name}-{embeddings}")


@dataclass
class Entry:
    """A validated, fresh cache entry, ready for queries."""

    path: Path
    meta: dict[str, Any]
    unit: np.ndarray  # memory-mapped, read-only
    norms: np.ndarray
    codec: TokenCodec
    built_seconds: float | None = None  # set when this call built the entry

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
    rows = meta["unusable_rows"]
    if not all(
        isinstance(rows.get(kind), list)
        and all(type(i) is int and 0 <= i < meta["vocab_size"] for i in rows[kind])
        for kind in ("non_finite", "zero")
    ):
        raise InvalidEntry("meta.json field 'unusable_rows' is malformed")
    return meta


def _open_files(folder: Path) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """An entry's checked meta and arrays; raises MissingEntry or InvalidEntry."""
    _check_real(folder)
    meta = read_meta(folder)
    rows, dim = meta["vocab_size"], meta["dim"]
    unit = _load_array(folder / MATRIX, (rows, dim), mmap=True)
    norms = _load_array(folder / NORMS, (rows,), mmap=False)
    return meta, unit, norms


def _check_real(folder: Path) -> None:
    """The entry folder and its files are what they seem: real, not symbolic links, which the
    cache never follows (an entry is read and written only inside its root). One ``lstat`` per
    file, no reads."""
    try:
        mode = os.lstat(folder).st_mode
    except FileNotFoundError:
        raise MissingEntry(f"its folder {folder} does not exist") from None
    except OSError as exc:
        raise InvalidEntry(f"its folder cannot be read ({exc.strerror or exc})") from exc
    if stat.S_ISLNK(mode):
        raise InvalidEntry("its folder is a symbolic link")
    if not stat.S_ISDIR(mode):
        raise InvalidEntry("its folder is not a folder")
    for name in (META, MATRIX, NORMS, TOKENIZER, INDEX):
        if os.path.islink(folder / name):
            raise InvalidEntry(f"{name} is a symbolic link")


def check_entry(folder: Path) -> dict[str, Any]:
    """Validate an entry's files and tokenizer (not its freshness); its meta, or InvalidEntry."""
    from ..tokens.codec import TokenCodec

    meta, _, _ = _open_files(folder)
    try:
        codec = TokenCodec(folder / TOKENIZER, meta["token_style"], meta["special_ids"])
    except Exception as exc:
        raise InvalidEntry(
            f"tokenizer.json is missing or damaged ({exc.__class__.__name__})"
        ) from exc
    if codec.size != meta["tokenizer_size"]:
        raise InvalidEntry("tokenizer.json does not match the cached matrix")
    return meta


def open_tokenizer(source: ModelSource, root: Path) -> TokenCodec | None:
    """The tokenizer of a fresh input entry for ``source``, or None when there is none (a
    command that needs only the tokenizer must not extract the matrix for it)."""
    try:
        return _open_fresh(root / entry_folder_name(source), source).codec
    except InvalidEntry:
        return None


# --- the life of an entry ----------------------------------------------------------------------


def get(
    source: ModelSource,
    root: Path,
    embeddings: str = "input",
    *,
    rebuild: bool = False,
    report: Report,
) -> Entry:
    """The fresh entry for one of ``source``'s matrices, built (under the per-model lock) when
    it is missing, stale or damaged, or when ``rebuild`` asks for it.

    For ``embeddings="output"`` of a tied model this raises ``errors.TiedEmbeddings``
    before anything is built: the caller serves the input entry instead.
    """
    folder = root / entry_folder_name(source, embeddings)
    what = source.name if embeddings == "input" else f"{source.name} ({embeddings} embeddings)"
    if not rebuild:
        try:
            entry = _open_fresh(folder, source)
            sweep_scratch(root, entry_identity(source, embeddings))  # a killed build's leftovers
            return entry
        except MissingEntry:
            pass
        except InvalidEntry as exc:
            if os.path.lexists(folder):  # (else removed as it was read: simply missing)
                report(warning(f"the cache entry for {what} is unusable ({exc}); rebuilding it"))
    if embeddings != "input":
        from ..formats.extract import output_tensor

        # Tied or not is read from config.json and the tensor names, before any "building".
        output_tensor(source, report)
    with build_lock(root, entry_identity(source, embeddings)):
        if not rebuild:
            try:  # another process may have built it while we waited for the lock
                return _open_fresh(folder, source)
            except InvalidEntry:
                pass
        started = time.perf_counter()
        report(info(f"building the cache for {what}" + ("" if rebuild else " (first use)")))
        for attempt in (1, 2):
            _build(source, root, folder.name, report, embeddings)
            try:
                entry = _open_fresh(folder, source)
                break
            except MissingEntry as exc:  # removed by one that ignores the lock (rm, say)
                if attempt == 2:
                    raise CacheError(
                        f"the cache entry just built for {what} does not validate: {exc}; "
                        "another process removed it twice as it was built"
                    ) from exc
                report(
                    info(
                        f"the cache entry for {what} was removed as it was built; "
                        "building it again"
                    )
                )
            except InvalidEntry as exc:  # e.g. the checkpoint was rewritten during the build
                raise CacheError(
                    f"the cache entry just built for {what} does not validate: {exc}; "
                    "the checkpoint may have changed while it was read"
                ) from exc
    entry.built_seconds = time.perf_counter() - started
    return entry


def _open_fresh(folder: Path, source: ModelSource) -> Entry:
    """The entry in ``folder`` if whole and still matching the source; else InvalidEntry."""
    from ..tokens.codec import TokenCodec

    meta, unit, norms = _open_files(folder)
    if source.is_local:
        try:
            current = local_fingerprint(Path(source.location))
        except OSError as exc:
            raise InvalidEntry(f"the checkpoint cannot be read ({exc.strerror})") from exc
        if meta["fingerprint"].get("files") != current:
            raise InvalidEntry("the checkpoint changed since it was cached")
    try:
        codec = TokenCodec(folder / TOKENIZER, meta["token_style"], meta["special_ids"])
    except FileNotFoundError as exc:
        raise InvalidEntry("tokenizer.json is missing") from exc
    except Exception as exc:  # tokenizers raises a bare Exception on malformed JSON
        raise InvalidEntry("tokenizer.json is damaged") from exc
    if codec.size != meta["tokenizer_size"]:
        raise InvalidEntry("tokenizer.json does not match the cached matrix")
    if not codec.has_index:
        _refresh_index(folder, meta)
    return Entry(folder, meta, unit, norms, codec)


def _refresh_index(folder: Path, meta: dict[str, Any]) -> None:
    """Rewrite a missing or outdated tokenizer index (an entry from an older tokneigh, or a
    new ``tokenizers`` library) in place. The index is derived data and only speeds up later
    queries: in a read-only cache, or on any failure, the entry serves without it."""
    from ..tokens.codec import write_index

    if not os.access(folder, os.W_OK):
        return
    with contextlib.suppress(Exception):
        write_index(folder / TOKENIZER, meta["token_style"], meta["special_ids"])


def _tokenizer_size(extracted: Any) -> int:
    size = getattr(extracted, "tokenizer_size", None)
    if size is not None:
        return int(size)
    from tokenizers import Tokenizer

    return int(Tokenizer.from_str(extracted.tokenizer_json).get_vocab_size(with_added_tokens=True))


def build_meta(
    source: ModelSource,
    extracted: Any,
    unit: np.ndarray,
    norms: np.ndarray,
    embeddings: str,
    unusable: tuple[list[int], list[int]] = ([], []),
) -> dict[str, Any]:
    """meta.json of a new entry: the schema that ``read_meta`` checks."""
    from ..tokens.display import detect_style

    tokenizer_json = extracted.tokenizer_json
    return {
        "format_version": FORMAT_VERSION,
        "tokneigh_version": __version__,
        "model": source.name,
        "source": source.kind,
        "resolved": extracted.resolved,
        "tensor": extracted.tensor,
        "embeddings": embeddings,
        "fingerprint": extracted.fingerprint,
        # A GGUF file's storage type of the tensor read ({"token_embd.weight": "Q8_0"}).
        "quantization": dict(getattr(extracted, "quantization", None) or {}),
        "vocab_size": int(unit.shape[0]),
        "dim": int(unit.shape[1]),
        "tokenizer_size": _tokenizer_size(extracted),
        "token_style": detect_style(json.loads(tokenizer_json)),
        "special_ids": extracted.special_ids,
        "zero_rows": int(np.count_nonzero(norms == 0)),
        # Rows with no direction, never ranked or listed: NaN/Inf values, or all zero.
        "unusable_rows": {"non_finite": unusable[0], "zero": unusable[1]},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _unusable_summary(non_finite: list[int], zero: list[int]) -> str:
    parts = []
    for ids, what in ((non_finite, "NaN or infinite values"), (zero, "only zeros")):
        if ids:
            shown = ", ".join(map(str, ids[:5])) + (", ..." if len(ids) > 5 else "")
            parts.append(f"{len(ids):,} {'hold' if len(ids) > 1 else 'holds'} {what} ({shown})")
    rows = len(non_finite) + len(zero)
    noun = "row" if rows == 1 else "rows"
    return f"{rows:,} {noun} of the embedding matrix have no direction: " + "; ".join(parts)


def _build(source: ModelSource, root: Path, name: str, report: Report, embeddings: str) -> None:
    from ..formats.extract import extract
    from ..space.core import normalize_rows, unusable_rows

    extracted = extract(source, report, embeddings)
    unusable = unusable_rows(extracted.matrix)
    if unusable[0] or unusable[1]:
        # NaN or infinite values mean a damaged checkpoint; zero rows are common (never
        # trained, or padding): a note.
        say = warning if unusable[0] else note
        report(say(f"{_unusable_summary(*unusable)}; no ranking lists them"))
    unit, norms = normalize_rows(extracted.matrix)
    meta = build_meta(source, extracted, unit, norms, embeddings, unusable)
    write_entry(root, name, unit, norms, extracted.tokenizer_json, meta)


def _load_array(
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
    if not stale or (root / ".locks").is_symlink():  # (a link: never followed, see build_lock)
        return
    from filelock import FileLock, Timeout

    try:
        with FileLock(str(root / ".locks" / f"{key}.lock"), timeout=0):
            _remove_scratch(root, key)
    except (Timeout, OSError):
        pass  # a build holds the lock (the folder may be its own), or the root is read-only


def _remove_tree(path: Path) -> None:
    """Delete a scratch or trash folder. One that is a symbolic link (an entry folder that was
    a link, moved aside by a rebuild) or a file is unlinked: what a link points to is never
    touched, and rmtree does not follow the links inside a folder either."""
    if path.is_symlink() or not path.is_dir():
        with contextlib.suppress(OSError):
            path.unlink()
    else:
        shutil.rmtree(path, ignore_errors=True)


def is_entry_folder(path: Path) -> bool:
    """A real folder named like an entry that holds nothing but entry files: a user's own folder
    that merely looks like one is never listed or deleted."""
    if not _ENTRY_NAME.match(path.name) or path.is_symlink() or not path.is_dir():
        return False
    try:
        return all(
            (
                child.name in _ENTRY_FILES
                or _ENTRY_SCRATCH_FILE.match(child.name)
                or _DERIVED_FILE.match(child.name)
            )
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


def _write_arrays(folder: Path, unit: np.ndarray, norms: np.ndarray) -> None:
    _fsync_write(folder / MATRIX, array=np.ascontiguousarray(unit, dtype=np.float32))
    _fsync_write(folder / NORMS, array=np.ascontiguousarray(norms, dtype=np.float32))


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
        from concurrent.futures import ThreadPoolExecutor  # here: 7 ms a cached query never needs

        tokenizer_bytes = tokenizer_json.encode("utf-8", "surrogatepass")
        # The arrays go to disk on a thread (writes and fsync release the GIL) while this one
        # builds the tokenizer index in memory, which is CPU work: a first use is 0.3 s shorter
        # for GPT-2. This thread writes no file meanwhile, so the files still appear one at a
        # time in a fixed order (matrix, norms, tokenizer, index, meta).
        with ThreadPoolExecutor(1, thread_name_prefix="tokneigh-write") as writer:
            arrays = writer.submit(_write_arrays, scratch, unit, norms)
            _prepare_index(tokenizer_bytes, meta)
            arrays.result()  # raises what the thread raised
        _fsync_write(scratch / TOKENIZER, tokenizer_bytes)
        _write_index(scratch, meta)  # the index built above: only written here
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
        raise CacheError(f"cannot write the cache entry in {root}: {reason}") from exc
    if trash is not None:
        _remove_tree(trash)
    return final


def _prepare_index(tokenizer_bytes: bytes, meta: dict[str, Any]) -> None:
    """Build the index ``_write_index`` will write (kept by ``tokens.build_index``)."""
    from ..tokens.codec import build_index

    with contextlib.suppress(Exception):  # _write_index meets the same failure and decides
        build_index(tokenizer_bytes, meta["token_style"], meta["special_ids"])


def _write_index(folder: Path, meta: dict[str, Any]) -> None:
    from ..tokens.codec import write_index

    try:
        write_index(folder / TOKENIZER, meta["token_style"], meta["special_ids"])
    except OSError:
        raise  # a full disk is the entry's failure, not the index's
    except Exception:  # the index only speeds queries up: an entry without one still serves
        pass


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# --- what is derived from an entry's matrix ------------------------------------------------


def load_derived_array(
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
        array = _load_array(path, shape, mmap=True, dtype=dtype)
        if dtype == np.float64 and not np.isfinite(array).all():
            raise InvalidEntry(f"{name} holds NaN or infinite values")
        return array
    except InvalidEntry as exc:
        report(warning(f"the cached {exc}; computing it again"))
        return None


def load_derived_arrays(
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


def save_derived(
    entry: Entry, name: str, arrays: np.ndarray | dict[str, np.ndarray], report: Report
) -> None:
    """Keep a derived array (``.npy``) or set of arrays (``.npz``) in the entry folder:
    written beside it and renamed into place under the entry's lock, and only while the
    folder still holds the entry it was computed from (a rebuild may have replaced it).
    A cache that cannot be written costs a note, not the answer."""
    if not _DERIVED_FILE.match(name):
        raise ValueError(f"not a derived file name: {name}")
    match = _ENTRY_NAME.match(entry.path.name)
    if match is None:
        return
    root = entry.path.parent
    try:
        with _key_lock(root, match.group(1)):
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


def _is_link(path: Path) -> bool:
    return os.path.islink(path)


def list_entries(root: Path) -> list[CachedModel]:
    """Each tokneigh entry in the root (``model`` None for a damaged one)."""
    if not root.is_dir():
        return []
    found = []
    for child in sorted(root.iterdir()):
        if is_entry_folder(child):
            try:
                _check_real(child)  # a linked file is not read: the entry shows as damaged
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


def quantization_of(meta: dict[str, Any]) -> str | None:
    """The storage type of the entry's tensor, for a GGUF file (None otherwise)."""
    types = meta.get("quantization")
    if not isinstance(types, dict):
        return None
    kinds = sorted({v for v in types.values() if isinstance(v, str)})
    return "/".join(kinds) or None


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
        match = _ENTRY_NAME.match(folder.name)
        if match is None or folder.parent != root:
            continue
        with _key_lock(root, match.group(1)):
            if remove_entry(root, folder.name):
                removed.append(entry)
    return removed


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
            "cache folder"
        ) from exc
    _remove_tree(trash)
    return True


def clear_all(root: Path) -> list[CachedModel]:
    """Remove every tokneigh entry, and the scratch folders of builds no longer running; leave
    anything else in the root alone."""
    if not root.is_dir():
        return []
    removed = remove_entries(root, list_entries(root))
    keys = set()
    for child in root.iterdir():
        match = _SCRATCH_NAME.match(child.name)
        if match and (child.is_symlink() or child.is_dir()):  # a link is removed as a link
            keys.add(match.group(2))
    for key in keys:
        from filelock import Timeout

        try:
            with _key_lock(root, key, timeout=0):
                _remove_scratch(root, key)
        except (Timeout, OSError):
            pass  # a build holds the lock: its scratch folder is in use
    return removed


@contextlib.contextmanager
def _key_lock(root: Path, key: str, timeout: float = -1) -> Iterator[None]:
    from filelock import FileLock

    _ensure_writable_root(root)
    with FileLock(str(root / ".locks" / f"{key}.lock"), timeout=timeout):
        yield
