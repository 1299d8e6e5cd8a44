"""The all-pairs pass under the name the README has always given it: ``tokneigh.allpairs.
knn_all_pairs(unit, rows, k)``. It lives in ``tokneigh.space.allpairs``."""

from .space.allpairs import knn_all_pairs

__all__ = ["knn_all_pairs"]
