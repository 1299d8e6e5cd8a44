"""GGUF files (llama.cpp, Ollama, LM Studio): one embedding tensor and the tokenizer.

The header is parsed here with plain reads, not with the ``gguf`` package's reader: that one
memory-maps the file (a file truncated while it is read kills the process with SIGBUS, as
for safetensors in ``extract.py``) and trusts the counts it reads, so a damaged header can
make it allocate without bound. Every count and length is checked against the bytes the
file still has before anything is allocated. ``gguf`` is used only for its type table and its
dequantizers, one block of rows at a time into the float32 output: memory stays bounded by
the output matrix, never by the file.

The tokenizer is rebuilt from the file's metadata with ``tokenizers`` alone (no
transformers, no torch: a cold build costs what a safetensors one does): byte-level BPE for
llama.cpp's ``gpt2`` model, SentencePiece-style BPE for ``llama``, WordPiece for ``bert``.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from .. import reporting
from ..errors import ModelNotFoundError, TiedEmbeddings
from ..reporting import Report
from ..sources.models import ModelSource, local_fingerprint
from .extract import Extracted, matrix_digest

INPUT_TENSOR = "token_embd.weight"
OUTPUT_TENSOR = "output.weight"
_MAGIC = b"GGUF"
_VERSIONS = (2, 3)  # version 1 had 32-bit counts and is long gone
_DEFAULT_ALIGNMENT = 32
_MAX_DIMS = 4  # GGML_MAX_DIMS
_MAX_NESTING = 8  # arrays of arrays: no real file nests; a deep one is damage
_CHUNK = 4 << 20  # header bytes read at a time
_ROWS_BYTES = 8 << 20  # tensor bytes dequantized at a time

# llama.cpp's token types (gguf.TokenType), as llama.cpp and transformers read them.
_NORMAL, _UNKNOWN, _CONTROL, _USER_DEFINED, _UNUSED, _BYTE = 1, 2, 3, 4, 5, 6

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


def _not_gguf(path: Path, why: str) -> ModelNotFoundError:
    return ModelNotFoundError(f"{path} is not a usable GGUF file ({why})")


def _overrun(path: Path, why: str) -> ModelNotFoundError:
    """A count or length in the header beyond the bytes the file has left."""
    return ModelNotFoundError(f"the GGUF file {path} is truncated or its header damaged ({why})")


def _truncated(path: Path, detail: str) -> ModelNotFoundError:
    return ModelNotFoundError(
        f"the GGUF file {path} is truncated or changed while it was read ({detail})"
    )


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
            raise _truncated(
                self.path, f"{self.size:,} bytes, its header runs past the end of the file"
            )
        rest = self.buf[self.pos :]
        want = max(count - len(rest), _CHUNK)
        parts = [rest]
        got = 0
        while got < count - len(rest):
            data = self.handle.read(want - got)
            if not data:
                raise _truncated(self.path, "it ended before its header did")
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
        if kind == _ARRAY and depth < _MAX_NESTING:
            item, count = self.u32(), self.u64()
            return self._array(item, count, depth)
        raise _not_gguf(self.path, f"unknown metadata value type {kind}")

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
    with open(path, "rb") as handle:
        stat = os.fstat(handle.fileno())
        size = stat.st_size
        cursor = _Cursor(handle, path, size)
        magic = handle.read(4)
        cursor.base = 4
        if magic != _MAGIC:
            shown = repr(magic) if magic else "nothing"
            raise _not_gguf(path, f"it starts with {shown}, not the magic b'GGUF'")
        raw_version = cursor.u32()
        if raw_version & 0xFFFF == 0 and raw_version:
            raise _not_gguf(path, "it is a big-endian GGUF file, which tokneigh does not read")
        if raw_version not in _VERSIONS:
            raise _not_gguf(path, f"GGUF version {raw_version}; tokneigh reads versions 2 and 3")
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
                raise _not_gguf(path, f"tensor {name} has {n_dims:,} dimensions")
            dims = tuple(cursor.u64() for _ in range(n_dims))
            type_id, offset = cursor.u32(), cursor.u64()
            if name in tensors:
                raise _not_gguf(path, f"it holds two tensors named {name}")
            tensors[name] = TensorInfo(name, dims, type_id, offset)
        alignment = metadata.get("general.alignment", _DEFAULT_ALIGNMENT)
        if not isinstance(alignment, int) or alignment < 1 or alignment & (alignment - 1):
            raise _not_gguf(path, f"its alignment {alignment!r} is not a power of two")
        data_start = -(-cursor.offset // alignment) * alignment
    for name in (INPUT_TENSOR, OUTPUT_TENSOR):
        if name in tensors and ggml_type(tensors[name].type_id) is None:
            raise _not_gguf(path, f"tensor {name} has the unknown type {tensors[name].type_id}")
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


def _known_type(type_id: int) -> tuple[str, int, int]:
    found = ggml_type(type_id)
    assert found is not None  # read_header refused the tensor otherwise
    return found


def type_name(type_id: int) -> str:
    return _known_type(type_id)[0]


def bits_per_weight(type_id: int) -> float:
    _, block, size = _known_type(type_id)
    return size * 8 / block


_FLOAT_TYPES = {"F32": "<f4", "F16": "<f2", "BF16": "<u2", "F64": "<f8"}  # BF16: raw bits
_INTEGER_TYPES = ("I8", "I16", "I32", "I64")


def read_matrix(header: Header, name: str, report: Report) -> np.ndarray:
    """One 2-D tensor as a float32 (rows, dim) matrix, read and dequantized in blocks of rows."""
    path = header.path
    info = header.tensors[name]
    kind, block, block_bytes = _known_type(info.type_id)
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
        raise _not_gguf(path, f"the rows of {name} ({dim:,}) are not whole {kind} blocks")
    row_bytes = dim // block * block_bytes
    begin = header.data_start + info.offset
    end = begin + rows * row_bytes
    if end > header.size:
        raise _truncated(
            path, f"{header.size:,} bytes, its header places {name} up to byte {end:,}"
        )
    report(reporting.info(f"reading {name} ({kind}) from {path.name}"))
    out = np.empty((rows, dim), dtype=np.float32)
    step = max(1, _ROWS_BYTES // row_bytes)
    direct = kind == "F32"  # read straight into the output, no copy
    scratch = bytearray(0 if direct else min(rows, step) * row_bytes)
    with open(path, "rb", buffering=0) as handle:
        before = os.fstat(handle.fileno())
        if (before.st_size, before.st_mtime_ns) != (header.size, header.mtime_ns):
            raise _truncated(path, "it was rewritten after its header was read")
        handle.seek(begin)
        for start in range(0, rows, step):
            count = min(step, rows - start)
            if direct:
                target = out[start : start + count].reshape(-1).view(np.uint8).data
            else:
                target = memoryview(scratch)[: count * row_bytes]
            _read_into(handle, target, path, name)
            if direct:
                continue
            raw = np.frombuffer(target, dtype=np.uint8)
            out[start : start + count] = _decode(raw, kind, info.type_id, count, dim)
        after = os.fstat(handle.fileno())
    if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
        raise _truncated(path, f"it was rewritten while {name} was read")
    return out


def _read_into(handle: BinaryIO, target: memoryview, path: Path, name: str) -> None:
    got = 0
    while got < len(target):
        count = handle.readinto(target[got:])  # type: ignore[attr-defined]
        if not count:
            raise _truncated(path, f"{name} ends early")
        got += count


def _decode(raw: np.ndarray, kind: str, type_id: int, rows: int, dim: int) -> np.ndarray:
    if kind in _FLOAT_TYPES:
        values = raw.view(np.dtype(_FLOAT_TYPES[kind])).reshape(rows, dim)
        if kind == "BF16":  # bfloat16 is the top half of a float32
            return (values.astype(np.uint32) << 16).view(np.float32)
        return values
    from gguf.constants import GGMLQuantizationType
    from gguf.quants import dequantize

    try:
        return dequantize(raw.reshape(rows, -1), GGMLQuantizationType(type_id))
    except NotImplementedError as exc:
        raise ModelNotFoundError(
            f"tensor type {kind} cannot be dequantized by the installed gguf package"
        ) from exc


# --- the tokenizer -----------------------------------------------------------------------

_LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_TEKKEN_SPLIT = (
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+"
    r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*"
    r"|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_GPT4O_SPLIT = (
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+"
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
    r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*"
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
    r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
# tokenizer.ggml.pre -> how llama.cpp splits text before BPE (llama-vocab.cpp), and whether
# a word that is itself a token skips the merges (its ignore_merges). The same table as
# transformers' GGUF loader; any other value splits as GPT-2 does, with a note.
_SPLITS: dict[str, tuple[str, bool]] = {
    **{
        name: (_LLAMA3_SPLIT, True)
        for name in ("llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral")
    },
    **{name: (_LLAMA3_SPLIT, False) for name in ("midm-2.0", "lfm2", "dbrx", "smaug-bpe")},
    "tekken": (_TEKKEN_SPLIT, True),
    **{name: (_QWEN2_SPLIT, False) for name in ("qwen2", "deepseek-r1-qwen", "megrez")},
    **{name: (_GPT4O_SPLIT, True) for name in ("gpt-4o", "llama4", "minimax-m2")},
}
_GPT2_SPLITS = ("gpt2", "default", "")

KNOWN_MODELS = ("gpt2", "llama", "bert")


@dataclass
class GGUFTokenizer:
    tokenizer_json: str
    special_ids: list[int]
    size: int


def build_tokenizer(header: Header, report: Report) -> GGUFTokenizer:
    """The file's tokenizer as a tokenizer.json, and the ids to hide (control, unknown and
    unused tokens)."""
    meta = header.metadata
    path = header.path
    model = meta.get("tokenizer.ggml.model")
    tokens = meta.get("tokenizer.ggml.tokens")
    if not isinstance(model, str) or not isinstance(tokens, list) or not tokens:
        raise ModelNotFoundError(f"{path} holds no tokenizer (tokenizer.ggml.model and .tokens)")
    types = _array_of(meta, "tokenizer.ggml.token_type", len(tokens), path)
    if types is None:
        types = np.full(len(tokens), _NORMAL, dtype=np.int32)
    if model == "gpt2":
        tokenizer = _byte_level(meta, tokens, types, path, report)
    elif model == "llama":
        tokenizer = _sentencepiece(meta, tokens, types, path)
    elif model == "bert":
        tokenizer = _wordpiece(meta, tokens, types)
    else:
        raise ModelNotFoundError(
            f"{path}: its tokenizer model {model!r} is not one tokneigh can build "
            f"(it builds {', '.join(KNOWN_MODELS)})"
        )
    # Built here with no padding or truncation: nothing for extract._clean_tokenizer to clean
    # (it would parse the whole tokenizer twice more).
    special = {i for i, t in tokenizer.get_added_tokens_decoder().items() if t.special}
    hidden = special | {int(i) for i in np.flatnonzero(types == _UNUSED)}
    size = int(tokenizer.get_vocab_size(with_added_tokens=True))
    return GGUFTokenizer(tokenizer.to_str(), sorted(hidden), size)


def _array_of(meta: dict[str, Any], key: str, count: int, path: Path) -> np.ndarray | None:
    value = meta.get(key)
    if value is None:
        return None
    if not isinstance(value, np.ndarray) or value.ndim != 1 or len(value) != count:
        raise ModelNotFoundError(
            f"{path}: {key} does not give one number for each of the {count:,} tokens"
        )
    return value


def _added(tokenizer: Any, tokens: list[str], types: np.ndarray, vocab: dict[str, int]) -> None:
    """Control and unknown tokens as special added tokens, user-defined ones as plain added
    tokens (matched whole, as llama.cpp does), each only when the vocabulary holds it as
    spelled: an added token the vocabulary lacks would get an id past the matrix."""
    from tokenizers import AddedToken

    def pick(wanted: tuple[int, ...]) -> list[Any]:
        return [
            AddedToken(t, special=kind != _USER_DEFINED, normalized=False)
            for t, kind in zip(tokens, types.tolist())
            if kind in wanted and vocab.get(t) is not None
        ]

    special = pick((_CONTROL, _UNKNOWN))
    if special:
        tokenizer.add_special_tokens(special)
    plain = pick((_USER_DEFINED,))
    if plain:
        tokenizer.add_tokens(plain)


def _byte_level(
    meta: dict[str, Any], tokens: list[str], types: np.ndarray, path: Path, report: Report
) -> Any:
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

    from ..tokens.display import byte_decoder

    alphabet = set(byte_decoder())
    spelling = {byte: char for char, byte in byte_decoder().items()}
    # A token written in raw text (an added token like "<think>" is already in the alphabet;
    # one with spaces is not) is spelled in GPT-2's byte alphabet, as the merges spell it.
    spelled = [
        t if set(t) <= alphabet else "".join(spelling[b] for b in t.encode("utf-8")) for t in tokens
    ]
    vocab = _vocab(spelled)
    merges_raw = meta.get("tokenizer.ggml.merges")
    if not isinstance(merges_raw, list):
        raise ModelNotFoundError(f"{path}: its gpt2 tokenizer has no tokenizer.ggml.merges")
    merges = [tuple(m.split(" ", 1)) for m in merges_raw if " " in m]
    pre = meta.get("tokenizer.ggml.pre", "")
    pre = pre if isinstance(pre, str) else ""
    split, ignore_merges = _SPLITS.get(pre, (None, False))
    bpe = models.BPE(vocab=vocab, merges=merges, ignore_merges=ignore_merges)
    tokenizer = Tokenizer(bpe)
    if split is None:
        if pre not in _GPT2_SPLITS:
            report(
                reporting.note(
                    f"{path.name} names the pre-tokenizer {pre!r}, which tokneigh does not "
                    "know; it splits text as GPT-2 does (a few tokenizations may differ)"
                )
            )
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    else:
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(split), behavior="isolated"),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            ]
        )
    tokenizer.decoder = decoders.ByteLevel()
    _added(tokenizer, tokens, types, vocab)
    return tokenizer


def _vocab(tokens: list[str]) -> dict[str, int]:
    vocab: dict[str, int] = {}
    for index, token in enumerate(tokens):
        vocab.setdefault(token, index)  # a repeated token keeps its first id
    return vocab


def _sentencepiece(meta: dict[str, Any], tokens: list[str], types: np.ndarray, path: Path) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    if str(meta.get("general.architecture", "")).startswith("gemma"):
        # Gemma files store a token of spaces as real spaces; its merges spell them "▁".
        tokens = ["▁" * len(t) if t and not t.strip(" ") else t for t in tokens]
    vocab = _vocab(tokens)
    merges_raw = meta.get("tokenizer.ggml.merges")
    if isinstance(merges_raw, list):
        merges = [tuple(m.split(" ", 1)) for m in merges_raw if " " in m]
    else:
        scores = _array_of(meta, "tokenizer.ggml.scores", len(tokens), path)
        if scores is None:
            raise ModelNotFoundError(
                f"{path}: its llama tokenizer has neither merges nor token scores"
            )
        if str(meta.get("general.architecture", "")).startswith("gemma"):
            scores = -np.arange(len(tokens), dtype=np.float64)  # Gemma: file order is merge order
        merges = _merges_from_scores(tokens, scores, types, vocab)
    unk_id = meta.get("tokenizer.ggml.unknown_token_id")
    unk = tokens[unk_id] if isinstance(unk_id, int) and 0 <= unk_id < len(tokens) else None
    if unk is None and "<unk>" in vocab:
        unk = "<unk>"
    bpe = models.BPE(vocab=vocab, merges=merges, unk_token=unk, fuse_unk=True, byte_fallback=True)
    tokenizer = Tokenizer(bpe)
    prefix = meta.get("tokenizer.ggml.add_space_prefix", True)
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(
        replacement="▁", prepend_scheme="first" if prefix else "never", split=False
    )
    tokenizer.decoder = decoders.Sequence(
        [
            decoders.Replace("▁", " "),
            decoders.ByteFallback(),
            decoders.Fuse(),
            *([decoders.Strip(" ", 1, 0)] if prefix else []),
        ]
    )
    _added(tokenizer, tokens, types, vocab)
    return tokenizer


def _merges_from_scores(
    tokens: list[str], scores: np.ndarray, types: np.ndarray, vocab: dict[str, int]
) -> list[tuple[str, str]]:
    """The merges a SentencePiece vocabulary implies: llama.cpp joins the adjacent pair whose
    joined piece scores highest, so every split of a piece into two pieces of the vocabulary
    is a merge, ranked by the joined piece's score (ties: lower ids first)."""
    ranked = []
    mergeable = (types == _NORMAL) | (types == _USER_DEFINED)
    for index in np.flatnonzero(mergeable).tolist():
        piece = tokens[index]
        for cut in range(1, len(piece)):
            left, right = piece[:cut], piece[cut:]
            left_id, right_id = vocab.get(left), vocab.get(right)
            if left_id is not None and right_id is not None:
                ranked.append((-float(scores[index]), index, left_id, right_id, left, right))
    ranked.sort()
    return [(left, right) for *_, left, right in ranked]


