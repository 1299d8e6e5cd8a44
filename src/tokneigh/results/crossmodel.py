"""A query of one model read among another model's tokens through an alignment's map
(``tokneigh.analyses.crossmodel``): B's neighbours of A's query, mapped."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .frames import Kind, records_frame
from .neighbors import NeighborList, _neighbor_table, _top, neighbor_kinds
from .notebook import described, html_of
from .tables import Human, model_label, score_text, shape_text
from .tokens import Query


@dataclass(slots=True)
class CrossNeighborList:
    """B's nearest tokens to A's query mapped into B's space."""

    asked: Query  # the query as A reads it (A's tokens)
    model_a: str
    embeddings_a: str
    listed: NeighborList  # B's ranking of the mapped vector (a vector query of B)
    # B's own token for the query when B has it as one token: id, label, similarity (its
    # cosine with the mapped vector), rank (in the list, or None when not listed).
    counterpart: dict[str, Any] | None = None
    # The map used: its options (refine, seed, test_share, pool, ridge), method, cached (read
    # from the cache, not fitted by this call), and its held-out p@1 and mean cosine.
    alignment: dict[str, Any] = field(default_factory=dict)

    @property
    def model_b(self) -> str:
        return self.listed.model

    def __repr__(self) -> str:
        return described(
            "CrossNeighborList",
            ("query", self.asked.repr_term()),
            ("a", model_label(self.model_a)),
            ("b", model_label(self.model_b)),
            ("counterpart_rank", None if self.counterpart is None else self.counterpart["rank"]),
            ("neighbors", len(self.listed.neighbors)),
            ("top", _top(self.listed.neighbors)),
        )

    def _repr_html_(self) -> str:
        return html_of(self.human())

    def to_json(self) -> dict[str, Any]:
        return {
            **self.asked.to_json(),
            "a": {"model": self.model_a, "embeddings": self.embeddings_a},
            "b": {
                "model": self.listed.model,
                "embeddings": self.alignment.get("embeddings_b"),
                "vocab_size": self.listed.vocab_size,
                "dim": self.listed.dim,
            },
            "alignment": {k: v for k, v in self.alignment.items() if k != "embeddings_b"},
            "counterpart": self.counterpart,
            "neighbors": [n.to_json() for n in self.listed.neighbors],
        }

    def _records(self) -> list[dict[str, Any]]:
        asked = {"query": self.asked.text, "query_id": self.asked.token_id}
        return [{**asked, **n.to_json()} for n in self.listed.neighbors]

    def tsv(self) -> tuple[list[str], list[list[Any]]]:
        header = ["query", "query_id", "rank", "id", "token", "similarity"]
        text = "" if self.asked.text is None else self.asked.text
        qid = "" if self.asked.token_id is None else self.asked.token_id
        rows = [[text, qid, n.rank, n.id, n.token, n.similarity] for n in self.listed.neighbors]
        return header, rows

    def to_pandas(self) -> Any:
        """One row per neighbour in B: query, query_id, rank, id, token, similarity."""
        kinds: dict[str, Kind] = {"query": "text", "query_id": "maybe_int"}
        kinds |= neighbor_kinds(self.listed.dedupe)
        return records_frame(self._records(), kinds)

    def subtitle(self) -> list[str]:
        options = self.alignment
        lines = [
            f"A: {model_label(self.model_a)} ({self.embeddings_a}) → B: "
            f"{model_label(self.model_b)} ({options.get('embeddings_b', '?')}) · "
            f"{shape_text(self.listed.vocab_size, self.listed.dim)}"
        ]
        if options:
            lines.append(
                f"map: {options.get('method')}, refine {options.get('refine')}, seed "
                f"{options.get('seed')} · held-out P@1 {options.get('p_at_1', 0.0):.3f}, "
                f"mean cosine {options.get('mean_cosine', 0.0):.3f}"
                f"{' · read from the cache' if options.get('cached') else ''}"
            )
        found = self.counterpart
        if found is None:
            lines.append("B has no single token for the query: read through the map alone")
        else:
            where = "not in the list" if found["rank"] is None else f"rank {found['rank']}"
            lines.append(
                f"B's own token {found['label']} (#{found['id']}): {where}, "
                f"cosine {score_text(found['similarity'])}"
            )
        return lines

    def human(self) -> Human:
        title = f"Neighbours in B of A's {self.asked.described()} (mapped)"
        return [
            _neighbor_table(
                title, self.listed.neighbors, self.listed.dedupe, subtitle=self.subtitle()
            )
        ]


@dataclass(slots=True)
class CrossNeighborLists:
    """Several cross-model lists, answered together."""

    lists: list[CrossNeighborList]

    def __repr__(self) -> str:
        first = self.lists[0] if self.lists else None
        return described(
            "CrossNeighborLists",
            ("queries", len(self.lists)),
            ("a", None if first is None else model_label(first.model_a)),
            ("b", None if first is None else model_label(first.model_b)),
        )

    def _repr_html_(self) -> str:
        return html_of(self.human())

    def to_json(self) -> list[dict[str, Any]]:
        return [r.to_json() for r in self.lists]

    def tsv(self) -> tuple[list[str], list[list[Any]]]:
        header = ["query", "query_id", "rank", "id", "token", "similarity"]
        return header, [row for r in self.lists for row in r.tsv()[1]]

    def to_pandas(self) -> Any:
        """Every list's rows (``CrossNeighborList.to_pandas``), one row per neighbour in B."""
        kinds: dict[str, Kind] = {"query": "text", "query_id": "maybe_int"}
        kinds |= neighbor_kinds(False)
        records = [row for r in self.lists for row in r._records()]
        return records_frame(records, kinds)

    def human(self) -> Human:
        return [block for r in self.lists for block in r.human()]
