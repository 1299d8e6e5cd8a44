"""Tokenization with the model's own tokenizer, and token display that shows spaces and bytes.

Uses the `tokenizers` library on the cached ``tokenizer.json`` (never transformers), so a cached
query stays fast. Display rules by tokenizer family:

- byte-level BPE (GPT-2): ``Ġ`` and friends map back to bytes; a token that is not valid UTF-8
  on its own (a fragment of a multi-byte character) is shown as ``\\xNN`` escapes, never U+FFFD;
- SentencePiece-style (Llama): ``▁`` is a space, ``<0xNN>`` byte-fallback tokens are bytes;
- WordPiece (BERT): shown as stored, ``##ana`` marks a word continuation.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ._tokindex import TokenIndex, build_index, open_index, source_print, write_index

BYTE_LEVEL = "byte_level"
METASPACE = "metaspace"
WORDPIECE = "wordpiece"
PLAIN = "plain"

_BYTE_FALLBACK = re.compile(r"<0x([0-9A-Fa-f]{2})>")


def detect_style(tokenizer_json: dict[str, Any]) -> str:
    """The display family of a tokenizer, read from its ``tokenizer.json`` structure."""
    kinds: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("type"), str):
                kinds.add(node["type"])
            if node.get("type") == "Replace" and "▁" in json.dumps(node.get("pattern")):
                kinds.add("Metaspace")
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(tokenizer_json.get("decoder"))
    walk(tokenizer_json.get("pre_tokenizer"))
    if "ByteLevel" in kinds:
        return BYTE_LEVEL
    if "Metaspace" in kinds or "ByteFallback" in kinds:
        return METASPACE
    if "WordPiece" in kinds or tokenizer_json.get("model", {}).get("type") == "WordPiece":
        return WORDPIECE
    return PLAIN


@functools.cache
def _byte_level_decoder() -> dict[str, int]:
    # GPT-2's reversible byte <-> printable-character table (bytes_to_unicode in its encoder.py):
    # printable Latin-1 bytes stand for themselves, the rest are shifted past U+0100.
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = printable[:]
    shift = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + shift)
            shift += 1
    return {chr(c): b for b, c in zip(printable, chars)}


@functools.cache
def _byte_level_translation() -> str:
    """A ``str.translate`` table: a table character to the Latin-1 character of its byte; any
    other character below U+0144 to U+0100, which (like everything past it) is not Latin-1,
    so that the encoding fails exactly when some character is not in the table."""
    chars = ["\u0100"] * 0x144
    for ch, byte in _byte_level_decoder().items():
        chars[ord(ch)] = chr(byte)
    return "".join(chars)


def token_bytes(raw: str, style: str) -> bytes:
    """The bytes a stored token string stands for."""
    if style == BYTE_LEVEL:
        try:  # every character in the table: translate each to its byte (as a Latin-1 char)
            return raw.translate(_byte_level_translation()).encode("latin-1")
        except UnicodeEncodeError:
            return raw.encode("utf-8")  # added tokens such as <|endoftext|> are stored verbatim
    if style == METASPACE:
        match = _BYTE_FALLBACK.fullmatch(raw)
        if match:
            return bytes([int(match.group(1), 16)])
        return raw.replace("▁", " ").encode("utf-8")
    return raw.encode("utf-8")


def escape_bytes(data: bytes) -> str:
    """Printable ASCII as itself, every other byte as ``\\xNN``."""
    return "".join(chr(b) if 0x20 <= b < 0x7F and b != 0x5C else f"\\x{b:02x}" for b in data)


@functools.lru_cache(maxsize=1 << 16)  # a neighbour's text and label decode the same token
def display_text(raw: str, style: str) -> tuple[str, bool]:
    """(readable text, is_fragment): is_fragment when the token is not valid UTF-8 on its own."""
    data = token_bytes(raw, style)
    if style == METASPACE and _BYTE_FALLBACK.fullmatch(raw):
        # A byte-fallback token is one byte, not a piece: show it as bytes (b"H", b"\xe2") so it
        # never looks like the learned piece "H" that may sit elsewhere in the vocabulary.
        return escape_bytes(data), True
    try:
        return data.decode("utf-8"), False
    except UnicodeDecodeError:
        return escape_bytes(data), True


def quote(text: str, fragment: bool = False) -> str:
    """A token as shown in tables: quoted so leading spaces show, control characters escaped."""
    if fragment:
        return f'b"{text}"'
    if type(text) is str:  # json.dumps(text, ensure_ascii=False) without building an encoder
        return _encode_json_string(text)
    return json.dumps(text, ensure_ascii=False)


_encode_json_string = json.encoder.encode_basestring  # the C function, when available


# The version of the display rules (_describe, display_text, quote, _RESERVED): stored displays
# in a tokenizer index record it, and an index made under other rules is rebuilt.
DISPLAY_RULES = 1


class TokenCodec:
    """The model's tokenizer plus display of token ids."""

    def __init__(self, tokenizer_path: Path, style: str, special_ids: Iterable[int] = ()) -> None:
        self._path = Path(tokenizer_path)
        self._loaded: Any = None
        self._source: tuple[int, int] | None = None
        self.style = style
        self.special_ids = frozenset(int(i) for i in special_ids)
        self._fold_groups: dict[str, list[int]] | None = None
        self._special: dict[int, bool] = {}
        self._shown_memo: dict[int, tuple[str, str]] = {}
        # Parsing tokenizer.json costs more than the rest of a cached query: the index beside it
        # (_tokindex) answers token strings and most short queries without it.
        self._index = open_index(self._path)
        if self._index is not None and self._index.display_key != self._display_key():
            self._index = None  # displays made under other rules (or none): rebuild it
        if self._index is None:
            self._tokenizer  # noqa: B018 - parse now: a damaged file fails here, at load
            self._index = self._create_index()

    @property
    def _tokenizer(self) -> Any:
        """The model's own tokenizer (``tokenizers.Tokenizer``), parsed on first use."""
        if self._loaded is None:
            from tokenizers import Tokenizer

            data = self._path.read_bytes()
            tokenizer = Tokenizer.from_str(data.decode("utf-8"))
            # A saved tokenizer.json can carry padding/truncation (MiniLM pads to 128): never.
            tokenizer.no_padding()
            tokenizer.no_truncation()
            self._source = source_print(data)  # an index built from it belongs to these bytes
            self._loaded = tokenizer
        return self._loaded

    def _create_index(self) -> TokenIndex | None:
        if not os.access(self._path.parent, os.W_OK):
            return None  # a read-only cache: no index, every query parses tokenizer.json
        try:
            index, data = build_index(
                self._tokenizer, self._path, self._source, (self._display_key(), self._describe)
            )
        except Exception:  # the index is only an optimization: never fail a query over it
            return None
        write_index(self._path, data)
        return index

    @property
    def size(self) -> int:
        if self._index is not None:
            return self._index.size
        return self._tokenizer.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str) -> list[int]:
        """Token ids exactly as the model's tokenizer produces them, without special tokens."""
        if self._loaded is None and self._index is not None:
            ids = self._index.encode(text)
            if ids is not None:
                return ids
        return list(self._tokenizer.encode(text, add_special_tokens=False).ids)

    def raw(self, token_id: int) -> str | None:
        """The token string as stored in the vocabulary, or None for an id it does not name."""
        if self._index is not None:
            return self._index.raw(int(token_id))
        return self._tokenizer.id_to_token(int(token_id))

    def text(self, token_id: int) -> str:
        """The decoded text of one token (``\\xNN`` escapes for a partial UTF-8 sequence)."""
        return self.shown(token_id)[0]

    def label(self, token_id: int) -> str:
        """The token as shown to a person: quoted, fragments as ``b"\\xNN"``."""
        return self.shown(token_id)[1]

    def shown(self, token_id: int) -> tuple[str, str]:
        """(text, label) of one token: see ``text`` and ``label``."""
        if self._index is not None:
            stored = self._index.shown(token_id)
            if stored is not None:
                return stored
        # Memo: a batch of queries shows many of the same neighbours again.
        shown = self._shown_memo.get(token_id)
        if shown is None:
            text, label, _ = self._describe(token_id, self.raw(token_id))
            shown = self._shown_memo[token_id] = (text, label)
        return shown

    def _describe(self, token_id: int, raw: str | None) -> tuple[str, str, bool]:
        """(text, label, is_special) of a token from its stored string: the display rules.
        The index stores these answers for every id (under ``_display_key``)."""
        if raw is None:
            return "", f"<unused #{token_id}>", True
        if token_id in self.special_ids:
            return raw, raw, True
        text, fragment = display_text(raw, self.style)
        return text, quote(text, fragment), bool(_RESERVED.fullmatch(raw))

    def _display_key(self) -> list[Any]:
        # Everything _describe depends on. Bump DISPLAY_RULES when its rules change, so that
        # indexes written by an older tokneigh are rebuilt rather than trusted.
        return [DISPLAY_RULES, self.style, sorted(self.special_ids)]

    # --- filters (neighbors --words-only, --dedupe, special tokens) ---------------------------

    def is_special(self, token_id: int) -> bool:
        """A control token, a reserved slot (``[unused12]``), or a row the tokenizer does not
        name: never a word, so neighbour lists leave it out unless asked."""
        index = self._index
        if index is not None and index.display_key is not None and 0 <= token_id < index.count:
            return token_id in index.hidden
        known = self._special.get(token_id)
        if known is None:  # memo: a batch of queries asks about the same candidates again
            known = self._describe(token_id, self.raw(token_id))[2]
            self._special[token_id] = known
        return known

    def special_among(self, rows: int) -> list[int]:
        """Every id below ``rows`` that ``is_special``, ascending: what neighbour lists hide."""
        index = self._index
        if index is not None and index.display_key is not None:
            named = min(rows, index.count)
            stored = sorted(i for i in index.hidden if i < named)
            return stored + [i for i in range(named, rows) if self.is_special(i)]
        return [i for i in range(rows) if self.is_special(i)]  # no index: a scan (read-only cache)

    def has_letter(self, token_id: int) -> bool:
        """Whether the token's text holds at least one letter (any script)."""
        raw = self.raw(token_id)
        if raw is None:
            return False
        if token_id in self.special_ids:
            text = raw
        else:
            # Decode the bytes, not the \\xNN display escapes (whose "x" is no letter).
            text = token_bytes(raw, self.style).decode("utf-8", "ignore")
        return any(ch.isalpha() for ch in text)

    def fold_key(self, token_id: int) -> str | None:
        """What ``--dedupe`` compares: the text without one leading space, lower-cased, so
        ``Mike``, `` Mike``, ``mike`` and `` MIKE`` share a key. None: never folded (special
        tokens, byte fragments)."""
        if self.is_special(token_id):
            return None
        return _fold(self.raw(token_id) or "", self.style)

    def fold_groups(self) -> dict[str, list[int]]:
        """Every key that several token ids share, with those ids (ascending); built once.

        A scan of the whole vocabulary (a tenth of a second for GPT-2), paid only by --dedupe
        so that a row can list all of its variants, not just those near the top.
        """
        if self._fold_groups is None:
            groups: dict[str, list[int]] = {}
            vocab = self._tokenizer.get_vocab(with_added_tokens=True)
            for raw, token_id in vocab.items():
                if token_id in self.special_ids or _RESERVED.fullmatch(raw):
                    continue
                key = _fold(raw, self.style)
                if key is not None:
                    groups.setdefault(key, []).append(token_id)
            self._fold_groups = {k: sorted(v) for k, v in groups.items() if len(v) > 1}
        return self._fold_groups


# Reserved, never-trained vocabulary slots: BERT's [unused12], Gemma's <unused12>, Llama 3's
# <|reserved_special_token_12|>, T5's <extra_id_12>.
_RESERVED = re.compile(r"\[unused\d+\]|<unused\d+>|<\|reserved_special_token_\d+\|>|<extra_id_\d+>")


def _fold(raw: str, style: str) -> str | None:
    text, fragment = display_text(raw, style)
    if fragment:
        return None
    return (text[1:] if text.startswith(" ") else text).lower()
