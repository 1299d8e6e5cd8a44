"""Two vocabularies matched, two spaces aligned, and how far each token moved
(``tokneigh.analyses.align``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .frames import Kind, records_frame
from .neighbors import Neighbor
from .notebook import described, html_of, number
from .tables import Column, Human, Table, model_label


@dataclass(slots=True)
class TokenMatching:
    """How two vocabularies were matched (``tokneigh.tokens.matching``): pairs by rule, and
    how many tokens of each model found no partner."""

    text: int  # pairs that decode to the same text (a word start as a leading space)
    bytes: int  # byte fragments of the same bytes
    special: int  # control tokens and reserved slots of the same name
    unmatched_a: int  # usable tokens of A with no partner in B
    unmatched_b: int

    @property
    def matched(self) -> int:
        return self.text + self.bytes + self.special

    @property
    def compared(self) -> int:
        """The pairs the comparisons use: special tokens left out, as neighbour lists do."""
        return self.text + self.bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "matched": self.matched,
            "by_rule": {"text": self.text, "bytes": self.bytes, "special": self.special},
            "compared": self.compared,
            "unmatched_a": self.unmatched_a,
            "unmatched_b": self.unmatched_b,
        }

    def line(self) -> str:
        """One sentence a person reads."""
        return (
            f"{self.matched:,} tokens matched ({self.text:,} by decoded text, {self.bytes:,} "
            f"by bytes, {self.special:,} special by name); unmatched: {self.unmatched_a:,} "
            f"of A, {self.unmatched_b:,} of B"
        )

    def lines(self) -> list[str]:
        """The same on two lines, as a table's subtitle shows it (one would wrap mid-figure
        on a 100-column terminal)."""
        return [
            f"{self.matched:,} tokens matched: {self.text:,} by decoded text, {self.bytes:,} "
            f"by bytes, {self.special:,} special by name",
            f"unmatched: {self.unmatched_a:,} of A, {self.unmatched_b:,} of B",
        ]

    def __repr__(self) -> str:
        return described(
            "TokenMatching",
            ("matched", self.matched),
            ("unmatched_a", self.unmatched_a),
            ("unmatched_b", self.unmatched_b),
        )


@dataclass(slots=True)
class DriftToken:
    """One matched token, how far it moved from A (mapped) to B, and its neighbours in each."""

    rank: int  # 1 = moved most
    id_a: int
    id_b: int
    token: str  # its text in A
    label_a: str
    label_b: str
    drift: float  # 1 - cos(A's mapped vector, B's vector)
    neighbors_a: list[Neighbor] = field(default_factory=list)  # in A's own space
    neighbors_b: list[Neighbor] = field(default_factory=list)  # in B's own space

    def to_json(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "id_a": self.id_a,
            "id_b": self.id_b,
            "token": self.token,
            "drift": self.drift,
            "neighbors_a": [n.to_json() for n in self.neighbors_a],
            "neighbors_b": [n.to_json() for n in self.neighbors_b],
        }


@dataclass(slots=True)
class Retrieval:
    """Held-out tokens: is A's token, mapped, nearest to its own counterpart in B?"""

    p1_nn: float
    p10_nn: float
    p1_csls: float
    p10_csls: float

    def to_json(self) -> dict[str, Any]:
        return {
            "nn": {"p@1": self.p1_nn, "p@10": self.p10_nn},
            "csls": {"p@1": self.p1_csls, "p@10": self.p10_csls},
        }


@dataclass(slots=True)
class CosineSpread:
    """How a set of cosines spreads: count, mean and quartiles."""

    count: int
    mean: float
    q1: float
    median: float
    q3: float

    def to_json(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "mean": self.mean,
            "q1": self.q1,
            "median": self.median,
            "q3": self.q3,
        }

    def cells(self) -> list[str]:
        return [
            f"{self.count:,}",
            f"{self.mean:.3f}",
            f"{self.q1:.3f}",
            f"{self.median:.3f}",
            f"{self.q3:.3f}",
        ]


@dataclass(slots=True)
class ComposedToken:
    """A token of A that B lacks, B's pieces of its text, and the cosine of A's vector mapped
    with the mean of those pieces' rows (B's FVT estimate of it)."""

    id_a: int
    token: str  # its text, a word start as a leading space
    label_a: str
    ids_b: list[int]
    labels_b: list[str]
    cosine: float

    def to_json(self) -> dict[str, Any]:
        return {"id_a": self.id_a, "token": self.token, "ids_b": self.ids_b, "cosine": self.cosine}


