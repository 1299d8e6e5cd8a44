"""Building an entry: extract the matrix from the checkpoint (``formats``), normalize its rows
(``space.core``), and write every file in a scratch folder that is renamed into place whole
(call under ``locks.build_lock``)."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CacheError
from ..reporting import Report, note, warning
from ..sources.models import ModelSource
from ..version import __version__
from . import files
from .layout import ENTRY_NAME, FORMAT_VERSION, MATRIX, META, NORMS, TOKENIZER


def build_entry(
    source: ModelSource, root: Path, name: str, report: Report, embeddings: str
) -> None:
    """Extract, normalize and write the entry ``name`` under ``root``."""
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


def _unusable_summary(non_finite: list[int], zero: list[int]) -> str:
    parts = []
    for ids, what in ((non_finite, "NaN or infinite values"), (zero, "only zeros")):
        if ids:
            shown = ", ".join(map(str, ids[:5])) + (", ..." if len(ids) > 5 else "")
            parts.append(f"{len(ids):,} {'hold' if len(ids) > 1 else 'holds'} {what} ({shown})")
    rows = len(non_finite) + len(zero)
    noun = "row" if rows == 1 else "rows"
    return f"{rows:,} {noun} of the embedding matrix have no direction: " + "; ".join(parts)


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


def _write_arrays(folder: Path, unit: np.ndarray, norms: np.ndarray) -> None:
    files.fsync_write(folder / MATRIX, array=np.ascontiguousarray(unit, dtype=np.float32))
    files.fsync_write(folder / NORMS, array=np.ascontiguousarray(norms, dtype=np.float32))


def write_entry(
    root: Path,
    name: str,
    unit: np.ndarray,
    norms: np.ndarray,
    tokenizer_json: str,
    meta: dict[str, Any],
) -> Path:
    """Write a complete entry beside the root, then rename it into place (call under build_lock)."""
    match = ENTRY_NAME.match(name)
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
        files.fsync_write(scratch / TOKENIZER, tokenizer_bytes)
        _write_index(scratch, meta)  # the index built above: only written here
        # meta.json last: an entry is only ever complete with it.
        files.fsync_write(scratch / META, json.dumps(meta, indent=2).encode("utf-8"))
        if os.path.lexists(final):
            trash = root / f".trash-{key}-{uuid.uuid4().hex}"
            os.rename(final, trash)
        os.rename(scratch, final)
        files.fsync_dir(root)
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
        files.remove_tree(trash)
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
