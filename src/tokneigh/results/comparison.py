"""Two queries compared: cosine, angle, correlation, norms and rank."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .frames import Kind, records_frame
from .notebook import described, html_of, number
from .tables import Column, Human, Table, model_label, score_text, with_metric
from .tokens import Query


@dataclass(slots=True)
class Comparison:
    a: Query
    b: Query
    model: str
    cosine: float
    angle_degrees: float
    pearson: float
    norm_a: float
    norm_b: float
    rank_of_b: int  # where b stands among a's neighbours (1 = nearest), as in `neighbors a`
    metric: str = "cosine"
    similarity: float = 0.0  # the metric's score: the cosine, or e.g. the CSLS score

    def __repr__(self) -> str:
        return described(
            "Comparison",
            ("a", self.a.repr_term()),
            ("b", self.b.repr_term()),
            ("model", model_label(self.model)),
            ("metric", self.metric),
            ("similarity", None if self.metric == "cosine" else number(self.similarity)),
            ("cosine", number(self.cosine)),
            ("rank_of_b", self.rank_of_b),
        )

    def _repr_html_(self) -> str:
        return html_of(self.human())

    def to_json(self) -> dict[str, Any]:
        return {
            "a": self.a.to_json(),
            "b": self.b.to_json(),
            "metric": self.metric,
            "similarity": self.similarity,
            "cosine": self.cosine,
            "angle_degrees": self.angle_degrees,
            "pearson": self.pearson,
            "norm_a": self.norm_a,
            "norm_b": self.norm_b,
            "rank_of_b": self.rank_of_b,
        }

    def tsv(self) -> tuple[list[str], list[list[Any]]]:
        header = ["a", "b", "cosine", "angle_degrees", "pearson", "norm_a", "norm_b", "rank_of_b"]
        row = [
            self.a.term(),
            self.b.term(),
            self.cosine,
            self.angle_degrees,
            self.pearson,
            self.norm_a,
            self.norm_b,
            self.rank_of_b,
        ]
        return header, [row]

    def to_pandas(self) -> Any:
        """One row: a and b (the text, null for an id query), a_id and b_id (the token id
        of an id query), metric, then the measures as ``to_json()`` has them."""
        return records_frame([comparison_record(self)], COMPARISON_KINDS)

    def human(self) -> Human:
        rows = [
            ["pieces of A", " + ".join(self.a.labels)],
            ["pieces of B", " + ".join(self.b.labels)],
            *(
                []
                if self.metric == "cosine"
                else [[f"{self.metric} score", score_text(self.similarity)]]
            ),
            [_cosine_label(self.metric), score_text(self.cosine)],
            ["angle", f"{self.angle_degrees:.1f}°"],
            ["Pearson correlation (raw)", score_text(self.pearson)],
            ["norm of A (raw)", f"{self.norm_a:.3f}"],
            ["norm of B (raw)", f"{self.norm_b:.3f}"],
            ["rank of B among A's neighbours", f"{self.rank_of_b:,}"],
        ]
        title = with_metric(
            f"{self.a.shown} vs {self.b.shown} · {model_label(self.model)}", self.metric
        )
        return [Table(title, [Column("measure"), Column("value", True)], rows)]


def comparison_record(c: Comparison) -> dict[str, Any]:
    """A comparison's row in a data frame (from its JSON): a pair's texts and ids apart."""
    data = c.to_json()
    a, b = data.pop("a"), data.pop("b")
    record = {"a": a["text"], "a_id": a["query_id"], "b": b["text"], "b_id": b["query_id"]}
    return {**record, **data}


COMPARISON_KINDS: dict[str, Kind] = {
    "a": "text",
    "a_id": "maybe_int",
    "b": "text",
    "b_id": "maybe_int",
    "metric": "text",
    **dict.fromkeys(
        ("similarity", "cosine", "angle_degrees", "pearson", "norm_a", "norm_b"), "float"
    ),
    "rank_of_b": "int",
}


def _cosine_label(metric: str) -> str:
    # centered and abtt compare other vectors than the rows: say whose cosine it is.
    if metric == "cosine" or metric.startswith("csls"):
        return "cosine similarity"
    return f"cosine ({metric} vectors)"
