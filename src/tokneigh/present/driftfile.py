"""The whole drift ranking of an alignment (``tokneigh align --output FILE``), by extension:
``.csv`` (RFC 4180) or ``.tsv`` (escaped as ``--format tsv``), columns ``rank``, ``id_a``,
``token_a``, ``id_b``, ``token_b``, ``drift``; or ``.jsonl``, one object a pair with those keys.
Written beside its destination and renamed into place (``graphfile.destination``)."""

from __future__ import annotations

import contextlib
import io
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..errors import OutputFileError
from ..results import Alignment
from ..results.json import json_text
from .graphfile import destination
from .render import write_csv, write_tsv

FORMATS = (".csv", ".tsv", ".jsonl")
HEADER = ["rank", "id_a", "token_a", "id_b", "token_b", "drift"]
Shown = Callable[[int], "str | None"]  # token id -> its text


def check_destination(path: Path) -> None:
    """Refuse, before the work, a name without a known extension or a file that cannot be
    written there."""
    if path.suffix.lower() not in FORMATS:
        raise OutputFileError(
            f"output {path}: the file name must end in {', '.join(FORMATS)} (the format)"
        )
    destination(path)


def _rows(result: Alignment, shown_a: Shown, shown_b: Shown) -> Iterator[list[Any]]:
    assert result.ranking is not None
    ids_a, ids_b, drift = result.ranking
    for rank, (i, j, d) in enumerate(zip(ids_a.tolist(), ids_b.tolist(), drift.tolist()), 1):
        yield [rank, i, shown_a(i), j, shown_b(j), d]


def write_ranking(result: Alignment, path: Path, shown_a: Shown, shown_b: Shown) -> int:
    """Write every ranked pair of ``result`` to ``path``; how many rows."""
    check_destination(path)
    suffix = path.suffix.lower()
    buffer = io.StringIO()
    rows = list(_rows(result, shown_a, shown_b))
    if suffix == ".csv":
        write_csv(HEADER, rows, buffer)
    elif suffix == ".tsv":
        write_tsv(HEADER, rows, buffer)
    else:
        for row in rows:
            buffer.write(json_text(dict(zip(HEADER, row))) + "\n")
    target, mode = destination(path)
    scratch = target.parent / f".tokneigh-{uuid.uuid4().hex[:16]}.tmp"
    try:
        data = buffer.getvalue().encode("utf-8", "backslashreplace")
        with open(scratch, "wb") as handle:
            handle.write(data)
        if mode is not None:
            os.chmod(scratch, mode)
        os.replace(scratch, target)
    except OSError as exc:
        raise OutputFileError(f"output {path}: cannot be written ({exc.strerror or exc})") from exc
    finally:
        with contextlib.suppress(OSError):
            scratch.unlink()
    return len(rows)
