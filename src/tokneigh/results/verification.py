"""``verify``: the per-row Python loop against the vectorized product."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .frames import Kind, records_frame
from .notebook import described, html_of, number
from .tables import Column, Human, Table, model_label
from .tokens import Query


def _finite(value: float) -> float | None:
    # JSON has no Infinity: a speed-up over a product too quick to time is null.
    return value if value == value and abs(value) != float("inf") else None


def _duration(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms" if seconds < 10 else f"{seconds:,.1f} s"


_VERIFICATION_KINDS: dict[str, Kind] = {
    "query": "text",
    "query_id": "maybe_int",
    "query_ids": "object",
    "query_tokens": "object",
    "model": "text",
    "vocab_size": "int",
    "dim": "int",
    "k": "int",
    "pearson": "float",
    "max_abs_diff": "float",
    "top_k_identical": "bool",
    "top_k_agree": "bool",
    "top_k_tied_swaps": "int",
    "top_k_loop": "object",
    "top_k_vectorized": "object",
    "loop_seconds": "float",
    "vectorized_seconds": "float",
    "speedup": "float",  # NaN where the JSON has null (too quick to time)
}


@dataclass(slots=True)
class Verification:
    """The per-row Python loop against the vectorized product, over the whole vocabulary."""

    query: Query
    model: str
    vocab_size: int
    dim: int
    k: int
    pearson: float  # correlation of the two similarity vectors (1.0 when they agree)
    max_abs_diff: float
    top_k_identical: bool  # same ids in the same order
    top_k_agree: bool  # identical, or differing only where two tokens tie
    top_k_tied_swaps: int  # positions where tied tokens stand in the other order
    top_k_loop: list[int]
    top_k_vectorized: list[int]
    loop_seconds: float
    vectorized_seconds: float  # best of several runs: one product is too quick to time once
    speedup: float

    def __repr__(self) -> str:
        return described(
            "Verification",
            ("query", self.query.repr_term()),
            ("model", model_label(self.model)),
            ("k", self.k),
            ("top_k_agree", self.top_k_agree),
            ("pearson", number(self.pearson, 6)),
        )

    def _repr_html_(self) -> str:
        return html_of(self.human())

    def to_json(self) -> dict[str, Any]:
        return {
            "query": self.query.text,
            "query_id": self.query.token_id,
            "query_ids": self.query.ids,
            "query_tokens": self.query.tokens,
            "model": self.model,
            "vocab_size": self.vocab_size,
            "dim": self.dim,
            "k": self.k,
            "pearson": self.pearson,
            "max_abs_diff": self.max_abs_diff,
            "top_k_identical": self.top_k_identical,
            "top_k_agree": self.top_k_agree,
            "top_k_tied_swaps": self.top_k_tied_swaps,
            "top_k_loop": self.top_k_loop,
            "top_k_vectorized": self.top_k_vectorized,
            "loop_seconds": self.loop_seconds,
            "vectorized_seconds": self.vectorized_seconds,
            "speedup": _finite(self.speedup),
        }

    def tsv(self) -> tuple[list[str], list[list[Any]]]:
        data = self.to_json()
        keys = [k for k in data if k not in ("query_ids", "query_tokens")]
        cells = [
            ",".join(map(str, data[k])) if isinstance(data[k], list) else data[k] for k in keys
        ]
        return keys, [["" if c is None else c for c in cells]]

    def to_pandas(self) -> Any:
        """One row: the facts of ``to_json()``, its lists (query_ids, query_tokens,
        top_k_loop, top_k_vectorized) as Python lists in object columns."""
        return records_frame([self.to_json()], _VERIFICATION_KINDS)

    def human(self) -> Human:
        if self.top_k_identical:
            same = "yes"
        elif self.top_k_agree:
            same = f"yes, up to {self.top_k_tied_swaps} tied tokens swapped"
        else:
            same = "NO"
        speedup = f"{self.speedup:,.0f}×" if _finite(self.speedup) else "too quick to time"
        rows = [
            ["query", " + ".join(self.query.labels)],
            ["rows compared", f"{self.vocab_size:,} × {self.dim}"],
            ["Pearson correlation", f"{self.pearson:.6f}"],
            ["largest |difference|", f"{self.max_abs_diff:.2e}"],
            [f"same top {self.k} (ids and order)", same],
            ["Python loop, row by row", _duration(self.loop_seconds)],
            ["vectorized (best of 5)", _duration(self.vectorized_seconds)],
            ["speed-up", speedup],
        ]
        title = f"Loop vs vectorized for {self.query.shown} · {model_label(self.model)}"
        blocks: Human = [Table(title, [Column("measure"), Column("value", True)], rows)]
        if not self.top_k_identical:
            # Show both rankings: which tokens moved is the first thing a user will ask.
            blocks.append(f"loop top {self.k}:       {self.top_k_loop}")
            blocks.append(f"vectorized top {self.k}: {self.top_k_vectorized}")
        return blocks
