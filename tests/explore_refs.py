"""Independent numpy references for analogy, filters, verify and map (no tokneigh code).

The raw matrix comes straight from the checkpoint's safetensors file, tokens from the
`tokenizers` library on its tokenizer.json, GPT-2 token bytes from transformers' own
byte-to-unicode table: nothing here goes through tokneigh's cache, core or TokenCodec.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

import numpy as np

RESERVED = re.compile(r"\[unused\d+\]")


class Reference:
    """One checkpoint's raw embeddings and tokenizer, with reference rankings."""

    def __init__(self, folder: Path) -> None:
        from safetensors import safe_open
        from tokenizers import Tokenizer

        with safe_open(str(folder / "model.safetensors"), framework="numpy") as handle:
            (key,) = [
                k for k in handle.keys() if k.endswith(("wte.weight", "word_embeddings.weight"))
            ]
            self.raw = handle.get_tensor(key).astype(np.float64)
        norms = np.linalg.norm(self.raw, axis=1, keepdims=True)
        self.unit = self.raw / np.where(norms > 0, norms, 1.0)
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        data = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
        self.special_added = {t["id"] for t in data["added_tokens"] if t["special"]}
        self.byte_level = "ByteLevel" in json.dumps(data.get("decoder"))
        self.size = self.tokenizer.get_vocab_size(with_added_tokens=True)

    def ids(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def word(self, text: str) -> np.ndarray:
        """A word's unit vector: the normalized mean of its tokens' unit vectors."""
        mean = self.unit[self.ids(text)].mean(axis=0)
        return mean / np.linalg.norm(mean)

    def expression(self, positive: list[str], negative: list[str]) -> np.ndarray:
        total = sum(self.word(w) for w in positive) - sum(
            (self.word(w) for w in negative), np.zeros(self.unit.shape[1])
        )
        return total / np.linalg.norm(total)

    def scores(self, vector: np.ndarray) -> np.ndarray:
        return self.unit @ vector

    # --- token properties, decided independently of tokneigh.tokens.codec ----------------------

    def token_text(self, i: int) -> tuple[str, bool]:
        """(text, is_fragment) of one token id."""
        raw = self.tokenizer.id_to_token(i)
        if i in self.special_added or not self.byte_level:
            return raw, False
        data = bytes(_byte_decoder()[ch] for ch in raw)
        try:
            return data.decode("utf-8"), False
        except UnicodeDecodeError:
            return data.decode("utf-8", "ignore"), True

    def is_special(self, i: int) -> bool:
        if i >= self.size or i in self.special_added:
            return True
        return bool(RESERVED.fullmatch(self.tokenizer.id_to_token(i)))

    def has_letter(self, i: int) -> bool:
        if i >= self.size:
            return False
        return any(ch.isalpha() for ch in self.token_text(i)[0])

    def fold_key(self, i: int) -> str | None:
        if self.is_special(i):
            return None
        text, fragment = self.token_text(i)
        if fragment:
            return None
        return (text[1:] if text.startswith(" ") else text).lower()


@cache
def _byte_decoder() -> dict[str, int]:
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    return {ch: b for b, ch in bytes_to_unicode().items()}


def full_order(scores: np.ndarray) -> list[int]:
    """Every id by descending score, ties by lower id: a full stable sort."""
    return [int(i) for i in np.argsort(-scores, kind="stable")]


def filtered_ranking(
    ref: Reference,
    scores: np.ndarray,
    k: int,
    exclude: set[int] = frozenset(),
    skip_special: bool = True,
    spared: set[int] = frozenset(),
    words_only: bool = False,
    min_sim: float | None = None,
    dedupe: bool = False,
) -> list[tuple[int, list[int]]]:
    """Rank the whole vocabulary, filter, then take k: [(id, variant ids best first)]."""
    passing = []
    for i in full_order(scores):
        if i in exclude:
            continue
        if skip_special and i not in spared and ref.is_special(i):
            continue
        if words_only and not ref.has_letter(i):
            continue
        if min_sim is not None and scores[i] < min_sim:
            continue
        passing.append(i)
    if not dedupe:
        return [(i, []) for i in passing[:k]]
    rows: list[tuple[int, list[int]]] = []
    by_key: dict[str, list[int]] = {}
    for i in passing:
        key = ref.fold_key(i)
        if key is not None and key in by_key:
            by_key[key].append(i)
            continue
        if len(rows) < k:
            rows.append((i, []))
            if key is not None:
                by_key[key] = rows[-1][1]
    return rows


def assert_same_ranking(ours: list[dict], scores: np.ndarray, expected: list[int]) -> None:
    """Our (id, similarity) rows against a reference ranking: the same similarities, and
    the same ids wherever two reference scores are not within float32 rounding (1e-6)."""
    got = [n["id"] for n in ours]
    assert len(got) == len(expected), (got, expected)
    np.testing.assert_allclose([n["similarity"] for n in ours], scores[got], atol=1e-5)
    np.testing.assert_allclose(scores[got], scores[expected], atol=1e-6)
    for a, b in zip(got, expected):
        if a != b:
            assert abs(scores[a] - scores[b]) <= 1e-6, (a, b)
    assert [n["rank"] for n in ours] == list(range(1, len(ours) + 1))
