"""`tokneigh tokenize`: how the model's tokenizer splits text."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import (
    DEFAULT,
    DEFAULT_FORMAT,
    CacheDirOption,
    FormatOption,
    ModelOption,
    help_text,
)
from .help import HelpCommand
from .output import emit, report

HELP = """Show the tokens and ids of each TEXT, and how its space-prefixed variant splits.

Reads only the model's tokenizer: no embedding matrix is extracted for it.

Examples:

  tokneigh tokenize banana cosmic apple

  tokneigh tokenize "New York" --format json
"""


def tokenize(
    texts: Annotated[
        list[str], typer.Argument(metavar="TEXT", help="Text to tokenize.", show_default=False)
    ],
    output: FormatOption = DEFAULT_FORMAT,
    model: ModelOption = DEFAULT,
    cache_dir: CacheDirOption = None,
) -> None:
    from ..api.loading import load_vocabulary

    vocabulary = load_vocabulary(model, cache_dir=cache_dir, report=report)
    emit(vocabulary.tokenize_all(texts), output)


def register(app: typer.Typer) -> None:
    app.command("tokenize", cls=HelpCommand, help=help_text(HELP))(tokenize)
