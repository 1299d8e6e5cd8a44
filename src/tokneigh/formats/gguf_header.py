"""A GGUF file's header (its metadata and tensor table), and ggml's tensor types.

The header is parsed here with plain reads, not with the ``gguf`` package's reader: that one
memory-maps the file (a file truncated while it is read kills the process with SIGBUS, as
for safetensors) and trusts the counts it reads, so a damaged header can make it allocate
without bound. Every count and length is checked against the bytes the file still has before
anything is allocated.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ..errors import ModelNotFoundError
from ..sources.local_files import open_regular
from . import binary

GGUF_FILE = "GGUF file"  # how a truncation error names the file
INPUT_TENSOR = "token_embd.weight"
OUTPUT_TENSOR = "output.weight"
_MAGIC = b"GGUF"
_VERSIONS = (2, 3)  # version 1 had 32-bit counts and is long gone
_DEFAULT_ALIGNMENT = 32
_MAX_DIMS = 4  # GGML_MAX_DIMS
_MAX_NESTING = 8  # arrays of arrays: no real file nests; a deep one is damage
_CHUNK = 4 << 20  # header bytes read at a time

# Value types of metadata (gguf.GGUFValueType): struct codes of the scalars.
_SCALARS = {
    0: "B",
    1: "b",
    2: "H",
    3: "h",
    4: "I",
    5: "i",
    6: "f",
    7: "?",
    10: "Q",
    11: "q",
    12: "d",
}
_STRING, _ARRAY = 8, 9
# ggml's tensor types: id -> (name, elements per block, bytes per block), as gguf.constants'
# GGML_QUANT_SIZES gives them. Kept here so that a float file is read without importing
# gguf (a tenth of a second); an id missing here is looked up there (a newer type).
_TYPES: dict[int, tuple[str, int, int]] = {
    0: ("F32", 1, 4),
    1: ("F16", 1, 2),
    2: ("Q4_0", 32, 18),
    3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22),
    7: ("Q5_1", 32, 24),
    8: ("Q8_0", 32, 34),
    9: ("Q8_1", 32, 40),
    10: ("Q2_K", 256, 84),
    11: ("Q3_K", 256, 110),
    12: ("Q4_K", 256, 144),
    13: ("Q5_K", 256, 176),
    14: ("Q6_K", 256, 210),
    15: ("Q8_K", 256, 292),
    16: ("IQ2_XXS", 256, 66),
    17: ("IQ2_XS", 256, 74),
    18: ("IQ3_XXS", 256, 98),
    19: ("IQ1_S", 256, 50),
    20: ("IQ4_NL", 32, 18),
    21: ("IQ3_S", 256, 110),
    22: ("IQ2_S", 256, 82),
    23: ("IQ4_XS", 256, 136),
    24: ("I8", 1, 1),
    25: ("I16", 1, 2),
    26: ("I32", 1, 4),
    27: ("I64", 1, 8),
    28: ("F64", 1, 8),
    29: ("IQ1_M", 256, 56),
    30: ("BF16", 1, 2),
    34: ("TQ1_0", 256, 54),
    35: ("TQ2_0", 256, 66),
    39: ("MXFP4", 32, 17),
    40: ("NVFP4", 64, 36),
    41: ("Q1_0", 128, 18),
}
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dims: tuple[int, ...]  # ggml order: dims[0] is the fastest-varying (the row length)
    type_id: int
    offset: int  # from the start of the tensor data


@dataclass
class Header:
    path: Path
    size: int
    mtime_ns: int
    metadata: dict[str, Any]
    tensors: dict[str, TensorInfo]
    data_start: int


def not_gguf(path: Path, why: str) -> ModelNotFoundError:
    return ModelNotFoundError(f"{path} is not a usable GGUF file ({why})")


def is_whole(value: Any) -> bool:
    """An integer read from the file (a boolean is not one)."""
    return isinstance(value, int) and not isinstance(value, bool)


def describe(value: Any) -> str:
    """What a metadata value is, as an error says it: "a string", "an array of 3 numbers"."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "a whole number"
    if isinstance(value, float):
        return "a fractional number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, np.ndarray)):
        if len(value) == 0:
            return "an empty array"
        if isinstance(value, np.ndarray):
            noun = "boolean" if value.dtype == np.bool_ else "number"
        else:  # a list holds strings, or arrays (lists or numpy arrays)
            noun = "string" if isinstance(value[0], str) else "array"
        return f"an array of {len(value):,} {noun}{'' if len(value) == 1 else 's'}"
    return type(value).__name__


