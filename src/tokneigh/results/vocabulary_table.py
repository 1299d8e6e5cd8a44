"""Every row of the embedding matrix, with what the tokenizer and the matrix say of it
(``tokneigh.analyses.vocabulary_table``)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .frames import Kind, records_frame
from .notebook import described, html_of
from .tables import Column, Human, Table, model_label, shape_text

COLUMNS = ("id", "token", "label", "special", "unusable", "reachable", "norm", "padding")
_KINDS: dict[str, Kind] = {
    "id": "int",
    "token": "text",
    "label": "text",
    "special": "bool",
    "unusable": "bool",
    "reachable": "bool",
    "norm": "float",
    "padding": "bool",
}


@dataclass(slots=True)
class VocabularyTable:
    """One row per row of the matrix: ``id``; ``token``, its decoded text (None where the
    tokenizer names no token); ``label``, as the other tables show it; ``special`` (a control
    token, reserved slot or unnamed row: what neighbour lists hide); ``unusable`` (NaN,
    infinite or all zero: never ranked); ``reachable`` (encoding the token's own text gives
    its id); ``norm``, the raw row's L2 norm (None for a row of NaN or infinite values);
    ``padding`` (a row past the tokenizer's size: Qwen2 and Phi pad the matrix).

    The arrays are row-aligned with ``ids`` (0 .. vocab_size - 1). ``shown`` is how many rows
    ``human()`` lists, the first ids (a terminal does not want 50,000 rows); every other form
    holds them all."""

    model: str
    embeddings: str  # "input" or "output"
    vocab_size: int  # rows of the matrix
    tokenizer_size: int  # tokens the tokenizer names; rows from here on are padding
    dim: int
    ids: Any  # np.ndarray (n,) int64
    tokens: list[str | None]
    labels: list[str]
    special: Any  # np.ndarray (n,) bool
    unusable: Any  # np.ndarray (n,) bool
    reachable: Any  # np.ndarray (n,) bool
    norms: Any  # np.ndarray (n,) float64, NaN for a row of NaN or infinite values
    padding: Any  # np.ndarray (n,) bool
    shown: int = 20

    def __repr__(self) -> str:
        return described(
            "VocabularyTable",
            ("model", model_label(self.model)),
            ("embeddings", None if self.embeddings == "input" else self.embeddings),
            ("rows", self.vocab_size),
            ("special", int(self.special.sum())),
            ("unusable", int(self.unusable.sum())),
            ("unreachable", int((~self.reachable).sum())),
            ("padding", int(self.padding.sum()) or None),
        )

    def _repr_html_(self) -> str:
        return html_of(self.human())

    def records(self, limit: int | None = None) -> list[dict[str, Any]]:
        """One dict per row (the first ``limit``), the JSON's (and the frame's, the TSV's)
        values."""
        stop = self.vocab_size if limit is None else limit
        return [
            {
                "id": i,
                "token": token,
                "label": label,
                "special": special,
                "unusable": unusable,
                "reachable": reachable,
                "norm": norm if math.isfinite(norm) else None,
                "padding": padding,
            }
            for i, token, label, special, unusable, reachable, norm, padding in zip(
                self.ids[:stop].tolist(),
                self.tokens[:stop],
                self.labels[:stop],
                self.special[:stop].tolist(),
                self.unusable[:stop].tolist(),
                self.reachable[:stop].tolist(),
                self.norms[:stop].tolist(),
                self.padding[:stop].tolist(),
            )
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "embeddings": self.embeddings,
            "vocab_size": self.vocab_size,
            "tokenizer_size": self.tokenizer_size,
            "dim": self.dim,
            "tokens": self.records(),
        }

    def tsv(self) -> tuple[list[str], list[list[Any]]]:
        return list(COLUMNS), [[r[c] for c in COLUMNS] for r in self.records()]

    def to_pandas(self) -> Any:
        """One row per row of the matrix, the columns of ``COLUMNS``: id int64, token and
        label object (str, or None), norm float64 (NaN where the JSON has null), the flags
        bool."""
        return records_frame(self.records(), _KINDS)

    def human(self) -> Human:
        title = (
            f"Vocabulary of {model_label(self.model)} · {self.embeddings} embeddings · "
            f"{shape_text(self.vocab_size, self.dim)}"
        )
        counts = [
            f"{int(self.special.sum()):,} special",
            f"{int(self.unusable.sum()):,} with no direction (NaN, infinite or zero)",
            f"{int((~self.reachable).sum()):,} unreachable",
        ]
        if self.padding.any():
            counts.append(f"{int(self.padding.sum()):,} padding rows past the tokenizer")
        listed = min(self.shown, self.vocab_size)
        subtitle = [" · ".join(counts), f"the first {listed:,} of {self.vocab_size:,} rows"]
        rows = [
            [
                str(r["id"]),
                r["label"],
                "yes" if r["special"] else "",
                "yes" if r["unusable"] else "",
                "yes" if r["reachable"] else "no",
                "-" if r["norm"] is None else f"{r['norm']:.3f}",
                "yes" if r["padding"] else "",
            ]
            for r in self.records(listed)
        ]
        columns = [Column("id", True), Column("token"), Column("special"), Column("unusable")]
        columns += [Column("reachable"), Column("norm", True), Column("padding")]
        return [Table(title, columns, rows, subtitle=subtitle)]
