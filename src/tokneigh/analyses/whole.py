"""The whole vocabulary at once: the k-nearest-neighbour graph of every token, its hubness
(k-occurrence and its skewness), and the shape of the space (anisotropy, norms, variance)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from ..errors import UsageError
from ..results import Hubness, HubToken, NeighborGraph, SpaceStats

if TYPE_CHECKING:
    from ..reporting import Progress
    from ..space.resume import Checkpoints
    from .view import SpaceView


def graph_rows(view: SpaceView, include_special: bool = False) -> np.ndarray:
    """The token ids a whole-vocabulary computation covers: every row with a direction,
    special tokens only when ``include_special``."""
    keep = np.ones(view.vocab_size, dtype=bool)
    keep[view.unusable] = False
    if not include_special:
        keep[view.special_ids()] = False
    return np.flatnonzero(keep)


# --- the graph ----------------------------------------------------------------------------


def check_graph_k(rows: np.ndarray, k: int) -> None:
    """Refuse a k that the ``rows`` cannot give every token (itself left out)."""
    if not 1 <= k <= rows.size - 1:
        raise UsageError(
            f"k must be between 1 and {rows.size - 1:,} (the tokens ranked, less the token "
            f"itself), got {k}"
        )


def graph_check(
    view: SpaceView, rows: np.ndarray, k: int
) -> Callable[[dict[str, np.ndarray]], None]:
    """What a kept graph must be to be read back: these rows, k columns, the right types,
    possible values (raises ValueError naming what is wrong)."""

    def check(arrays: dict[str, np.ndarray]) -> None:
        ids, nbrs, sims = arrays["ids"], arrays["neighbors"], arrays["similarities"]
        if not np.array_equal(ids, rows):
            raise ValueError("its rows are not this entry's rows")
        if nbrs.shape != (rows.size, k) or sims.shape != (rows.size, k):
            raise ValueError("its arrays have the wrong shape")
        if nbrs.dtype != np.int64 or sims.dtype != np.float64:
            raise ValueError("its arrays have the wrong type")
        if ((nbrs < 0) | (nbrs >= view.vocab_size)).any() or not np.isfinite(sims).all():
            raise ValueError("it holds impossible values")

    return check


def cached_graph(
    view: SpaceView, k: int, include_special: bool, cached: dict[str, np.ndarray]
) -> NeighborGraph:
    """The graph read back from the arrays ``graph_arrays`` gave."""
    return NeighborGraph(
        view.model,
        view.metric.name,
        k,
        include_special,
        cached["ids"],
        cached["neighbors"],
        cached["similarities"],
        0.0,
        cached=True,
        token_text=_token_text(view),
    )


def _token_text(view: SpaceView) -> Callable[[int], str | None]:
    return lambda token_id: view.shown(token_id)[0]


def compute_graph(
    view: SpaceView,
    rows: np.ndarray,
    k: int,
    include_special: bool,
    progress: Progress | None = None,
    checkpoints: Checkpoints | None = None,
) -> NeighborGraph:
    """The exact ``k`` nearest of each of ``rows`` among ``rows`` under the view's metric, self
    excluded: one all-pairs pass (``tokneigh.space.allpairs``), resumed from ``checkpoints``'
    state when an earlier pass was interrupted."""
    from ..space.allpairs import knn_all_pairs

    started = time.perf_counter()
    neighbors, similarities = knn_all_pairs(
        view.unit, rows, k, radius=view.radius, progress=progress, checkpoints=checkpoints
    )
    seconds = time.perf_counter() - started
    return NeighborGraph(
        view.model,
        view.metric.name,
        k,
        include_special,
        rows,
        neighbors,
        similarities,
        seconds,
        token_text=_token_text(view),
    )


def graph_arrays(graph: NeighborGraph) -> dict[str, np.ndarray]:
    """The arrays a graph is kept as (what ``graph_check`` reads back)."""
    return {"ids": graph.ids, "neighbors": graph.neighbors, "similarities": graph.similarities}


# --- hubness ------------------------------------------------------------------------------


def check_hubs(hubs: int) -> None:
    if hubs < 0:
        raise UsageError(f"the number of hubs to list must be at least 0, got {hubs}")


def hubness(view: SpaceView, graph: NeighborGraph, hubs: int = 10) -> Hubness:
    """k-occurrence N_k of every token (how many tokens list it among their k nearest,
    from ``graph``) and its skewness, the largest N_k, the share of anti-hubs (N_k = 0),
    and the ``hubs`` tokens with the largest N_k (ties by lower id)."""
    check_hubs(hubs)
    counts = np.bincount(graph.neighbors.ravel(), minlength=view.vocab_size)[graph.ids]
    order = np.lexsort((graph.ids, -counts))[:hubs]
    listed = []
    for i in order.tolist():
        token_id = int(graph.ids[i])
        text, label = view.shown(token_id)
        listed.append(HubToken(token_id, text, label, int(counts[i])))
    return Hubness(
        model=view.model,
        k=graph.k,
        metric=graph.metric,
        tokens=int(graph.ids.size),
        skewness=skewness(counts),
        max=int(counts.max()),
        antihub_share=float(np.count_nonzero(counts == 0) / counts.size),
        hubs=listed,
        occurrences=counts,
    )


def skewness(values: np.ndarray) -> float:
    """The skewness of a sample, E[(x - mean)^3] / std^3 (population moments, as Radovanović
    et al. define hubness); 0 when every value is the same."""
    x = np.asarray(values, dtype=np.float64)
    centred = x - x.mean()
    std = float(np.sqrt((centred**2).mean()))
    return float((centred**3).mean() / std**3) if std > 0 else 0.0


# --- the space's shape --------------------------------------------------------------------


def stats(
    view: SpaceView,
    pairs: int = 100_000,
    seed: int = 0,
    include_special: bool = False,
    components: int = 10,
) -> SpaceStats:
    """The space's shape under the view's metric: anisotropy (the mean similarity of a seeded
    sample of ``pairs`` pairs of distinct tokens, Ethayarajh 2019), the raw rows' norms,
    the share of variance along the top ``components`` principal components of the
    vectors the metric compares, and how many rows are hidden or special."""
    from ..space.metrics import principal_axes

    if pairs < 1:
        raise UsageError(f"the number of pairs to sample must be at least 1, got {pairs}")
    rows = graph_rows(view, include_special)
    if rows.size < 2:
        raise UsageError("fewer than two tokens to measure")
    rng = np.random.default_rng(seed)
    first = rng.integers(0, rows.size, pairs)
    second = rng.integers(0, rows.size - 1, pairs)
    second += second >= first  # never the same token twice
    a, b = rows[first], rows[second]
    cos = np.einsum("ij,ij->i", view.unit[a].astype(np.float64), view.unit[b].astype(np.float64))
    if view.radius is not None:
        cos = 2 * cos - view.radius[a] - view.radius[b]
    norms = view.norms[rows].astype(np.float64)
    chosen = np.zeros(view.vocab_size, dtype=bool)
    chosen[rows] = True
    ones = np.ones(view.vocab_size, dtype=np.float32)
    mean = view.unit[rows].astype(np.float64).mean(axis=0)
    values = principal_axes(view.unit, ones, chosen, mean)[0]
    total = float(values.sum())
    shares = [float(v / total) if total > 0 else 0.0 for v in values[:components]]
    return SpaceStats(
        model=view.model,
        metric=view.metric.name,
        tokens=int(rows.size),
        anisotropy=float(cos.mean()),
        sample_pairs=pairs,
        seed=seed,
        norms={
            "mean": float(norms.mean()),
            "std": float(norms.std()),
            "min": float(norms.min()),
            "max": float(norms.max()),
        },
        top_pc_variance=shares,
        hidden_rows=int(view.unusable.size),
        special_rows=int(view.special_ids().size),
    )
