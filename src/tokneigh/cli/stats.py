"""`tokneigh stats`: the shape of the embedding space."""

from __future__ import annotations

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
from .output import emit, load

HELP = """Describe the space: anisotropy, norms, principal components.

Anisotropy is the mean similarity (under --metric) of a fixed, seeded sample of pairs of
distinct tokens (Ethayarajh, EMNLP 2019): near 0 when directions spread evenly, high when all
vectors share a common direction. Norms are those of the raw rows; the variance shares are
those of the vectors the metric compares. Rows with no direction are never measured; special
tokens only with --include-special.

Examples:

  tokneigh stats

  tokneigh stats --metric abtt --format json
"""


def stats(
    pairs: Annotated[
        int, typer.Option("--pairs", min=1, metavar="N", help="Pairs of tokens to sample.")
    ] = 100_000,
    seed: Annotated[int, typer.Option("--seed", metavar="S", help="Seed of the sample.")] = 0,
    metric: MetricOption = DEFAULT_METRIC,
    include_special: IncludeSpecialOption = False,
    output: FormatOption = DEFAULT_FORMAT,
    embeddings: EmbeddingsOption = DEFAULT_EMBEDDINGS,
    model: ModelOption = DEFAULT,
    cache_dir: CacheDirOption = None,
) -> None:
    emb = load(model, cache_dir, embeddings, metric)
    emit(emb.stats(pairs=pairs, seed=seed, include_special=include_special), output)


def register(app: typer.Typer) -> None:
    app.command("stats", cls=HelpCommand, help=help_text(HELP))(stats)
