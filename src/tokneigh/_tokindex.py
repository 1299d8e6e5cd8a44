"""A fast-loading index of a cached tokenizer, so that a cached query need not parse it.

``tokenizers.Tokenizer.from_file`` parses the whole ``tokenizer.json`` (1.5 MB for GPT-2) and
builds its merge table: 100-200 ms, holding the GIL, longer than everything else a cached
query does. A query needs far less: the stored string of a few dozen token ids, and the
tokens of a short text. This module keeps both in ``tokenizer.index`` beside ``tokenizer.json``:

- the stored string of every token id (one UTF-8 blob and its offsets), for any tokenizer;
- when the caller supplies it (``TokenCodec`` does), how every token is displayed (its text and
  label) and which ids are hidden from neighbour lists, so that a batch of queries showing
  twenty thousand neighbours slices strings instead of decoding each token;
- for GPT-2-style byte-level BPE only, the merge table as sorted ``(left, right)`` id pairs,
  and a Python port of the ``tokenizers`` BPE merge loop. It encodes only printable-ASCII text
  that holds no added token (``<|endoftext|>``); anything else, and every other tokenizer
  family, goes to the real ``tokenizers`` library.

The index is derived data, written (atomically) by the first process that opens the entry, and
bound to the exact bytes of ``tokenizer.json`` (size and CRC-32) and to the installed
``tokenizers`` binary: if either changes, the index is ignored and rebuilt. Before the BPE part
is written, it must reproduce the real tokenizer on a few thousand probe strings; if it does
not, the index keeps only the token strings and encoding always uses ``tokenizers``.
tests/test_hot_path.py checks the equivalence on many more strings.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import os
import re
import sys
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

INDEX = "tokenizer.index"
_MAGIC = b"TKNIDX\x00\x01"
_VERSION = 2

# GPT-2's pre-tokenizer pattern ('s|'t|...| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)
# restricted to printable ASCII, the only text the fast path accepts: there \p{L} is A-Za-z,
# \p{N} is 0-9 and \s is the space, so `re` and Oniguruma split identically.
_GPT2_PATTERN = re.compile(
    r"""'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+"""
)
_POST_PROCESSORS_KEEPING_IDS = {"ByteLevel", "TemplateProcessing", "RobertaProcessing"}


def _library_fingerprint() -> list[Any]:
    """Size and mtime of the installed ``tokenizers`` binary, without importing it."""
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


def _source_print(tokenizer_path: Path) -> tuple[int, int]:
    return source_print(tokenizer_path.read_bytes())


# How the caller displays one token: (text, label, hidden) for an id and its stored string.
Describe = Callable[[int, "str | None"], "tuple[str, str, bool]"]


