"""`tokneigh export --format projector DIR`: the two files TensorFlow's Embedding Projector
(projector.tensorflow.org, "Load") reads:

- ``vectors.tsv``: one row of tab-separated numbers a token, no header. The rows are the
  unit vectors the metric compares (the cached normalized rows for cosine; centred or ABTT
  rows for those metrics), so the Projector's own cosine and Euclidean neighbours rank tokens
  as tokneigh does, and its PCA is of directions, as `tokneigh map`'s is. (CSLS rescales
  scores, not vectors: its rows are cosine's.) Numbers are written with 9 significant
  digits, enough to read back every float32 exactly.
- ``metadata.tsv``: a header row (the Projector takes the first line as column names when it
  holds a tab, which it does: ``maprows.COLUMNS``), then one row a token, in the same order.

The Projector splits lines on "\\n" and fields on "\\t" and knows no quoting or escapes
(parseMetadata in tensorboard's plugins/projector/vz_projector/data-provider.ts). So a token
cannot hold a raw tab, newline or carriage return: each is written as the two characters
``\\t``, ``\\n``, ``\\r``, and a backslash as ``\\\\`` (``render.tsv_field``: the escapes of
tokneigh's TSV output). Quotes and spaces are written as they are: nothing in the Projector
reads them. An empty field reads as "no value" there. ``special`` is written as true/false.

The folder is written beside its destination and renamed into place: it appears whole or not
at all, and an existing folder that holds anything is refused.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import OutputFileError
from ..results import MapLayout
from .maprows import COLUMNS, MapRows, map_rows
from .render import tsv_field

if TYPE_CHECKING:
    from ..api.embeddings import Embeddings

_SCRATCH = ".tokneigh-{}.tmp"


def check_projector_dir(path: Path) -> Path:
    """The folder to write, refused in one line before any work: something that is not a
    folder, a folder that holds anything, or a parent that does not exist or is not
    writable. Returns the real path."""
    target = Path(os.path.realpath(path.expanduser()))
    shown = f"output {path}"
    if target.exists():
        if not target.is_dir():
            raise OutputFileError(f"{shown}: exists and is not a folder")
        if any(target.iterdir()):
            raise OutputFileError(f"{shown}: the folder is not empty")
    parent = target.parent
    if not parent.is_dir():
        raise OutputFileError(f"{shown}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputFileError(f"{shown}: folder {parent} is not writable")
    return target


def write_projector(emb: Embeddings, layout: MapLayout, path: Path) -> int:
    """Write ``vectors.tsv`` and ``metadata.tsv`` of ``layout``'s tokens into the folder
    ``path``; the number of rows."""
    target = check_projector_dir(path)
    rows = map_rows(emb, layout)
    scratch = target.parent / _SCRATCH.format(uuid.uuid4().hex[:16])
    try:
        os.mkdir(scratch)
        vectors = np.asarray(emb.unit[rows.ids], dtype=np.float32)
        np.savetxt(scratch / "vectors.tsv", vectors, fmt="%.9g", delimiter="\t")
        _write_metadata(rows, scratch / "metadata.tsv")
        check_projector_dir(path)  # again: something may have appeared meanwhile
        os.replace(scratch, target)  # onto nothing, or onto the empty folder
    except OSError as exc:
        raise OutputFileError(f"output {path}: cannot be written ({exc.strerror or exc})") from exc
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(scratch)
    return int(rows.ids.size)


def _write_metadata(rows: MapRows, path: Path) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        out.write("\t".join(COLUMNS) + "\n")
        columns = (
            rows.ids.tolist(), rows.tokens, rows.labels, rows.special.tolist(),
            rows.norms.tolist(), rows.x.tolist(), rows.y.tolist(), rows.clusters.tolist(),
            rows.cluster_names,
        )
        for cells in zip(*columns):
            out.write("\t".join(map(tsv_field, cells)) + "\n")
