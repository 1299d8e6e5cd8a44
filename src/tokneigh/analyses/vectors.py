"""Vectors as queries: a direction read as tokens (a steering vector, a probe's weights, an SAE
decoder row, a difference of two token vectors), from a ``.npy`` file or the matrix itself.

A vector query is ranked like a text query, against the unit rows (cosine), or by the raw
product with the unnormalized rows (``dot``: a readout through the output embeddings).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UsageError
from ..results import VectorSource

_FLOATS = (np.float16, np.float32, np.float64)


@dataclass(frozen=True)
class VectorQuery:
    """A vector to rank the vocabulary against, and where it came from."""

    vector: np.ndarray  # float64, 1-D
    origin: VectorSource


def parse_spec(spec: str) -> tuple[Path, int | None]:
    """``FILE.npy`` or ``FILE.npy:ROW`` (a row of a 2-D array)."""
    head, sep, tail = spec.rpartition(":")
    if sep and tail.isdigit() and not Path(spec).exists():
        return Path(head), int(tail)
    return Path(spec), None


def load_vector(spec: str) -> VectorQuery:
    """The vector a ``FILE.npy[:ROW]`` names: a 1-D array, or one row of a 2-D array, of
    float16, float32 or float64 (never a pickle)."""
    path, row = parse_spec(spec)
    shown = f"{path}" + ("" if row is None else f":{row}")
    try:
        array = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise UsageError(f"vector file {path}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"vector file {path}: is a folder") from None
    except (OSError, ValueError, EOFError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise UsageError(f"vector file {path}: not a numpy .npy array ({first[:80]})") from exc
    if not isinstance(array, np.ndarray):  # an .npz archive
        raise UsageError(f"vector file {path}: an .npz archive, not one .npy array")
    if array.dtype.type not in _FLOATS:
        raise UsageError(
            f"vector file {path}: holds {array.dtype}; a vector is float16, float32 or float64"
        )
    if array.ndim == 1:
        if row is not None:
            raise UsageError(f"vector {shown}: the file holds one vector, it has no rows")
        vector = array
    elif array.ndim == 2:
        if row is None:
            raise UsageError(
                f"vector file {path}: holds {array.shape[0]:,} rows; name one as {path}:ROW"
            )
        if row >= array.shape[0]:
            raise UsageError(f"vector {shown}: the file has rows 0..{array.shape[0] - 1}")
        vector = array[row]
    else:
        raise UsageError(f"vector file {path}: a {array.ndim}-D array; a vector is 1-D or a row")
    return VectorQuery(np.asarray(vector, dtype=np.float64), VectorSource(str(path), row))


def checked(query: VectorQuery, dim: int) -> np.ndarray:
    """The query's vector (float64) if it can be ranked against rows of ``dim`` values."""
    vector = np.asarray(query.vector, dtype=np.float64)
    what = query.origin.shown
    if vector.ndim != 1 or vector.shape[0] != dim:
        raise UsageError(f"{what} has {vector.size:,} values; this model's vectors have {dim}")
    if not np.isfinite(vector).all():
        raise UsageError(f"{what} holds NaN or infinite values")
    if not vector.any():
        raise UsageError(f"{what} is the zero vector: it has no direction")
    return vector
