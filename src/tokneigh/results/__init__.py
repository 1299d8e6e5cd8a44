"""What the API returns. Each result is a plain (slotted) dataclass that knows its JSON contract
(``to_json``), its TSV rows (``tsv``) and what a person reads (``human``: tables and lines).
``render.emit`` turns any of them into output; nothing here imports Rich or writes anything.

One module per topic; every name is re-exported here (they import only the standard library,
so importing them all is cheap).
"""

from __future__ import annotations

from .comparison import Comparison
from .diff import DiffItem, DiffSummary, NeighborhoodDiff
from .json import json_text
from .neighbors import MostSimilar, Neighbor, NeighborList, NeighborLists, Variant
from .projection import TokenMap
from .scan import ScanToken, TokenScan
from .tables import Column, Human, Table, model_label, quoted
from .tokens import Query, Tokenization, Tokenizations, VectorSource
from .verification import Verification
from .vocabulary import Hubness, HubToken, NeighborGraph, SpaceStats

__all__ = [
    "Column",
    "Comparison",
    "DiffItem",
    "DiffSummary",
    "HubToken",
    "Human",
    "Hubness",
    "MostSimilar",
    "Neighbor",
    "NeighborGraph",
    "NeighborList",
    "NeighborLists",
    "NeighborhoodDiff",
    "Query",
    "ScanToken",
    "SpaceStats",
    "Table",
    "TokenMap",
    "TokenScan",
    "Tokenization",
    "Tokenizations",
    "VectorSource",
    "Verification",
    "Variant",
    "json_text",
    "model_label",
    "quoted",
]
