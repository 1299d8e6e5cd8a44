"""Building an entry: extract the matrix from the checkpoint (``formats``), normalize its rows
(``space.core``) as they stream into the entry (``unit_rows``), and write every file in a
scratch folder that is renamed into place whole (call under ``locks.build_lock``)."""

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
from .layout import ENTRY_NAME, FORMAT_VERSION, META, TOKENIZER

TYPE_CHECKING = False
if TYPE_CHECKING:  # at run time, loaded by the build alone: a cached query never needs them
    from ..formats.rows import RowBlocks
    from .unit_rows import Streamed


def build_entry(
    source: ModelSource, root: Path, name: str, report: Report, embeddings: str
) -> None:
    """Extract, normalize and write the entry ``name`` under ``root``: the matrix streams from
    the checkpoint into the entry a block of rows at a time (``unit_rows``)."""
    from ..formats.extract import extract

    extracted = extract(source, report, embeddings)
    meta = build_meta(source, extracted, embeddings)
    write_entry(root, name, extracted.rows, extracted.tokenizer_json, meta, report)


def _say_unusable(streamed: Streamed, report: Report) -> None:
    if streamed.non_finite or streamed.zero:
        # NaN or infinite values mean a damaged checkpoint; zero rows are common (never
        # trained, or padding): a note.
        say = warning if streamed.non_finite else note
        summary = _unusable_summary(streamed.non_finite, streamed.zero)
        report(say(f"{summary}; no ranking lists them"))


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


def build_meta(source: ModelSource, extracted: Any, embeddings: str) -> dict[str, Any]:
    """meta.json of a new entry (the schema that ``read_meta`` checks), as known before the
    rows are read: ``record_pass`` fills in what the pass over them finds."""
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
        "vocab_size": int(extracted.rows.shape[0]),
        "dim": int(extracted.rows.shape[1]),
        "tokenizer_size": _tokenizer_size(extracted),
        "token_style": detect_style(json.loads(tokenizer_json)),
        "special_ids": extracted.special_ids,
        "zero_rows": 0,  # these two: record_pass
        # Rows with no direction, never ranked or listed: NaN/Inf values, or all zero.
        "unusable_rows": {"non_finite": [], "zero": []},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def record_pass(meta: dict[str, Any], streamed: Streamed) -> None:
    """What the pass over the rows found, into ``meta`` (its keys keep their order)."""
    meta["fingerprint"]["matrix_sha256"] = streamed.sha256
    meta["zero_rows"] = int(np.count_nonzero(streamed.norms == 0))
    meta["unusable_rows"] = {"non_finite": streamed.non_finite, "zero": streamed.zero}


def write_entry(
    root: Path,
    name: str,
    rows: RowBlocks,
    tokenizer_json: str,
    meta: dict[str, Any],
    report: Report,
) -> Path:
    """Write a complete entry beside the root, then rename it into place (call under build_lock).
    The rows are read here, streamed into matrix.npy; ``meta`` is completed by that pass."""
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

        from .unit_rows import write_unit_rows

        tokenizer_bytes = tokenizer_json.encode("utf-8", "surrogatepass")
        # The rows stream to disk on a thread (reads, numpy, writes and fsync release the GIL)
        # while this one builds the tokenizer index in memory, which is CPU work: a first use
        # is 0.3 s shorter for GPT-2. This thread writes no file meanwhile, so the files still
        # appear one at a time in a fixed order (matrix, norms, tokenizer, index, meta).
        with ThreadPoolExecutor(1, thread_name_prefix="tokneigh-write") as writer:
            arrays = writer.submit(write_unit_rows, scratch, rows)
            _prepare_index(tokenizer_bytes, meta)
            streamed = arrays.result()  # raises what the thread raised
        _say_unusable(streamed, report)
        record_pass(meta, streamed)
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
