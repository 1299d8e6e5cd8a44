"""The whole vocabulary: the neighbour graph, its hubs, and the shape of the space."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .frames import Kind, frame, records_frame
from .notebook import described, html_of, number
from .tables import Column, Human, Table, model_label

_GRAPH_ROWS = 10  # rows of a graph a notebook shows: the arrays hold all of them


@dataclass(slots=True)
class NeighborGraph:
    """The k nearest tokens of every token (self excluded), as arrays: what ``graph`` writes
    to a file and ``hubness`` counts. Row i of ``neighbors`` and ``similarities`` belongs to
    token ``ids[i]``, best first, ties by lower id."""

    model: str
    metric: str
    k: int
    include_special: bool
    ids: Any  # np.ndarray (n,) int64
    neighbors: Any  # np.ndarray (n, k) int64 token ids
    similarities: Any  # np.ndarray (n, k) float64
    seconds: float  # to compute it (0 when it came from the cache)
    cached: bool = False  # read from the cache entry, not computed by this call
    # A token id's text as the JSON contract has it (None for padding rows), for to_pandas.
    token_text: Callable[[int], str | None] | None = None

    def to_pandas(self) -> Any:
        """One row per (token, rank), as the Parquet file of ``tokneigh graph`` holds: id,
        rank (1-based), neighbor_id, similarity, token, neighbor_token (the tokens null when
        the graph was built without ``token_text``)."""
        import numpy as np

        n, k = self.neighbors.shape
        ids = np.repeat(np.asarray(self.ids, dtype=np.int64), k)
        neighbors = np.asarray(self.neighbors, dtype=np.int64).ravel()
        # Each distinct id's text asked once (10 rows of 50,000 tokens name about 50,000).
        known, where = np.unique(np.concatenate([ids, neighbors]), return_inverse=True)
        shown = self.token_text or (lambda _: None)
        texts = np.empty(known.size, dtype=object)
        texts[:] = [shown(i) for i in known.tolist()]
        columns: dict[str, tuple[Kind, Any]] = {
            "id": ("int", ids),
            "rank": ("int", np.tile(np.arange(1, k + 1, dtype=np.int64), n)),
            "neighbor_id": ("int", neighbors),
            "similarity": ("float", np.asarray(self.similarities, dtype=np.float64).ravel()),
            "token": ("text", texts[where[: ids.size]]),
            "neighbor_token": ("text", texts[where[ids.size :]]),
        }
        return frame(columns)

    def __repr__(self) -> str:
        return described(
            "NeighborGraph",
            ("model", model_label(self.model)),
            ("metric", self.metric),
            ("k", self.k),
            ("tokens", int(self.ids.size)),
            ("include_special", self.include_special),
        )

    def _repr_html_(self) -> str:
        return html_of(self.human())

    def human(self) -> Human:
        """What the graph holds, and its first rows (ids: the graph names no token)."""
        title = (
            f"Neighbour graph of {model_label(self.model)} · k = {self.k} · {self.metric} · "
            f"{int(self.ids.size):,} tokens"
        )
        how = "read from the cache" if self.cached else f"computed in {self.seconds:.1f} s"
        special = "special tokens included" if self.include_special else "special tokens left out"
        subtitle = [f"{special} · {how} · arrays ids, neighbors and similarities"]
        rows = [
            [
                str(token_id),
                " ".join(map(str, self.neighbors[i].tolist())),
                " ".join(f"{s:.3f}" for s in self.similarities[i].tolist()),
            ]
            for i, token_id in enumerate(self.ids[:_GRAPH_ROWS].tolist())
        ]
        columns = [Column("id", True), Column("nearest ids, best first"), Column(self.metric)]
        return [Table(title, columns, rows, subtitle=subtitle)]


@dataclass(slots=True)
class HubToken:
    id: int
    token: str | None
    label: str
    occurrences: int  # N_k: how many tokens list it among their k nearest

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "token": self.token, "occurrences": self.occurrences}


@dataclass(slots=True)
class Hubness:
    """k-occurrence N_k over a vocabulary (Radovanović et al., JMLR 2010): how often each
    token is among the k nearest of the others, and how skewed that is."""

    model: str
    k: int
    metric: str
    tokens: int  # the tokens counted (the graph's rows)
    skewness: float  # of N_k: E[(N - mean)^3] / std^3; 0 for a perfectly even graph
    max: int
    antihub_share: float  # share of tokens that no token lists (N_k = 0)
    hubs: list[HubToken]  # the largest N_k, ties by lower id
    occurrences: Any = None  # np.ndarray (tokens,) N_k in the graph's row order (not in JSON)

    def __repr__(self) -> str:
        return described(
            "Hubness",
            ("model", model_label(self.model)),
            ("metric", self.metric),
            ("k", self.k),
            ("tokens", self.tokens),
            ("hubs", len(self.hubs)),
            ("skewness", number(self.skewness, 2)),
        )

    def _repr_html_(self) -> str:
        return html_of(self.human())

    def to_json(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "metric": self.metric,
            "tokens": self.tokens,
            "skewness": self.skewness,
            "max": self.max,
            "antihub_share": self.antihub_share,
            "hubs": [h.to_json() for h in self.hubs],
        }

    def tsv(self) -> tuple[list[str], list[list[Any]]]:
        rows = [[r, h.id, h.token, h.occurrences] for r, h in enumerate(self.hubs, start=1)]
        return ["rank", "id", "token", "occurrences"], rows

    def to_pandas(self) -> Any:
        """The hubs, as ``to_json()`` lists them: rank (1-based), id, token, occurrences
        (N_k). Every token's N_k is the ``occurrences`` array, in the graph's row order."""
        records = [{"rank": r, **h} for r, h in enumerate(self.to_json()["hubs"], start=1)]
        kinds: dict[str, Kind] = {"rank": "int", "id": "int", "token": "text"}
        return records_frame(records, {**kinds, "occurrences": "int"})

    def human(self) -> Human:
        title = (
            f"Hubs of {model_label(self.model)} · k = {self.k} · {self.metric} · "
            f"{self.tokens:,} tokens"
        )
        subtitle = [
            f"skewness of N_{self.k}: {self.skewness:.2f} · largest N_{self.k}: {self.max:,} · "
            f"anti-hubs (N_{self.k} = 0): {self.antihub_share:.1%}"
        ]
        rows = [
            [str(r), h.label, str(h.id), f"{h.occurrences:,}"]
            for r, h in enumerate(self.hubs, start=1)
        ]
        columns = [Column("rank", True), Column("token"), Column("id", True)]
        columns.append(Column(f"N_{self.k}", True))
        return [Table(title, columns, rows, subtitle=subtitle)]


@dataclass(slots=True)
class SpaceStats:
    """The shape of an embedding space under a metric."""

    model: str
    metric: str
    tokens: int  # rows measured (usable; special ones only when included)
    anisotropy: float  # mean similarity of the sampled pairs of distinct tokens
    sample_pairs: int
    seed: int
    norms: dict[str, float]  # of the raw rows: mean, std, min, max
    top_pc_variance: list[float]  # share of the variance along each of the top 10 components
    hidden_rows: int  # rows with no direction (NaN, infinite or zero): never measured
    special_rows: int

    def __repr__(self) -> str:
        return described(
            "SpaceStats",
            ("model", model_label(self.model)),
            ("metric", self.metric),
            ("tokens", self.tokens),
            ("anisotropy", number(self.anisotropy)),
        )

    def _repr_html_(self) -> str:
        return html_of(self.human())

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "metric": self.metric,
            "tokens": self.tokens,
            "anisotropy": self.anisotropy,
            "sample_pairs": self.sample_pairs,
            "seed": self.seed,
            "norms": self.norms,
            "top_pc_variance": self.top_pc_variance,
            "hidden_rows": self.hidden_rows,
            "special_rows": self.special_rows,
        }

    def tsv(self) -> tuple[list[str], list[list[Any]]]:
        rows: list[list[Any]] = [
            ["anisotropy", self.anisotropy],
            ["sample_pairs", self.sample_pairs],
            *[[f"norm_{key}", value] for key, value in self.norms.items()],
            *[[f"pc{i}_variance", v] for i, v in enumerate(self.top_pc_variance, start=1)],
            ["hidden_rows", self.hidden_rows],
            ["special_rows", self.special_rows],
        ]
        return ["measure", "value"], rows

    def to_pandas(self) -> Any:
        """One row per fact of ``to_json()``: measure (tokens, anisotropy, sample_pairs,
        seed, norm_mean, norm_std, norm_min, norm_max, pc1_variance ..., hidden_rows,
        special_rows) and value (float64, counts included). The model and the metric, text,
        are in the frame's ``attrs``."""
        data = self.to_json()
        facts: list[tuple[str, Any]] = []
        for key, value in data.items():
            if key in ("model", "metric"):
                continue
            if key == "norms":
                facts += [(f"norm_{name}", v) for name, v in value.items()]
            elif key == "top_pc_variance":
                facts += [(f"pc{i}_variance", v) for i, v in enumerate(value, start=1)]
            else:
                facts.append((key, value))
        table = frame(
            {"measure": ("text", [m for m, _ in facts]), "value": ("float", [v for _, v in facts])}
        )
        table.attrs.update(model=data["model"], metric=data["metric"])
        return table

    def human(self) -> Human:
        n = self.norms
        shares = self.top_pc_variance
        rows = [
            ["tokens measured", f"{self.tokens:,}"],
            [
                f"anisotropy (mean {self.metric} of random pairs)",
                f"{self.anisotropy:.3f}",
            ],
            [f"pairs sampled (distinct tokens, seed {self.seed})", f"{self.sample_pairs:,}"],
            ["norm of the raw rows: mean ± std", f"{n['mean']:.3f} ± {n['std']:.3f}"],
            ["norm of the raw rows: min … max", f"{n['min']:.3f} … {n['max']:.3f}"],
            ["variance along the top principal component", f"{shares[0]:.1%}" if shares else "-"],
            [f"variance along the top {len(shares)} components", f"{sum(shares):.1%}"],
            ["rows with no direction (never measured)", f"{self.hidden_rows:,}"],
            ["special tokens", f"{self.special_rows:,}"],
        ]
        title = f"Shape of {model_label(self.model)} · {self.metric}"
        return [Table(title, [Column("measure"), Column("value", True)], rows)]
