"""Neighbour lists: the nearest tokens to one query, to several, and to an expression.

Neighbour rows (``Neighbor``, ``Variant``) are slotted and not frozen: a batch of 1,000 queries
builds 20,000 of them, and a frozen dataclass's ``__init__`` costs five times as much.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .frames import Kind, records_frame
from .notebook import Shown, cut, described, html_of
from .tables import (
    Column,
    Human,
    Table,
    joined_pieces,
    model_label,
    score_text,
    shape_text,
    with_metric,
)
from .tokens import Query, VectorSource


@dataclass(slots=True)
class Variant:
    """Another spelling of a neighbour that ``dedupe`` folded into its row."""

    id: int
    token: str
    similarity: float
    label: str

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "token": self.token, "similarity": self.similarity}


@dataclass(slots=True)
class Neighbor:
    rank: int  # 1-based
    id: int
    token: str | None  # None: a row the tokenizer names no token for (padding)
    similarity: float  # cosine, in [-1, 1]
    label: str
    special: bool = False  # a control token, reserved slot or row the tokenizer does not name
    variants: list[Variant] | None = None  # only with dedupe: the other spellings, best first

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "rank": self.rank,
            "id": self.id,
            "token": self.token,
            "similarity": self.similarity,
        }
        if self.variants is not None:
            data["variants"] = [v.to_json() for v in self.variants]
        return data


def _neighbor_table(
    title: str, neighbors: Sequence[Neighbor], deduped: bool, metric: str = "cosine", **extra: Any
) -> Table:
    # The similarity column is named by what it holds: cosine, or the metric's score.
    columns = [Column("rank", True), Column("token"), Column("id", True), Column(metric, True)]
    if deduped:
        columns.append(Column("variants"))
    rows = []
    for n in neighbors:
        row = [
            str(n.rank),
            n.label + ("  (special)" if n.special else ""),
            str(n.id),
            score_text(n.similarity),
        ]
        if deduped:
            row.append(", ".join(v.label for v in n.variants or ()))
        rows.append(row)
    return Table(title, columns, rows, **extra)


@dataclass(slots=True)
class NeighborList:
    """The nearest tokens to one query."""

    query: str | None  # the text, or None for a token-id query
    query_id: int | None  # the token id asked for, or None for a text query
    query_ids: list[int]
    query_tokens: list[str]
    query_labels: list[str]
    model: str
    vocab_size: int
    dim: int
    neighbors: list[Neighbor]
    dedupe: bool = False  # variants were folded (each neighbour has ``variants``)
    hidden: int = 0  # special tokens left out of the ranking
    unusable: int = 0  # rows with no direction (NaN, infinite or zero) left out
    metric: str = "cosine"  # what `similarity` is: cosine, or centered, abtt:D, csls:K
    quantization: str | None = None  # a GGUF file's storage type of the matrix ("Q8_0")
    vector: VectorSource | None = None  # a vector query: where the vector came from
    score: str = "cosine"  # or "dot": the raw product with the unnormalized rows
    # Positions in query_ids of the unknown token standing for text the vocabulary lacks.
    query_unknown: list[int] = field(default_factory=list)

    @property
    def asked(self) -> Query:
        return Query(
            self.query,
            self.query_id,
            self.query_ids,
            self.query_tokens,
            self.query_labels,
            self.vector,
            self.query_unknown,
        )

    def __repr__(self) -> str:
        return described(
            "NeighborList",
            ("query", self.asked.repr_term()),
            ("model", model_label(self.model)),
            ("metric", self.metric),
            ("score", None if self.score == "cosine" else self.score),
            ("neighbors", len(self.neighbors)),
            ("top", _top(self.neighbors)),
        )

    def _repr_html_(self) -> str:
        return html_of(self.human())

    def to_json(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "query_id": self.query_id,
            "query_ids": self.query_ids,
            "query_tokens": self.query_tokens,
            **({"query_unknown": self.query_unknown} if self.query_unknown else {}),
            "model": self.model,
            "vocab_size": self.vocab_size,
            "dim": self.dim,
            "metric": self.metric,
            **({} if self.quantization is None else {"quantization": self.quantization}),
            **({} if self.vector is None else self.vector.to_json()),
            **({} if self.score == "cosine" else {"score": self.score}),
            "neighbors": [n.to_json() for n in self.neighbors],
        }

    def tsv(self) -> tuple[list[str], list[list[Any]]]:
        header = ["query", "query_id", "rank", "id", "token", "similarity"]
        text = "" if self.query is None else self.query
        qid = "" if self.query_id is None else self.query_id
        if self.dedupe:
            # The folded variants' ids, comma-separated (ids never need escaping).
            rows = [
                [text, qid, n.rank, n.id, n.token, n.similarity, _variant_ids(n)]
                for n in self.neighbors
            ]
            return [*header, "variant_ids"], rows
        return header, [[text, qid, n.rank, n.id, n.token, n.similarity] for n in self.neighbors]

    def to_pandas(self) -> Any:
        """One row per neighbour: query, query_id (null for a text query), rank, id, token,
        similarity, and variants with dedupe; the values of ``to_json()``."""
        return records_frame(_query_records(self), {**_QUERY_KINDS, **neighbor_kinds(self.dedupe)})

    def title(self, what: str = "Neighbours of") -> str:
        stored = "" if self.quantization is None else f" · {self.quantization}"
        if self.score != "cosine":
            stored += f" · {self.score} product"
        return with_metric(
            f"{what} {self.asked.described()} · {model_label(self.model)}{stored} · "
            f"{shape_text(self.vocab_size, self.dim)}",
            self.metric,
        )

    def human(self) -> Human:
        column = self.metric if self.score == "cosine" else self.score
        return [_neighbor_table(self.title(), self.neighbors, self.dedupe, column)]


def _top(neighbors: Sequence[Neighbor]) -> Shown | None:
    """The nearest neighbour in a repr: its label (cut) and score."""
    if not neighbors:
        return None
    first = neighbors[0]
    text = f"{cut(first.label, 40)} {score_text(first.similarity)}"
    return Shown(text.encode("utf-8", "backslashreplace").decode("utf-8"))


def _variant_ids(n: Neighbor) -> str:
    return ",".join(str(v.id) for v in n.variants or ())


_QUERY_KINDS: dict[str, Kind] = {"query": "text", "query_id": "maybe_int"}
_NEIGHBOR_KINDS: dict[str, Kind] = {
    "rank": "int", "id": "int", "token": "text", "similarity": "float"
}


def neighbor_kinds(dedupe: bool) -> dict[str, Kind]:
    """The columns of a neighbour row in a data frame: ``variants`` (a list of the JSON's
    variant objects) only when they were folded."""
    return {**_NEIGHBOR_KINDS, "variants": "object"} if dedupe else dict(_NEIGHBOR_KINDS)


def _query_records(result: NeighborList) -> list[dict[str, Any]]:
    """One record per neighbour, the query's text and id repeated on each (from the JSON)."""
    data = result.to_json()
    asked = {"query": data["query"], "query_id": data["query_id"]}
    return [{**asked, **n} for n in data["neighbors"]]


