"""A 2-D map of the whole vocabulary: a position for every ranked token (UMAP over the exact
k-nearest-neighbour graph, or PCA), its cluster (``clusters``), and how honest the map is
about each token's exact neighbours (``honesty``).

UMAP gets the graph ``whole.compute_graph`` gives (the one ``tokneigh graph`` writes and the
cache keeps) as its precomputed neighbours, so no approximate search runs and the map is drawn
from the same neighbourhoods every other command reports.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import UsageError
from ..reporting import Report, info
from ..results import MapCluster, MapLayout
from . import clusters as clustering
from . import honesty as honest

if TYPE_CHECKING:
    from ..reporting import Progress
    from ..results import NeighborGraph
    from .view import SpaceView

METHODS = ("umap", "pca")
_PCA_BLOCK = 8192  # rows read, widened to float64 and projected together
HONESTY_K = honest.HONESTY_K


def check_layout(method: str, neighbors: int, seed: int, rows: np.ndarray) -> None:
    """Refuse a method, a k or a seed the layout cannot use, before any work is done."""
    if method not in METHODS:
        raise UsageError(f"the layout method is one of {', '.join(METHODS)}, not {method!r}")
    if seed < 0 or seed >= 2**32:
        raise UsageError(f"the seed must be between 0 and {2**32 - 1}, got {seed}")
    if not 1 <= neighbors <= rows.size - 1:
        raise UsageError(
            f"neighbors must be between 1 and {rows.size - 1:,} (the tokens laid out, less "
            f"the token itself), got {neighbors}"
        )
    if rows.size <= HONESTY_K:
        raise UsageError(
            f"a map needs more than {HONESTY_K} tokens (its honesty compares each token's "
            f"{HONESTY_K} nearest), and there are {rows.size:,}"
        )


def graph_k(neighbors: int) -> int:
    """The k of the one exact graph a layout reads: its first ``neighbors`` columns feed UMAP
    and the clusters, its first 10 the honesty (the first columns of a larger k are exactly
    the smaller graph: the same ranking, ties by lower id)."""
    return max(neighbors, HONESTY_K)


# Of the computation (its start, its clustering, its names): a change to it names new files, so
# a map kept by an older tokneigh is computed again rather than read as this one's.
VERSION = 1


def file_name(metric_stem: str, method: str, neighbors: int, seed: int, special: bool) -> str:
    """The derived file a layout is kept as in the cache entry."""
    special_part = "-special" if special else ""
    return f"layout-v{VERSION}-{metric_stem}-{method}-n{neighbors}-s{seed}{special_part}.npz"


def compute_layout(
    view: SpaceView,
    graph: NeighborGraph,
    method: str,
    neighbors: int,
    seed: int,
    progress: Progress | None = None,
    report: Report | None = None,
) -> MapLayout:
    """Lay out ``graph.ids`` by ``method``, cluster them on the graph's first ``neighbors``
    columns, and measure the map's honesty on its first ``HONESTY_K``."""
    say = report or (lambda _message: None)
    started = time.perf_counter()
    rows = graph.ids
    # Neighbours as positions in ``rows`` (ascending ids), which UMAP, igraph and the tree use.
    positions = np.searchsorted(rows, graph.neighbors)
    if method == "umap":
        say(info(f"laying out {rows.size:,} tokens by UMAP ({neighbors} neighbours, seed {seed})"))
        xy = umap_xy(view, rows, positions[:, :neighbors], graph.similarities[:, :neighbors],
                     seed, progress)
    else:
        say(info(f"laying out {rows.size:,} tokens by PCA"))
        xy = pca_xy(view, rows)
    say(info(f"clustering {rows.size:,} tokens (Leiden on the {neighbors}-nearest graph)"))
    labels = clustering.leiden(positions[:, :neighbors], seed)
    central = clustering.central_members(labels, positions[:, :neighbors])
    name_ids = np.full((len(central), clustering.NAME_TOKENS), -1, dtype=np.int64)
    for number, members in enumerate(central):
        name_ids[number, : len(members)] = rows[members]
    shares = honest.honesty(positions[:, :HONESTY_K], honest.map_neighbors(xy, HONESTY_K))
    arrays = {"ids": rows, "xy": xy, "clusters": labels, "honesty": shares, "name_ids": name_ids}
    seconds = time.perf_counter() - started + graph.seconds
    return from_arrays(view, arrays, method, neighbors, seed, graph.include_special, seconds)


# --- coordinates ---------------------------------------------------------------------------


