"""`tokneigh layout`: every token of the vocabulary on a 2-D map, clustered, with how honest
the map is."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from .common import (
    DEFAULT,
    DEFAULT_EMBEDDINGS,
    DEFAULT_FORMAT,
    DEFAULT_METRIC,
    CacheDirOption,
    EmbeddingsOption,
    FormatOption,
    LayoutMethodOption,
    LayoutNeighborsOption,
    LayoutSeedOption,
    MetricOption,
    ModelOption,
    help_text,
    layout_method,
)
from .filters import IncludeSpecialOption, PlotOption
from .help import HelpCommand
from .output import emit, load, progress_bar, report

if TYPE_CHECKING:
    from ..api.embeddings import Embeddings
    from ..results import MapLayout

HELP = """Lay out every token on a 2-D map, cluster the tokens, and say how honest the map is.

--method umap (the default) runs UMAP (umap-learn) over the exact graph of each token's
--neighbors nearest (the graph `tokneigh graph --k N` writes; computed once and kept in the
cache), so no approximate search runs; the same --seed gives the same map. --method pca
projects the tokens on their top two principal components instead: fast and deterministic.
The tokens are clustered by Leiden on the same exact graph (so clusters follow the true
neighbourhoods, not the map's distortions), each cluster named by its three most central
tokens. Honesty: for each token, the share of its exact 10 nearest neighbours that are also
its 10 nearest on the map; the table gives the mean and quartiles. The map is kept in the
cache: a second run with the same options reads it.

The table lists the clusters (number, size, name); json, tsv and csv give one row per
token: id, token, x, y, cluster, honesty (json adds the summary and the clusters). --plot
draws every token as a point coloured by its cluster, the largest clusters named.

Examples:

  tokneigh layout --plot gpt2-map.png

  tokneigh layout --method pca --format csv > coordinates.csv

  tokneigh layout --neighbors 30 --seed 1 --metric centered --plot map.svg
"""


def layout(
    method: LayoutMethodOption = "umap",
    neighbors: LayoutNeighborsOption = 15,
    seed: LayoutSeedOption = 0,
    metric: MetricOption = DEFAULT_METRIC,
    include_special: IncludeSpecialOption = False,
    plot: PlotOption = None,
    output: FormatOption = DEFAULT_FORMAT,
    embeddings: EmbeddingsOption = DEFAULT_EMBEDDINGS,
    model: ModelOption = DEFAULT,
    cache_dir: CacheDirOption = None,
) -> None:
    method = layout_method(method)
    if plot is not None:
        from ..present.plot import check_destination

        check_destination(plot)  # fail before the (possibly long) computation
    emb = load(model, cache_dir, embeddings, metric)
    result = computed_layout(emb, method, neighbors, seed, include_special)
    if plot is not None:
        from ..present.mapplot import layout_map

        layout_map(result, plot)
        report(f"wrote {plot}")
    emit(result, output)


def computed_layout(
    emb: Embeddings, method: str, neighbors: int, seed: int, include_special: bool
) -> MapLayout:
    """The map of ``emb`` (read from the cache, or computed behind a progress bar): what
    ``layout`` prints and ``export`` writes."""
    with progress_bar(f"map of every token ({method}, {emb.metric.name})") as progress:
        return emb.layout(
            method,
            neighbors,
            include_special=include_special,
            seed=seed,
            progress=progress,
            report=report,
        )


def register(app: typer.Typer) -> None:
    app.command("layout", cls=HelpCommand, help=help_text(HELP))(layout)