class TokenIndex:
    """Token strings by id, and (when verified) GPT-2 byte-level BPE encoding of ASCII text."""

    def __init__(self, header: dict[str, Any], data: bytes | memoryview) -> None:
        view = memoryview(data)
        sections = header["sections"]

        def section(name: str, fmt: str) -> memoryview:
            start, length = sections[name]
            if start < 0 or length < 0 or start + length > len(view):
                raise ValueError(f"section {name} out of bounds")
            return view[start : start + length].cast(fmt)

        self.size: int = header["size"]
        self._count: int = header["count"]  # ids 0..count-1 have an entry (maybe unnamed)
        self._missing = frozenset(header["missing"])
        self._offsets = section("offsets", "I")
        self._blob = bytes(section("blob", "B"))  # bytes: slicing gives bytes directly
        if len(self._offsets) != self._count + 1 or self._offsets[-1] != len(self._blob):
            raise ValueError("offsets do not match the blob")
        display = header.get("display")
        # What the stored displays were made under (see build_index); None: no displays.
        self.display_key: Any = None if display is None else display["key"]
        self.hidden: frozenset[int] = frozenset()
        if display is not None:
            self._shown_offsets = section("shown_offsets", "I")
            self._shown_blob = bytes(section("shown_blob", "B"))
            if (
                len(self._shown_offsets) != 2 * self._count + 1
                or self._shown_offsets[-1] != len(self._shown_blob)
            ):
                raise ValueError("display offsets do not match their blob")
            self.hidden = frozenset(section("hidden", "I"))
        bpe = header.get("bpe")
        self._byte_ids: list[int] | None = None
        if bpe is not None:
            self._byte_ids = list(bpe["byte_ids"])
            self._added: tuple[str, ...] = tuple(bpe["added"])
            self._keys = section("merge_keys", "q")
            self._values = section("merge_values", "q")
            if len(self._byte_ids) != 256 or len(self._keys) != len(self._values):
                raise ValueError("malformed merge table")
            self._pairs: dict[int, tuple[int, int] | None] = {}

    @property
    def count(self) -> int:
        """How many ids have an entry: ``shown`` and ``hidden`` cover ids below this."""
        return self._count

    @property
    def can_encode(self) -> bool:
        return self._byte_ids is not None

    # --- token strings --------------------------------------------------------------------

    def raw(self, token_id: int) -> str | None:
        """The token as stored in the vocabulary (``Tokenizer.id_to_token``), None if unnamed."""
        if not 0 <= token_id < self._count or token_id in self._missing:
            return None
        return self._blob[self._offsets[token_id] : self._offsets[token_id + 1]].decode("utf-8")

    def shown(self, token_id: int) -> tuple[str, str] | None:
        """The stored (text, label) of a token, or None (no displays, or an id past the end)."""
        if self.display_key is None or not 0 <= token_id < self._count:
            return None
        at = self._shown_offsets
        blob = self._shown_blob
        i = 2 * token_id
        return blob[at[i] : at[i + 1]].decode("utf-8"), blob[at[i + 1] : at[i + 2]].decode("utf-8")

    # --- encoding -------------------------------------------------------------------------

    def encode(self, text: str) -> list[int] | None:
        """The ids the real tokenizer gives ``text``, or None when this index cannot tell."""
        if self._byte_ids is None or not (text.isascii() and text.isprintable()):
            return None
        if any(token in text for token in self._added):
            return None
        ids: list[int] = []
        for word in _GPT2_PATTERN.findall(text):
            ids.extend(self._merge([self._byte_ids[b] for b in word.encode("ascii")]))
        return ids

    def _merge_of(self, left: int, right: int) -> tuple[int, int] | None:
        """(rank, new id) of the merge of two adjacent tokens, if the model has one."""
        key = (left << 32) | right
        found = self._pairs.get(key, False)
        if found is False:
            at = bisect.bisect_left(self._keys, key)
            found = None
            if at < len(self._keys) and self._keys[at] == key:
                value = self._values[at]
                found = (value >> 32, value & 0xFFFFFFFF)
            self._pairs[key] = found
        return found  # type: ignore[return-value]

    def _merge(self, symbols: list[int]) -> list[int]:
        """``tokenizers``' ``Word::merge_all`` without dropout: repeatedly apply the merge of
        lowest rank (then leftmost position) among adjacent symbols, skipping stale entries."""
        import heapq

        n = len(symbols)
        if n < 2:
            return symbols
        nxt = list(range(1, n + 1))
        nxt[-1] = -1
        prev = list(range(-1, n - 1))
        alive = [True] * n
        heap: list[tuple[int, int, int]] = []
        for pos in range(n - 1):
            merge = self._merge_of(symbols[pos], symbols[pos + 1])
            if merge is not None:
                heap.append((merge[0], pos, merge[1]))
        heapq.heapify(heap)
        while heap:
            _, pos, new_id = heapq.heappop(heap)
            if not alive[pos] or nxt[pos] == -1:
                continue
            right = nxt[pos]
            current = self._merge_of(symbols[pos], symbols[right])
            if current is None or current[1] != new_id:
                continue  # an expired entry: the pair at pos changed since it was queued
            symbols[pos] = new_id
            alive[right] = False
            nxt[pos] = nxt[right]
            if nxt[pos] != -1:
                prev[nxt[pos]] = pos
            if prev[pos] >= 0:
                merge = self._merge_of(symbols[prev[pos]], new_id)
                if merge is not None:
                    heapq.heappush(heap, (merge[0], prev[pos], merge[1]))
            if nxt[pos] != -1:
                merge = self._merge_of(new_id, symbols[nxt[pos]])
                if merge is not None:
                    heapq.heappush(heap, (merge[0], pos, merge[1]))
        return [s for s, keep in zip(symbols, alive) if keep]


# --- reading ------------------------------------------------------------------------------


def open_index(tokenizer_path: Path) -> TokenIndex | None:
    """The index beside ``tokenizer_path`` if it exists and matches that file; else None."""
    try:
        data = (tokenizer_path.parent / INDEX).read_bytes()
    except OSError:
        return None
    try:
        if data[:8] != _MAGIC:
            return None
        length = int.from_bytes(data[8:12], "little")
        header = json.loads(data[12 : 12 + length].decode("utf-8"))
        if (
            header.get("version") != _VERSION
            or header.get("byteorder") != sys.byteorder
            or header.get("library") != _library_fingerprint()
        ):
            return None
        if list(_source_print(tokenizer_path)) != header.get("source"):
            return None
        return TokenIndex(header, data)
    except (OSError, ValueError, KeyError, TypeError):
        return None


