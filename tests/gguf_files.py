"""GGUF files written from the offline test checkpoints, laid out as llama.cpp's
convert_hf_to_gguf.py lays them out (token list, types, scores or merges, phantom-space bert
vocabulary), with the ``gguf`` package's writer and quantizers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6


def checkpoint_tensor(folder: Path, suffix: str) -> np.ndarray:
    """The one safetensors tensor of a checkpoint whose name ends with ``suffix``, as float32."""
    from safetensors.numpy import load_file

    tensors = load_file(str(folder / "model.safetensors"))
    (name,) = [n for n in tensors if n.endswith(suffix)]
    return tensors[name].astype(np.float32)


def _vocab_by_id(folder: Path) -> tuple[list[str], dict[int, dict]]:
    data = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    vocab = dict(data["model"]["vocab"])
    added = {t["id"]: t for t in data.get("added_tokens", [])}
    for token_id, token in added.items():
        vocab.setdefault(token["content"], token_id)
    tokens = [""] * (max(vocab.values()) + 1)
    for token, token_id in vocab.items():
        tokens[token_id] = token
    return tokens, added


def _merges(folder: Path) -> list[str]:
    merges = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))["model"]["merges"]
    return [m if isinstance(m, str) else " ".join(m) for m in merges]


def gpt2_vocab(folder: Path) -> dict:
    tokens, added = _vocab_by_id(folder)
    types = [CONTROL if i in added and added[i]["special"] else NORMAL for i in range(len(tokens))]
    return {
        "model": "gpt2",
        "pre": "gpt2",
        "tokens": tokens,
        "types": types,
        "merges": _merges(folder),
        "arch": "gpt2",
    }


def llama_vocab(folder: Path, with_merges: bool = False) -> dict:
    """As from a SentencePiece tokenizer.model: scores rank the pieces by merge order (a BPE
    piece's score is minus its id), <unk> UNKNOWN, <s> </s> CONTROL, <0xNN> BYTE."""
    tokens, added = _vocab_by_id(folder)
    types, scores = [], []
    for i, token in enumerate(tokens):
        if token == "<unk>":
            types.append(UNKNOWN)
        elif i in added and added[i]["special"]:
            types.append(CONTROL)
        elif token.startswith("<0x") and token.endswith(">") and len(token) == 6:
            types.append(BYTE)
        else:
            types.append(NORMAL)
        scores.append(-float(i) if types[-1] == NORMAL else 0.0)
    out = {
        "model": "llama",
        "pre": "default",
        "tokens": tokens,
        "types": types,
        "scores": scores,
        "arch": "llama",
        "unk": 0,
    }
    if with_merges:
        out["merges"] = _merges(folder)
    return out


def bert_vocab(folder: Path) -> dict:
    """llama.cpp's bert vocabulary: "phantom space" form (``▁word``, ``ing`` for ``##ing``,
    bracketed tokens as is), special added tokens CONTROL."""
    tokens, added = _vocab_by_id(folder)

    def phantom(token: str) -> str:
        if token.startswith("[") and token.endswith("]"):
            return token
        if token.startswith("##"):
            return token[2:]
        return "\u2581" + token

    types = [CONTROL if i in added and added[i]["special"] else NORMAL for i in range(len(tokens))]
    return {
        "model": "bert",
        "pre": "default",
        "tokens": [phantom(t) for t in tokens],
        "types": types,
        "arch": "bert",
        "unk": tokens.index("[UNK]"),
    }


def write_gguf(
    path: Path,
    vocab: dict,
    matrix: np.ndarray,
    qtype: str = "F32",
    output: np.ndarray | None = None,
) -> Path:
    """A GGUF file holding ``vocab``'s tokenizer and ``matrix`` as token_embd.weight (and
    ``output`` as output.weight), stored as ``qtype`` (F32, F16, Q8_0, Q4_0, ...)."""
    import gguf

    writer = gguf.GGUFWriter(str(path), vocab["arch"])
    writer.add_name("test model")
    writer.add_tokenizer_model(vocab["model"])
    writer.add_tokenizer_pre(vocab["pre"])
    writer.add_token_list(vocab["tokens"])
    writer.add_token_types(vocab["types"])
    if "scores" in vocab:
        writer.add_token_scores(vocab["scores"])
    if "merges" in vocab:
        writer.add_token_merges(vocab["merges"])
    if "unk" in vocab:
        writer.add_unk_token_id(vocab["unk"])
    writer.add_embedding_length(int(matrix.shape[1]))
    for name, tensor in (("token_embd.weight", matrix), ("output.weight", output)):
        if tensor is not None:
            _add(writer, name, np.ascontiguousarray(tensor, dtype=np.float32), qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _add(writer, name: str, tensor: np.ndarray, qtype: str) -> None:
    import gguf

    kind = gguf.GGMLQuantizationType[qtype]
    if qtype == "F32":
        writer.add_tensor(name, tensor)
    elif qtype == "F16":
        writer.add_tensor(name, tensor.astype(np.float16))
    else:
        writer.add_tensor(name, gguf.quants.quantize(tensor, kind), raw_dtype=kind)


def quantized_reference(matrix: np.ndarray, qtype: str) -> np.ndarray:
    """What ``qtype`` storage makes of ``matrix``: quantized and dequantized whole by gguf."""
    import gguf

    if qtype == "F32":
        return matrix.astype(np.float32)
    if qtype == "F16":
        return matrix.astype(np.float16).astype(np.float32)
    kind = gguf.GGMLQuantizationType[qtype]
    return gguf.quants.dequantize(gguf.quants.quantize(matrix.astype(np.float32), kind), kind)


# --- GGUF files written byte by byte: any metadata shape, however wrong -----------------------

_SCALAR_TYPES = {bool: (7, "<?"), int: (5, "<i"), float: (6, "<f")}
_NUMPY_TYPES = {"uint8": 0, "int8": 1, "uint16": 2, "int16": 3, "uint32": 4, "int32": 5,
                "float32": 6, "bool": 7, "uint64": 10, "int64": 11, "float64": 12}  # fmt: skip


def _gguf_string(text: str) -> bytes:
    data = text.encode("utf-8")
    return len(data).to_bytes(8, "little") + data


def _gguf_value(value) -> tuple[int, bytes]:
    """(GGUF value type, encoded value) of a Python value: str, bool, int (int32), float
    (float32), a numpy array (a typed array), a list (an array of its first item's type, so
    lists of lists nest arrays)."""
    import struct

    if isinstance(value, str):
        return 8, _gguf_string(value)
    if isinstance(value, np.ndarray):
        kind = _NUMPY_TYPES[value.dtype.name]
        head = kind.to_bytes(4, "little") + len(value).to_bytes(8, "little")
        return 9, head + value.astype(value.dtype.newbyteorder("<")).tobytes()
    if isinstance(value, list):
        items = [_gguf_value(v) for v in value]
        kind = items[0][0] if items else 8
        head = kind.to_bytes(4, "little") + len(items).to_bytes(8, "little")
        return 9, head + b"".join(data for _, data in items)
    kind, code = _SCALAR_TYPES[type(value)]
    return kind, struct.pack(code, value)


def write_raw_gguf(path: Path, metadata: dict, matrix: np.ndarray | None = None) -> Path:
    """A GGUF file (version 3) holding ``metadata`` as given, shapes unchecked, and ``matrix``
    (float32) as token_embd.weight: for metadata the ``gguf`` writer would not write."""
    kvs = b""
    for key, value in metadata.items():
        kind, data = _gguf_value(value)
        kvs += _gguf_string(key) + kind.to_bytes(4, "little") + data
    tensors, blob = b"", b""
    if matrix is not None:
        rows, dim = matrix.shape
        tensors = (
            _gguf_string("token_embd.weight") + (2).to_bytes(4, "little")
            + dim.to_bytes(8, "little") + rows.to_bytes(8, "little")
            + (0).to_bytes(4, "little") + (0).to_bytes(8, "little")
        )  # fmt: skip
        blob = np.ascontiguousarray(matrix, dtype="<f4").tobytes()
    head = (
        b"GGUF" + (3).to_bytes(4, "little") + int(matrix is not None).to_bytes(8, "little")
        + len(metadata).to_bytes(8, "little") + kvs + tensors
    )  # fmt: skip
    path.write_bytes(head + b"\0" * (-len(head) % 32) + blob)
    return path


def llama_metadata(tokens: list[str], scores: list[float] | None = None, **extra) -> dict:
    """The metadata of a llama (SentencePiece-style) tokenizer over ``tokens``: all NORMAL,
    scored by file order unless ``scores`` are given; ``extra`` keys (dots as "__") added or
    replacing."""
    meta = {
        "general.architecture": "llama",
        "tokenizer.ggml.model": "llama",
        "tokenizer.ggml.tokens": tokens,
        "tokenizer.ggml.token_type": np.full(len(tokens), NORMAL, dtype=np.int32),
        "tokenizer.ggml.scores": np.asarray(
            scores if scores is not None else -np.arange(len(tokens)), dtype=np.float32
        ),
    }
    meta.update({key.replace("__", "."): value for key, value in extra.items()})
    return meta
