"""`tokneigh compare`: how close two tokens (or words) are."""

from __future__ import annotations

from pathlib import Path
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
from .filters import IncludeSpecialOption
from .help import HelpCommand
from .output import emit, load, make_filters, report

HELP = """Compare A and B: cosine similarity, angle, Pearson correlation of the raw vectors,
both raw norms, and B's rank among A's neighbours.

The rank counts neighbours as `tokneigh neighbors A` lists them: special tokens are left out
unless --include-special.

Examples:

  tokneigh compare ban ana

  tokneigh compare king queen --plot king-queen.png
"""


def compare(
    a: Annotated[str, typer.Argument(metavar="A", help="First text.", show_default=False)],
    b: Annotated[str, typer.Argument(metavar="B", help="Second text.", show_default=False)],
    plot: Annotated[
        Path | None,
        typer.Option(
            "--plot",
            metavar="FILE",
            help="Write a scatter of A's raw vector against B's (.png, .svg or .pdf).",
            show_default=False,
        ),
    ] = None,
    include_special: IncludeSpecialOption = False,
    output: FormatOption = DEFAULT_FORMAT,
    metric: MetricOption = DEFAULT_METRIC,
    embeddings: EmbeddingsOption = DEFAULT_EMBEDDINGS,
    model: ModelOption = DEFAULT,
    cache_dir: CacheDirOption = None,
) -> None:
    from ..present.plot import check_destination

    if plot is not None:
        check_destination(plot)  # fail before the (possibly slow) load
    emb = load(model, cache_dir, embeddings, metric)
    result = emb.compare(a, b, filters=make_filters(include_special=include_special))
    if plot is not None:
        from ..present.plot import compare_scatter

        compare_scatter(emb.raw_vector(a), emb.raw_vector(b), result, plot)
        report(f"wrote {plot}")
    emit(result, output)


def register(app: typer.Typer) -> None:
    app.command("compare", cls=HelpCommand, help=help_text(HELP))(compare)
