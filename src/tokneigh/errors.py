"""Errors that tokneigh reports to its users as one line, with an exit code."""

from __future__ import annotations


class TokneighError(Exception):
    """A problem the user can act on; the CLI prints it as one line, no traceback."""

    exit_code = 1


class UsageError(TokneighError):
    """The request itself is malformed: empty query, id out of range, bad model name."""

    exit_code = 2


class ModelNotFoundError(TokneighError):
    """The model does not exist locally or on the hub, or holds no usable checkpoint."""


class HubUnavailableError(TokneighError):
    """The model is not cached and the hub cannot be reached (offline, or no network)."""


class CacheError(TokneighError):
    """The cache root cannot be created or written."""