@dataclass(slots=True)
class NeighborLists:
    """The neighbour lists of several queries, answered together."""

    lists: list[NeighborList]

    def __repr__(self) -> str:
        first = self.lists[0] if self.lists else None
        return described(
            "NeighborLists",
            ("queries", len(self.lists)),
            ("first", None if first is None else first.asked.repr_term()),
            ("model", None if first is None else model_label(first.model)),
            ("metric", None if first is None else first.metric),
            ("neighbors", sum(len(r.neighbors) for r in self.lists)),
        )

    def _repr_html_(self) -> str:
        return html_of(self.human())

    def to_json(self) -> list[dict[str, Any]]:
        return [r.to_json() for r in self.lists]

    def tsv(self) -> tuple[list[str], list[list[Any]]]:
        header: list[str] = []
        rows: list[list[Any]] = []
        for r in self.lists:
            header, part = r.tsv()
            rows.extend(part)
        return header or NeighborList(None, None, [], [], [], "", 0, 0, []).tsv()[0], rows

    def to_pandas(self) -> Any:
        """Every list's rows (``NeighborList.to_pandas``) one after the other, each row with
        its own query's text and id."""
        dedupe = any(r.dedupe for r in self.lists)
        records = [row for r in self.lists for row in _query_records(r)]
        return records_frame(records, {**_QUERY_KINDS, **neighbor_kinds(dedupe)})

    def human(self) -> Human:
        return [block for r in self.lists for block in r.human()]


