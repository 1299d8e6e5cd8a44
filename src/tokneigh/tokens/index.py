"""``tokenizer.index``: what a cached query needs of its tokenizer, without parsing it.

``tokenizers.Tokenizer.from_str`` parses the whole ``tokenizer.json`` (3.5 MB for GPT-2) and
builds its merge table: 100-200 ms, longer than everything else a cached query does. A query
needs far less: the stored string of a few dozen token ids, and the tokens of a short text.
The index keeps, beside ``tokenizer.json``:

- the stored string of every token id (one UTF-8 blob and its offsets), for any tokenizer;
- when the builder supplies them (``tokens.write_index`` does), every token's display (text
  and label) and the ids hidden from neighbour lists, under a display key that the reader
  compares with its own rules;
- for GPT-2-style byte-level BPE only, the merge table of ``bpe.BpeEncoder``, and only if
  that encoder reproduced the real tokenizer on every probe (``bpe.agrees``): otherwise the
  index is written without it and encoding always goes to ``tokenizers``.

The container is a safetensors file: 1-D arrays, and string metadata that binds the index to
the exact bytes of ``tokenizer.json`` (size and CRC-32) and to the installed ``tokenizers``
binary. A reader ignores an index whose binding, version or layout does not match.
"""

from __future__ import annotations

import contextlib
import json
import os
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from . import bpe

INDEX = "tokenizer.index"
VERSION = 3  # 3: safetensors container (2 was tokneigh's own binary layout)
_FORMAT = "tokneigh-tokenizer-index"

# How the builder displays one token: (text, label, hidden) for an id and its stored string.
Describe = Callable[[int, "str | None"], "tuple[str, str, bool]"]


def source_print(data: bytes) -> tuple[int, int]:
    """What binds an index to the bytes of a ``tokenizer.json``: their size and CRC-32."""
    return len(data), zlib.crc32(data)


def _library_fingerprint() -> list[Any]:
    """Size and mtime of the installed ``tokenizers`` binary, without importing it: another
    build may tokenize differently, and the stored BPE answers were checked against this one."""
    import importlib.util

    spec = importlib.util.find_spec("tokenizers")
    if spec is None or spec.origin is None:
        return []
    folder = Path(spec.origin).parent
    prints: list[Any] = []
    with contextlib.suppress(OSError):
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            if entry.name.endswith((".so", ".pyd")):
                stat = entry.stat()
                prints.append([entry.name, stat.st_size, stat.st_mtime_ns])
    return prints


def _binding(source: tuple[int, int]) -> dict[str, str]:
    """The metadata a reader must find unchanged for the index to be used."""
    return {
        "format": _FORMAT,
        "version": str(VERSION),
        "library": json.dumps(_library_fingerprint()),
        "source": json.dumps(list(source)),
    }


def _array(
    arrays: Mapping[str, np.ndarray], name: str, dtype: Any, length: int | None = None
) -> memoryview:
    """A stored 1-D array as a memoryview (indexing gives Python ints, and costs less than
    indexing numpy), checked for type and length: a damaged index must fail here, not later."""
    value = arrays[name]
    if value.dtype != np.dtype(dtype) or value.ndim != 1:
        raise ValueError(f"section {name} has the wrong type")
    if length is not None and len(value) != length:
        raise ValueError(f"section {name} has the wrong length")
    return np.ascontiguousarray(value).data


class TokenIndex:
    """Token strings and displays by id, and (when verified) fast encoding of ASCII text."""

    def __init__(self, meta: Mapping[str, str], arrays: Mapping[str, np.ndarray]) -> None:
        self.size: int = int(meta["size"])
        self._count: int = int(meta["count"])  # ids 0..count-1 have an entry (maybe unnamed)
        self._offsets = _array(arrays, "offsets", np.uint32, self._count + 1)
        self._blob = _array(arrays, "blob", np.uint8)  # str(slice, "utf-8"): no copy of all
        if self._offsets[-1] != len(self._blob):
            raise ValueError("offsets do not match the blob")
        self._missing = frozenset(_array(arrays, "missing", np.uint32).tolist())
        # What the stored displays were made under (tokens.write_index); None: no displays.
        self.display_key: Any = None
        self.hidden: frozenset[int] = frozenset()
        if "display_key" in meta:
            self.display_key = json.loads(meta["display_key"])
            self._shown_offsets = _array(arrays, "shown_offsets", np.uint32, 2 * self._count + 1)
            self._shown_blob = _array(arrays, "shown_blob", np.uint8)
            if self._shown_offsets[-1] != len(self._shown_blob):
                raise ValueError("display offsets do not match their blob")
            self.hidden = frozenset(_array(arrays, "hidden", np.uint32).tolist())
        self._encoder: bpe.BpeEncoder | None = None
        if "bpe_added" in meta:
            keys = _array(arrays, "bpe_keys", np.int64)
            self._encoder = bpe.BpeEncoder(
                _array(arrays, "bpe_byte_ids", np.uint32, 256).tolist(),
                keys,
                _array(arrays, "bpe_values", np.int64, len(keys)),
                json.loads(meta["bpe_added"]),
            )

    @property
    def count(self) -> int:
        """How many ids have an entry: ``shown`` and ``hidden`` cover ids below this."""
        return self._count

    @property
    def can_encode(self) -> bool:
        """Whether the index holds a (verified) fast encoder."""
        return self._encoder is not None

    def raw(self, token_id: int) -> str | None:
        """The token as stored in the vocabulary (``Tokenizer.id_to_token``), None if unnamed."""
        if not 0 <= token_id < self._count or token_id in self._missing:
            return None
        return str(self._blob[self._offsets[token_id] : self._offsets[token_id + 1]], "utf-8")

    def shown(self, token_id: int) -> tuple[str, str] | None:
        """The stored (text, label) of a token, or None (no displays, or an id past the end)."""
        if self.display_key is None or not 0 <= token_id < self._count:
            return None
        at = self._shown_offsets
        blob = self._shown_blob
        i = 2 * token_id
        return str(blob[at[i] : at[i + 1]], "utf-8"), str(blob[at[i + 1] : at[i + 2]], "utf-8")

    def encode(self, text: str) -> list[int] | None:
        """The ids the real tokenizer gives ``text``, or None when this index cannot tell."""
        if self._encoder is None:
            return None
        return self._encoder.encode(text)


