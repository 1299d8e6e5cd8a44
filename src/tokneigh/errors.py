"""The errors tokneigh raises. Messages state facts about the request, the model or the cache;
they never name a command-line flag. The CLI turns each class into an exit code and a hint
(``cli/errors.py``)."""

from __future__ import annotations


class TokneighError(Exception):
    """A problem the caller can act on (a bad request, a missing model, an unusable cache)."""


class UsageError(TokneighError):
    """The request itself is malformed: an empty query, an id outside the matrix, a bad value."""


class EmptyQueryError(UsageError):
    """A text query that is empty or only whitespace (a whitespace token needs its id)."""


class TokenIdError(UsageError):
    """A token id outside the embedding matrix."""

    def __init__(self, token_id: int, vocab_size: int, what: str = "token id") -> None:
        self.token_id = token_id
        self.vocab_size = vocab_size
        super().__init__(f"{what} {token_id} is outside 0..{vocab_size - 1}")


class ModelNameError(UsageError):
    """A model name that is neither an existing folder nor a valid hub id."""


class OllamaNameError(UsageError):
    """An ``ollama:`` model name that cannot name a model of Ollama's store."""


class FigureError(UsageError):
    """A figure cannot be written where it was asked for."""


class OutputFileError(UsageError):
    """An output file (a neighbour graph) that cannot be written where it was asked for."""


class ModelNotFoundError(TokneighError):
    """The model does not exist locally or on the hub, or holds no usable checkpoint."""


class HubUnavailableError(TokneighError):
    """The model is not cached and the hub cannot be reached (offline, or no network)."""


class CacheError(TokneighError):
    """The cache root cannot be created or written."""


class TiedEmbeddings(TokneighError):
    """The model's output matrix is its input matrix (tied, or it has no LM head of its own).

    Not a failure: ``api.load`` catches it, says so and serves the input matrix.
    """


class MissingDependencyError(TokneighError):
    """An optional library a feature needs is not installed (pandas for data frames)."""
