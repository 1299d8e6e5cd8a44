"""`tokneigh hubness`: which tokens turn up in everyone's neighbour list."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import (
    DEFAULT,
    DEFAULT_EMBEDDINGS,
    DEFAULT_FORMAT,
    DEFAULT_METRIC,
    CacheDirOption,
    EmbeddingsOption,
    FormatOption,
    MetricOption,
    ModelOption,
    help_text,
)
from .filters import IncludeSpecialOption, PlotOption
from .graph import TopOption
from .help import HelpCommand
from .output import emit, load, progress_bar, report

HELP = """Measure hubness: N_k, how many tokens have a token among their K nearest.

In a space without hubs N_k stays near K for every token; a skewed N_k (a long right tail)
means a few hubs crowd everyone's neighbour lists while many tokens (anti-hubs, N_k = 0) are
nobody's neighbour (Radovanović et al., JMLR 2010). Computed from the same all-pairs pass as
`tokneigh graph` (and read from the cache when that pass was done). Compare metrics: centered,
abtt and csls are meant to reduce hubness.

Examples:

  tokneigh hubness --top 10

  tokneigh hubness --metric csls --plot nk.png
"""


def hubness(
    top: TopOption = 10,
    hubs: Annotated[
        int, typer.Option("--hubs", min=0, metavar="N", help="How many hubs to list.")
    ] = 10,
    metric: MetricOption = DEFAULT_METRIC,
    include_special: IncludeSpecialOption = False,
    plot: PlotOption = None,
    output: FormatOption = DEFAULT_FORMAT,
    embeddings: EmbeddingsOption = DEFAULT_EMBEDDINGS,
    model: ModelOption = DEFAULT,
    cache_dir: CacheDirOption = None,
) -> None:
    if plot is not None:
        from ..present.plot import check_destination

        check_destination(plot)  # fail before the (possibly long) pass
    emb = load(model, cache_dir, embeddings, metric)
    with progress_bar(f"{top} nearest of every token ({emb.metric.name})") as progress:
        result = emb.hubness(
            top, include_special=include_special, hubs=hubs, progress=progress, report=report
        )
    if plot is not None:
        from ..present.plot import hubness_histogram

        hubness_histogram(result, plot)
        report(f"wrote {plot}")
    emit(result, output)


def register(app: typer.Typer) -> None:
    app.command("hubness", cls=HelpCommand, help=help_text(HELP))(hubness)
