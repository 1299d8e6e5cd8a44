"""`tokneigh export --format atlas FILE.parquet`: the map as a table Apple's embedding-atlas
opens as it is::

    embedding-atlas FILE.parquet --x x --y y --text token --neighbors neighbors

One row per token the layout placed: the columns of ``maprows.COLUMNS`` and ``neighbors``, a
struct ``{"ids": [...], "distances": [...]}`` per row. That is the shape embedding-atlas's own
CLI documents for --neighbors ("IDs should be zero-based row indices": its
packages/backend/embedding_atlas/cli.py) and writes when it computes neighbours itself (a
struct of ``distances`` and ``ids`` lists: compute_projection in .../projection.py, whose
distances are UMAP's cosine distances, 1 - cosine). Here the ids are row numbers of this
table and the distances 1 - the metric's similarity of the exact graph, best first, the token
itself left out. The facts (``maprows.map_facts``) are the schema's key-value metadata, as for
`tokneigh graph` files. Written beside its destination and renamed into place.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import OutputFileError
from ..results import MapLayout, NeighborGraph
from .graphfile import destination, parquet_metadata, write_whole
from .maprows import map_facts, map_rows, neighbor_rows

if TYPE_CHECKING:
    from ..api.embeddings import Embeddings


def check_atlas_path(path: Path) -> None:
    """Refused before any work: a name that is not .parquet, or a file that cannot be made."""
    if path.suffix.lower() != ".parquet":
        raise OutputFileError(f"output {path}: the atlas file name must end in .parquet")
    destination(path)


def write_atlas(emb: Embeddings, layout: MapLayout, graph: NeighborGraph, path: Path) -> int:
    """Write the atlas table of ``layout`` (its tokens' exact neighbours from ``graph``) to
    ``path``; the number of rows."""
    check_atlas_path(path)
    table = atlas_table(emb, layout, graph)
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    write_whole(path, lambda scratch: pq.write_table(table, scratch))
    return int(table.num_rows)


def atlas_table(emb: Embeddings, layout: MapLayout, graph: NeighborGraph) -> Any:
    """The table (a pyarrow Table, the facts as its schema metadata)."""
    import pyarrow as pa  # type: ignore[import-untyped]

    rows = map_rows(emb, layout)
    ids, distances = neighbor_rows(layout, graph)
    n, k = ids.shape
    offsets = pa.array(np.arange(0, (n + 1) * k, k, dtype=np.int32))  # row i: [i k, (i+1) k)

    def lists(values: Any, kind: Any) -> Any:  # (n, k) -> n lists of k, without a Python loop
        return pa.ListArray.from_arrays(offsets, pa.array(values.ravel(), kind))

    neighbors = pa.StructArray.from_arrays(
        [lists(ids, pa.int32()), lists(distances, pa.float64())], names=["ids", "distances"]
    )
    table = pa.table(
        {
            "id": pa.array(rows.ids, pa.int64()),
            "token": pa.array(rows.tokens, pa.string()),
            "label": pa.array(rows.labels, pa.string()),
            "special": pa.array(rows.special, pa.bool_()),
            "norm": pa.array(rows.norms, pa.float64()),
            "x": pa.array(rows.x, pa.float32()),
            "y": pa.array(rows.y, pa.float32()),
            "cluster": pa.array(rows.clusters, pa.int32()),
            "cluster_name": pa.array(rows.cluster_names, pa.string()),
            "neighbors": neighbors,
        }
    )
    return table.replace_schema_metadata(parquet_metadata(map_facts(emb, layout, graph)))
