"""What the API returns. Each result is a plain (slotted) dataclass that knows its JSON contract
(``to_json``), its TSV rows (``tsv``) and what a person reads (``human``: tables and lines).
``render.emit`` turns any of them into output; nothing here imports Rich or writes anything.

One module per topic; every name is importable from here, the module that holds it loaded on
first use (a neighbours query needs three of the ten).
"""

# ruff: noqa: F401  (the TYPE_CHECKING imports below are for type checkers: __all__ is built)

from __future__ import annotations

import importlib

# Where each name lives (a module of this package); loaded on first use.
_HOMES = {
    "Column": "tables",
    "Human": "tables",
    "Table": "tables",
    "model_label": "tables",
    "quoted": "tables",
    "json_text": "json",
    "Query": "tokens",
    "Tokenization": "tokens",
    "Tokenizations": "tokens",
    "VectorSource": "tokens",
    "MostSimilar": "neighbors",
    "Neighbor": "neighbors",
    "NeighborList": "neighbors",
    "NeighborLists": "neighbors",
    "Variant": "neighbors",
    "Comparison": "comparison",
    "Verification": "verification",
    "TokenMap": "projection",
    "Hubness": "vocabulary",
    "HubToken": "vocabulary",
    "NeighborGraph": "vocabulary",
    "SpaceStats": "vocabulary",
    "ScanToken": "scan",
    "TokenScan": "scan",
    "DiffItem": "diff",
    "DiffSummary": "diff",
    "NeighborhoodDiff": "diff",
    "MapCluster": "layout",
    "MapLayout": "layout",
    "VocabularyTable": "vocabulary_table",
    "Comparisons": "batches",
    "Analogies": "batches",
    "Alignment": "alignment",
    "DriftToken": "alignment",
    "Retrieval": "alignment",
    "TokenMatching": "alignment",
    "CrossNeighborList": "crossmodel",
    "CrossNeighborLists": "crossmodel",
    "ComposedToken": "alignment",
    "Composed": "alignment",
    "CosineSpread": "alignment",
}
__all__ = list(_HOMES)

TYPE_CHECKING = False
if TYPE_CHECKING:  # what type checkers see; at run time __getattr__ loads each on first use
    from .alignment import (
        Alignment,
        Composed,
        ComposedToken,
        CosineSpread,
        DriftToken,
        Retrieval,
        TokenMatching,
    )
    from .batches import Analogies, Comparisons
    from .comparison import Comparison
    from .crossmodel import CrossNeighborList, CrossNeighborLists
    from .diff import DiffItem, DiffSummary, NeighborhoodDiff
    from .json import json_text
    from .layout import MapCluster, MapLayout
    from .neighbors import MostSimilar, Neighbor, NeighborList, NeighborLists, Variant
    from .projection import TokenMap
    from .scan import ScanToken, TokenScan
    from .tables import Column, Human, Table, model_label, quoted
    from .tokens import Query, Tokenization, Tokenizations, VectorSource
    from .verification import Verification
    from .vocabulary import Hubness, HubToken, NeighborGraph, SpaceStats
    from .vocabulary_table import VocabularyTable


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value
