"""What every checkpoint reader returns: the embedding matrix and everything to interpret it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ModelNotFoundError
from .rows import RowBlocks


@dataclass
class Extracted:
    """What a checkpoint yields: the raw embedding matrix and everything to interpret it."""

    rows: RowBlocks  # float32, one row per token id, read in blocks when asked for
    tokenizer_json: str
    special_ids: list[int]
    tensor: str
    resolved: str
    fingerprint: dict[str, Any] = field(default_factory=dict)
    # Storage type of each tensor read, for a GGUF file ({"token_embd.weight": "Q8_0"}).
    quantization: dict[str, str] = field(default_factory=dict)
    # The tokenizer's size, added tokens included, when the reader has parsed it already.
    tokenizer_size: int | None = None

    @property
    def matrix(self) -> np.ndarray:
        """The whole matrix in memory (reads the rows again): for a caller that wants it all."""
        return self.rows.whole()


def as_matrix(tensor: Any, key: str) -> np.ndarray:
    """``tensor`` as a contiguous float32 (vocab, dim) matrix, or why it is not one."""
    matrix = np.ascontiguousarray(tensor, dtype=np.float32)
    if matrix.ndim != 2 or matrix.shape[0] < 1 or matrix.shape[1] < 1:
        raise ModelNotFoundError(f"tensor {key} has shape {matrix.shape}, not (vocab, dim)")
    return matrix
