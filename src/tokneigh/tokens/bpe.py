"""A fast pure-Python encoder for GPT-2-style byte-level BPE, and the check that it is right.

Parsing ``tokenizer.json`` with the ``tokenizers`` library costs 100-200 ms (holding the GIL),
more than the rest of a cached query; the queries themselves are mostly short ASCII words.
``BpeEncoder`` is a port of the ``tokenizers`` BPE merge loop over a merge table stored as
sorted ``(left, right)`` id pairs. It encodes only printable-ASCII text that holds no added
token (``<|endoftext|>``) and declines (None) anything else.

It is trusted only after it reproduced the real tokenizer on every ``probes`` string
(``agrees``); ``tokindex`` drops it otherwise, and every query then goes to ``tokenizers``.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from typing import Any

from .display import BYTE_LEVEL, byte_encoder, token_bytes

# GPT-2's pre-tokenizer pattern ('s|'t|...| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)
# restricted to printable ASCII, the only text the fast path accepts: there \p{L} is A-Za-z,
# \p{N} is 0-9 and \s is the space, so `re` and Oniguruma split identically.
PATTERN = re.compile(
    r"""'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+"""
)
_POST_PROCESSORS_KEEPING_IDS = {"ByteLevel", "TemplateProcessing", "RobertaProcessing"}


class BpeEncoder:
    """GPT-2 byte-level BPE encoding of printable-ASCII text.

    ``keys`` are ``left << 32 | right`` (ascending), ``values`` the matching
    ``rank << 32 | new_id``; any sequence of ints (a list, or a memoryview of stored arrays).
    """

    def __init__(
        self,
        byte_ids: Sequence[int],
        keys: Sequence[int],
        values: Sequence[int],
        added: Sequence[str],
    ) -> None:
        if len(byte_ids) != 256 or len(keys) != len(values):
            raise ValueError("malformed merge table")
        self.byte_ids = list(byte_ids)
        self.keys = keys
        self.values = values
        self.added = tuple(added)
        self._pairs: dict[int, tuple[int, int] | None] = {}  # memo of bisections

    def encode(self, text: str) -> list[int] | None:
        """The ids the real tokenizer gives ``text``, or None for text this encoder declines."""
        if not (text.isascii() and text.isprintable()):
            return None
        if any(token in text for token in self.added):
            return None
        byte_ids = self.byte_ids
        ids: list[int] = []
        for word in PATTERN.findall(text):
            ids.extend(self._merge([byte_ids[b] for b in word.encode("ascii")]))
        return ids

    def _merge_of(self, left: int, right: int) -> tuple[int, int] | None:
        """(rank, new id) of the merge of two adjacent tokens, if the model has one."""
        key = (left << 32) | right
        if key in self._pairs:
            return self._pairs[key]
        at = bisect.bisect_left(self.keys, key)
        found = None
        if at < len(self.keys) and self.keys[at] == key:
            value = self.values[at]
            found = (value >> 32, value & 0xFFFFFFFF)
        self._pairs[key] = found
        return found

    def _merge(self, symbols: list[int]) -> list[int]:
        """``tokenizers``' ``Word::merge_all`` without dropout: repeatedly apply the merge of
        lowest rank (then leftmost position) among adjacent symbols, skipping stale entries."""
        import heapq  # here, not at the top: most queries are one-token words (n < 2)

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


# --- from a tokenizer.json ---------------------------------------------------------------


def _bpe_tables(config: dict[str, Any]) -> tuple[list[int], dict[int, tuple[int, int]]] | None:
    """Byte ids and merge table (``left << 32 | right`` -> (rank, new id)), if this is a
    tokenizer the fast encoder reproduces; else None."""
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
        byte_ids = [vocab[ch] for ch in byte_encoder()]
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


def encoder_for(config: dict[str, Any]) -> BpeEncoder | None:
    """An (unverified) encoder for the tokenizer of this ``tokenizer.json`` structure, or None
    when it is not a tokenizer the fast encoder is meant for."""
    tables = _bpe_tables(config)
    if tables is None:
        return None
    byte_ids, merges = tables
    keys = sorted(merges)
    values = [(merges[k][0] << 32) | merges[k][1] for k in keys]
    added = sorted({t["content"] for t in config.get("added_tokens", []) if t.get("content")})
    return BpeEncoder(byte_ids, keys, values, added)


# --- verification ------------------------------------------------------------------------


def probes(raw: Sequence[str | None]) -> list[str]:
    """Strings the fast encoder must get right before it is trusted; ``raw`` is the stored
    string of every token id (None for an unnamed one). Deterministic for a given ``raw``."""
    fixed = [
        "Mike", " Mike", "mike", "MIKE", "banana", " banana", "cosmic", "New York", "ban", "ana",
        "don't", "it's", "I'm", "we'll", "they've", "you'd", "'s", "''s", "'S", "'tis", "''",
        "hello   world", "  leading", "trailing  ", "a  b   c", " ", "  ", "   x", "x   ",
        "1234567890", "3.14159", "$100.00", "#hashtag", "e-mail", "C++", "foo_bar", "a.b.c",
        "HELLO world", "x" * 60, "ab" * 30, "!!!???...", "<|endoftext", "|>", "~`@^&*()[]{}",
        "https://example.com/a?b=c", "The quick brown fox jumps over the lazy dog.",
    ]  # fmt: skip
    import random  # here: only a build needs it, and it costs a cached query a millisecond

    rng = random.Random(20240601)
    picked = rng.sample(list(raw), min(len(raw), 4000))
    sample = [t for t in (_printable(s) for s in picked if s is not None) if t][:1500]
    alphabet = "abcdefghijklmnopqrstuvwxyz" * 3 + "ABCDEFGHIJKLMNOPQRSTUVWXYZ" + "0123456789"
    alphabet += "      '''.,-!?\"#$%&()*+/:;<=>@[\\]^_`{|}~"
    noise = ["".join(rng.choices(alphabet, k=rng.randint(1, 24))) for _ in range(600)]
    words = [rng.choice(sample) + rng.choice(sample) for _ in range(300)] if sample else []
    return fixed + sample + noise + words


def _printable(raw: str) -> str | None:
    """The text of a byte-level token, if it is printable ASCII (what the encoder accepts)."""
    data = token_bytes(raw, BYTE_LEVEL)
    text = data.decode("ascii", "replace")
    return text if data.isascii() and text.isprintable() else None


def disagreements(encoder: BpeEncoder, tokenizer: Any, texts: Sequence[str]) -> list[str]:
    """The texts that ``encoder`` encodes otherwise than ``tokenizer`` (a
    ``tokenizers.Tokenizer``, without special tokens); texts it declines do not count."""
    expected = tokenizer.encode_batch(list(texts), add_special_tokens=False)
    wrong = []
    for text, encoding in zip(texts, expected):
        got = encoder.encode(text)
        if got is not None and got != list(encoding.ids):
            wrong.append(text)
    return wrong


def agrees(encoder: BpeEncoder, tokenizer: Any, raw: Sequence[str | None]) -> bool:
    """Whether ``encoder`` reproduces ``tokenizer`` on every probe made from its vocabulary."""
    return not disagreements(encoder, tokenizer, probes(raw))
