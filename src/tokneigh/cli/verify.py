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
    help_text,
)
from .help import HelpCommand
from .output import emit, load

HELP = """Check the fast path against the obvious one, and time both.

Scores QUERY against every token twice: with a Python loop over the raw embedding rows, one
at a time (dot / (norm × norm)), and with one matrix-vector product over the cached
normalized matrix, as `neighbors` does. Reports the Pearson correlation of the two
similarity vectors (expect 1.000000), their largest absolute difference, whether both give
the same top-k (same ids, same order), both timings and the speed-up.

The query vector is the one `neighbors` uses (several tokens: the normalized mean of their
unit vectors). No token is filtered out here. QUERY may be #N, token id N (the same as --id
N); \\#N is the literal text "#N".

Examples:

  tokneigh verify

  tokneigh verify king --top 20 --format json

  tokneigh verify --id 50256
"""


def verify(
    query: Annotated[
        str | None,
        typer.Argument(metavar="QUERY", help="Text to score (default: Mike).", show_default=False),
    ] = None,
    token_id: Annotated[
        int | None,
        typer.Option("--id", metavar="N", help="Query a token id instead.", show_default=False),
    ] = None,
    top: Annotated[
        int,
        typer.Option("--top", "-k", min=1, metavar="N", help="How many top tokens to compare."),
    ] = 10,
    output: FormatOption = DEFAULT_FORMAT,
    embeddings: EmbeddingsOption = DEFAULT_EMBEDDINGS,
    model: ModelOption = DEFAULT,
    cache_dir: CacheDirOption = None,
) -> None:
    from ..errors import UsageError

    if query is not None and token_id is not None:
        raise UsageError("give a QUERY or --id N, not both")
    emb = load(model, cache_dir, embeddings)
    emit(emb.verify(token_id if token_id is not None else (query or "Mike"), k=top), output)


def register(app: typer.Typer) -> None:
    app.command("verify", cls=HelpCommand, help=help_text(HELP))(verify)
