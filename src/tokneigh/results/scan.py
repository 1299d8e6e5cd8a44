"""Under-trained tokens (``tokneigh.analyses.scan``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .frames import Kind, records_frame
from .notebook import described, html_of
from .tables import Column, Human, Table, model_label

_SCAN_SCORES = {
    "magikarp": "cosine distance to the reference mean, first principal component removed",
    "norm": "L2 norm of the raw row",
    "centroid": "L2 distance of the raw row to the mean row",
}


@dataclass(slots=True)
class ScanToken:
    rank: int
    id: int
    token: str | None  # decoded text; None for a row the tokenizer names no token for
    label: str
    score: float
    reachable: bool  # encoding the token's own text yields its id
    special: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "id": self.id,
            "token": self.token,
            "score": self.score,
            "reachable": self.reachable,
            "special": self.special,
        }


@dataclass(slots=True)
class TokenScan:
    """Tokens ranked from most to least likely under-trained by one indicator (``scan``)."""

    model: str
    embeddings: str  # the matrix scored: "input" or "output"
    indicator: str
    reference_kind: str | None  # "auto" or "ids" (magikarp); None for the other indicators
    reference_ids: list[int]
    reference_unreachable: int  # of an automatic reference: unreachable tokens in it
    reference_named: int  # ... and named unused slots ([unused12])
    tokens: list[ScanToken]
    ranked: int  # rows scored (those with a direction)
    unusable: int  # rows left out: NaN, infinite or zero, so no score
    unreachable: int  # rows whose own text does not encode to them
    scores: Any = None  # np.ndarray (ranked,) the indicator of every scored row (not in JSON)
    include_special: bool = True  # special tokens may be listed
    exclude_reference: bool = False  # reference tokens are left out of the list
    hidden_special: int = 0  # scored special tokens left out of the list
    hidden_reference: int = 0  # scored reference tokens left out of the list

    def __repr__(self) -> str:
        # reference_ids holds a thousand ids or more, and scores every ranked row: counted only.
        return described(
            "TokenScan",
            ("indicator", self.indicator),
            ("model", model_label(self.model)),
            ("embeddings", self.embeddings),
            ("tokens", len(self.tokens)),
            ("ranked", self.ranked),
            ("reference", None if self.reference_kind is None else len(self.reference_ids)),
        )

    def _repr_html_(self) -> str:
        return html_of(self.human())

    def to_json(self) -> dict[str, Any]:
        reference = None
        if self.reference_kind is not None:
            reference = {"kind": self.reference_kind, "ids": self.reference_ids}
        return {
            "indicator": self.indicator,
            "reference": reference,
            "include_special": self.include_special,
            "exclude_reference": self.exclude_reference,
            "tokens": [t.to_json() for t in self.tokens],
        }

    def tsv(self) -> tuple[list[str], list[list[Any]]]:
        rows = [
            [t.rank, t.id, t.token, t.score, str(t.reachable).lower(), str(t.special).lower()]
            for t in self.tokens
        ]
        return ["rank", "id", "token", "score", "reachable", "special"], rows

    def to_pandas(self) -> Any:
        """One row per listed token: rank, id, token, score, reachable, special."""
        kinds: dict[str, Kind] = {"rank": "int", "id": "int", "token": "text", "score": "float"}
        kinds |= {"reachable": "bool", "special": "bool"}
        return records_frame(self.to_json()["tokens"], kinds)

    def reference_line(self) -> str | None:
        """Which reference tokens magikarp measured against, and how many."""
        if self.reference_kind is None:
            return None
        n = len(self.reference_ids)
        if self.reference_kind == "ids":
            return f"reference: {n:,} given token id{'s' if n != 1 else ''}"
        return (
            f"reference (automatic): {n:,} tokens, {self.reference_unreachable:,} unreachable "
            f"and {self.reference_named:,} named unused slots"
        )

    def human(self) -> Human:
        title = (
            f"Under-trained tokens of {model_label(self.model)} · {self.indicator} · "
            f"{self.embeddings} embeddings"
        )
        subtitle = [f"score: {_SCAN_SCORES[self.indicator]}; smallest first"]
        line = self.reference_line()
        if line is not None:
            subtitle.append(line)
        counts = f"{self.ranked:,} tokens ranked, {self.unreachable:,} unreachable"
        if self.unusable:
            counts += f", {self.unusable:,} rows with no direction left out"
        subtitle.append(counts)
        left_out = []
        if self.hidden_reference:
            left_out.append(f"{self.hidden_reference:,} reference tokens left out")
        if self.hidden_special:
            left_out.append(f"{self.hidden_special:,} special tokens left out")
        if left_out:
            subtitle.append("; ".join(left_out))
        rows = [
            [
                str(t.rank),
                t.label,
                str(t.id),
                f"{t.score:.4f}",
                "yes" if t.reachable else "no",
                "yes" if t.special else "",
            ]
            for t in self.tokens
        ]
        columns = [Column("rank", True), Column("token"), Column("id", True)]
        columns += [Column("score", True), Column("reachable"), Column("special")]
        return [Table(title, columns, rows, subtitle=subtitle)]
