"""`tokneigh graph`: the exact k nearest neighbours of every token, written to a file."""

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
from .output import emit, load, progress_bar, report

HELP = """Write the exact K nearest neighbours of every token to FILE.

One all-pairs pass over the vocabulary (each token's list is the one `tokneigh neighbors
--id N` gives, self excluded, ties broken by lower id). Special tokens are left out on both
sides unless --include-special. The format follows the extension: .parquet (columns id, rank,
neighbor_id, similarity, token, neighbor_token; one row per pair), .npz (arrays ids,
neighbors, similarities, and JSON text in tokens) or .jsonl (one object per token). Each file
says what it holds: model, source, embeddings, metric, k, include_special, vocab_size, dim,
tokneigh_version and created, as the Parquet's key-value metadata, the .npz's meta array
(JSON text) or the .jsonl's first object's "meta". The file appears whole or not at all. The
graph is kept in the cache, so `tokneigh hubness` with the same K and metric reads it instead
of computing it.

Examples:

  tokneigh graph --k 10 --output gpt2-knn.parquet

  tokneigh graph --k 20 --metric csls --output knn.jsonl --model ./my-checkpoint
"""

DEFAULT_K = 10
KOption = Annotated[
    int | None,
    typer.Option(
        "--k",
        min=1,
        metavar="K",
        help=f"Neighbours per token, self excluded (default {DEFAULT_K}).",
        show_default=False,
    ),
]
# Before issue 22 graph's K was --top/-k; those spellings still work, unlisted (-k and --top
# are the length of a list everywhere else).
OldTopOption = Annotated[
    int | None,
    typer.Option("--top", "-k", min=1, metavar="K", hidden=True, show_default=False),
]


def pick_k(k: int | None, old_top: int | None, old_name: str = "--top") -> int:
    """K from --k, or from its old spelling; both given, they must agree."""
    from ..errors import UsageError

    if k is not None and old_top is not None and k != old_top:
        raise UsageError(f"--k {k} and {old_name} {old_top} disagree: give K once, as --k")
    return k if k is not None else old_top if old_top is not None else DEFAULT_K


def graph(
    output_file: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="Where to write: .parquet, .npz or .jsonl.",
            show_default=False,
        ),
    ],
    k: KOption = None,
    old_top: OldTopOption = None,
    metric: MetricOption = DEFAULT_METRIC,
    include_special: IncludeSpecialOption = False,
    output: FormatOption = DEFAULT_FORMAT,
    embeddings: EmbeddingsOption = DEFAULT_EMBEDDINGS,
    model: ModelOption = DEFAULT,
    cache_dir: CacheDirOption = None,
) -> None:
    from ..present.graphfile import describe, file_format, write_graph
    from .reports import GraphFile

    # An unknown extension, a name too long, an unwritable folder or a FIFO fails first.
    file_format(output_file)
    top = pick_k(k, old_top)
    emb = load(model, cache_dir, embeddings, metric)
    with progress_bar(f"{top} nearest of every token ({emb.metric.name})") as progress:
        result = emb.graph(top, include_special=include_special, progress=progress, report=report)
    fmt = write_graph(result, output_file, emb.token_text, describe(emb, result))
    summary = GraphFile(
        path=str(output_file),
        file_format=fmt,
        model=emb.model,
        metric=result.metric,
        k=result.k,
        tokens=int(result.ids.size),
        include_special=include_special,
        seconds=result.seconds,
        cached=result.cached,
    )
    emit(summary, output)


def register(app: typer.Typer) -> None:
    app.command("graph", cls=HelpCommand, help=help_text(HELP))(graph)
