"""How neighbourhoods change between two spaces (``tokneigh.analyses.diff``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .alignment import TokenMatching
from .frames import Kind, records_frame
from .neighbors import Neighbor
from .notebook import described, html_of, number
from .tables import Column, Human, Table, model_label, score_text


def _rho(value: float) -> str:
    return "-" if value != value else f"{value:.3f}"  # NaN: a constant row has no ranking


@dataclass(slots=True)
class DiffItem:
    """One query's neighbourhood in A and in B."""

    source: str  # "word" (asked for) or "sample" (drawn)
    query: str  # the word, or the sampled token's text
    id: int | None  # the token id in A of a one-token query
    label: str
    overlap: float  # |N_A ∩ N_B| / k
    jaccard: float  # |N_A ∩ N_B| / |N_A ∪ N_B|
    spearman: float  # rho of the two score rows over the shared tokens (NaN if undefined)
    neighbors_a: list[Neighbor]  # ids in A
    neighbors_b: list[Neighbor]  # ids in B

    def __repr__(self) -> str:
        return described(
            "DiffItem",
            ("query", self.query),
            ("source", self.source),
            ("overlap", number(self.overlap)),
            ("jaccard", number(self.jaccard)),
            ("spearman", number(self.spearman)),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "query": self.query,
            "id": self.id,
            "overlap": self.overlap,
            "jaccard": self.jaccard,
            "spearman": self.spearman,
            "neighbors_a": [n.to_json() for n in self.neighbors_a],
            "neighbors_b": [n.to_json() for n in self.neighbors_b],
        }


@dataclass(slots=True)
class DiffSummary:
    queries: int
    overlap_mean: float
    overlap_median: float
    jaccard_mean: float
    jaccard_median: float
    spearman_mean: float  # over the queries with a defined rho
    spearman_median: float
    overlap_below_half: float  # share of queries with overlap < 0.5

    def to_json(self) -> dict[str, Any]:
        return {
            "queries": self.queries,
            "overlap": {"mean": self.overlap_mean, "median": self.overlap_median},
            "jaccard": {"mean": self.jaccard_mean, "median": self.jaccard_median},
            "spearman": {"mean": self.spearman_mean, "median": self.spearman_median},
            "overlap_below_half": self.overlap_below_half,
        }


