"""`tokneigh verify`: the per-row Python loop against the vectorized product, on this machine."""

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
    help_text,
    load,
)

HELP = """Check the fast path against the obvious one, and time both.

Scores QUERY against every token twice: with a Python loop over the raw embedding rows, one
at a time (dot / (norm × norm)), and with one matrix-vector product over the cached
normalized matrix, as `neighbors` does. Reports the Pearson correlation of the two
similarity vectors (expect 1.000000), their largest absolute difference, whether both give
the same top-k (same ids, same order), both timings and the speed-up.

The query vector is the one `neighbors` uses (several tokens: the normalized mean of their
unit vectors). No token is filtered out here.

Examples:

  tokneigh verify

  tokneigh verify king --top 20 --format json

  tokneigh verify --id 50256
"""


def verify(
    query: Annotated[
        str | None, typer.Argument(help="Text to score (default: Mike).", show_default=False)
    ] = None,
    token_id: Annotated[
        int | None, typer.Option("--id", help="Query a token id instead.", show_default=False)
    ] = None,
    top: Annotated[
        int, typer.Option("--top", "-k", min=1, help="How many top tokens to compare.")
    ] = 10,
    output: FormatOption = DEFAULT_FORMAT,
    embeddings: EmbeddingsOption = DEFAULT_EMBEDDINGS,
    model: ModelOption = DEFAULT,
    cache_dir: CacheDirOption = None,
) -> None:
    from .. import render
    from ..errors import UsageError

    if query is not None and token_id is not None:
        raise UsageError("give a QUERY or --id N, not both")
    emb = load(model, cache_dir, embeddings)
    result = emb.verify(token_id if token_id is not None else (query or "Mike"), k=top)
    if output is OutputFormat.json:
        render.write_json(render.verification_json(result))
    elif output is OutputFormat.tsv:
        render.verification_tsv(result)
    else:
        render.verification_table(result)


def register(app: typer.Typer) -> None:
    app.command("verify", help=help_text(HELP))(verify)
