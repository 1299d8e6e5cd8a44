"""Writing a neighbour graph (``results.NeighborGraph``) to a file, chosen by its extension:

- ``.parquet``: one row per pair, columns ``id``, ``rank`` (1-based), ``neighbor_id``,
  ``similarity`` (pyarrow);
- ``.npz``: arrays ``ids`` (n,), ``neighbors`` (n, k), ``similarities`` (n, k);
- ``.jsonl``: one object per token, ``{"id", "token", "neighbors": [{"rank", "id", "token",
  "similarity"}, ...]}`` (orjson).

The file appears whole or not at all: it is written beside its destination and renamed into
place, and the partial file of an interrupted write is deleted.
"""

from __future__ import annotations

import contextlib
import os
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
    when the file cannot be created there."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise OutputFileError(
            f"output {path}: the file name must end in {', '.join(FORMATS)} (the format)"
        )
    target = path.expanduser()
    parent = target.resolve().parent
    if target.is_dir():
        raise OutputFileError(f"output {path}: is a folder")
    if not parent.is_dir():
        raise OutputFileError(f"output {path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputFileError(f"output {path}: folder {parent} is not writable")
    return fmt


def write_graph(graph: NeighborGraph, path: Path, shown: Shown) -> str:
    """Write ``graph`` to ``path`` in the format its extension names; the format."""
    fmt = file_format(path)
    target = path.expanduser()
    scratch = target.parent / f".{target.name}.{uuid.uuid4().hex}.tmp"
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
