"""How a token is shown to a person: the display rules, and nothing else (no tokenizer, no files).

Rules by tokenizer family (``detect_style``):

- byte-level BPE (GPT-2): ``Ġ`` and friends map back to bytes; a token that is not valid UTF-8
  on its own (a fragment of a multi-byte character) is shown as ``\\xNN`` escapes, never U+FFFD;
- SentencePiece-style (Llama): ``▁`` is a space, ``<0xNN>`` byte-fallback tokens are bytes;
- WordPiece (BERT): shown as stored, ``##ana`` marks a word continuation.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable
from typing import Any

BYTE_LEVEL = "byte_level"
METASPACE = "metaspace"
WORDPIECE = "wordpiece"
PLAIN = "plain"

# The version of the display rules (describe, display_text, quote, RESERVED, fold_key): a
# tokenizer index stores displays under ``display_key``, and one made under other rules is
# not used. Bump it whenever any of these rules changes.
DISPLAY_RULES = 1

_BYTE_FALLBACK = re.compile(r"<0x([0-9A-Fa-f]{2})>")

# Reserved, never-trained vocabulary slots: BERT's [unused12], Gemma's <unused12>, Llama 3's
# <|reserved_special_token_12|>, T5's <extra_id_12>.
RESERVED = re.compile(r"\[unused\d+\]|<unused\d+>|<\|reserved_special_token_\d+\|>|<extra_id_\d+>")


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


# --- GPT-2's byte <-> unicode table ------------------------------------------------------


@functools.cache
def byte_decoder() -> dict[str, int]:
    """GPT-2's reversible table (``bytes_to_unicode`` in its encoder.py), character -> byte:
    printable Latin-1 bytes stand for themselves, the rest are shifted past U+0100."""
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
def byte_encoder() -> tuple[str, ...]:
    """The same table the other way: the character that stands for each byte 0..255."""
    by_byte = {b: ch for ch, b in byte_decoder().items()}
    return tuple(by_byte[b] for b in range(256))


@functools.cache
def _byte_level_translation() -> str:
    """A ``str.translate`` table: a table character to the Latin-1 character of its byte; any
    other character below U+0144 to U+0100, which (like everything past it) is not Latin-1,
    so that the encoding fails exactly when some character is not in the table."""
    chars = ["\u0100"] * 0x144
    for ch, byte in byte_decoder().items():
        chars[ord(ch)] = chr(byte)
    return "".join(chars)


# --- the rules ---------------------------------------------------------------------------


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


_encode_json_string = json.encoder.encode_basestring  # the C function, when available


def quote(text: str, fragment: bool = False) -> str:
    """A token as shown in tables: quoted so leading spaces show, control characters escaped."""
    if fragment:
        return f'b"{text}"'
    if type(text) is str:  # json.dumps(text, ensure_ascii=False) without building an encoder
        return _encode_json_string(text)
    return json.dumps(text, ensure_ascii=False)


def describe(
    token_id: int, raw: str | None, style: str, special_ids: frozenset[int]
) -> tuple[str, str, bool]:
    """(text, label, hidden) of a token from its stored string (None: an id the tokenizer does
    not name). Hidden: never a word (a control token, a reserved slot, an unnamed row)."""
    if raw is None:
        return "", f"<unused #{token_id}>", True
    if token_id in special_ids:
        return raw, raw, True
    text, fragment = display_text(raw, style)
    return text, quote(text, fragment), bool(RESERVED.fullmatch(raw))


def display_key(style: str, special_ids: Iterable[int]) -> list[Any]:
    """Everything ``describe`` depends on, as JSON: what stored displays are checked against."""
    return [DISPLAY_RULES, style, sorted(int(i) for i in special_ids)]


def fold_key(raw: str, style: str) -> str | None:
    """What ``--dedupe`` compares: the text without one leading space, lower-cased, so ``Mike``,
    `` Mike``, ``mike`` and `` MIKE`` share a key. None for a byte fragment: never folded."""
    text, fragment = display_text(raw, style)
    if fragment:
        return None
    return (text[1:] if text.startswith(" ") else text).lower()
