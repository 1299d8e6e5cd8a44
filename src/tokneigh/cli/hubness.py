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
from .graph import KOption, pick_k
from .help import HelpCommand
from .output import emit, load, progress_bar, report

HELP = """Measure hubness: N_k, how many tokens have a token among their K nearest (--k).

In a space without hubs N_k stays near K for every token; a skewed N_k (a long right tail)
means a few hubs crowd everyone's neighbour lists while many tokens (anti-hubs, N_k = 0) are
nobody's neighbour (Radovanović et al., JMLR 2010). Computed from the same all-pairs pass as
`tokneigh graph` (and read from the cache when that pass was done). Compare metrics: centered,
abtt and csls are meant to reduce hubness.

Examples:

  tokneigh hubness --k 10 --top 20

  tokneigh hubness --metric csls --plot nk.png
"""


def hubness(
    k: KOption = None,
    top: Annotated[
        int | None,
        typer.Option(
            "--top",
            "-k",
            min=0,
            metavar="N",
            help="How many hubs to list (default 10).",
            show_default=False,
        ),
    ] = None,
    old_hubs: Annotated[
        int | None, typer.Option("--hubs", min=0, metavar="N", hidden=True, show_default=False)
    ] = None,
    metric: MetricOption = DEFAULT_METRIC,
    include_special: IncludeSpecialOption = False,
    plot: PlotOption = None,
    output: FormatOption = DEFAULT_FORMAT,
    embeddings: EmbeddingsOption = DEFAULT_EMBEDDINGS,
    model: ModelOption = DEFAULT,
    cache_dir: CacheDirOption = None,
) -> None:
    from ..errors import UsageError

    if old_hubs is not None and k is None:
        # The spelling before issue 22 (--top K --hubs N): --hubs names the rows, so --top
        # is K there, as it was.
        k, top = top, old_hubs
    elif old_hubs is not None:
        if top is not None and top != old_hubs:
            raise UsageError(f"--top {top} and --hubs {old_hubs} disagree: give --top once")
        top = old_hubs
    k_ = pick_k(k, None)
    hubs = 10 if top is None else top
    if plot is not None:
        from ..present.plot import check_destination

        check_destination(plot)  # fail before the (possibly long) pass
    emb = load(model, cache_dir, embeddings, metric)
    with progress_bar(f"{k_} nearest of every token ({emb.metric.name})") as progress:
        result = emb.hubness(
            k_, include_special=include_special, hubs=hubs, progress=progress, report=report
        )
    if plot is not None:
        from ..present.plot import hubness_histogram

        hubness_histogram(result, plot)
        report(f"wrote {plot}")
    emit(result, output)


def register(app: typer.Typer) -> None:
    app.command("hubness", cls=HelpCommand, help=help_text(HELP))(hubness)
