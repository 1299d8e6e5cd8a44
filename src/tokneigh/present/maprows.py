"""The rows a map export writes (``export_atlas``, ``export_projector``): one per token the
layout placed (``MapLayout.ids``, ascending), with what a viewer colours, filters and labels by,
and each token's exact neighbours as row numbers of that same table."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ..reporting import Report
from ..results import MapLayout, NeighborGraph

if TYPE_CHECKING:
    from ..api.embeddings import Embeddings

# The columns every export has, in order (the Parquet adds ``neighbors``).
COLUMNS = ("id", "token", "label", "special", "norm", "x", "y", "cluster", "cluster_name")


@dataclass(slots=True)
class MapRows:
    """Row i is token ``ids[i]``. ``token`` is the JSON contract's text (None for a row the
    tokenizer names no token for), ``label`` how tables show it ("\\" Mike\\"", "[SEP]"),
    ``norm`` the raw row's length, ``cluster`` an index into the layout's clusters (-1: none)
    and ``cluster_name`` that cluster's name (None without one)."""

    ids: Any  # np.ndarray (n,) int64
    tokens: list[str | None]
    labels: list[str]
    special: Any  # np.ndarray (n,) bool
    norms: Any  # np.ndarray (n,) float64
    x: Any  # np.ndarray (n,) float32
    y: Any  # np.ndarray (n,) float32
    clusters: Any  # np.ndarray (n,) int32
    cluster_names: list[str | None]


def map_rows(emb: Embeddings, layout: MapLayout) -> MapRows:
    """The rows of ``layout``'s tokens in ``emb``."""
    ids = np.asarray(layout.ids, dtype=np.int64)
    shown = [emb.view.shown(int(i)) for i in ids.tolist()]
    clusters = np.asarray(layout.clusters, dtype=np.int32)
    names = [c.name for c in layout.cluster_list]
    xy = np.asarray(layout.xy, dtype=np.float32)
    return MapRows(
        ids=ids,
        tokens=[text for text, _ in shown],
        labels=[label for _, label in shown],
        special=np.isin(ids, emb.view.special_ids()),
        norms=np.asarray(emb.norms, dtype=np.float64)[ids],
        x=xy[:, 0],
        y=xy[:, 1],
        clusters=clusters,
        cluster_names=[names[c] if 0 <= c < len(names) else None for c in clusters.tolist()],
    )


def neighbor_rows(layout: MapLayout, graph: NeighborGraph) -> tuple[np.ndarray, np.ndarray]:
    """Each token's exact neighbours as row numbers of the export (int32, (n, k)), and their
    distances, 1 - similarity (float64, (n, k)), best first. ``graph`` must cover the layout's
    tokens (the graph of the same k and include_special does)."""
    ids = np.asarray(layout.ids, dtype=np.int64)
    if graph.ids.shape != ids.shape or not np.array_equal(graph.ids, ids):
        raise ValueError("the neighbour graph does not cover the layout's tokens")
    rows = np.searchsorted(ids, graph.neighbors)
    # Neighbours are drawn from the same rows as the tokens, so each is found; say so if not.
    found = rows < ids.size
    found[found] = ids[rows[found]] == graph.neighbors[found]
    if not found.all():
        raise ValueError("a neighbour of the graph is not one of the layout's tokens")
    return rows.astype(np.int32), 1.0 - np.asarray(graph.similarities, dtype=np.float64)


def exact_neighbors(
    emb: Embeddings, k: int, include_special: bool, report: Report | None = None
) -> NeighborGraph:
    """The exact ``k`` nearest of every token: the first ``k`` columns of the graph a layout
    of ``k`` neighbours reads (k = max(k, 10), kept in the cache: no second all-pairs pass),
    which rank as a graph of ``k`` would (the same order, ties by lower id)."""
    from ..analyses.layout import graph_k

    graph = emb.graph(graph_k(k), include_special=include_special, report=report)
    return replace(
        graph, k=k, neighbors=graph.neighbors[:, :k], similarities=graph.similarities[:, :k]
    )


def map_facts(emb: Embeddings, layout: MapLayout, graph: NeighborGraph) -> dict[str, Any]:
    """What an export says of itself: the graph file's facts (model, source, metric, k...) and
    the layout's (method, seed, clusters)."""
    from .graphfile import describe

    facts = describe(emb, graph)
    facts.update(
        {
            "layout_method": layout.method,
            "layout_neighbors": layout.neighbors,
            "layout_seed": layout.seed,
            "clusters": len(layout.cluster_list),
            "tokens": int(np.asarray(layout.ids).size),
            "neighbor_ids": "row numbers of this table, from 0",
            "distances": "1 - similarity",
        }
    )
    return facts
