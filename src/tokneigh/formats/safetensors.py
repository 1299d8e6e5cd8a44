"""safetensors files, read without a memory map: one embedding tensor, and the tensor names.

safetensors' own reader memory-maps the file: a checkpoint truncated while it is read then
kills the process with SIGBUS. The format is simple enough to read with plain reads: an
8-byte little-endian header length, a JSON header ({name: {dtype, shape, data_offsets}}),
then the data, each tensor at data_offsets (relative to the end of the header).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ..errors import ModelNotFoundError
from ..reporting import Report, info
from ..sources.local_files import open_regular
from .binary import FLOAT_DTYPES, bf16_to_float32, read_exactly, read_exactly_into, truncated
from .failures import first_line
from .rows import RowBlocks

_FILE = "checkpoint file"  # how a truncation error names the file
_MAX_HEADER = 100_000_000  # safetensors' own limit on the header size
_NON_FLOAT_DTYPES = frozenset(("BOOL", "I8", "I16", "I32", "I64", "U8", "U16", "U32", "U64", "C64"))


def safetensors_names(path: Path) -> list[str]:
    """The tensor names a safetensors file holds, from its header alone."""
    with open_regular(path, buffering=0) as handle:
        header, _ = _read_header(handle, path)
    return [name for name in header if name != "__metadata__"]


def _read_header(handle: BinaryIO, path: Path) -> tuple[dict[str, Any], int]:
    """A safetensors file's header, and where its data starts."""
    size = os.fstat(handle.fileno()).st_size
    prefix = _read_exactly(handle, 8, path)
    length = int.from_bytes(prefix, "little")
    if length > _MAX_HEADER:
        raise ModelNotFoundError(
            f"{path} is not a safetensors file (its header would be {length:,} bytes)"
        )
    if 8 + length > size:
        raise _truncated(path, f"{size:,} bytes, its header alone needs {8 + length:,}")
    raw = _read_exactly(handle, length, path)
    try:
        header = json.loads(raw)
    except ValueError as exc:  # UnicodeDecodeError included
        raise ModelNotFoundError(
            f"{path} is not a safetensors file (its header is not JSON: {first_line(exc)})"
        ) from exc
    if not isinstance(header, dict):
        raise ModelNotFoundError(f"{path} is not a safetensors file (its header is not a map)")
    return header, 8 + length


def _read_exactly(handle: BinaryIO, count: int, path: Path) -> bytearray:
    return read_exactly(handle, count, _FILE, path, lambda got: "it ended before its header did")


def _truncated(path: Path, detail: str) -> ModelNotFoundError:
    return truncated(_FILE, path, detail)


def read_safetensors(path: Path, key: str, report: Report) -> np.ndarray:
    """One 2-D floating-point tensor of a safetensors file, whole, as float32."""
    return safetensors_rows(path, key, report).whole()


def safetensors_rows(path: Path, key: str, report: Report) -> RowBlocks:
    """One 2-D floating-point tensor of a safetensors file, its rows read in blocks as float32
    when asked for. The header is read and checked here (a missing, malformed or truncated
    tensor is refused now); the data when the blocks are read, from a file that must not have
    changed since."""
    report(info(f"reading {key} from {path.name}"))
    with open_regular(path, buffering=0) as handle:
        header, data_start = _read_header(handle, path)
        entry = header.get(key) if key != "__metadata__" else None
        if not isinstance(entry, dict):
            raise ModelNotFoundError(f"{path} holds no tensor {key}")
        dtype, shape, (begin, end) = _tensor_layout(entry, key, path)
        stored = np.dtype(FLOAT_DTYPES[dtype])
        row_bytes = shape[1] * stored.itemsize
        if end - begin != shape[0] * row_bytes:
            raise ModelNotFoundError(
                f"{path}: the header gives tensor {key} {end - begin:,} bytes, but its dtype "
                f"and shape need {shape[0] * row_bytes:,}"
            )
        seen = os.fstat(handle.fileno())
        if data_start + end > seen.st_size:
            raise _truncated(
                path,
                f"{seen.st_size:,} bytes, its header places {key} up to byte "
                f"{data_start + end:,}",
            )
    stamp = (seen.st_size, seen.st_mtime_ns)

    def ends_early(got: int) -> str:
        return f"{key} ends before its last row"

    def read(rows_per_block: int) -> Iterator[np.ndarray]:
        with open_regular(path, buffering=0) as handle:
            if _stamp(handle) != stamp:
                raise _truncated(path, f"it was rewritten before {key} was read")
            handle.seek(data_start + begin)
            # One buffer for every block, refilled in place: a block lives until the next.
            raw = np.empty(min(rows_per_block, shape[0]) * shape[1], dtype=stored)
            for start in range(0, shape[0], rows_per_block):
                count = min(rows_per_block, shape[0] - start)
                part = raw[: count * shape[1]]
                read_exactly_into(handle, part.view(np.uint8).data, _FILE, path, ends_early)
                yield _to_float32(part, dtype).reshape(count, shape[1])
            if _stamp(handle) != stamp:
                raise _truncated(path, f"it was rewritten while {key} was read")

    return RowBlocks(shape, read)


def _stamp(handle: BinaryIO) -> tuple[int, int]:
    info_ = os.fstat(handle.fileno())
    return info_.st_size, info_.st_mtime_ns


def _tensor_layout(
    entry: dict[str, Any], key: str, path: Path
) -> tuple[str, tuple[int, int], tuple[int, int]]:
    """A header entry's dtype, shape and byte range, or why it is not an embedding matrix."""
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if not (
        isinstance(dtype, str)
        and isinstance(shape, list)
        and all(type(n) is int and n >= 0 for n in shape)
        and isinstance(offsets, list)
        and len(offsets) == 2
        and all(type(n) is int for n in offsets)
        and 0 <= offsets[0] <= offsets[1]
    ):
        raise ModelNotFoundError(f"{path}: the header entry of tensor {key} is malformed")
    if dtype in _NON_FLOAT_DTYPES:
        raise ModelNotFoundError(
            f"tensor {key} has dtype {dtype}, not a floating-point embedding matrix"
        )
    if dtype not in FLOAT_DTYPES:  # F8_E4M3, F8_E5M2, F6_..., F4, E8M0 and unknown ones
        raise ModelNotFoundError(
            f"tensor {key} has dtype {dtype}, which tokneigh does not read "
            "(it reads F32, F16, BF16 and F64 embedding matrices)"
        )
    if len(shape) != 2 or shape[0] < 1 or shape[1] < 1:
        raise ModelNotFoundError(f"tensor {key} has shape {tuple(shape)}, not (vocab, dim)")
    return dtype, (shape[0], shape[1]), (offsets[0], offsets[1])


def _to_float32(raw: np.ndarray, dtype: str) -> np.ndarray:
    if dtype == "BF16":
        return bf16_to_float32(raw)
    return raw.astype(np.float32, copy=False)  # F32 itself: the buffer, no copy
