"""`tokneigh map`: a query and its neighbours, projected to a labelled 2-D picture."""

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
from .filters import DedupeOption, IncludeSpecialOption, MinSimOption, WordsOnlyOption
from .help import HelpCommand
from .output import clamp_top, emit, load, make_filters, note_shortfall, report

# Past this many labelled points the picture is ink, not information.
MAX_POINTS = 200

HELP = f"""Draw QUERY and its nearest tokens in 2-D.

The query's vector and its --top neighbours' unit vectors are projected onto their first two
principal components (PCA); the picture labels every token as the tables show it (quoted, so
leading spaces are visible) and marks the query with a red star. The coordinates are printed
too (table, json, tsv or csv). The query's own tokens are not among the neighbours.

At most {MAX_POINTS} neighbours. Filters as in `neighbors`. QUERY may be #N, token id N (the
same as --id N); \\#N is the literal text "#N".

Examples:

  tokneigh map king --plot king.png

  tokneigh map " Mike" --top 40 --dedupe --plot mike.svg --format json
"""


def map_command(
    plot: Annotated[
        Path,
        typer.Option(
            "--plot",
            metavar="FILE",
            help="The picture to write (.png, .svg or .pdf).",
            show_default=False,
        ),
    ],
    query: Annotated[
        str | None, typer.Argument(metavar="QUERY", help="Text to map.", show_default=False)
    ] = None,
    top: Annotated[
        int, typer.Option("--top", "-k", min=1, metavar="N", help="How many neighbours.")
    ] = 30,
    token_id: Annotated[
        int | None,
        typer.Option("--id", metavar="N", help="Map a token id instead.", show_default=False),
    ] = None,
    dedupe: DedupeOption = False,
    min_sim: MinSimOption = None,
    words_only: WordsOnlyOption = False,
    include_special: IncludeSpecialOption = False,
    output: FormatOption = DEFAULT_FORMAT,
    metric: MetricOption = DEFAULT_METRIC,
    embeddings: EmbeddingsOption = DEFAULT_EMBEDDINGS,
    model: ModelOption = DEFAULT,
    cache_dir: CacheDirOption = None,
) -> None:
    from ..errors import UsageError
    from ..present.plot import check_destination, token_map

    if (query is None) == (token_id is None):
        raise UsageError("give a QUERY or --id N (one of them)")
    if top > MAX_POINTS:
        raise UsageError(f"--top {top}: a map shows at most {MAX_POINTS} neighbours")
    filters = make_filters(dedupe, min_sim, words_only, include_special)
    check_destination(plot)  # fail before the (possibly slow) load
    emb = load(model, cache_dir, embeddings, metric)
    top = clamp_top(top, emb.vocab_size - 1)
    result = emb.map(token_id if token_id is not None else query, k=top, filters=filters)  # type: ignore[arg-type]
    note_shortfall([result.result], top, filters, "this query")
    token_map(result, plot)
    report(f"wrote {plot}")
    emit(result, output)


def register(app: typer.Typer) -> None:
    app.command("map", cls=HelpCommand, help=help_text(HELP))(map_command)
