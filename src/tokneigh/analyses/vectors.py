"""Vectors as queries: a direction read as tokens (a steering vector, a probe's weights, an SAE
decoder row, a difference of two token vectors), from a ``.npy`` file or the matrix itself.

A vector query is ranked like a text query, against the unit rows (cosine), or by the raw
product with the unnormalized rows (``dot``: a readout through the output embeddings).
"""

from __future__ import annotations

import math
import stat
import tokenize
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.lib import format as npformat

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


def _not_npy(path: Path, exc: BaseException) -> UsageError:
    first = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
    return UsageError(f"vector file {path}: not a numpy .npy array ({first[:80]})")


def _refused_dtype(path: Path, dtype: np.dtype) -> UsageError:
    return UsageError(f"vector file {path}: holds {dtype}; a vector is float16, float32 or float64")


def check_header(path: Path) -> None:
    """Refuse a ``.npy`` file before numpy reads it, from its header alone: a dtype that is
    not a float (an object array is never unpickled), or a shape whose data the file does not
    hold (a 100-byte file claiming 2**40 values would otherwise be allocated first). A file
    that is not a .npy (an .npz archive, junk) is left to ``np.load`` to name."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise UsageError(f"vector file {path}: no such file") from None
    except OSError as exc:
        raise _not_npy(path, exc) from exc
    if stat.S_ISDIR(info.st_mode):
        raise UsageError(f"vector file {path}: is a folder")
    if not stat.S_ISREG(info.st_mode):  # a FIFO or device would block or never end
        raise UsageError(f"vector file {path}: not a regular file")
    with open(path, "rb") as fp:
        if fp.read(len(npformat.MAGIC_PREFIX)) != npformat.MAGIC_PREFIX:
            return
        fp.seek(0)
        try:
            major, _ = npformat.read_magic(fp)
            # Version 3 differs from 2 only in field names' encoding (utf-8): not a float's.
            read = npformat.read_array_header_1_0 if major == 1 else npformat.read_array_header_2_0
            shape, _, dtype = read(fp)
        except (ValueError, SyntaxError, TypeError, EOFError, tokenize.TokenError) as exc:
            raise _not_npy(path, exc) from exc
        data = info.st_size - fp.tell()
    if dtype.type not in _FLOATS:
        raise _refused_dtype(path, dtype)
    if any(d < 0 for d in shape):
        raise UsageError(f"vector file {path}: its header claims the shape {shape}")
    count = math.prod(shape)  # Python ints: a product of huge dimensions does not wrap
    if count * dtype.itemsize > data:
        raise UsageError(
            f"vector file {path}: its header claims {count:,} {dtype} values "
            f"({count * dtype.itemsize:,} bytes), but the file holds {data:,} bytes of data"
        )


def load_vector(spec: str) -> VectorQuery:
    """The vector a ``FILE.npy[:ROW]`` names: a 1-D array, or one row of a 2-D array, of
    float16, float32 or float64 (never a pickle)."""
    path, row = parse_spec(spec)
    shown = f"{path}" + ("" if row is None else f":{row}")
    check_header(path)
    try:
        array = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise UsageError(f"vector file {path}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"vector file {path}: is a folder") from None
    except (OSError, ValueError, EOFError) as exc:
        raise _not_npy(path, exc) from exc
    if not isinstance(array, np.ndarray):  # an .npz archive
        raise UsageError(f"vector file {path}: an .npz archive, not one .npy array")
    if array.dtype.type not in _FLOATS:
        raise _refused_dtype(path, array.dtype)
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
