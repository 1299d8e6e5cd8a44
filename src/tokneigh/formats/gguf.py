"""GGUF files (llama.cpp, Ollama, LM Studio): one embedding tensor and the tokenizer.

The header is read by ``gguf_header``, the tokenizer rebuilt by ``gguf_tokenizer``; here the
matrix is read. ``gguf`` is used only for its type table and its dequantizers, one block of
rows at a time, handed to the build as it streams (``rows.RowBlocks``): memory stays bounded
by a block, never by the file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .. import reporting
from ..errors import ModelNotFoundError, TiedEmbeddings
from ..reporting import Report
from ..sources.local_files import open_regular
from ..sources.models import ModelSource, local_fingerprint
from .binary import FLOAT_DTYPES, bf16_to_float32, read_exactly_into
from .extracted import Extracted
from .gguf_header import (
    GGUF_FILE,
    INPUT_TENSOR,
    OUTPUT_TENSOR,
    Header,
    bits_per_weight,
    known_type,
    not_gguf,
    read_header,
    truncated,
    type_name,
)
from .gguf_tokenizer import build_tokenizer
from .rows import RowBlocks

_INTEGER_TYPES = ("I8", "I16", "I32", "I64")


def gguf_rows(header: Header, name: str, report: Report) -> RowBlocks:
    """One 2-D tensor as float32 rows, read and dequantized a block of rows at a time when
    asked for. Its shape, type and extent are checked here, the data when read."""
    path = header.path
    info = header.tensors[name]
    kind, block, block_bytes = known_type(info.type_id)
    dims = [d for d in info.dims]
    while len(dims) > 2 and dims[-1] == 1:  # (dim, vocab, 1, 1) is still a matrix
        dims.pop()
    if len(dims) != 2 or dims[0] < 1 or dims[1] < 1:
        raise ModelNotFoundError(
            f"{path}: tensor {name} has shape {tuple(reversed(info.dims))}, not (vocab, dim)"
        )
    dim, rows = dims
    if kind in _INTEGER_TYPES:
        raise ModelNotFoundError(f"{path}: tensor {name} has type {kind}, not floating point")
    if dim % block:
        raise not_gguf(path, f"the rows of {name} ({dim:,}) are not whole {kind} blocks")
    row_bytes = dim // block * block_bytes
    begin = header.data_start + info.offset
    end = begin + rows * row_bytes
    if end > header.size:
        raise truncated(path, f"{header.size:,} bytes, its header places {name} up to byte {end:,}")
    report(reporting.info(f"reading {name} ({kind}) from {path.name}"))

    def read(step: int) -> Iterator[np.ndarray]:
        direct = kind == "F32"  # read straight into the block, no conversion
        scratch = bytearray(min(rows, step) * row_bytes)
        with open_regular(path, buffering=0) as handle:
            before = os.fstat(handle.fileno())
            if (before.st_size, before.st_mtime_ns) != (header.size, header.mtime_ns):
                raise truncated(path, "it was rewritten after its header was read")
            handle.seek(begin)
            for start in range(0, rows, step):
                count = min(step, rows - start)
                target = memoryview(scratch)[: count * row_bytes]
                read_exactly_into(handle, target, GGUF_FILE, path, lambda got: f"{name} ends early")
                raw = np.frombuffer(target, dtype=np.uint8)
                if direct:
                    yield raw.view(np.float32).reshape(count, dim)
                else:
                    yield np.ascontiguousarray(
                        _decode(raw, kind, info.type_id, count, dim), dtype=np.float32
                    )
            after = os.fstat(handle.fileno())
        if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
            raise truncated(path, f"it was rewritten while {name} was read")

    return RowBlocks((rows, dim), read)


def _decode(raw: np.ndarray, kind: str, type_id: int, rows: int, dim: int) -> np.ndarray:
    if kind in FLOAT_DTYPES:
        values = raw.view(np.dtype(FLOAT_DTYPES[kind])).reshape(rows, dim)
        if kind == "BF16":
            return bf16_to_float32(values)
        return values
    from gguf.constants import GGMLQuantizationType
    from gguf.quants import dequantize

    try:
        return dequantize(raw.reshape(rows, -1), GGMLQuantizationType(type_id))
    except NotImplementedError as exc:
        raise ModelNotFoundError(
            f"tensor type {kind} cannot be dequantized by the installed gguf package"
        ) from exc


# --- what extract.py dispatches here -------------------------------------------------------


def _header(source: ModelSource) -> Header:
    return read_header(Path(source.location))


def output_tensor(source: ModelSource, report: Report) -> str:
    """``output.weight``, or TiedEmbeddings when the file has none (a tied model)."""
    header = _header(source)
    if OUTPUT_TENSOR not in header.tensors:
        raise TiedEmbeddings(
            f"the GGUF file has no {OUTPUT_TENSOR}; its output matrix is {INPUT_TENSOR}"
        )
    return OUTPUT_TENSOR


def read_tokenizer(source: ModelSource, report: Report) -> tuple[str, list[int]]:
    tokenizer = build_tokenizer(_header(source), report)
    return tokenizer.tokenizer_json, tokenizer.special_ids


def extract(source: ModelSource, report: Report, embeddings: str = "input") -> Extracted:
    path = Path(source.location)
    fingerprint: dict[str, Any] = {"files": local_fingerprint(path)}  # before reading
    header = read_header(path)
    name = OUTPUT_TENSOR if embeddings == "output" else INPUT_TENSOR
    if name not in header.tensors:
        if embeddings == "output":
            raise TiedEmbeddings(
                f"the GGUF file has no {OUTPUT_TENSOR}; its output matrix is {INPUT_TENSOR}"
            )
        raise ModelNotFoundError(
            f"{path} holds no tensor {INPUT_TENSOR} (the token embeddings of a llama.cpp model)"
        )
    tokenizer = build_tokenizer(header, report)
    info = header.tensors[name]
    rows = info.dims[1] if len(info.dims) >= 2 else None
    count = len(header.metadata["tokenizer.ggml.tokens"])
    if rows != count:
        shown = "no rows" if rows is None else f"{rows:,} rows"
        raise ModelNotFoundError(
            f"{path}: tensor {name} has {shown}, but the file's token list has {count:,} tokens"
        )
    kind = type_name(info.type_id)
    bits = bits_per_weight(info.type_id)
    if bits < 5:
        report(
            reporting.note(
                f"{name} is stored as {kind} ({bits:g} bits per weight); quantization this "
                "coarse moves neighbours: rankings differ from the full-precision model's"
            )
        )
    return Extracted(
        rows=gguf_rows(header, name, report),
        tokenizer_json=tokenizer.tokenizer_json,
        special_ids=tokenizer.special_ids,
        tensor=name,
        resolved=str(path),
        fingerprint=fingerprint,
        quantization={name: kind},
    )