def pca_xy(view: SpaceView, rows: np.ndarray) -> np.ndarray:
    """The rows' projections on the top two principal components of the vectors the metric
    compares (``view.unit[rows]``, centred). Each axis's sign is fixed so that the projection
    largest in magnitude is positive (ties: the first such row): the same map on every run,
    whatever sign the eigensolver returns."""
    from ..space.metrics import principal_axes

    chosen = np.zeros(view.vocab_size, dtype=bool)
    chosen[rows] = True
    ones = np.ones(view.vocab_size, dtype=np.float32)
    # A block of rows at a time, in float64: a whole float64 copy would be 4 GB at Llama 3's
    # size, twice the matrix itself.
    total = np.zeros(view.dim, dtype=np.float64)
    for start in range(0, rows.size, _PCA_BLOCK):
        total += view.unit[rows[start : start + _PCA_BLOCK]].astype(np.float64).sum(axis=0)
    mean = total / rows.size
    axes = principal_axes(view.unit, ones, chosen, mean)[1][:, :2]
    xy = np.empty((rows.size, 2), dtype=np.float64)
    for start in range(0, rows.size, _PCA_BLOCK):
        block = view.unit[rows[start : start + _PCA_BLOCK]].astype(np.float64)
        xy[start : start + _PCA_BLOCK] = (block - mean) @ axes
    return fix_signs(xy).astype(np.float32)


def fix_signs(xy: np.ndarray) -> np.ndarray:
    """Each column flipped, if need be, so that its entry largest in magnitude is positive."""
    largest = xy[np.argmax(np.abs(xy), axis=0), np.arange(xy.shape[1])]
    return xy * np.where(largest < 0, -1.0, 1.0)


def umap_xy(
    view: SpaceView,
    rows: np.ndarray,
    positions: np.ndarray,
    similarities: np.ndarray,
    seed: int,
    progress: Progress | None = None,
) -> np.ndarray:
    """UMAP (umap-learn) of ``rows`` with the exact graph as its precomputed neighbours: each
    row's k nearest with the token itself first at distance 0, as umap-learn's own search
    returns them; started from ``pca_xy``. A fixed ``random_state`` makes umap-learn run
    single-threaded and reproducible (the same seed, the same bits)."""
    # ~10 s with numba's compilation: only a UMAP layout pays for it.
    import umap  # type: ignore[import-untyped]

    n = rows.size
    indices = np.concatenate([np.arange(n)[:, None], positions], axis=1).astype(np.int64)
    # Distances as 1 - similarity (cosine-family metrics; clipped at 0 for csls, whose scores
    # may pass 1). UMAP only compares a row's distances with each other (its rho and sigma).
    distances = np.maximum(0.0, 1.0 - similarities).astype(np.float32)
    distances = np.concatenate([np.zeros((n, 1), dtype=np.float32), distances], axis=1)
    reducer = umap.UMAP(
        n_neighbors=positions.shape[1] + 1,
        n_components=2,
        metric="cosine",  # the rows are unit vectors; used only where the graph is split
        random_state=seed,
        n_jobs=1,  # what a seed implies anyway; said here so umap-learn does not warn
        precomputed_knn=(indices, distances, None),
        # Started from the PCA map, not from a spectral embedding of the graph: on the graph
        # of a random GPT-2-shaped checkpoint here the spectral start alone took 37 s, PCA 3 s;
        # a PCA start keeps the global structure as well (Kobak & Linderman, Nat. Biotechnol.
        # 2021). UMAP rescales it to [0, 10] before its epochs.
        init=pca_xy(view, rows),
        verbose=False,
        tqdm_kwds=_epoch_progress(progress),
    )
    with warnings.catch_warnings():
        # "precomputed_knn[2] is not an NNDescent object": no transform() is ever asked for.
        warnings.simplefilter("ignore")
        # umap-learn reads the data only to find neighbours and to start the layout, and both
        # are given: one zero column per row stands in for it (it would copy and hash the whole
        # matrix, 2 GB at Llama 3's size, for nothing).
        xy = reducer.fit_transform(np.zeros((n, 1), dtype=np.float32))
    return np.asarray(xy, dtype=np.float32)