def wrong_shape(path: Path, key: str, value: Any, expected: str) -> ModelNotFoundError:
    """A metadata value of another shape than the key's (an array for a scalar, or the
    reverse, or another item type)."""
    return not_gguf(path, f"{key} is {describe(value)}, not {expected}")


def _overrun(path: Path, why: str) -> ModelNotFoundError:
    """A count or length in the header beyond the bytes the file has left."""
    return ModelNotFoundError(f"the GGUF file {path} is truncated or its header damaged ({why})")


def truncated(path: Path, detail: str) -> ModelNotFoundError:
    return binary.truncated(GGUF_FILE, path, detail)


class _Cursor:
    """Sequential reads of a header, in chunks, that never run past the file's end."""

    def __init__(self, handle: BinaryIO, path: Path, size: int) -> None:
        self.handle, self.path, self.size = handle, path, size
        self.buf = b""
        self.base = 0  # file offset of buf[0]
        self.pos = 0  # index into buf

    @property
    def offset(self) -> int:
        return self.base + self.pos

    @property
    def left(self) -> int:
        return self.size - self.offset

    def need(self, count: int) -> None:
        if self.pos + count <= len(self.buf):
            return
        if count > self.left:
            raise truncated(
                self.path, f"{self.size:,} bytes, its header runs past the end of the file"
            )
        rest = self.buf[self.pos :]
        want = max(count - len(rest), _CHUNK)
        parts = [rest]
        got = 0
        while got < count - len(rest):
            data = self.handle.read(want - got)
            if not data:
                raise truncated(self.path, "it ended before its header did")
            parts.append(data)
            got += len(data)
        self.base, self.buf, self.pos = self.offset, b"".join(parts), 0

    def take(self, count: int) -> bytes:
        self.need(count)
        data = self.buf[self.pos : self.pos + count]
        self.pos += count
        return data

    def overrun(self, what: str) -> ModelNotFoundError:
        return _overrun(
            self.path, f"{what} at byte {self.offset:,}, in a file of {self.size:,} bytes"
        )

    def u32(self) -> int:
        self.need(4)
        (value,) = _U32.unpack_from(self.buf, self.pos)
        self.pos += 4
        return int(value)

    def u64(self) -> int:
        self.need(8)
        (value,) = _U64.unpack_from(self.buf, self.pos)
        self.pos += 8
        return int(value)

    def string(self) -> str:
        length = self.u64()
        if length > self.left:
            raise self.overrun(f"a string of {length:,} bytes")
        return self.take(length).decode("utf-8", "replace")

    def strings(self, count: int) -> list[str]:
        """``count`` strings in a row, inlined: token lists hold hundreds of thousands."""
        out: list[str] = []
        append = out.append
        unpack = _U64.unpack_from
        for _ in range(count):
            if self.pos + 8 > len(self.buf):
                self.need(8)
            (length,) = unpack(self.buf, self.pos)
            end = self.pos + 8 + length
            if end > len(self.buf):
                if length > self.left - 8:
                    raise self.overrun(f"a string of {length:,} bytes")
                self.need(8 + length)
                end = self.pos + 8 + length
            append(self.buf[self.pos + 8 : end].decode("utf-8", "replace"))
            self.pos = end
        return out

    def value(self, kind: int, depth: int = 0) -> Any:
        code = _SCALARS.get(kind)
        if code is not None:
            size = struct.calcsize("<" + code)
            self.need(size)
            (value,) = struct.unpack_from("<" + code, self.buf, self.pos)
            self.pos += size
            return value
        if kind == _STRING:
            return self.string()
        if kind == _ARRAY:
            if depth >= _MAX_NESTING:
                raise not_gguf(
                    self.path, f"its metadata holds arrays nested more than {_MAX_NESTING} deep"
                )
            item, count = self.u32(), self.u64()
            return self._array(item, count, depth)
        raise not_gguf(self.path, f"unknown metadata value type {kind}")

    def _array(self, item: int, count: int, depth: int) -> Any:
        code = _SCALARS.get(item)
        # Each item takes at least one byte: a count beyond the bytes left is damage, refused
        # before any list or array of that length exists.
        least = struct.calcsize("<" + code) if code is not None else 8 if item == _STRING else 12
        if count * least > self.left:
            raise self.overrun(f"an array of {count:,} items")
        if code is not None:
            data = self.take(count * least)
            return np.frombuffer(data, dtype=np.dtype("<" + code) if code != "?" else np.bool_)
        if item == _STRING:
            return self.strings(count)
        return [self.value(item, depth + 1) for _ in range(count)]


