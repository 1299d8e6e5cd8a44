"""`tokneigh tokenize`: how the model's tokenizer splits text."""

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

HELP = """Show the tokens and ids of each TEXT, and how its space-prefixed variant splits.

Examples:

  tokneigh tokenize banana cosmic apple

  tokneigh tokenize "New York" --format json
"""


def tokenize(
    texts: Annotated[list[str], typer.Argument(help="Text to tokenize.", show_default=False)],
    output: FormatOption = DEFAULT_FORMAT,
    embeddings: EmbeddingsOption = DEFAULT_EMBEDDINGS,
    model: ModelOption = DEFAULT,
    cache_dir: CacheDirOption = None,
) -> None:
    from .. import render
    from ..errors import UsageError

    if any(not text for text in texts):
        raise UsageError("a TEXT is empty")
    emb = load(model, cache_dir, embeddings)
    items = [emb.tokenize(text) for text in texts]
    if output is OutputFormat.json:
        render.write_json([render.tokenization_json(t) for t in items])
    elif output is OutputFormat.tsv:
        render.tokenize_tsv(items)
    else:
        spaced = [None if t.text.startswith(" ") else emb.tokenize(" " + t.text) for t in items]
        render.tokenize_lines(list(zip(items, spaced)))


def register(app: typer.Typer) -> None:
    app.command("tokenize", help=help_text(HELP), no_args_is_help=True)(tokenize)
