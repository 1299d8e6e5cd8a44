"""``Embeddings``' comparisons of two models, a base class apart (the class itself stays under
300 lines): how neighbourhoods change (``diff``) and the map from one space to the other
(``align``, api/alignment.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from . import alignment

if TYPE_CHECKING:
    from ..analyses.filters import Filters
    from ..analyses.queries import AnyQuery
    from ..analyses.view import SpaceView
    from ..reporting import Report
    from ..results import CrossNeighborList, NeighborhoodDiff
    from ..store.entries import Entry


class _HasView:
    view: SpaceView


class _Loaded(_HasView):
    _entry: Entry


class Pairs:
    view: SpaceView  # set by Embeddings
    _entry: Entry

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

    def neighbors_in(
        self,
        other: _Loaded,
        queries: Sequence[AnyQuery],
        k: int = 20,
        *,
        refine: int = 1,
        seed: int = 0,
        filters: Filters | None = None,
        report: Report | None = None,
    ) -> list[CrossNeighborList]:
        """Each query of these embeddings (text, ``#N``/id, or a vector of this space) mapped
        into ``other``'s space by ``align``'s map (the one ``align(other, refine=, seed=)``
        keeps, its other options at their defaults: read from the cache when kept, else
        fitted and kept) and ranked among ``other``'s tokens by cosine
        (``tokneigh.analyses.crossmodel``): how a token, one ``other`` has or lacks, reads in
        the other vocabulary."""
        from ..analyses.align import Options
        from ..analyses.crossmodel import cross_neighbors
        from ..analyses.filters import NO_FILTERS

        options = Options(refine=refine, seed=seed)
        # The map read once per pair of loaded models (a 768 x 768 map is 4.7 MB to read).
        memo: dict[tuple[str, str], tuple[dict[str, np.ndarray], bool]]
        memo = self.__dict__.setdefault("_kept_maps", {})
        key = (alignment.file_name(other._entry, options), alignment.identity(other._entry))
        if key in memo:
            kept, cached = memo[key][0], True
        else:
            kept, cached = memo[key] = alignment.kept_map(self, other, options, report)
        scores = kept["scores"].tolist()  # in analyses.align's _SCORES order
        facts = {
            "refine": refine,
            "seed": seed,
            "test_share": options.test_share,
            "pool": options.pool,
            "ridge": options.ridge,
            "method": "procrustes" if self.view.dim == other.view.dim else "ridge",
            "cached": cached,
            "p_at_1": scores[0],
            "mean_cosine": scores[4],
            "embeddings_b": other.view.embeddings,
        }
        return cross_neighbors(
            self.view, other.view, kept, queries, k, filters=filters or NO_FILTERS,
            alignment=facts,
        )
