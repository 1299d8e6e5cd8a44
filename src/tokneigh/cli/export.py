"""`tokneigh export`: the map of every token, written for the tools people already use."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from .common import (
    DEFAULT,
    DEFAULT_EMBEDDINGS,
    DEFAULT_METRIC,
    CacheDirOption,
    EmbeddingsOption,
    LayoutMethodOption,
    LayoutNeighborsOption,
    LayoutSeedOption,
    MetricOption,
    ModelOption,
    help_text,
    layout_method,
)
from .filters import IncludeSpecialOption
from .help import HelpCommand
from .output import emit, load, report

HELP = """Write the map of every token (`tokneigh layout`'s) for embedding-atlas or the
Embedding Projector.

--format atlas writes DEST, a Parquet file that Apple's embedding-atlas opens as it is:
`embedding-atlas DEST --x x --y y --text token --neighbors neighbors`. One row per token:
id, token, label, special, norm (the raw row's length), x, y, cluster, cluster_name, and
neighbors, {"ids": [...], "distances": [...]}: the token's --neighbors exact nearest as row
numbers of the table (from 0) and 1 - their similarity, best first. The facts (model, metric,
k, layout method, seed...) are the file's key-value metadata.

--format projector writes the folder DEST (new, or empty) holding vectors.tsv (the unit
vectors the metric compares, no header) and metadata.tsv (a header row, then the same
columns as the Parquet but neighbors), for projector.tensorflow.org's Load button. Tabs,
newlines, carriage returns and backslashes in tokens are written as \\t, \\n, \\r and \\\\.

The map is `tokneigh layout`'s with the same options (computed once and kept in the cache).
The file or folder appears whole or not at all.

Examples:

  tokneigh export --format atlas gpt2-atlas.parquet

  tokneigh export --format projector gpt2-projector --method pca
"""


class ExportFormat(str, Enum):
    atlas = "atlas"
    projector = "projector"


def export(
    destination: Annotated[
        Path,
        typer.Argument(
            metavar="DEST",
            help="The .parquet file (atlas) or the new or empty folder (projector).",
            show_default=False,
        ),
    ],
    export_format: Annotated[
        ExportFormat,
        typer.Option(
            "--format",
            "-f",
            case_sensitive=False,
            metavar="atlas|projector",
            help="atlas (embedding-atlas Parquet) or projector (Embedding Projector TSVs).",
        ),
    ] = ExportFormat.atlas,
    method: LayoutMethodOption = "umap",
    neighbors: LayoutNeighborsOption = 15,
    seed: LayoutSeedOption = 0,
    metric: MetricOption = DEFAULT_METRIC,
    include_special: IncludeSpecialOption = False,
    embeddings: EmbeddingsOption = DEFAULT_EMBEDDINGS,
    model: ModelOption = DEFAULT,
    cache_dir: CacheDirOption = None,
) -> None:
    from ..present.export_atlas import check_atlas_path, write_atlas
    from ..present.export_projector import check_projector_dir, write_projector
    from ..present.maprows import exact_neighbors
    from .layout import computed_layout
    from .reports import ExportFile

    method = layout_method(method)
    atlas = export_format == ExportFormat.atlas
    # A wrong name, an unwritable folder or a folder in use fails before the computation.
    if atlas:
        check_atlas_path(destination)
    else:
        check_projector_dir(destination)
    emb = load(model, cache_dir, embeddings, metric)
    layout = computed_layout(emb, method, neighbors, seed, include_special)
    if atlas:
        graph = exact_neighbors(emb, neighbors, include_special, report)
        tokens = write_atlas(emb, layout, graph, destination)
    else:
        tokens = write_projector(emb, layout, destination)
    summary = ExportFile(
        path=str(destination),
        export_format=export_format.value,
        model=emb.model,
        method=method,
        metric=layout.metric,
        neighbors=neighbors,
        tokens=tokens,
        clusters=len(layout.cluster_list),
    )
    emit(summary, "table")


def register(app: typer.Typer) -> None:
    app.command("export", cls=HelpCommand, help=help_text(HELP))(export)
