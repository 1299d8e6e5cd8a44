"""The arrays of an entry, written as the rows stream in: each block of the checkpoint's matrix
is read, hashed, checked for rows without a direction, normalized and appended to matrix.npy
in turn. Only one block and the norms (4 bytes a row) are ever in memory, never the matrix.

The files are the very bytes the whole-matrix build wrote (``np.save`` of the unit rows and
of the norms): the same ``.npy`` header, and rows normalized by the same function, whose every
step is row by row (a row's bits do not depend on the block it came in).
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import Future, ThreadPoolExecutor
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
    hasher = ThreadPoolExecutor(1, thread_name_prefix="tokneigh-hash")
    # The writes go on a thread of their own, in order: a write that waits for the disk (the
    # kernel throttles a writer with too much unwritten data) no longer holds the computing
    # of the next block up. At most two blocks wait to be written.
    writer = ThreadPoolExecutor(1, thread_name_prefix="tokneigh-append")
    queued: list[Future[None]] = []
    with (
        hasher,
        files.create(folder / MATRIX) as handle,
        _Writeback(handle.fileno()) as writeback,
        writer,
    ):

        def append(unit: np.ndarray) -> None:
            handle.write(unit.data)
            writeback.wrote(unit.nbytes)

        # The header np.save writes for a C-ordered float32 array of this shape.
        header = {"descr": np.dtype(np.float32).str, "fortran_order": False, "shape": (count, dim)}
        np.lib.format.write_array_header_1_0(handle, header)
        for raw in rows.blocks():
            block = np.ascontiguousarray(raw, dtype=np.float32)
            stop = start + len(block)
            if block.ndim != 2 or block.shape[1] != dim or stop > count:
                raise ValueError(f"a block of {block.shape} does not fit a {rows.shape} matrix")
            # SHA-256 releases the GIL: it runs beside the normalizing (the block is not reused
            # before it is done), a second or more off Llama-3's first use.
            hashed = hasher.submit(digest.update, block.data)
            unit, norms[start:stop] = normalize_rows(block)
            # Every row without a direction has norm 0 (and few others do): only those are
            # looked at again, to tell NaN or inf from zeros.
            suspects = np.flatnonzero(norms[start:stop] == 0)
            if len(suspects):
                non_finite, zero = unusable_rows(block[suspects])
                streamed.non_finite += [start + int(suspects[i]) for i in non_finite]
                streamed.zero += [start + int(suspects[i]) for i in zero]
            queued.append(writer.submit(append, unit))
            if len(queued) > 2:
                queued.pop(0).result()  # raises what the write raised (a full disk, say)
            hashed.result()
            start = stop
        if start != count:
            raise ValueError(f"the rows ended at {start:,} of {count:,}")
        for pending in queued:
            pending.result()
        handle.flush()
        writeback.finish()
    files.fsync_write(folder / NORMS, array=norms)
    streamed.sha256 = digest.hexdigest()
    return streamed


class _Writeback:
    """Disk writes that keep up with the stream: every ``STEP`` bytes written, an fdatasync on
    a thread of its own sends what is written so far to the disk while the rows go on being
    computed. Left to itself the kernel starts writing only once a tenth or so of the memory
    is dirty, so a 2 GB matrix would all be written by the final fsync, after the computing:
    measured on Llama-3's 128,256 x 4,096, that serial tail was most of a first use."""

    STEP = 64 << 20

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.unsynced = 0
        self.pending: Future[None] | None = None
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="tokneigh-sync")

    def __enter__(self) -> _Writeback:
        return self

    def wrote(self, count: int) -> None:
        self.unsynced += count
        if self.unsynced < self.STEP or (self.pending is not None and not self.pending.done()):
            return
        if self.pending is not None:
            self.pending.result()  # raises what the last sync raised (a full disk, say)
        self.pending = self.pool.submit(os.fdatasync, self.fd)
        self.unsynced = 0

    def finish(self) -> None:
        """Wait for the syncs, then make the whole file durable (raises their errors)."""
        if self.pending is not None:
            self.pending.result()
        os.fsync(self.fd)

    def __exit__(self, *exc: object) -> None:
        self.pool.shutdown(wait=True)  # before the file closes: no sync of a closed descriptor
