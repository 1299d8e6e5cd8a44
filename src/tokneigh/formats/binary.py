"""What the two binary readers (safetensors, GGUF) share: float storage types, and reads of
exactly N bytes that end in one clear error when the file is shorter.

Both read with plain reads, never a memory map: a file truncated while it is read is then a
"truncated or changed" error, not a SIGBUS that kills the process.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..errors import ModelNotFoundError

# Floating-point storage types both formats name alike -> the numpy dtype they are read as.
FLOAT_DTYPES = {"F32": "<f4", "F16": "<f2", "BF16": "<u2", "F64": "<f8"}  # BF16: raw bits


def bf16_to_float32(bits: np.ndarray) -> np.ndarray:
    """bfloat16 values read as raw uint16 bits, as float32: bfloat16 is the top half of a
    float32, so its bits are shifted into place."""
    wide = bits.astype(np.uint32)
    wide <<= 16
    return wide.view(np.float32)


def truncated(file: str, path: Path, detail: str) -> ModelNotFoundError:
    """The error for a file shorter than its header says; ``file`` is how the reader names
    such a file ("checkpoint file", "GGUF file")."""
    return ModelNotFoundError(
        f"the {file} {path} is truncated or changed while it was read ({detail})"
    )


def read_exactly_into(
    handle: BinaryIO, target: memoryview, file: str, path: Path, short: Callable[[int], str]
) -> None:
    """Fill ``target`` (bytes) from ``handle``; if the file ends first, the truncation error
    with ``short(bytes read)`` as its detail."""
    got = 0
    while got < len(target):
        count = handle.readinto(target[got:])  # type: ignore[attr-defined]
        if not count:
            raise truncated(file, path, short(got))
        got += count


def read_exactly(
    handle: BinaryIO, count: int, file: str, path: Path, short: Callable[[int], str]
) -> bytearray:
    """The next ``count`` bytes of ``handle``, or the truncation error (see read_exactly_into)."""
    data = bytearray(count)
    read_exactly_into(handle, memoryview(data), file, path, short)
    return data
