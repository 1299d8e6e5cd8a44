"""`tokneigh map`: a query and its neighbours, projected to a labelled 2-D picture."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .common import (
    DEFAULT,
    DEFAULT_EMBEDDINGS,
    DEFAULT_FORMAT,
    CacheDirOption,
    EmbeddingsOption,
    FormatOption,
    ModelOption,
    OutputFormat,
    help_text,
    load,
    report,
)
from .filters import (
    DedupeOption,
    IncludeSpecialOption,
    MinSimOption,
    WordsOnlyOption,
    filter_args,
    report_shortfall,
)

# Past this many labelled points the picture is ink, not information.
MAX_POINTS = 200

HELP = f"""Draw QUERY and its nearest tokens in 2-D.

The query's vector and its --top neighbours' unit vectors are projected onto their first two
principal components (PCA); the picture labels every token as the tables show it (quoted, so
leading spaces are visible) and marks the query with a red star. The coordinates are printed
too (table, json or tsv). The query's own tokens are not among the neighbours.

At most {MAX_POINTS} neighbours. Filters as in `neighbors`.

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
    query: Annotated[str | None, typer.Argument(help="Text to map.", show_default=False)] = None,
    top: Annotated[int, typer.Option("--top", "-k", min=1, help="How many neighbours.")] = 30,
    token_id: Annotated[
        int | None, typer.Option("--id", help="Map a token id instead.", show_default=False)
    ] = None,
    dedupe: DedupeOption = False,
    min_sim: MinSimOption = None,
    words_only: WordsOnlyOption = False,
    include_special: IncludeSpecialOption = False,
    output: FormatOption = DEFAULT_FORMAT,
    embeddings: EmbeddingsOption = DEFAULT_EMBEDDINGS,
    model: ModelOption = DEFAULT,
    cache_dir: CacheDirOption = None,
) -> None:
    from .. import render
    from ..errors import UsageError
    from ..plot import check_destination, token_map

    if (query is None) == (token_id is None):
        raise UsageError("give a QUERY or --id N (one of them)")
    if top > MAX_POINTS:
        raise UsageError(f"--top {top}: a map shows at most {MAX_POINTS} neighbours")
    check_destination(plot)  # fail before the (possibly slow) load
    emb = load(model, cache_dir, embeddings)
    result = emb.map(
        token_id if token_id is not None else query,  # type: ignore[arg-type]
        k=min(top, emb.vocab_size - 1),
        **filter_args(dedupe, min_sim, words_only, include_special),
    )
    report_shortfall(len(result.result.neighbors), top, "this query", emb.vocab_size - 1)
    token_map(result, plot)
    report(f"wrote {plot}")
    if output is OutputFormat.json:
        render.write_json(render.token_map_json(result))
    elif output is OutputFormat.tsv:
        render.token_map_tsv(result)
    else:
        render.token_map_table(result)


def register(app: typer.Typer) -> None:
    app.command("map", help=help_text(HELP), no_args_is_help=True)(map_command)
