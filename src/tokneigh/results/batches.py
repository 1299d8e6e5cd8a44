"""Several comparisons, or several analogies, answered for the lines of a batch file: the
JSON is a list of the single results' objects, the TSV their rows under one header (each row
naming its inputs), the tables one after another."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .comparison import COMPARISON_KINDS, Comparison, comparison_record
from .frames import Kind, records_frame
from .neighbors import MostSimilar, neighbor_kinds
from .notebook import described, html_of
from .tables import Human

_COMPARISON_HEADER = ["a", "b", "cosine", "angle_degrees", "pearson", "norm_a", "norm_b",
                      "rank_of_b"]  # fmt: skip


@dataclass(slots=True)
class Comparisons:
    """The comparisons of several pairs, in input order."""

    items: list[Comparison]

    def __repr__(self) -> str:
        return described("Comparisons", ("pairs", len(self.items)))

    def _repr_html_(self) -> str:
        return html_of(self.human())

    def to_json(self) -> list[dict[str, Any]]:
        return [c.to_json() for c in self.items]

    def tsv(self) -> tuple[list[str], list[list[Any]]]:
        # Each comparison's row already names its pair (columns a and b).
        return _COMPARISON_HEADER, [row for c in self.items for row in c.tsv()[1]]

    def to_pandas(self) -> Any:
        """One row per pair, the columns of ``Comparison.to_pandas``."""
        return records_frame([comparison_record(c) for c in self.items], COMPARISON_KINDS)

    def human(self) -> Human:
        return [block for c in self.items for block in c.human()]


@dataclass(slots=True)
class Analogies:
    """The answers to several analogies "a is to b as c is to ?", in input order."""

    items: list[MostSimilar]

    def __repr__(self) -> str:
        return described("Analogies", ("analogies", len(self.items)))

    def _repr_html_(self) -> str:
        return html_of(self.human())

    def to_json(self) -> list[dict[str, Any]]:
        return [m.to_json() for m in self.items]

    def tsv(self) -> tuple[list[str], list[list[Any]]]:
        # A single analogy's rows do not say which analogy they answer: prefix a, b, c.
        header = ["a", "b", "c", "rank", "id", "token", "similarity"]
        rows: list[list[Any]] = []
        for m in self.items:
            (a,), (b, c) = m.negative, m.positive
            part_header, part = m.tsv()
            header = ["a", "b", "c", *part_header]
            rows += [[a.term(), b.term(), c.term(), *row] for row in part]
        return header, rows

    def to_pandas(self) -> Any:
        """One row per neighbour of each analogy: a, b, c (a term's text, null for an id
        term) with a_id, b_id, c_id (an id term's id), then ``MostSimilar.to_pandas``'s
        columns."""
        records = []
        for m in self.items:
            (a,), (b, c) = m.negative, m.positive
            terms: dict[str, Any] = {}
            for name, term in (("a", a), ("b", b), ("c", c)):
                terms |= {name: term.text, f"{name}_id": term.token_id}
            records += [{**terms, **n} for n in m.to_json()["neighbors"]]
        dedupe = any(m.dedupe for m in self.items)
        return records_frame(records, {**_TERM_KINDS, **neighbor_kinds(dedupe)})

    def human(self) -> Human:
        return [block for m in self.items for block in m.human()]


_TERM_KINDS: dict[str, Kind] = {
    "a": "text",
    "a_id": "maybe_int",
    "b": "text",
    "b_id": "maybe_int",
    "c": "text",
    "c_id": "maybe_int",
}