# --- building -----------------------------------------------------------------------------


def _bytes_to_unicode() -> list[str]:
    from .tokens import _byte_level_decoder

    table = _byte_level_decoder()  # char -> byte
    by_byte = {b: ch for ch, b in table.items()}
    return [by_byte[b] for b in range(256)]


def _bpe_tables(config: dict[str, Any]) -> tuple[list[int], dict[int, tuple[int, int]]] | None:
    """Byte ids and merge table, if this is a tokenizer the fast path reproduces; else None."""
    model = config.get("model") or {}
    pre = config.get("pre_tokenizer") or {}
    post = config.get("post_processor")
    if config.get("normalizer") is not None:
        return None
    if pre.get("type") != "ByteLevel" or pre.get("add_prefix_space") or not pre.get("use_regex"):
        return None
    if post is not None and post.get("type") not in _POST_PROCESSORS_KEEPING_IDS:
        return None
    if (
        model.get("type") != "BPE"
        or model.get("dropout") not in (None, 0, 0.0)
        or model.get("continuing_subword_prefix")
        or model.get("end_of_word_suffix")
        or model.get("byte_fallback")
        or model.get("ignore_merges")
    ):
        return None
    vocab: dict[str, int] = model.get("vocab") or {}
    try:
        byte_ids = [vocab[ch] for ch in _bytes_to_unicode()]
    except KeyError:
        return None
    merges: dict[int, tuple[int, int]] = {}
    for rank, merge in enumerate(model.get("merges") or []):
        if isinstance(merge, str):
            parts = merge.split(" ")
            if len(parts) != 2:
                return None
            left, right = parts
        elif isinstance(merge, list) and len(merge) == 2:
            left, right = merge
        else:
            return None
        try:
            key = (vocab[left] << 32) | vocab[right]
            merges[key] = (rank, vocab[left + right])  # a later duplicate wins, as in tokenizers
        except KeyError:
            return None
    return byte_ids, merges


def _probes(raw: list[str | None]) -> list[str]:
    """Strings the fast encoder must get right before it is trusted."""
    import random

    fixed = [
        "Mike", " Mike", "mike", "MIKE", "banana", " banana", "cosmic", "New York", "ban", "ana",
        "don't", "it's", "I'm", "we'll", "they've", "you'd", "'s", "''s", "'S", "'tis", "''",
        "hello   world", "  leading", "trailing  ", "a  b   c", " ", "  ", "   x", "x   ",
        "1234567890", "3.14159", "$100.00", "#hashtag", "e-mail", "C++", "foo_bar", "a.b.c",
        "HELLO world", "x" * 60, "ab" * 30, "!!!???...", "<|endoftext", "|>", "~`@^&*()[]{}",
        "https://example.com/a?b=c", "The quick brown fox jumps over the lazy dog.",
    ]  # fmt: skip
    rng = random.Random(20240601)
    picked = rng.sample(raw, min(len(raw), 4000))
    sample = [t for t in (_printable(s) for s in picked if s is not None) if t][:1500]
    alphabet = "abcdefghijklmnopqrstuvwxyz" * 3 + "ABCDEFGHIJKLMNOPQRSTUVWXYZ" + "0123456789"
    alphabet += "      '''.,-!?\"#$%&()*+/:;<=>@[\\]^_`{|}~"
    noise = ["".join(rng.choices(alphabet, k=rng.randint(1, 24))) for _ in range(600)]
    words = [rng.choice(sample) + rng.choice(sample) for _ in range(300)] if sample else []
    return fixed + sample + noise + words


def _printable(raw: str) -> str | None:
    from .tokens import BYTE_LEVEL, token_bytes

    data = token_bytes(raw, BYTE_LEVEL)
    text = data.decode("ascii", "replace")
    return text if data.isascii() and text.isprintable() else None


def source_print(data: bytes) -> tuple[int, int]:
    """What binds an index to the bytes of a ``tokenizer.json``: their size and CRC-32."""
    return len(data), zlib.crc32(data)


