"""An embedding matrix as the readers hand it over: its shape, and its rows read in blocks.

A first use streams: the build asks for the rows a block at a time (read, converted to
float32, normalized and written in turn), so it never holds the whole matrix, let alone a
second copy of it. The readers that can (safetensors, GGUF) read the file only when the
blocks are asked for; a checkpoint only transformers can load is already whole
(``RowBlocks.of``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

# The bytes of float32 rows in one block: small against any matrix worth streaming (GPT-2's is
# 154 MB), large enough that the per-block work (a read, a hash update, numpy calls) is noise.
BLOCK_BYTES = 16 << 20


def block_rows(dim: int) -> int:
    """Rows per block for rows of ``dim`` float32 values: about ``BLOCK_BYTES``."""
    return max(1, BLOCK_BYTES // (4 * max(dim, 1)))


@dataclass(frozen=True)
class RowBlocks:
    """A (rows, dim) matrix as consecutive float32 blocks of rows, read when iterated.

    ``read(rows_per_block)`` yields the blocks in order, each C-contiguous float32 of shape
    (n, dim), n = ``rows_per_block`` but for the last. A block is valid until the next one is
    asked for (a reader may reuse its buffer): copy what must outlive it. Each iteration reads
    the source again, and raises the reader's errors (a file truncated or rewritten meanwhile).
    """

    shape: tuple[int, int]
    read: Callable[[int], Iterator[np.ndarray]]

    @classmethod
    def of(cls, matrix: np.ndarray) -> RowBlocks:
        """A matrix already in memory (float32, 2-D), served as views of its rows."""

        def views(rows: int) -> Iterator[np.ndarray]:
            for start in range(0, matrix.shape[0], rows):
                yield matrix[start : start + rows]

        return cls((int(matrix.shape[0]), int(matrix.shape[1])), views)

    def blocks(self, rows: int | None = None) -> Iterator[np.ndarray]:
        """The blocks, ``rows`` rows each (by default about ``BLOCK_BYTES`` of float32)."""
        return self.read(rows or block_rows(self.shape[1]))

    def whole(self) -> np.ndarray:
        """The whole matrix in memory, float32 (what the readers returned before streaming)."""
        out = np.empty(self.shape, dtype=np.float32)
        start = 0
        for block in self.blocks():
            out[start : start + len(block)] = block
            start += len(block)
        return out
