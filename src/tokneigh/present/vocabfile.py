"""Writing the vocabulary table (``results.VocabularyTable``) to a file:

- ``parquet``: columns ``id`` (int64), ``token`` and ``label`` (string, token null where the
  tokenizer names none), ``special``, ``unusable``, ``reachable`` (bool), ``norm`` (float64,
  null for a row of NaN or infinite values), ``padding`` (bool); the facts of the model
  (``graphfile.describe_model``) as the schema's key-value metadata, as graph files have them;
- ``json``, ``tsv``, ``csv``: what the command prints on stdout in that format.

The file appears whole or not at all (``graphfile.write_whole``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..results import VocabularyTable
from ..results.json import json_text
from .graphfile import Facts, parquet_metadata, write_whole
from .render import write_csv, write_tsv

FORMATS = ("json", "tsv", "csv", "parquet")


def write_vocabulary(table: VocabularyTable, path: Path, fmt: str, facts: Facts) -> None:
    """Write ``table`` to ``path`` in ``fmt`` (one of ``FORMATS``)."""
    write_whole(path, lambda scratch: _write(table, scratch, fmt, facts))


def _write(table: VocabularyTable, path: Path, fmt: str, facts: Facts) -> None:
    if fmt == "parquet":
        _write_parquet(table, path, facts)
        return
    # newline="": the CSV's CRLF and a token's own line breaks are written as they are.
    with open(path, "w", encoding="utf-8", newline="") as handle:
        if fmt == "json":
            handle.write(json_text(table.to_json()) + "\n")
        else:
            header, rows = table.tsv()
            (write_tsv if fmt == "tsv" else write_csv)(header, rows, handle)


def _write_parquet(table: VocabularyTable, path: Path, facts: Facts) -> None:
    import numpy as np
    import pyarrow as pa  # type: ignore[import-untyped]
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    norms = np.asarray(table.norms, dtype=np.float64)
    columns: dict[str, Any] = {
        "id": pa.array(table.ids, pa.int64()),
        "token": pa.array(table.tokens, pa.string()),
        "label": pa.array(table.labels, pa.string()),
        "special": pa.array(table.special, pa.bool_()),
        "unusable": pa.array(table.unusable, pa.bool_()),
        "reachable": pa.array(table.reachable, pa.bool_()),
        # null, as in the JSON, where the row holds NaN or infinite values
        "norm": pa.array(norms, pa.float64(), mask=~np.isfinite(norms)),
        "padding": pa.array(table.padding, pa.bool_()),
    }
    arrow = pa.table(columns).replace_schema_metadata(parquet_metadata(facts))
    pq.write_table(arrow, path)