def _wordpiece(meta: dict[str, Any], tokens: list[str], types: np.ndarray) -> Any:
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers

    # llama.cpp's bert vocabulary is in "phantom space" form: "▁word" starts a word, a
    # continuation has no "##", a bracketed token ([CLS], [unused3]) is kept as is.
    pieces = [_wordpiece_form(t) for t in tokens]
    vocab = _vocab(pieces)
    unk_id = meta.get("tokenizer.ggml.unknown_token_id")
    unk = pieces[unk_id] if isinstance(unk_id, int) and 0 <= unk_id < len(pieces) else "[UNK]"
    tokenizer = Tokenizer(
        models.WordPiece(vocab=vocab, unk_token=unk, max_input_chars_per_word=100)
    )
    # llama.cpp lower-cases every bert vocabulary, so the uncased BERT normalizer.
    tokenizer.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True
    )
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    _added(tokenizer, pieces, types, vocab)
    return tokenizer


def _wordpiece_form(token: str) -> str:
    if token.startswith("▁"):
        return token[1:] or token
    if len(token) > 1 and token.startswith("[") and token.endswith("]"):
        return token
    return "##" + token


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
    matrix = read_matrix(header, name, report)
    fingerprint["matrix_sha256"] = matrix_digest(matrix)
    return Extracted(
        matrix=matrix,
        tokenizer_json=tokenizer.tokenizer_json,
        special_ids=tokenizer.special_ids,
        tensor=name,
        resolved=str(path),
        fingerprint=fingerprint,
        quantization={name: kind},
    )
