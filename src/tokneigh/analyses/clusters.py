"""Clusters of the whole vocabulary, each named by its most central tokens.

Leiden community detection (leidenalg, on igraph) over the exact k-nearest-neighbour graph,
not HDBSCAN over the 2-D layout: the clusters then come from the true neighbourhoods of the
embedding space, not from the distortions of a projection (which ``honesty`` measures), and
are the same whichever layout (UMAP or PCA) draws them.
"""

from __future__ import annotations

import numpy as np

NAME_TOKENS = 3  # the members that name a cluster


def leiden(positions: np.ndarray, seed: int) -> np.ndarray:
    """Each row's cluster (int32): Leiden's modularity partition of the kNN graph given by
    ``positions`` ((n, k) neighbour positions), numbered 0 for the largest cluster, then by
    size descending, ties by the cluster's smallest member. The same seed, the same clusters.

    The graph is undirected and weighted by how many of the two tokens list each other (1 or
    2), not by similarity: similarity's scale differs between metrics (csls scores can be
    negative, which modularity cannot take), while "is among the k nearest" means the same
    under every metric."""
    import igraph  # type: ignore[import-untyped]
    import leidenalg  # type: ignore[import-untyped]

    n, k = positions.shape
    sources = np.repeat(np.arange(n), k)
    edges = np.stack([sources, positions.ravel()], axis=1)
    graph = igraph.Graph(n=n, edges=edges.tolist(), directed=False)
    graph.es["weight"] = [1.0] * graph.ecount()
    graph.simplify(multiple=True, loops=True, combine_edges={"weight": "sum"})
    partition = leidenalg.find_partition(
        graph, leidenalg.ModularityVertexPartition, weights="weight", seed=seed
    )
    return by_size(np.asarray(partition.membership, dtype=np.int64))


def by_size(labels: np.ndarray) -> np.ndarray:
    """Cluster labels renumbered: 0 the largest, then by size descending, ties by the
    smallest member (rows are in ascending id order, so the first row of each)."""
    found, first, sizes = np.unique(labels, return_index=True, return_counts=True)
    order = np.lexsort((first, -sizes))
    number = np.empty(found.size, dtype=np.int32)
    number[order] = np.arange(found.size, dtype=np.int32)
    return number[np.searchsorted(found, labels)]


def central_members(labels: np.ndarray, positions: np.ndarray) -> list[list[int]]:
    """For each cluster (by number), the positions of its NAME_TOKENS most central members:
    the most often listed among the k nearest of the cluster's own members (their in-cluster
    k-occurrence), ties by lower position (lower id)."""
    n, k = positions.shape
    sources = np.repeat(np.arange(n), k)
    targets = positions.ravel()
    inside = labels[sources] == labels[targets]
    counts = np.bincount(targets[inside], minlength=n)
    order = np.lexsort((np.arange(n), -counts, labels))  # by cluster, then most central
    starts = np.searchsorted(labels[order], np.arange(int(labels.max()) + 1))
    ends = np.append(starts[1:], n)
    return [order[s : min(e, s + NAME_TOKENS)].tolist() for s, e in zip(starts, ends)]