def read_header(path: Path) -> Header:
    """A GGUF file's metadata and tensor table, every count checked against its size."""
    with open_regular(path) as handle:
        stat = os.fstat(handle.fileno())
        size = stat.st_size
        cursor = _Cursor(handle, path, size)
        magic = handle.read(4)
        cursor.base = 4
        if magic != _MAGIC:
            shown = repr(magic) if magic else "nothing"
            raise not_gguf(path, f"it starts with {shown}, not the magic b'GGUF'")
        raw_version = cursor.u32()
        if raw_version & 0xFFFF == 0 and raw_version:
            raise not_gguf(path, "it is a big-endian GGUF file, which tokneigh does not read")
        if raw_version not in _VERSIONS:
            raise not_gguf(path, f"GGUF version {raw_version}; tokneigh reads versions 2 and 3")
        tensor_count, kv_count = cursor.u64(), cursor.u64()
        # The smallest key-value pair takes 13 bytes (key length, type, a one-byte value); the
        # smallest tensor entry 24 (name length, dimension count, type, offset).
        if kv_count * 13 + tensor_count * 24 > cursor.left:
            raise _overrun(
                path,
                f"it claims {tensor_count:,} tensors and {kv_count:,} metadata entries, more "
                f"than {size:,} bytes can hold",
            )
        metadata: dict[str, Any] = {}
        for _ in range(kv_count):
            key = cursor.string()
            metadata[key] = cursor.value(cursor.u32())
        tensors: dict[str, TensorInfo] = {}
        for _ in range(tensor_count):
            name = cursor.string()
            n_dims = cursor.u32()
            if n_dims > _MAX_DIMS:
                raise not_gguf(path, f"tensor {name} has {n_dims:,} dimensions")
            dims = tuple(cursor.u64() for _ in range(n_dims))
            type_id, offset = cursor.u32(), cursor.u64()
            if name in tensors:
                raise not_gguf(path, f"it holds two tensors named {name}")
            tensors[name] = TensorInfo(name, dims, type_id, offset)
        alignment = metadata.get("general.alignment", _DEFAULT_ALIGNMENT)
        if not is_whole(alignment):
            raise wrong_shape(path, "general.alignment", alignment, "a whole number")
        if alignment < 1 or alignment & (alignment - 1):
            raise not_gguf(path, f"its alignment {alignment} is not a power of two")
        data_start = -(-cursor.offset // alignment) * alignment
    for name in (INPUT_TENSOR, OUTPUT_TENSOR):
        if name in tensors and ggml_type(tensors[name].type_id) is None:
            raise not_gguf(path, f"tensor {name} has the unknown type {tensors[name].type_id}")
    return Header(path, size, stat.st_mtime_ns, metadata, tensors, data_start)


def ggml_type(type_id: int) -> tuple[str, int, int] | None:
    """(name, elements per block, bytes per block) of a tensor type, None if unknown."""
    known = _TYPES.get(type_id)
    if known is not None:
        return known
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

    try:
        kind = GGMLQuantizationType(type_id)
        return (kind.name, *GGML_QUANT_SIZES[kind])
    except (ValueError, KeyError):
        return None


def known_type(type_id: int) -> tuple[str, int, int]:
    found = ggml_type(type_id)
    assert found is not None  # read_header refused the tensor otherwise
    return found


def type_name(type_id: int) -> str:
    return known_type(type_id)[0]


def bits_per_weight(type_id: int) -> float:
    _, block, size = known_type(type_id)
    return size * 8 / block
