"""tokneigh: nearest neighbours in the token embeddings of transformer language models.

    >>> import tokneigh
    >>> emb = tokneigh.load("gpt2")
    >>> emb.neighbors("Mike", k=5)

Importing this package is cheap: numpy and the tokenizer load on first use, and torch or
transformers only when a model is extracted for the first time. Everything the API returns or
raises is importable from here.
"""

# The imports under TYPE_CHECKING name the public API for type checkers; at run time `__all__`
# is built from _HOMES, so ruff cannot see them used.
# ruff: noqa: F401

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
    "CachedModel": "store.listing",
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

__all__ = ["__version__", *_HOMES]

# Moved out of the public API (built only by the CLI): still reachable, with a warning, for one
# release.
_DEPRECATED = {
    "CacheBuild": "cli.reports",
    "CacheListing": "cli.reports",
    "CacheRemoval": "cli.reports",
    "GraphFile": "cli.reports",
}

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
        Comparison,
        DiffItem,
        DiffSummary,
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
    from .store.listing import CachedModel


def __getattr__(name: str) -> Any:
    # Lazy so that `tokneigh --version` and `import tokneigh` do not pay for numpy.
    home = _HOMES.get(name)
    if home is None:
        home = _DEPRECATED.get(name)
        if home is None:
            raise AttributeError(f"module 'tokneigh' has no attribute {name!r}")
        import warnings

        warnings.warn(
            f"tokneigh.{name} is deprecated and will be removed: it is built only by the CLI; "
            f"import it from tokneigh.{home}",
            DeprecationWarning,
            stacklevel=2,
        )
    import importlib

    return getattr(importlib.import_module(f".{home}", __name__), name)
