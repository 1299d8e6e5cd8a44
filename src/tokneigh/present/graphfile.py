"""Writing a neighbour graph (``results.NeighborGraph``) to a file, chosen by its extension:

- ``.parquet``: one row per pair, columns ``id``, ``rank`` (1-based), ``neighbor_id``,
  ``similarity`` (pyarrow);
- ``.npz``: arrays ``ids`` (n,), ``neighbors`` (n, k), ``similarities`` (n, k);
- ``.jsonl``: one object per token, ``{"id", "token", "neighbors": [{"rank", "id", "token",
  "similarity"}, ...]}`` (orjson).

The file appears whole or not at all: it is written beside its destination and renamed into
place, and the partial file of an interrupted write is deleted. A file it replaces keeps its
permission bits; anything else in the way (a FIFO, a device) is refused, before the work.
"""

from __future__ import annotations

import contextlib
import os
import stat
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import OutputFileError
from ..results import NeighborGraph

FORMATS = {".parquet": "parquet", ".npz": "npz", ".jsonl": "jsonl"}

Shown = Callable[[int], "str | None"]  # token id -> its text (None for padding rows)


def file_format(path: Path) -> str:
    """The format a graph file's name asks for; refused before any work when unknown or
    when the file cannot be created there (``destination``)."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise OutputFileError(
            f"output {path}: the file name must end in {', '.join(FORMATS)} (the format)"
        )
    destination(path)
    return fmt


# What the scratch file's name adds to nothing: a fixed length, so any name the folder
# allows leaves room for it (".tokneigh-" + 16 hex digits + ".tmp": 30 bytes).
_SCRATCH = ".tokneigh-{}.tmp"


def destination(path: Path) -> tuple[Path, int | None]:
    """Where ``path`` is written and the permission bits of the file it replaces (None: a
    new file). A link is followed: the file it names is replaced and the link kept. Refused
    in one line: a name the folder's file system cannot hold, a folder that does not exist
    or is not writable, and anything but a regular file in the way (a FIFO, a device, a
    folder: ``os.replace`` would put a regular file in its place)."""
    shown = f"output {path}"
    target = Path(os.path.realpath(path.expanduser()))
    parent = target.parent
    if not parent.is_dir():
        raise OutputFileError(f"{shown}: folder {parent} does not exist")
    try:
        limit = os.pathconf(parent, "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255  # what every common file system allows
    size = len(os.fsencode(target.name))
    if size > limit:
        raise OutputFileError(
            f"{shown}: the file name is {size} bytes; the file system allows {limit}"
        )
    try:
        info = os.stat(target)
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise OutputFileError(f"{shown}: cannot be written ({exc.strerror or exc})") from exc
    else:
        if stat.S_ISDIR(info.st_mode):
            raise OutputFileError(f"{shown}: is a folder")
        if not stat.S_ISREG(info.st_mode):
            raise OutputFileError(f"{shown}: is not a regular file, and is not replaced")
        mode = stat.S_IMODE(info.st_mode)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputFileError(f"{shown}: folder {parent} is not writable")
    return target, mode


def write_graph(graph: NeighborGraph, path: Path, shown: Shown) -> str:
    """Write ``graph`` to ``path`` in the format its extension names; the format."""
    fmt = file_format(path)
    target, _ = destination(path)
    scratch = target.parent / _SCRATCH.format(uuid.uuid4().hex[:16])
    try:
        if fmt == "parquet":
            _write_parquet(graph, scratch)
        elif fmt == "npz":
            with open(scratch, "wb") as handle:
                np.savez(
                    handle,
                    ids=graph.ids,
                    neighbors=graph.neighbors,
                    similarities=graph.similarities,
                )
        else:
            _write_jsonl(graph, scratch, shown)
        # Checked again now: what is in the way may have changed during the pass.
        target, mode = destination(path)
        if mode is not None:
            os.chmod(scratch, mode)
        os.replace(scratch, target)
    except OSError as exc:
        raise OutputFileError(
            f"output {path}: cannot be written ({exc.strerror or exc})"
        ) from exc
    finally:  # an interrupted or failed write leaves nothing behind
        with contextlib.suppress(OSError):
            scratch.unlink()
    return fmt


def _write_parquet(graph: NeighborGraph, path: Path) -> None:
    import pyarrow as pa  # type: ignore[import-untyped]
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    n, k = graph.neighbors.shape
    table = pa.table(
        {
            "id": pa.array(np.repeat(graph.ids, k)),
            "rank": pa.array(np.tile(np.arange(1, k + 1, dtype=np.int32), n)),
            "neighbor_id": pa.array(graph.neighbors.ravel()),
            "similarity": pa.array(graph.similarities.ravel()),
        }
    )
    pq.write_table(table, path)


def _write_jsonl(graph: NeighborGraph, path: Path, shown: Shown) -> None:
    import orjson

    names: dict[int, str | None] = {}

    def name(token_id: int) -> str | None:
        if token_id not in names:
            names[token_id] = shown(token_id)
        return names[token_id]

    with open(path, "wb") as handle:
        for token_id, row, sims in zip(
            graph.ids.tolist(), graph.neighbors.tolist(), graph.similarities.tolist()
        ):
            neighbors = [
                {"rank": rank, "id": other, "token": name(other), "similarity": sim}
                for rank, (other, sim) in enumerate(zip(row, sims), start=1)
            ]
            line = {"id": token_id, "token": name(token_id), "neighbors": neighbors}
            handle.write(orjson.dumps(line) + b"\n")
