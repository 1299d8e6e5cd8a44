"""The whole-vocabulary map as `tokneigh serve` sends it to the page: its facts as JSON
(``/api/layout``) and its per-token arrays as one binary body (``/api/layout.bin``), never as
JSON of one object per token (262k of them for Gemma 3).

The body is the arrays that ``facts["arrays"]`` names, in that order, each ``count``
little-endian 4-byte values (``float32`` or ``int32``) with no header or padding: array ``i``
starts at byte ``4 * count * i``. All of them are row-aligned with ``ids``. Colour fields a
model cannot give (no reference for the under-trained score) are left out of the list, and
``facts["colours"]`` says why.

The map holds special tokens too (``include_special=True``), so that "special" can colour it.
Hubness is N_k at k = the layout's own neighbours, the graph the layout is built on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..api.embeddings import Embeddings
from ..errors import TokneighError
from ..reporting import Progress
from ..results import MapCluster, MapLayout

# The browser's budget: points past it are refused before anything is computed or sent.
# Gemma 3's 262,208 tokens fit; a layout this size is 4 bytes x 9 arrays x 300k = 11 MB.
MAX_MAP_POINTS = 300_000
METHODS = ("umap", "pca")
NEIGHBORS = 15  # the layout's k (its graph, its clusters, and hubness's N_k)

# (name, what the page calls it, kind): the colour fields, in the page's order.
COLOURS = (
    ("cluster", "cluster", "category"),
    ("norm", "norm (raw row)", "number"),
    ("scan", "under-trained score (magikarp)", "number"),
    ("hubness", f"hubness N_{NEIGHBORS}", "number"),
    ("special", "special token", "flag"),
    ("honesty", "map honesty", "number"),
)


@dataclass(frozen=True)
class MapData:
    """What the page gets: ``facts`` (JSON) and ``body`` (the binary arrays)."""

    facts: dict[str, Any]
    body: bytes
    layout: MapLayout


def map_points(emb: Embeddings) -> int:
    """How many points the map of ``emb`` has: every row with a direction."""
    return int(emb.graph_rows(include_special=True).size)


def build(emb: Embeddings, method: str, progress: Progress | None = None) -> MapData:
    """The map of ``emb`` by ``method`` ("umap" or "pca"), its colour fields and its texts."""
    layout = compute_layout(emb, method, progress)
    ids = np.asarray(layout.ids, dtype=np.int64)
    n = int(ids.size)
    arrays: list[tuple[str, np.ndarray]] = [
        ("ids", ids.astype("<i4")),
        ("x", np.asarray(layout.xy[:, 0], dtype="<f4")),
        ("y", np.asarray(layout.xy[:, 1], dtype="<f4")),
        ("cluster", np.asarray(layout.clusters, dtype="<i4")),
        ("norm", np.asarray(emb.view.norms[ids], dtype="<f4")),
    ]
    colours: list[dict[str, Any]] = []
    missing: dict[str, str] = {}
    try:
        scores = _scan_scores(emb, ids)
    except TokneighError as exc:  # e.g. no token known to be unused: no reference
        missing["scan"] = str(exc)
    else:
        if np.isfinite(scores).all():
            arrays.append(("scan", scores.astype("<f4")))
        else:  # a colour with holes would mislead: none, and the page says why
            missing["scan"] = "the score is not a number for some tokens"
    arrays.append(("hubness", _hubness(emb, ids, layout.neighbors).astype("<i4")))
    special = np.zeros(emb.vocab_size, dtype=bool)
    special[emb.view.special_ids()] = True
    arrays.append(("special", special[ids].astype("<i4")))
    arrays.append(("honesty", np.asarray(layout.honesty, dtype="<f4")))
    present = {name for name, _ in arrays}
    for name, label, kind in COLOURS:
        entry: dict[str, Any] = {"name": name, "label": label, "kind": kind}
        if name not in present:
            entry["available"] = False
            entry["why"] = missing.get(name, "not computed")
        colours.append(entry)
    for name, values in arrays:
        if values.shape != (n,):
            raise ValueError(f"map array {name} has shape {values.shape}, not ({n},)")
        if values.dtype.kind == "f" and not np.isfinite(values).all():
            raise ValueError(f"map array {name} holds NaN or infinite values")
    body = b"".join(values.tobytes() for _, values in arrays)
    xy = np.asarray(layout.xy, dtype=np.float64)
    honesty = np.asarray(layout.honesty, dtype=np.float64)
    facts: dict[str, Any] = {
        "status": "ready",
        "count": n,
        "model": layout.model,
        "method": layout.method,
        "metric": layout.metric,
        "neighbors": layout.neighbors,
        "include_special": layout.include_special,
        "seed": layout.seed,
        "seconds": round(float(layout.seconds), 3),
        "cached": bool(layout.cached),
        "bounds": {
            "x": [float(xy[:, 0].min()), float(xy[:, 0].max())] if n else [0.0, 0.0],
            "y": [float(xy[:, 1].min()), float(xy[:, 1].max())] if n else [0.0, 0.0],
        },
        "clusters": [_cluster_json(c) for c in layout.cluster_list],
        "honesty": {
            "k": layout.honesty_k,
            "mean": float(honesty.mean()) if n else None,
            "median": float(np.median(honesty)) if n else None,
        },
        "colours": colours,
        "byte_order": "little",
        "arrays": [{"name": name, "dtype": str(values.dtype.name)} for name, values in arrays],
        "bytes": len(body),
        # Hover labels and search: one string per point (None for a row no token names).
        "tokens": [emb.token_text(int(i)) for i in ids.tolist()],
    }
    return MapData(facts, body, layout)


def compute_layout(emb: Embeddings, method: str, progress: Progress | None = None) -> MapLayout:
    """The served map: ``Embeddings.layout`` with special tokens, at the map's k."""
    if method not in METHODS:
        raise TokneighError(f"unknown map method {method!r} (umap or pca)")
    return emb.layout(method, NEIGHBORS, include_special=True, progress=progress)


def _cluster_json(cluster: MapCluster) -> dict[str, Any]:
    return {
        "number": cluster.number,
        "size": cluster.size,
        "name": cluster.name,
        "name_ids": list(cluster.name_ids),
        "x": float(cluster.x),
        "y": float(cluster.y),
    }


def _scan_scores(emb: Embeddings, ids: np.ndarray) -> np.ndarray:
    """magikarp's score of each of ``ids`` (scan scores every usable row, in id order)."""
    result = emb.scan("magikarp", top=1)
    usable = np.ones(emb.vocab_size, dtype=bool)
    usable[emb.unusable] = False
    full = np.full(emb.vocab_size, np.nan)
    full[np.flatnonzero(usable)] = result.scores
    return full[ids]


def _hubness(emb: Embeddings, ids: np.ndarray, k: int) -> np.ndarray:
    """N_k of each of ``ids`` (the graph's rows are every usable row, special ones included)."""
    graph = emb.graph(k, include_special=True)
    result = emb.hubness(k, include_special=True, hubs=1, graph=graph)
    full = np.zeros(emb.vocab_size, dtype=np.int64)
    full[graph.ids] = result.occurrences
    return full[ids]
