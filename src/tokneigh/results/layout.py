"""A 2-D map of the whole vocabulary (``tokneigh.analyses.layout``): a position for every ranked
token, its cluster, and how honest the map is about its exact neighbours."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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


@dataclass(slots=True)
class MapLayout:
    """Every ranked token's place on a 2-D map.

    Arrays are row-aligned with ``ids`` (the token ids laid out, ascending): ``xy`` (n, 2)
    float32, ``clusters`` (n,) int32 (an index into ``cluster_list``), ``honesty`` (n,) float64,
    the share of each token's exact ``honesty_k`` nearest neighbours that are also among its
    ``honesty_k`` nearest on the map.
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
