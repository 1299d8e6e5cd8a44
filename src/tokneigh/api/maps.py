"""``Embeddings.layout``: the 2-D map of the whole vocabulary, and the cache file that keeps it.

A mixin of ``Embeddings`` (which holds ``_entry`` and ``view``), so the class stays one
screenful of short delegations; the computation is ``tokneigh.analyses.layout``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..reporting import Progress, Report
from ..store import derived
from .logreport import log_report

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..analyses.view import SpaceView
    from ..results import MapLayout, NeighborGraph
    from ..store import entries


class MapMethods:
    _entry: entries.Entry
    view: SpaceView

    if TYPE_CHECKING:  # Embeddings's own, which ``layout`` reads its graph through

        def graph(
            self,
            k: int = 10,
            *,
            include_special: bool = False,
            progress: Progress | None = None,
            report: Report | None = None,
        ) -> NeighborGraph: ...

    def layout(
        self,
        method: str = "umap",
        neighbors: int = 15,
        *,
        include_special: bool = False,
        seed: int = 0,
        progress: Progress | None = None,
        report: Report | None = None,
    ) -> MapLayout:
        """Every token placed on a 2-D map, by ``method`` "umap" (umap-learn over the exact
        ``neighbors``-nearest graph of ``graph``, seeded) or "pca" (the top two principal
        components); clustered by Leiden on that graph, each cluster named by its most
        central tokens; and how honest the map is: per token, the share of its exact 10
        nearest that are also its 10 nearest on the map. Kept in the cache entry."""
        say = report or log_report

        def graph_of(k: int) -> NeighborGraph:
            # The same graph, and graph file, `tokneigh graph --k K` uses.
            return self.graph(k, include_special=include_special, progress=progress, report=say)

        return _layout(
            self._entry, self.view, graph_of, method, neighbors, include_special, seed, progress,
            say,
        )  # fmt: skip


def _layout(
    entry: entries.Entry,
    view: SpaceView,
    graph_of: Callable[[int], NeighborGraph],
    method: str,
    neighbors: int,
    include_special: bool,
    seed: int,
    progress: Progress | None,
    say: Report,
) -> MapLayout:
    """The layout kept in the entry, or computed over the entry's (kept) graph and kept."""
    from ..analyses import layout, whole

    rows = whole.graph_rows(view, include_special)
    layout.check_layout(method, neighbors, seed, rows)
    name = layout.file_name(view.metric.file_stem, method, neighbors, seed, include_special)
    kept = derived.read_arrays(entry, name, layout.layout_check(rows), say)
    if kept is not None:
        return layout.from_arrays(
            view, kept, method, neighbors, seed, include_special, 0.0, cached=True
        )
    graph = graph_of(layout.graph_k(neighbors))
    result = layout.compute_layout(view, graph, method, neighbors, seed, progress, say)
    derived.save(entry, name, layout.layout_arrays(result), say)
    return result
