"""`tokneigh neighbors`: the tokens nearest to a query."""

from __future__ import annotations

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
    load,
    report,
)

HELP = """Rank every token by cosine similarity to each QUERY.

A query is text, tokenized exactly as the model does it ("Mike" and " Mike" are different
GPT-2 tokens); a query of several tokens uses the mean of their unit vectors.

Examples:

  tokneigh neighbors Mike --top 20

  tokneigh neighbors " Mike" banana --format json

  tokneigh neighbors --id 50256 --model ./my-checkpoint
"""


def neighbors(
    queries: Annotated[
        list[str] | None, typer.Argument(help="Text to look up.", show_default=False)
    ] = None,
    top: Annotated[int, typer.Option("--top", "-k", min=1, help="How many neighbours.")] = 20,
    ids: Annotated[
        list[int] | None, typer.Option("--id", help="Query a token id directly (repeatable).")
    ] = None,
    exclude_query: Annotated[
        bool, typer.Option("--exclude-query", help="Leave the query's own tokens out.")
    ] = False,
    output: FormatOption = DEFAULT_FORMAT,
    embeddings: EmbeddingsOption = DEFAULT_EMBEDDINGS,
    model: ModelOption = DEFAULT,
    cache_dir: CacheDirOption = None,
) -> None:
    from .. import render
    from ..errors import UsageError

    wanted: list[str | int] = [*(queries or []), *(ids or [])]
    if not wanted:
        raise UsageError("give a QUERY or --id N (see 'tokneigh neighbors --help')")
    emb = load(model, cache_dir, embeddings)
    if top > emb.vocab_size:
        report(f"warning: --top {top} exceeds the vocabulary; showing all {emb.vocab_size}")
        top = emb.vocab_size
    results = emb.neighbors_many(wanted, k=top, exclude_query=exclude_query)
    if output is OutputFormat.json:
        render.write_json([render.neighbors_json(r) for r in results])
    elif output is OutputFormat.tsv:
        render.neighbors_tsv(results)
    else:
        render.neighbors_tables(results)


def register(app: typer.Typer) -> None:
    app.command("neighbors", help=HELP, no_args_is_help=True)(neighbors)
