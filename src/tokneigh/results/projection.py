"""``map``: a query and its neighbours projected to 2-D."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .frames import Kind, records_frame
from .neighbors import NeighborList
from .notebook import described, html_of
from .tables import Column, Human, Table, model_label, score_text


@dataclass(slots=True)
class TokenMap:
    """A query and its neighbours projected to 2-D (PCA of their unit vectors)."""

    result: NeighborList  # the query's own tokens are left out: the query is its own point
    query_xy: tuple[float, float]
    points: list[tuple[float, float]]  # one per neighbour, in result.neighbors order
    explained: tuple[float, float]  # share of the variance along each axis

    def __repr__(self) -> str:
        r = self.result
        return described(
            "TokenMap",
            ("query", r.asked.repr_term()),
            ("model", model_label(r.model)),
            ("metric", r.metric),
            ("points", len(self.points)),
        )

    def _repr_html_(self) -> str:
        return html_of(self.human())

    def to_json(self) -> dict[str, Any]:
        r = self.result
        return {
            "query": r.query,
            "query_id": r.query_id,
            "query_ids": r.query_ids,
            "query_tokens": r.query_tokens,
            **({"query_unknown": r.query_unknown} if r.query_unknown else {}),
            "model": r.model,
            "metric": r.metric,
            "explained_variance": list(self.explained),
            "query_xy": list(self.query_xy),
            "neighbors": [
                {**n.to_json(), "x": x, "y": y} for n, (x, y) in zip(r.neighbors, self.points)
            ],
        }

    def tsv(self) -> tuple[list[str], list[list[Any]]]:
        r = self.result
        query = r.query if r.query is not None else f"#{r.query_id}"
        rows: list[list[Any]] = [[0, "", query, 1.0, self.query_xy[0], self.query_xy[1]]]
        rows += [
            [n.rank, n.id, n.token, n.similarity, x, y]
            for n, (x, y) in zip(r.neighbors, self.points)
        ]
        return ["rank", "id", "token", "similarity", "x", "y"], rows

    def to_pandas(self) -> Any:
        """One row per neighbour: the query (text, id and its point, repeated), then rank,
        id, token, similarity and the neighbour's point x, y."""
        data = self.to_json()
        qx, qy = data["query_xy"]
        asked = {"query": data["query"], "query_id": data["query_id"], "query_x": qx, "query_y": qy}
        records = [{**asked, **n} for n in data["neighbors"]]
        kinds: dict[str, Kind] = {"query": "text", "query_id": "maybe_int"}
        kinds |= {"query_x": "float", "query_y": "float", "rank": "int", "id": "int"}
        kinds |= {"token": "text", "similarity": "float"}
        return records_frame(records, {**kinds, "x": "float", "y": "float"})

    def human(self) -> Human:
        r = self.result
        title = (
            f"{r.title('Map of')} · PCA axes explain {self.explained[0]:.0%} and "
            f"{self.explained[1]:.0%} of the variance"
        )
        columns = [Column("rank", True), Column("token"), Column("id", True)]
        columns += [Column(r.metric, True), Column("x", True), Column("y", True)]
        rows = [["", f"{r.asked.shown} (query)", "", "", *_xy(self.query_xy)]]
        rows += [
            [str(n.rank), n.label, str(n.id), score_text(n.similarity), *_xy(xy)]
            for n, xy in zip(r.neighbors, self.points)
        ]
        return [Table(title, columns, rows)]


def _xy(xy: tuple[float, float]) -> list[str]:
    return [f"{xy[0]:+.3f}", f"{xy[1]:+.3f}"]
