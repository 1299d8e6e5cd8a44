"""``Embeddings``' comparisons of two models, a base class apart (the class itself stays under
300 lines): how neighbourhoods change (``diff``) and the map from one space to the other
(``align``, api/alignment.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from . import alignment

if TYPE_CHECKING:
    from ..analyses.view import SpaceView
    from ..results import NeighborhoodDiff


class _HasView:
    view: SpaceView


class Pairs:
    view: SpaceView  # set by Embeddings

    def diff(
        self,
        other: _HasView,
        words: Sequence[str] = (),
        *,
        sample: int = 0,
        seed: int = 0,
        k: int = 10,
        changed: int = 3,
    ) -> NeighborhoodDiff:
        """How neighbourhoods change from these embeddings to ``other`` (another model,
        the output matrix, another metric): overlap@k, Jaccard and Spearman's rho of ``words``
        and of a seeded sample of shared tokens (``tokneigh.analyses.diff``)."""
        from ..analyses.diff import compare_models

        return compare_models(
            self.view, other.view, words=words, sample=sample, seed=seed, k=k, changed=changed
        )

    align = alignment.align  # a map to another model's space, the tokens that moved most
