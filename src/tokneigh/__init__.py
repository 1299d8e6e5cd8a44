"""tokneigh: nearest neighbours in the token embeddings of transformer language models.

    >>> import tokneigh
    >>> emb = tokneigh.load("gpt2")
    >>> emb.neighbors("Mike", k=5)

Importing this package is cheap: numpy and the tokenizer load on first use, and torch or
transformers only when a model is extracted for the first time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "Comparison",
    "Embeddings",
    "Neighbor",
    "NeighborList",
    "Tokenization",
    "TokneighError",
    "__version__",
    "load",
]

if TYPE_CHECKING:
    from .api import Comparison, Embeddings, Neighbor, NeighborList, Tokenization, load
    from .errors import TokneighError


def __getattr__(name: str) -> Any:
    # Lazy so that `tokneigh --version` and `import tokneigh` do not pay for numpy.
    if name == "TokneighError":
        from .errors import TokneighError

        return TokneighError
    if name in __all__:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'tokneigh' has no attribute {name!r}")