class _EpochCounter:
    """A file for umap-learn's tqdm bar that turns each redraw into ``progress(done, total)``.

    umap-learn reports its epochs only through tqdm (``tqdm_kwds``); a bar format of just
    "{n} {total}" written to this object hands the count to our own ``Progress`` (the CLI's
    Rich bar with ETA) without patching umap-learn or printing tqdm's bar."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress

    def write(self, text: str) -> None:
        parts = text.strip("\r\n ").split()
        if len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit():
            self._progress(int(parts[0]), int(parts[1]))

    def flush(self) -> None:
        pass


def _epoch_progress(progress: Progress | None) -> dict[str, Any]:
    if progress is None:
        return {"disable": True}
    return {
        "disable": False,
        "file": _EpochCounter(progress),
        "bar_format": "{n} {total}",
        "mininterval": 0.2,
        "ascii": True,
    }


# --- the result, and what the cache keeps ---------------------------------------------------


def from_arrays(
    view: SpaceView,
    arrays: dict[str, np.ndarray],
    method: str,
    neighbors: int,
    seed: int,
    include_special: bool,
    seconds: float,
    cached: bool = False,
) -> MapLayout:
    """The MapLayout the arrays hold (computed just now, or read back from the cache)."""
    labels, xy, name_ids = arrays["clusters"], arrays["xy"], arrays["name_ids"]
    listed = []
    for number in range(name_ids.shape[0]):
        members = labels == number
        names = [int(i) for i in name_ids[number] if i >= 0]
        x, y = np.median(xy[members].astype(np.float64), axis=0)
        name = ", ".join(view.shown(i)[1] for i in names)
        listed.append(MapCluster(number, int(members.sum()), names, name, float(x), float(y)))
    return MapLayout(
        model=view.model,
        method=method,
        metric=view.metric.name,
        neighbors=neighbors,
        include_special=include_special,
        seed=seed,
        ids=arrays["ids"],
        xy=xy,
        clusters=labels,
        cluster_list=listed,
        honesty=arrays["honesty"],
        honesty_k=HONESTY_K,
        seconds=seconds,
        cached=cached,
        tokens=[view.shown(i)[0] for i in arrays["ids"].tolist()],
    )


def layout_arrays(layout: MapLayout) -> dict[str, np.ndarray]:
    """The arrays a layout is kept as (what ``layout_check`` reads back)."""
    name_ids = np.full((len(layout.cluster_list), clustering.NAME_TOKENS), -1, dtype=np.int64)
    for c in layout.cluster_list:
        name_ids[c.number, : len(c.name_ids)] = c.name_ids
    return {
        "ids": layout.ids,
        "xy": layout.xy,
        "clusters": layout.clusters,
        "honesty": layout.honesty,
        "name_ids": name_ids,
    }


def layout_check(rows: np.ndarray) -> Callable[[dict[str, np.ndarray]], None]:
    """What a kept layout must be to be read back (raises ValueError naming what is wrong):
    these rows, finite coordinates, clusters numbered by size, names that are members,
    honesty shares a multiple of 1/HONESTY_K."""

    def check(arrays: dict[str, np.ndarray]) -> None:
        ids, xy, labels = arrays["ids"], arrays["xy"], arrays["clusters"]
        shares, name_ids = arrays["honesty"], arrays["name_ids"]
        n = rows.size
        if not np.array_equal(ids, rows):
            raise ValueError("its rows are not this entry's rows")
        if xy.shape != (n, 2) or labels.shape != (n,) or shares.shape != (n,):
            raise ValueError("its arrays have the wrong shape")
        if name_ids.ndim != 2 or name_ids.shape[1] != clustering.NAME_TOKENS:
            raise ValueError("its cluster names have the wrong shape")
        if (xy.dtype, labels.dtype, shares.dtype, name_ids.dtype) != (
            np.float32, np.int32, np.float64, np.int64
        ):
            raise ValueError("its arrays have the wrong type")
        if not np.isfinite(xy).all() or not np.isfinite(shares).all():
            raise ValueError("it holds NaN or infinite values")
        scaled = shares * HONESTY_K
        if ((shares < 0) | (shares > 1)).any() or not np.allclose(scaled, np.round(scaled)):
            raise ValueError("it holds impossible honesty shares")
        count = name_ids.shape[0]
        if ((labels < 0) | (labels >= count)).any():
            raise ValueError("it holds impossible cluster numbers")
        sizes = np.bincount(labels, minlength=count)
        if (sizes == 0).any() or (np.diff(sizes) > 0).any():
            raise ValueError("its clusters are not numbered by size")
        for number in range(count):
            names = name_ids[number][name_ids[number] >= 0]
            where = np.searchsorted(rows, names)
            if names.size == 0 or (where >= n).any() or not np.array_equal(rows[where], names):
                raise ValueError("a cluster's name is not among the tokens")
            if (labels[where] != number).any():
                raise ValueError("a cluster's name is not among its members")

    return check