@dataclass(slots=True)
class NeighborhoodDiff:
    """How the top-k neighbourhoods of words and of sampled tokens change from space A to
    space B, over the tokens both vocabularies share (``tokneigh.analyses.diff``)."""

    model_a: str
    embeddings_a: str
    metric_a: str
    model_b: str
    embeddings_b: str
    metric_b: str
    k: int
    vocab_a: int
    vocab_b: int
    shared: int  # tokens matched (tokneigh.tokens.matching): usable and not special in both
    sample: int  # sampled tokens asked for (all shared ones when fewer)
    seed: int
    items: list[DiffItem]  # the words in order, then the sample by id in A
    summary: DiffSummary
    most_changed: list[int]  # positions in items, most changed first
    matching: TokenMatching | None = None  # how the vocabularies were matched

    def _side(self, which: str) -> dict[str, Any]:
        model, embeddings, metric, vocab = (
            (self.model_a, self.embeddings_a, self.metric_a, self.vocab_a)
            if which == "a"
            else (self.model_b, self.embeddings_b, self.metric_b, self.vocab_b)
        )
        return {"model": model, "embeddings": embeddings, "metric": metric, "vocab_size": vocab}

    def __repr__(self) -> str:
        inputs = self.embeddings_a == self.embeddings_b == "input"
        return described(
            "NeighborhoodDiff",
            ("model_a", model_label(self.model_a)),
            ("embeddings_a", None if inputs else self.embeddings_a),
            ("metric_a", self.metric_a),
            ("model_b", model_label(self.model_b)),
            ("embeddings_b", None if inputs else self.embeddings_b),
            ("metric_b", self.metric_b),
            ("k", self.k),
            ("queries", len(self.items)),
            ("overlap", number(self.summary.overlap_mean)),
        )

    def _repr_html_(self) -> str:
        return html_of(self.human())

    def to_json(self) -> dict[str, Any]:
        return {
            "a": self._side("a"),
            "b": self._side("b"),
            "k": self.k,
            "shared_tokens": self.shared,
            "sample": self.sample,
            "seed": self.seed,
            "summary": self.summary.to_json(),
            "items": [i.to_json() for i in self.items],
            "most_changed": self.most_changed,
            "matching": None if self.matching is None else self.matching.to_json(),
        }

    def tsv(self) -> tuple[list[str], list[list[Any]]]:
        rows = [[i.source, i.query, i.id, i.overlap, i.jaccard, i.spearman] for i in self.items]
        return ["source", "query", "id", "overlap", "jaccard", "spearman"], rows

    def to_pandas(self) -> Any:
        """One row per query: source ("word" or "sample"), query, id (null unless one
        token), overlap, jaccard, spearman (NaN where undefined). The neighbour lists stay in
        ``to_json()``."""
        kinds: dict[str, Kind] = {"source": "text", "query": "text", "id": "maybe_int"}
        kinds |= dict.fromkeys(("overlap", "jaccard", "spearman"), "float")
        return records_frame(self.to_json()["items"], kinds)

    def _named(self, which: str) -> str:
        side = self._side(which)
        return f"{model_label(side['model'])} ({side['embeddings']}, {side['metric']})"

    def human(self) -> Human:
        s, k = self.summary, self.k
        words = [i for i in self.items if i.source == "word"]
        drawn = len(self.items) - len(words)
        asked = [f"{len(words):,} word{'s' if len(words) != 1 else ''}"] if words else []
        if drawn:
            asked.append(f"{drawn:,} sampled tokens (seed {self.seed})")
        subtitle = [
            f"A: {self._named('a')} · B: {self._named('b')}",
            f"{self.shared:,} shared tokens compared (A has {self.vocab_a:,}, "
            f"B {self.vocab_b:,}) · " + " + ".join(asked),
        ]
        if self.matching is not None:
            subtitle.extend(self.matching.lines())
        rows = [
            [f"overlap@{k}", f"{s.overlap_mean:.3f}", f"{s.overlap_median:.3f}"],
            ["Jaccard", f"{s.jaccard_mean:.3f}", f"{s.jaccard_median:.3f}"],
            ["Spearman ρ", _rho(s.spearman_mean), _rho(s.spearman_median)],
            [f"share with overlap@{k} < 0.5", f"{s.overlap_below_half:.1%}", ""],
        ]
        columns = [Column("measure"), Column("mean", True), Column("median", True)]
        out: Human = [
            Table(f"How neighbourhoods change · k = {k}", columns, rows, subtitle=subtitle)
        ]
        if words:
            rows = [
                [
                    w.label,
                    "" if w.id is None else str(w.id),
                    f"{w.overlap:.2f}",
                    f"{w.jaccard:.2f}",
                    _rho(w.spearman),
                ]
                for w in words
            ]
            columns = [Column("word"), Column("id", True), Column(f"overlap@{k}", True)]
            columns += [Column("Jaccard", True), Column("ρ", True)]
            out.append(Table("Words", columns, rows))
        for position in self.most_changed:
            item = self.items[position]
            title = (
                f"Most changed: {item.label} · overlap@{k} {item.overlap:.2f} · "
                f"Jaccard {item.jaccard:.2f} · ρ {_rho(item.spearman)}"
            )
            pairs = max(len(item.neighbors_a), len(item.neighbors_b))
            rows = []
            for r in range(pairs):
                row = [str(r + 1)]
                for listed in (item.neighbors_a, item.neighbors_b):
                    n = listed[r] if r < len(listed) else None
                    row += [n.label, score_text(n.similarity)] if n is not None else ["", ""]
                rows.append(row)
            columns = [Column("rank", True), Column("A"), Column(self.metric_a, True)]
            columns += [Column("B"), Column(self.metric_b, True)]
            out.append(Table(title, columns, rows))
        return out