@dataclass(slots=True)
class Composed:
    """The tokens of A that B lacks, composed from B's pieces (``tokneigh.analyses.composed``):
    how close A's mapped vectors come to B's estimates, beside the same measure on the
    held-out matched tokens."""

    unmatched: int  # A's usable, non-special tokens with no partner in B
    skipped: int  # of those, with no estimate (a byte fragment, B's unknown token)
    composed: CosineSpread | None  # the cosines of the others
    baseline: CosineSpread | None  # the held-out matched tokens' cosines
    baseline_single: int  # held-out tokens B reads as one piece (its own row)
    tokens: list[ComposedToken] = field(default_factory=list)  # least agreeing first

    def to_json(self) -> dict[str, Any]:
        return {
            "unmatched": self.unmatched,
            "skipped": self.skipped,
            "composed": None if self.composed is None else self.composed.to_json(),
            "baseline": None if self.baseline is None else self.baseline.to_json(),
            "baseline_single_piece": self.baseline_single,
            "tokens": [t.to_json() for t in self.tokens],
        }

    def tables(self) -> list[Table]:
        if self.unmatched == 0:  # B has every token of A: nothing to compose, no table
            return []
        columns = [Column("tokens")] + [Column(n, True) for n in ("count", "mean", "q1")]
        columns += [Column("median", True), Column("q3", True)]
        rows = []
        if self.composed is not None:
            rows.append(["A's tokens B lacks, vs B's composed estimate", *self.composed.cells()])
        if self.baseline is not None:
            rows.append(["held-out matched tokens, same measure", *self.baseline.cells()])
        subtitle = [
            "B's estimate of a token: the mean of B's unit rows of B's pieces of its text (FVT)",
            f"{self.unmatched:,} tokens of A unmatched in B; {self.skipped:,} with no estimate "
            "(byte fragments, B's unknown token)",
            f"{self.baseline_single:,} held-out tokens are one piece in B (their own row)",
        ]
        out = [
            Table(
                "Composed tokens · cosine of A mapped with B's estimate",
                columns,
                rows,
                subtitle=subtitle,
            )
        ]
        if self.tokens:
            listed = [
                [t.label_a, str(t.id_a), " + ".join(t.labels_b), f"{t.cosine:.3f}"]
                for t in self.tokens
            ]
            heads = [Column("token"), Column("id A", True), Column("B's pieces")]
            out.append(
                Table("Least agreeing composed tokens", [*heads, Column("cos", True)], listed)
            )
        return out


