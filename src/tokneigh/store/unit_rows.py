"""The arrays of an entry, written as the rows stream in: each block of the checkpoint's matrix
is read, hashed, checked for rows without a direction, normalized and appended to matrix.npy
in turn. Only one block and the norms (4 bytes a row) are ever in memory, never the matrix.

The files are the very bytes the whole-matrix build wrote (``np.save`` of the unit rows and
of the norms): the same ``.npy`` header, and rows normalized by the same function on the same
row boundaries (blocks are whole multiples of its own 1,024-row block).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..formats.rows import RowBlocks
from . import files
from .layout import MATRIX, NORMS


@dataclass
class Streamed:
    """What one pass over the rows learnt, besides the files it wrote."""

    norms: np.ndarray  # float32, the raw L2 norm of each row (0: no direction)
    sha256: str  # of the float32 matrix as read, row after row
    non_finite: list[int] = field(default_factory=list)  # rows holding NaN or inf
    zero: list[int] = field(default_factory=list)  # rows of zeros only


def write_unit_rows(folder: Path, rows: RowBlocks) -> Streamed:
    """matrix.npy (the unit rows, float32) and norms.npy in ``folder``, from ``rows`` read once."""
    from ..space.core import normalize_rows, unusable_rows

    count, dim = rows.shape
    norms = np.empty(count, dtype=np.float32)
    digest = hashlib.sha256()
    streamed = Streamed(norms, "")
    start = 0
    with open(folder / MATRIX, "wb") as handle:
        # The header np.save writes for a C-ordered float32 array of this shape.
        header = {"descr": np.dtype(np.float32).str, "fortran_order": False, "shape": (count, dim)}
        np.lib.format.write_array_header_1_0(handle, header)
        for raw in rows.blocks():
            block = np.ascontiguousarray(raw, dtype=np.float32)
            stop = start + len(block)
            if block.ndim != 2 or block.shape[1] != dim or stop > count:
                raise ValueError(f"a block of {block.shape} does not fit a {rows.shape} matrix")
            digest.update(block.data)
            non_finite, zero = unusable_rows(block)
            streamed.non_finite += [start + i for i in non_finite]
            streamed.zero += [start + i for i in zero]
            unit, norms[start:stop] = normalize_rows(block)
            handle.write(unit.data)
            start = stop
        if start != count:
            raise ValueError(f"the rows ended at {start:,} of {count:,}")
        handle.flush()
        os.fsync(handle.fileno())
    files.fsync_write(folder / NORMS, array=norms)
    streamed.sha256 = digest.hexdigest()
    return streamed
