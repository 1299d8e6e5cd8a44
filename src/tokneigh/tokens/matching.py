"""Which token of one model is which token of another: one matching rule for ``diff``, ``align``
and everything that compares two vocabularies.

Two tokens match when they mean the same thing to their tokenizers, whatever their stored
strings look like:

- ``text``: they decode to the same text, a word start written as a leading space. GPT-2's
  ``Ġking``, Llama's ``▁king`` and WordPiece's word-initial ``king`` are all " king"; a
  WordPiece continuation ``##ing`` is "ing", as GPT-2's and Llama's ``ing`` (no space: inside a
  word), so a continuation matches only continuations. A word-initial ``!`` is " !" too:
  WordPiece's decoder glues it to the word before by an English clean-up rule, but the
  vocabulary also holds ``##!``, which must stay a different token;
- ``bytes``: a byte fragment (a byte-level token that is not valid UTF-8 on its own, or a
  SentencePiece ``<0xNN>`` byte-fallback token) matches the fragment of the same bytes;
- ``special``: a control token or a reserved slot (``[CLS]``, ``<|endoftext|>``,
  ``[unused3]``) matches the one of the same name.

A key of one kind never matches a key of another (Llama's ``<0x41>`` is not the piece "A").
When several ids of a model share a key, the lowest stands for it; each key pairs at most one
id of each model.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from . import display

if TYPE_CHECKING:
    from .codec import TokenCodec

TEXT, BYTES, SPECIAL = "text", "bytes", "special"
RULES = (TEXT, BYTES, SPECIAL)

Key = tuple[str, str | bytes]


def match_key(codec: TokenCodec, token_id: int) -> Key | None:
    """(rule, value) that a token is matched by; None for a row the tokenizer names no
    token for (it matches nothing)."""
    raw = codec.raw(token_id)
    if raw is None:
        return None
    if token_id in codec.special_ids or display.RESERVED.fullmatch(raw):
        return SPECIAL, raw
    style = codec.style
    if style == display.WORDPIECE:
        # WordPiece stores word starts bare and continuations as ##: a start is " word".
        if raw.startswith("##") and len(raw) > 2:
            return TEXT, raw[2:]
        return TEXT, " " + raw
    data = display.token_bytes(raw, style)
    if style == display.METASPACE and data != raw.replace("▁", " ").encode("utf-8"):
        return BYTES, data  # a <0xNN> byte-fallback token: one byte, never a piece
    try:
        return TEXT, data.decode("utf-8")
    except UnicodeDecodeError:
        return BYTES, data


@dataclass(frozen=True)
class Matched:
    """The pairs of two vocabularies under the rule: ``ids_a[i]`` is ``ids_b[i]``, matched by
    ``rules[i]`` (an index into ``RULES``), ascending by A's id."""

    ids_a: np.ndarray  # int64
    ids_b: np.ndarray  # int64
    rules: np.ndarray  # int8, index into RULES
    candidates_a: int  # how many ids of A were offered
    candidates_b: int

    def count(self, rule: str) -> int:
        return int(np.count_nonzero(self.rules == RULES.index(rule)))

    def without_special(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids in A, ids in B) of the pairs matched by text or bytes."""
        keep = self.rules != RULES.index(SPECIAL)
        return self.ids_a[keep], self.ids_b[keep]


def match_tokens(
    codec_a: TokenCodec, ids_a: Iterable[int], codec_b: TokenCodec, ids_b: Iterable[int]
) -> Matched:
    """Pair the ids ``ids_a`` of model A with the ids ``ids_b`` of model B (each ascending)
    by the matching rule (see the module docstring)."""
    offered_a = [int(i) for i in ids_a]
    offered_b = [int(i) for i in ids_b]
    by_key: dict[Key, int] = {}
    for j in offered_b:
        key = match_key(codec_b, j)
        if key is not None:
            by_key.setdefault(key, j)  # ascending ids: the lowest keeps a key
    pairs_a: list[int] = []
    pairs_b: list[int] = []
    rules: list[int] = []
    for i in offered_a:
        key = match_key(codec_a, i)
        if key is None or key not in by_key:
            continue
        j = by_key.pop(key)  # pop: one pair per key
        pairs_a.append(i)
        pairs_b.append(j)
        rules.append(RULES.index(key[0]))
    return Matched(
        ids_a=np.asarray(pairs_a, dtype=np.int64),
        ids_b=np.asarray(pairs_b, dtype=np.int64),
        rules=np.asarray(rules, dtype=np.int8),
        candidates_a=len(offered_a),
        candidates_b=len(offered_b),
    )
