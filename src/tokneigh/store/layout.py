r"""How the cache is laid out on disk: the root, entry folder names, the files an entry holds,
and what a damaged entry is. Every other store module names files through this one.

An entry is one folder per (model, matrix) under the cache root::

    <slug>--<key>/matrix.npy       L2-row-normalized float32 matrix (memory-mapped on load)
                  norms.npy        raw row norms, float32
                  tokenizer.json   the model's tokenizer, padding and truncation removed
                  tokenizer.index  derived from tokenizer.json, for a fast start (tokens/index.py)
                  meta.json        format version, model, fingerprint, vocab size, dim, ...
                  metric-*.npy, graph-*.npz,
                  layout-*.npz     derived arrays, computed on first need (derived.py)
                  align-*.npz      a map to another entry's space (keyed by that entry)
    .locks/<key>.lock              held while an entry is built or cleared (one at a time)
    .tmp-<key>-*/                  an entry being written; renamed into place when complete
    .trash-<key>-*/                an old entry moved aside by a rebuild or a clear, then deleted
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..sources.models import ModelSource

try:  # CPython's own SHA-256, hashlib's digest without loading OpenSSL (~5 ms per query)
    from _sha256 import sha256 as _sha256  # type: ignore[import-not-found]  # Python <= 3.11
except ImportError:  # pragma: no cover - depends on the Python version
    try:
        from _sha2 import sha256 as _sha256  # type: ignore[import-not-found]  # Python >= 3.12
    except ImportError:
        from hashlib import sha256 as _sha256

# 2: norms in float64, and meta.json lists the unusable rows (NaN, infinite or zero), which
# version 1 entries may have cached as NaN: they are rebuilt.
# 2: norms in float64, and meta.json lists the unusable rows (NaN, infinite or zero), which
# version 1 entries may have cached as NaN: they are rebuilt.
FORMAT_VERSION = 2
MATRIX = "matrix.npy"
NORMS = "norms.npy"
TOKENIZER = "tokenizer.json"
INDEX = "tokenizer.index"
META = "meta.json"
EMBEDDINGS_KINDS = ("input", "output")
ENTRY_NAME = re.compile(r"^[A-Za-z0-9._-]+--([0-9a-f]{16})$")
# What an entry folder may hold: its own files, and the hidden scratch file of a tokenizer index
# being refreshed (after an upgrade of the tokenizers library, say).
ENTRY_FILES = frozenset({MATRIX, NORMS, TOKENIZER, META, INDEX})
ENTRY_SCRATCH_FILE = re.compile(r"^\.[A-Za-z0-9._-]+\.[0-9a-f]{32}\.tmp$")
# What a metric or the all-pairs pass derives from the matrix, computed on first need and kept
# beside it (``load_derived``/``save``): gone with the entry when it is rebuilt.
# ``align-*.npz``: a map from this entry's space to another entry's (keyed by that entry).
DERIVED_FILE = re.compile(r"^(metric|graph|layout|align)-[A-Za-z0-9._-]+\.(npy|npz)$")
SCRATCH_NAME = re.compile(r"^\.(tmp|trash)-([0-9a-f]{16})-[0-9a-f-]+$")


class InvalidEntry(Exception):
    """A cache entry that must not be used; the message says why."""


class MissingEntry(InvalidEntry):
    """No entry at all: the normal first-use case, not worth a warning."""


def default_root() -> Path:
    """``$TOKNEIGH_CACHE_DIR``, else the platform cache folder (``~/.cache/tokneigh`` on Linux)."""
    env = os.environ.get("TOKNEIGH_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("tokneigh", appauthor=False))


def resolve_root(cache_dir: str | os.PathLike[str] | None) -> Path:
    return Path(cache_dir).expanduser() if cache_dir else default_root()


def entry_key(identity: str) -> str:
    # surrogatepass: a folder name with undecodable bytes arrives as lone surrogates.
    return _sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def entry_name(identity: str, display: str) -> str:
    """A folder name that cannot leave the cache root, whatever the model name holds."""
    slug = re.sub(r"[^A-Za-z0-9._]+", "-", display.rsplit("/", 1)[-1])
    slug = re.sub(r"\.{2,}", ".", slug).strip(".-")[:48] or "model"
    return f"{slug}--{entry_key(identity)}"


def entry_identity(source: ModelSource, embeddings: str = "input") -> str:
    """The cache identity of one of a model's matrices. The input matrix keeps the model's plain
    identity, so entries built before output matrices existed keep their names."""
    return source.identity if embeddings == "input" else f"{source.identity}#{embeddings}"


def entry_folder_name(source: ModelSource, embeddings: str = "input") -> str:
    """The cache folder name of one of a model's matrices (``<slug>-output--<key>``)."""
    if embeddings == "input":
        return entry_name(source.identity, source.name)
    return entry_name(entry_identity(source, embeddings), f"{source.name}-{embeddings}")


def is_entry_folder(path: Path) -> bool:
    """A real folder named like an entry that holds nothing but entry files: a user's own folder
    that merely looks like one is never listed or deleted."""
    if not ENTRY_NAME.match(path.name) or path.is_symlink() or not path.is_dir():
        return False
    try:
        return all(
            (
                child.name in ENTRY_FILES
                or ENTRY_SCRATCH_FILE.match(child.name)
                or DERIVED_FILE.match(child.name)
            )
            and not child.is_dir()
            for child in path.iterdir()
        )
    except OSError:
        return False