def build_index(
    tokenizer: Any,
    tokenizer_path: Path,
    source: tuple[int, int] | None = None,
    display: tuple[Any, Describe] | None = None,
) -> tuple[TokenIndex, bytes]:
    """An index for ``tokenizer`` (a ``tokenizers.Tokenizer`` loaded from ``tokenizer_path``).

    ``source`` is the ``source_print`` of the very bytes ``tokenizer`` was parsed from (the
    file itself may have been replaced since); without it the file is read now. ``display``
    is (key, describe): ``describe`` is applied to every id and its answers are stored; the
    key (JSON) records what they depend on, for the caller to compare when it opens the index.
    """
    source = source or _source_print(tokenizer_path)
    size = tokenizer.get_vocab_size(with_added_tokens=True)
    ids = tokenizer.get_vocab(with_added_tokens=True).values()
    count = max(max(ids, default=-1) + 1, size)
    raw = [tokenizer.id_to_token(i) for i in range(count)]
    missing = [i for i, s in enumerate(raw) if s is None]
    encoded = [(s or "").encode("utf-8") for s in raw]
    offsets = [0]
    for item in encoded:
        offsets.append(offsets[-1] + len(item))
    blob = b"".join(encoded)

    config = json.loads(tokenizer.to_str())
    tables = _bpe_tables(config)
    sections: dict[str, bytes] = {
        "offsets": _pack("I", offsets),
        "blob": blob,
    }
    display_part: dict[str, Any] | None = None
    if display is not None:
        key, describe = display
        shown_offsets = [0]
        pieces: list[bytes] = []
        hidden: list[int] = []
        for token_id, stored in enumerate(raw):
            text, label, is_hidden = describe(token_id, stored)
            for piece in (text.encode("utf-8"), label.encode("utf-8")):
                pieces.append(piece)
                shown_offsets.append(shown_offsets[-1] + len(piece))
            if is_hidden:
                hidden.append(token_id)
        sections["shown_offsets"] = _pack("I", shown_offsets)
        sections["shown_blob"] = b"".join(pieces)
        sections["hidden"] = _pack("I", hidden)
        display_part = {"key": key}
    bpe: dict[str, Any] | None = None
    if tables is not None:
        byte_ids, merges = tables
        keys = sorted(merges)
        sections["merge_keys"] = _pack("q", keys)
        sections["merge_values"] = _pack("q", [(merges[k][0] << 32) | merges[k][1] for k in keys])
        added = sorted({t["content"] for t in config.get("added_tokens", []) if t.get("content")})
        bpe = {"byte_ids": byte_ids, "added": added}

    def assemble(bpe_part: dict[str, Any] | None) -> bytes:
        names = [n for n in sections if bpe_part is not None or not n.startswith("merge_")]
        header: dict[str, Any] = {
            "version": _VERSION,
            "byteorder": sys.byteorder,
            "library": _library_fingerprint(),
            "source": list(source),
            "size": size,
            "count": count,
            "missing": missing,
            "bpe": bpe_part,
            "display": display_part,
            "sections": {},
        }
        # Section offsets depend on the header length: fix them with a generous fixed width.
        placeholder = 10**12
        header["sections"] = {n: [placeholder, placeholder] for n in names}
        reserve = len(json.dumps(header).encode("utf-8")) + 64
        start = 12 + reserve
        start += -start % 8
        layout = {}
        for name in names:
            layout[name] = [start, len(sections[name])]
            start += len(sections[name])
            start += -start % 8
        header["sections"] = layout
        head = json.dumps(header).encode("utf-8").ljust(reserve, b" ")
        out = bytearray(_MAGIC + len(head).to_bytes(4, "little") + head)
        for name in names:
            out += b"\x00" * (layout[name][0] - len(out))
            out += sections[name]
        return bytes(out)

    data = assemble(bpe)
    index = _parse(data)
    if index.can_encode and not _agrees(index, tokenizer, _probes(raw)):
        data = assemble(None)
        index = _parse(data)
    return index, data


def _parse(data: bytes) -> TokenIndex:
    length = int.from_bytes(data[8:12], "little")
    return TokenIndex(json.loads(data[12 : 12 + length].decode("utf-8")), data)


def _pack(fmt: str, values: list[int]) -> bytes:
    from array import array

    packed = array(fmt, values)
    if packed.itemsize != memoryview(b"\0" * 8).cast(fmt).itemsize:
        raise ValueError(f"unexpected item size for {fmt!r}")
    return packed.tobytes()


def _agrees(index: TokenIndex, tokenizer: Any, probes: list[str]) -> bool:
    expected = tokenizer.encode_batch(probes, add_special_tokens=False)
    for text, encoding in zip(probes, expected):
        got = index.encode(text)
        if got is not None and got != list(encoding.ids):
            return False
    return True


def write_index(tokenizer_path: Path, data: bytes) -> None:
    """Store the index beside ``tokenizer_path``, atomically; silently skip if not possible."""
    import uuid

    target = tokenizer_path.parent / INDEX
    scratch = tokenizer_path.parent / f".{INDEX}.{uuid.uuid4().hex}.tmp"
    try:
        scratch.write_bytes(data)
        os.replace(scratch, target)
    except OSError:
        with contextlib.suppress(OSError):
            scratch.unlink()
