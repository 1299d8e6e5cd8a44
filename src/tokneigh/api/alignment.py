"""``Embeddings.align``: the alignment of two entries (``tokneigh.analyses.align``), its map and
scores kept in A's entry as ``align-<key>.npz``.

The file's name is keyed by B's entry and the options; inside, B's identity (its source's
fingerprint and when its entry was built) is checked on every read, so a rebuilt B (a changed
checkpoint) is aligned again, and a rebuilt A takes its derived files with it.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING

import numpy as np

from ..analyses.align import Options, align_views
from ..reporting import Report, info
from ..store import derived

if TYPE_CHECKING:
    from ..results import Alignment
    from ..store.entries import Entry
    from .embeddings import Embeddings

_VERSION = 1  # of the computation: a change to it makes every kept map stale


def _digest(*parts: object) -> str:
    text = json.dumps([_VERSION, *parts], sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def file_name(b: Entry, options: Options) -> str:
    """The derived file of A that holds its map to B under ``options``."""
    return f"align-{_digest(b.path.name, options.key())}.npz"


def identity(b: Entry) -> str:
    """What changes when B's entry is rebuilt: its source's fingerprint and its build time."""
    return _digest(b.meta.get("fingerprint"), b.meta.get("created"), b.meta.get("dim"))


def align(
    a: Embeddings,
    b: Embeddings,
    a_entry: Entry,
    b_entry: Entry,
    options: Options,
    *,
    top: int,
    neighbors: int,
    say: Report,
) -> Alignment:
    options.check()
    name = file_name(b_entry, options)
    expected = identity(b_entry)

    def check(arrays: dict[str, np.ndarray]) -> None:
        if str(arrays["b_identity"]) != expected:
            raise ValueError("it was fitted to an earlier build of B")
        if arrays["weights"].shape != (a.dim, b.dim) or arrays["scores"].shape != (8,):
            raise ValueError("its arrays have the wrong shape")
        if arrays["mean_a"].shape != (a.dim,) or arrays["mean_b"].shape != (b.dim,):
            raise ValueError("its arrays have the wrong shape")
        if not all(np.isfinite(arrays[k]).all() for k in ("weights", "scores")):
            raise ValueError("it holds NaN or infinite values")

    kept = derived.read_arrays(a_entry, name, check, say)
    if kept is None:
        say(info(f"aligning {a.model} to {b.model} (kept in the cache for the next run)"))
    result, arrays = align_views(a.view, b.view, options, top=top, neighbors=neighbors, kept=kept)
    if kept is None:
        derived.save(a_entry, name, {**arrays, "b_identity": np.asarray(expected)}, say)
    return result
