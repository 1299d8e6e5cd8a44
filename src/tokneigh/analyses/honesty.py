"""How honest a 2-D map is: for every token, the share of its exact k nearest neighbours that
are also among its k nearest on the map (k = 10), a trustworthiness measure in the spirit of
Venna and Kaski (2001), reported per token so a reader sees where the map lies."""

from __future__ import annotations

import numpy as np

HONESTY_K = 10


def map_neighbors(xy: np.ndarray, k: int = HONESTY_K) -> np.ndarray:
    """The positions of each point's ``k`` nearest points on the map (Euclidean), itself left
    out, nearest first: scipy's cKDTree (exact, O(n log n)) instead of all n^2 distances."""
    from scipy.spatial import cKDTree  # type: ignore[import-untyped]

    points = np.asarray(xy, dtype=np.float64)
    found = cKDTree(points).query(points, k=k + 1)[1]
    # Itself is normally the first; with points at the same place it may not be, or may be
    # crowded out: move it to the end (stable sort, so the rest keep their order) and cut.
    is_self = found == np.arange(points.shape[0])[:, None]
    order = np.argsort(is_self, axis=1, kind="stable")
    return np.take_along_axis(found, order, axis=1)[:, :k]


def honesty(exact: np.ndarray, on_map: np.ndarray) -> np.ndarray:
    """Per row, the share of ``exact``'s positions that ``on_map`` lists too (both (n, k))."""
    shared = (exact[:, :, None] == on_map[:, None, :]).any(axis=2).sum(axis=1)
    return shared / exact.shape[1]
