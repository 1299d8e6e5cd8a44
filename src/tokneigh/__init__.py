"""tokneigh: nearest neighbours in the token embeddings of transformer language models.

    >>> import tokneigh
    >>> emb = tokneigh.load("gpt2")
    >>> emb.neighbors("Mike", k=5)

Importing this package is cheap: numpy and the tokenizer load on first use, and torch or
transformers only when a model is extracted for the first time. Everything the API returns or
raises is importable from here.
"""

from __future__ import annotations

from .version import __version__

# Not `from typing import ...`: typing (with re and enum) is 5 ms of every start-up, spent
# before the Ctrl-C handler can be installed.
TYPE_CHECKING = False

# Where each public name lives; imported on first use.
_HOMES = {
    "load": "api.loading",
    "load_vocabulary": "api.loading",
    "Embeddings": "api.embeddings",
    "Vocabulary": "api.vocabulary",
    "Filters": "analyses.filters",
    "CacheBuild": "results",
    "CacheListing": "results",
    "CacheRemoval": "results",
    "CachedModel": "results",
    "Comparison": "results",
    "MostSimilar": "results",
    "Neighbor": "results",
    "NeighborList": "results",
    "Query": "results",
    "Tokenization": "results",
    "Tokenizations": "results",
    "TokenMap": "results",
    "Variant": "results",
    "Verification": "results",
    "TokneighError": "errors",
    "UsageError": "errors",
    "EmptyQueryError": "errors",
    "TokenIdError": "errors",
    "ModelNameError": "errors",
    "FigureError": "errors",
    "ModelNotFoundError": "errors",
    "HubUnavailableError": "errors",
    "CacheError": "errors",
    "DiffItem": "results",
    "DiffSummary": "results",
    "GraphFile": "results",
    "HubToken": "results",
    "Hubness": "results",
    "NeighborGraph": "results",
    "NeighborhoodDiff": "results",
    "ScanToken": "results",
    "SpaceStats": "results",
    "TokenScan": "results",
    "VectorSource": "results",
    "Metric": "space.metrics",
    "VectorQuery": "analyses.vectors",
    "load_vector": "analyses.vectors",
    "OllamaNameError": "errors",
    "OutputFileError": "errors",
}

__all__ = [  # the names of _HOMES, spelled out for tools that read __all__ statically
    "__version__",
    "load",
    "load_vocabulary",
    "Embeddings",
    "Vocabulary",
    "Filters",
    "CacheBuild",
    "CacheListing",
    "CacheRemoval",
    "CachedModel",
    "Comparison",
    "MostSimilar",
    "Neighbor",
    "NeighborList",
    "Query",
    "Tokenization",
    "Tokenizations",
    "TokenMap",
    "Variant",
    "Verification",
    "TokneighError",
    "UsageError",
    "EmptyQueryError",
    "TokenIdError",
    "ModelNameError",
    "FigureError",
    "ModelNotFoundError",
    "HubUnavailableError",
    "CacheError",
    "DiffItem",
    "DiffSummary",
    "GraphFile",
    "HubToken",
    "Hubness",
    "NeighborGraph",
    "NeighborhoodDiff",
    "ScanToken",
    "SpaceStats",
    "TokenScan",
    "VectorSource",
    "Metric",
    "VectorQuery",
    "load_vector",
    "OllamaNameError",
    "OutputFileError",
]

if TYPE_CHECKING:
    from typing import Any

    from .analyses.filters import Filters
    from .analyses.vectors import VectorQuery, load_vector
    from .api.embeddings import Embeddings
    from .api.loading import load, load_vocabulary
    from .api.vocabulary import Vocabulary
    from .errors import (
        CacheError,
        EmptyQueryError,
        FigureError,
        HubUnavailableError,
        ModelNameError,
        ModelNotFoundError,
        OllamaNameError,
        OutputFileError,
        TokenIdError,
        TokneighError,
        UsageError,
    )
    from .results import (
        CacheBuild,
        CachedModel,
        CacheListing,
        CacheRemoval,
        Comparison,
        DiffItem,
        DiffSummary,
        GraphFile,
        Hubness,
        HubToken,
        MostSimilar,
        Neighbor,
        NeighborGraph,
        NeighborhoodDiff,
        NeighborList,
        Query,
        ScanToken,
        SpaceStats,
        Tokenization,
        Tokenizations,
        TokenMap,
        TokenScan,
        Variant,
        VectorSource,
        Verification,
    )
    from .space.metrics import Metric


def __getattr__(name: str) -> Any:
    # Lazy so that `tokneigh --version` and `import tokneigh` do not pay for numpy.
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'tokneigh' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{home}", __name__), name)