@dataclass(slots=True)
class MostSimilar:
    """The tokens nearest to sum(positive) - sum(negative) of the terms' unit vectors."""

    positive: list[Query]
    negative: list[Query]
    model: str
    vocab_size: int
    dim: int
    neighbors: list[Neighbor]  # the terms' own tokens left out unless exclude_input=False
    dedupe: bool = False
    hidden: int = 0
    unusable: int = 0
    analogy: bool = False  # asked as "a is to b as c is to ?" (negative [a], positive [b, c])
    metric: str = "cosine"

    def __repr__(self) -> str:
        if self.analogy:
            (a,), (b, c) = self.negative, self.positive
            shown = f"{a.repr_term()} : {b.repr_term()} :: {c.repr_term()} : ?"
            asked = ("analogy", Shown(cut(shown, 120)))
        else:
            terms: list[str] = [t.repr_term() for t in self.positive]
            terms += [f"−{t.repr_term()}" for t in self.negative]
            shown = " + ".join(terms).replace("+ −", "− ")
            asked = ("expression", Shown(cut(shown, 120)))
        return described(
            "MostSimilar",
            asked,
            ("model", model_label(self.model)),
            ("metric", self.metric),
            ("neighbors", len(self.neighbors)),
            ("top", _top(self.neighbors)),
        )

    def _repr_html_(self) -> str:
        return html_of(self.human())

    def to_json(self) -> dict[str, Any]:
        unknown = [t.term() for t in (*self.positive, *self.negative) if t.unknown]
        return {
            "positive": [t.term() for t in self.positive],
            "negative": [t.term() for t in self.negative],
            **({"unknown_terms": unknown} if unknown else {}),
            "metric": self.metric,
            "neighbors": [n.to_json() for n in self.neighbors],
        }

    def tsv(self) -> tuple[list[str], list[list[Any]]]:
        header = ["rank", "id", "token", "similarity"]
        if self.dedupe:
            rows = [[n.rank, n.id, n.token, n.similarity, _variant_ids(n)] for n in self.neighbors]
            return [*header, "variant_ids"], rows
        return header, [[n.rank, n.id, n.token, n.similarity] for n in self.neighbors]

    def to_pandas(self) -> Any:
        """One row per neighbour: rank, id, token, similarity (and variants with dedupe)."""
        return records_frame(self.to_json()["neighbors"], neighbor_kinds(self.dedupe))

    def expression(self) -> str:
        """`"king" + "woman" − "man"`: the positives added, the negatives subtracted."""
        text = " + ".join(t.shown for t in self.positive)
        for t in self.negative:
            text += f" − {t.shown}" if text else f"− {t.shown}"
        return text

    def human(self) -> Human:
        if self.analogy:
            (a,), (b, c) = self.negative, self.positive
            heading = (
                f"{a.shown} is to {b.shown} as {c.shown} is to ?  "
                f"({b.shown} − {a.shown} + {c.shown})"
            )
        else:
            heading = f"Nearest to {self.expression()}"
        title = with_metric(
            f"{heading} · {model_label(self.model)} · {shape_text(self.vocab_size, self.dim)}",
            self.metric,
        )
        pieces = [
            f"{t.shown} = {joined_pieces(t.labels)}"
            for t in self.positive + self.negative
            if len(t.ids) > 1 or t.text is None
        ]
        return [_neighbor_table(title, self.neighbors, self.dedupe, self.metric, subtitle=pieces)]
