"""The life of an entry for a query: its folder, freshness against the source, validation, the
build under the per-model lock (``build.py``), and the re-check after it.

An entry becomes visible only by ``rename`` of a complete folder, so a reader sees a whole
entry or none. Anything that fails validation is reported and rebuilt, never used. Leftovers of
a killed process (``.tmp-``/``.trash-``) are deleted by the next load or build of that model; a
user's own files in the root are never touched (``layout.is_entry_folder``).

Symbolic links inside the root are never followed: an entry folder or an entry file that is a
link fails validation (a linked folder is replaced as a link, its target untouched), a scratch
or trash link is unlinked, and a linked ``.locks`` is an error. The root itself may be a link.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import CacheError
from ..reporting import Report, info, warning
from ..sources.models import ModelSource, local_fingerprint
from . import files
from .build import build_entry
from .layout import (
    FORMAT_VERSION,
    INDEX,
    MATRIX,
    META,
    NORMS,
    TOKENIZER,
    InvalidEntry,
    MissingEntry,
    entry_folder_name,
    entry_identity,
)
from .locks import build_lock, sweep_scratch

if TYPE_CHECKING:
    from ..tokens.codec import TokenCodec

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
    check_real(folder)
    meta = read_meta(folder)
    rows, dim = meta["vocab_size"], meta["dim"]
    unit = files.load_array(folder / MATRIX, (rows, dim), mmap=True)
    norms = files.load_array(folder / NORMS, (rows,), mmap=False)
    return meta, unit, norms


def check_real(folder: Path) -> None:
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
            build_entry(source, root, folder.name, report, embeddings)
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


def quantization_of(meta: dict[str, Any]) -> str | None:
    """The storage type of the entry's tensor, for a GGUF file (None otherwise)."""
    types = meta.get("quantization")
    if not isinstance(types, dict):
        return None
    kinds = sorted({v for v in types.values() if isinstance(v, str)})
    return "/".join(kinds) or None
