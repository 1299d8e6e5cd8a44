"""A 2-D map of the whole vocabulary (``tokneigh.analyses.layout``): a position for every ranked
token, its cluster, and how honest the map is about its exact neighbours."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .frames import frame
from .notebook import described, html_of, number
from .tables import Column, Human, Table, model_label

_CLUSTER_ROWS = 30  # clusters the table lists (all of them are in to_json())


@dataclass(slots=True)
class MapCluster:
    """One cluster of the map: its number, its size, and the tokens that name it (the most
    central of its members, most central first)."""

    number: int
    size: int
    name_ids: list[int]
    name: str  # e.g. '" Mike", " Chris", " Jim"'
    x: float  # where the name is drawn: the members' median position
    y: float

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "size": self.size,
            "name": self.name,
            "name_ids": self.name_ids,
            "x": self.x,
            "y": self.y,
        }


@dataclass(slots=True)
class MapLayout:
    """Every ranked token's place on a 2-D map.

    Arrays are row-aligned with ``ids`` (the token ids laid out, ascending): ``xy`` (n, 2)
    float32, ``clusters`` (n,) int32 (an index into ``cluster_list``), ``honesty`` (n,) float64,
    the share of each token's exact ``honesty_k`` nearest neighbours that are also among its
    ``honesty_k`` nearest on the map. ``tokens`` holds each row's decoded text (None for a
    row the tokenizer names no token for).
    """

    model: str
    method: str  # "umap" or "pca"
    metric: str
    neighbors: int  # k of the exact graph the layout and the clusters used
    include_special: bool
    seed: int
    ids: Any  # np.ndarray (n,) int64
    xy: Any  # np.ndarray (n, 2) float32
    clusters: Any  # np.ndarray (n,) int32
    cluster_list: list[MapCluster]
    honesty: Any  # np.ndarray (n,) float64
    honesty_k: int = 10
    seconds: float = 0.0
    cached: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    tokens: list[str | None] = field(default_factory=list)  # row-aligned with ids

    def honesty_summary(self) -> dict[str, float]:
        """The mean and quartiles of the per-token honesty."""
        import numpy as np

        q1, median, q3 = np.percentile(self.honesty, [25, 50, 75]).tolist()
        return {"mean": float(self.honesty.mean()), "q1": q1, "median": median, "q3": q3}

    def __repr__(self) -> str:
        return described(
            "MapLayout",
            ("model", model_label(self.model)),
            ("method", self.method),
            ("metric", self.metric),
            ("neighbors", self.neighbors),
            ("seed", self.seed),
            ("tokens", int(self.ids.size)),
            ("clusters", len(self.cluster_list)),
            ("honesty", number(self.honesty_summary()["mean"])),
        )

    def _repr_html_(self) -> str:
        return html_of(self.human())

    def to_json(self) -> dict[str, Any]:
        rows = zip(
            self.ids.tolist(), self._texts(), self.xy.tolist(), self.clusters.tolist(),
            self.honesty.tolist(),
        )  # fmt: skip
        return {
            "model": self.model,
            "method": self.method,
            "metric": self.metric,
            "neighbors": self.neighbors,
            "include_special": self.include_special,
            "seed": self.seed,
            "honesty_k": self.honesty_k,
            "honesty": self.honesty_summary(),
            "seconds": self.seconds,
            "cached": self.cached,
            "clusters": [c.to_json() for c in self.cluster_list],
            "tokens": [
                {"id": i, "token": t, "x": x, "y": y, "cluster": c, "honesty": h}
                for i, t, (x, y), c, h in rows
            ],
        }

    def tsv(self) -> tuple[list[str], list[list[Any]]]:
        rows = [
            [i, t, x, y, c, h]
            for i, t, (x, y), c, h in zip(
                self.ids.tolist(), self._texts(), self.xy.tolist(), self.clusters.tolist(),
                self.honesty.tolist(),
            )  # fmt: skip
        ]
        return ["id", "token", "x", "y", "cluster", "honesty"], rows

    def to_pandas(self) -> Any:
        """One row per token laid out, as the TSV has it: id, token, x, y, cluster (a
        number of ``cluster_list``), honesty. The clusters' names are in ``cluster_list``."""
        import numpy as np

        texts = np.empty(int(self.ids.size), dtype=object)
        texts[:] = self._texts()
        xy = np.asarray(self.xy, dtype=np.float64)
        return frame(
            {
                "id": ("int", np.asarray(self.ids, dtype=np.int64)),
                "token": ("text", texts),
                "x": ("float", xy[:, 0]),
                "y": ("float", xy[:, 1]),
                "cluster": ("int", np.asarray(self.clusters, dtype=np.int64)),
                "honesty": ("float", np.asarray(self.honesty, dtype=np.float64)),
            }
        )

    def _texts(self) -> list[str | None]:
        return self.tokens if self.tokens else [None] * int(self.ids.size)

    def human(self) -> Human:
        s = self.honesty_summary()
        how = "read from the cache" if self.cached else f"computed in {self.seconds:.1f} s"
        method = "UMAP" if self.method == "umap" else "PCA"
        title = (
            f"Map of {model_label(self.model)} · {method} · {self.metric} · "
            f"{int(self.ids.size):,} tokens"
        )
        k = self.honesty_k
        special = "special tokens included" if self.include_special else "special tokens left out"
        subtitle = [
            f"{self.neighbors} neighbours · seed {self.seed} · {special} · {how}",
            f"honesty: the share of a token's exact {k} nearest also {k} nearest on the map",
            f"  mean {s['mean']:.3f} · quartiles {s['q1']:.2f} / {s['median']:.2f} / {s['q3']:.2f}",
            f"{len(self.cluster_list):,} clusters (Leiden on the exact graph), named by their "
            "most central tokens",
        ]
        if len(self.cluster_list) > _CLUSTER_ROWS:
            subtitle.append(f"the {_CLUSTER_ROWS} largest shown; all of them in --format json")
        rows = [
            [str(c.number), f"{c.size:,}", c.name] for c in self.cluster_list[:_CLUSTER_ROWS]
        ]
        columns = [Column("cluster", True), Column("size", True), Column("named by")]
        return [Table(title, columns, rows, subtitle=subtitle)]