# --- reading -----------------------------------------------------------------------------


def open_index(tokenizer_path: Path, source: bytes | None = None) -> TokenIndex | None:
    """The index beside ``tokenizer_path`` if it exists and was built from exactly ``source``
    (the bytes of ``tokenizer.json``; read from ``tokenizer_path`` when not given) by this
    version with this ``tokenizers`` binary; else None. Everything is read into memory: the
    index stays usable if its file is deleted."""
    from safetensors import safe_open

    path = Path(tokenizer_path).parent / INDEX
    try:
        if source is None:
            source = Path(tokenizer_path).read_bytes()
        with safe_open(str(path), framework="numpy") as stored:
            meta = stored.metadata() or {}
            binding = _binding(source_print(source))
            if any(meta.get(key) != value for key, value in binding.items()):
                return None  # stale: check before copying any array out
            arrays = {name: stored.get_tensor(name) for name in stored.keys()}
        return TokenIndex(meta, arrays)
    except Exception:  # missing, unreadable or damaged (SafetensorError is a bare Exception)
        return None


# --- building ----------------------------------------------------------------------------


def _offsets(pieces: list[bytes]) -> np.ndarray:
    lengths = np.fromiter((len(p) for p in pieces), dtype=np.int64, count=len(pieces))
    offsets = np.zeros(len(pieces) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    if offsets[-1] > np.iinfo(np.uint32).max:
        raise ValueError("token strings too long for the index")
    return offsets.astype(np.uint32)


def _bytes_array(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype=np.uint8).copy()


def build_index(
    tokenizer: Any, source: tuple[int, int], display: tuple[Any, Describe] | None = None
) -> tuple[TokenIndex, bytes]:
    """An index for ``tokenizer`` (a ``tokenizers.Tokenizer``), and the file content to store.

    ``source`` is the ``source_print`` of the very bytes ``tokenizer`` was parsed from.
    ``display`` is (key, describe): ``describe`` is applied to every id and its answers are
    stored; the key (JSON) records what they depend on, for the reader to compare. The fast
    encoder is kept only if it agrees with ``tokenizer`` on every probe.
    """
    from safetensors.numpy import load, save

    size = tokenizer.get_vocab_size(with_added_tokens=True)
    ids = tokenizer.get_vocab(with_added_tokens=True).values()
    count = max(max(ids, default=-1) + 1, size)
    raw = [tokenizer.id_to_token(i) for i in range(count)]
    encoded = [(s or "").encode("utf-8") for s in raw]
    meta = {**_binding(source), "size": str(size), "count": str(count)}
    arrays: dict[str, np.ndarray] = {
        "offsets": _offsets(encoded),
        "blob": _bytes_array(b"".join(encoded)),
        "missing": np.array([i for i, s in enumerate(raw) if s is None], dtype=np.uint32),
    }
    if display is not None:
        key, describe = display
        pieces: list[bytes] = []
        hidden: list[int] = []
        for token_id, stored in enumerate(raw):
            text, label, is_hidden = describe(token_id, stored)
            pieces += (text.encode("utf-8"), label.encode("utf-8"))
            if is_hidden:
                hidden.append(token_id)
        meta["display_key"] = json.dumps(key)
        arrays["shown_offsets"] = _offsets(pieces)
        arrays["shown_blob"] = _bytes_array(b"".join(pieces))
        arrays["hidden"] = np.array(hidden, dtype=np.uint32)

    encoder = bpe.encoder_for(json.loads(tokenizer.to_str()))
    if encoder is not None:
        meta["bpe_added"] = json.dumps(list(encoder.added))
        arrays["bpe_byte_ids"] = np.array(encoder.byte_ids, dtype=np.uint32)
        arrays["bpe_keys"] = np.array(encoder.keys, dtype=np.int64)
        arrays["bpe_values"] = np.array(encoder.values, dtype=np.int64)
    data = save(arrays, metadata=meta)
    index = TokenIndex(meta, load(data))  # the very bytes to be stored, read back
    # Verified or nothing: an encoder that gets one probe wrong is not stored at all.
    if index._encoder is not None and not bpe.agrees(index._encoder, tokenizer, raw):
        del meta["bpe_added"]
        for name in ("bpe_byte_ids", "bpe_keys", "bpe_values"):
            del arrays[name]
        data = save(arrays, metadata=meta)
        index = TokenIndex(meta, load(data))
    return index, data


def save_index(tokenizer_path: Path, data: bytes) -> None:
    """Store index content beside ``tokenizer_path`` atomically (a scratch file, then
    ``os.replace``), so a reader sees the old index or the new one, never a part. Raises
    OSError on failure, after removing the scratch file."""
    import uuid  # here: uuid costs a cached query (which never writes) a millisecond

    folder = Path(tokenizer_path).parent
    # The scratch name matches cache._ENTRY_SCRATCH_FILE: the cache tolerates it in an entry.
    scratch = folder / f".{INDEX}.{uuid.uuid4().hex}.tmp"
    try:
        scratch.write_bytes(data)
        os.replace(scratch, folder / INDEX)
    except BaseException:
        with contextlib.suppress(OSError):
            scratch.unlink()
        raise
