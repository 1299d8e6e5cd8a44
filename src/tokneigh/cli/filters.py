"""Options that filter a neighbour list, shared by `neighbors`, `analogy` and `map`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

DedupeOption = Annotated[
    bool,
    typer.Option(
        "--dedupe",
        help="Fold tokens that differ only by a leading space or case (Mike, ' Mike', mike, "
        "' MIKE') into one row: the best one, with the others listed.",
    ),
]
MinSimOption = Annotated[
    float | None,
    typer.Option(
        "--min-sim",
        min=-1.0,
        max=1.0,
        metavar="X",
        help="Only tokens with cosine similarity of at least X (-1..1).",
        show_default=False,
    ),
]
WordsOnlyOption = Annotated[
    bool, typer.Option("--words-only", help="Skip tokens without a letter (digits, punctuation).")
]
IncludeSpecialOption = Annotated[
    bool,
    typer.Option(
        "--include-special",
        help="Keep special tokens (<|endoftext|>, \\[CLS], \\[unused12], rows the tokenizer does "
        "not name), left out by default.",
    ),
]
PlotOption = Annotated[
    Path | None,
    typer.Option(
        "--plot",
        metavar="FILE",
        help="Also draw a figure to FILE (.png, .svg or .pdf).",
        show_default=False,
    ),
]


def filter_args(
    dedupe: bool, min_sim: float | None, words_only: bool, include_special: bool
) -> dict[str, Any]:
    """The API's keyword arguments for these options (the CLI hides special tokens by
    default; the API ranks every row unless asked)."""
    return {
        "dedupe": dedupe,
        "min_sim": min_sim,
        "words_only": words_only,
        "skip_special": not include_special,
    }


def report_shortfall(found: int, wanted: int, what: str, vocab_size: int) -> None:
    """A note on stderr when the filters leave fewer than --top tokens."""
    from .output import report

    if found < min(wanted, vocab_size):
        passes = "token passes" if found == 1 else "tokens pass"
        report(f"note: only {found} {passes} the filters for {what}")