@dataclass(slots=True)
class Alignment:
    """A linear map from A's space to B's fitted on matched tokens, how well it retrieves
    held-out tokens' counterparts, and the tokens that moved most."""

    model_a: str
    embeddings_a: str
    dim_a: int
    model_b: str
    embeddings_b: str
    dim_b: int
    matching: TokenMatching
    method: str  # "procrustes" (dims agree) or "ridge"
    ridge: float | None  # the ridge's lambda (None for procrustes)
    refine: int  # refinement rounds asked for
    refined_pairs: list[int]  # mutual CSLS nearest pairs each round re-fitted on
    pool: int  # tokens of each model a refinement round searches
    seed: int
    test_share: float
    fit_pairs: int
    test_pairs: int
    csls_k: int
    retrieval: Retrieval
    mean_cosine: float  # over the held-out pairs
    mean_cosine_fit: float  # over the pairs the first fit used
    residual: float  # ||XW - Y||_F / ||Y||_F over the held-out pairs
    residual_fit: float
    drift: list[DriftToken]  # the top of the ranking
    cached: bool = False  # the map and its scores were read from the cache
    composed: Composed | None = None  # A's tokens B lacks, against B's composed estimates
    ranking: tuple[np.ndarray, np.ndarray, np.ndarray] | None = field(default=None, repr=False)
    # (ids in A, ids in B, drift) of every compared pair, most moved first: the whole ranking

    def __repr__(self) -> str:
        return described(
            "Alignment",
            ("model_a", model_label(self.model_a)),
            ("model_b", model_label(self.model_b)),
            ("method", self.method),
            ("pairs", self.matching.compared),
            ("p_at_1", number(self.retrieval.p1_nn)),
            ("mean_cosine", number(self.mean_cosine)),
        )

    def _repr_html_(self) -> str:
        return html_of(self.human())

    def to_json(self) -> dict[str, Any]:
        return {
            "a": {"model": self.model_a, "embeddings": self.embeddings_a, "dim": self.dim_a},
            "b": {"model": self.model_b, "embeddings": self.embeddings_b, "dim": self.dim_b},
            "matching": self.matching.to_json(),
            "map": {
                "method": self.method,
                "ridge": self.ridge,
                "refine": self.refine,
                "refined_pairs": self.refined_pairs,
                "pool": self.pool,
            },
            "split": {
                "seed": self.seed,
                "test_share": self.test_share,
                "fit": self.fit_pairs,
                "test": self.test_pairs,
            },
            "retrieval": {"csls_k": self.csls_k, **self.retrieval.to_json()},
            "mean_cosine": self.mean_cosine,
            "mean_cosine_fit": self.mean_cosine_fit,
            "residual": self.residual,
            "residual_fit": self.residual_fit,
            "drift": [d.to_json() for d in self.drift],
            **({} if self.composed is None else {"composed": self.composed.to_json()}),
        }

    def to_pandas(self) -> Any:
        """One row per listed drift token (the JSON's ``drift``): rank, id_a, id_b, token,
        drift. The whole ranking is ``ranking`` (or ``align --output FILE``)."""
        kinds: dict[str, Kind] = {"rank": "int", "id_a": "int", "id_b": "int"}
        kinds |= {"token": "text", "drift": "float"}
        return records_frame(self.to_json()["drift"], kinds)

    def tsv(self) -> tuple[list[str], list[list[Any]]]:
        header = ["rank", "id_a", "id_b", "token", "drift"]
        return header, [[d.rank, d.id_a, d.id_b, d.token, d.drift] for d in self.drift]

    def _map_text(self) -> str:
        if self.method == "procrustes":
            how = "orthogonal Procrustes"
        else:
            how = f"least squares, ridge λ = {self.ridge:g}"
        rounds = (
            f", {self.refine} refinement round{'s' if self.refine != 1 else ''} "
            f"({', '.join(f'{n:,}' for n in self.refined_pairs)} mutual CSLS pairs)"
            if self.refine
            else ""
        )
        return f"{how} ({self.dim_a} → {self.dim_b} dims){rounds}"

    def human(self) -> Human:
        r = self.retrieval
        subtitle = [
            f"A: {model_label(self.model_a)} ({self.embeddings_a}) · "
            f"B: {model_label(self.model_b)} ({self.embeddings_b})",
            *self.matching.lines(),
            f"map: {self._map_text()}{' · read from the cache' if self.cached else ''}",
            f"fitted on {self.fit_pairs:,} pairs, tested on {self.test_pairs:,} held out "
            f"(seed {self.seed})",
        ]
        rows = [
            ["P@1 (nearest neighbour)", f"{r.p1_nn:.3f}"],
            ["P@10 (nearest neighbour)", f"{r.p10_nn:.3f}"],
            [f"P@1 (CSLS, k = {self.csls_k})", f"{r.p1_csls:.3f}"],
            [f"P@10 (CSLS, k = {self.csls_k})", f"{r.p10_csls:.3f}"],
            ["mean aligned cosine", f"{self.mean_cosine:.3f}"],
            ["residual ‖XW − Y‖ / ‖Y‖", f"{self.residual:.3f}"],
            ["mean aligned cosine (fit pairs)", f"{self.mean_cosine_fit:.3f}"],
            ["residual (fit pairs)", f"{self.residual_fit:.3f}"],
        ]
        out: Human = [
            Table(
                "Alignment · held-out pairs",
                [Column("measure"), Column("value", True)],
                rows,
                subtitle=subtitle,
            )
        ]
        if self.drift:
            rows = [
                [
                    str(d.rank),
                    d.label_a,
                    str(d.id_a),
                    str(d.id_b),
                    f"{d.drift:.3f}",
                    ", ".join(n.label for n in d.neighbors_a),
                    ", ".join(n.label for n in d.neighbors_b),
                ]
                for d in self.drift
            ]
            columns = [Column("rank", True), Column("token"), Column("id A", True)]
            columns += [Column("id B", True), Column("1 − cos", True)]
            columns += [Column("nearest in A"), Column("nearest in B")]
            out.append(Table("Most moved tokens", columns, rows))
        if self.composed is not None:
            out.extend(self.composed.tables())
        return out
