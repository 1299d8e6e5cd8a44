"""`tokneigh neighbors QUERY --in B`: A's queries read among B's tokens through the alignment's
map (``Embeddings.neighbors_in``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from .common import EmbeddingsKind

InOption = Annotated[
    str | None,
    typer.Option(
        "--in",
        metavar="NAME",
        help="Rank among another model's tokens: the query mapped by `align`'s map (fitted "
        "and cached on first use).",
        show_default=False,
    ),
]
InEmbeddingsOption = Annotated[
    EmbeddingsKind | None,
    typer.Option(
        "--in-embeddings",
        case_sensitive=False,
        metavar="input|output",
        help="With --in: B's matrix (default: A's).",
        show_default=False,
    ),
]
RefineOption = Annotated[
    int,
    typer.Option("--refine", min=0, metavar="N", help="With --in: the map's refinement rounds."),
]
SeedOption = Annotated[
    int, typer.Option("--seed", metavar="S", help="With --in: the map's split seed.")
]


def refused(
    *, score: str, metric: str, plot: Path | None, exclude_query: bool, centroid: bool
) -> str | None:
    """The option --in cannot take, as the error says it; None when all can be."""
    if score != "cosine":
        return "--in ranks by cosine (the map was fitted on it), not --score dot"
    if metric.strip().lower() != "cosine":
        return f"--in ranks by cosine (the map was fitted on it), not --metric {metric}"
    if plot is not None:
        return "--plot does not draw --in lists"
    if exclude_query:
        return "--exclude-query does not apply to --in (B's own token is a fact of the list)"
    if centroid:
        return "--centroid does not apply to --in: A's mean row is the centre the map removes"
    return None


def answer(
    emb: Any,
    other: str,
    cache_dir: Path | None,
    embeddings: EmbeddingsKind,
    wanted: list[object],
    lines: list[Any] | None,
    options: dict[str, Any],
) -> tuple[list[Any], Any]:
    """(the lists, the batch's failures or None): the map read (or fitted) once, then each
    query (or each good line of --queries FILE) mapped and ranked in B."""
    from .output import load, report

    b = load(other, cache_dir, embeddings)

    def ask(queries: list[object]) -> list[Any]:
        return list(emb.neighbors_in(b, queries, report=report, **options))

    if lines is None:
        return ask(wanted), None
    from .batch import Failures, answer_rows, rows

    failures = Failures()
    parsed = rows(lines, 1, "one query per line")
    ask([])  # the map first: a failure to fit it is the command's, not each line's
    results = answer_rows(parsed, lambda row: ask([row[0]])[0], failures)
    return results, failures
