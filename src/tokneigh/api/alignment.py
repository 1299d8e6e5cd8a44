"""``Embeddings.align``: the alignment of two entries (``tokneigh.analyses.align``), its map and
scores kept in A's entry as ``align-<key>.npz``.

The file's name is keyed by B's entry and the options; inside, B's identity (its source's
fingerprint and when its entry was built) is checked on every read, so a rebuilt B (a changed
checkpoint) is aligned again, and a rebuilt A takes its derived files with it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import numpy as np

from ..reporting import Report, info
from ..store import derived
from .logreport import log_report

if TYPE_CHECKING:  # (loaded when an alignment is asked for: a query never needs them)
    from ..analyses.align import Options
    from ..analyses.view import SpaceView
    from ..results import Alignment
    from ..store.entries import Entry


class _Loaded(Protocol):
    """What ``align`` reads of an ``Embeddings`` (a protocol: this module is imported by it)."""

    view: SpaceView
    _entry: Entry

_VERSION = 1  # of the computation: a change to it makes every kept map stale


def _digest(*parts: object) -> str:
    import hashlib  # here: it loads OpenSSL, which a cached query does without

    text = json.dumps([_VERSION, *parts], sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def file_name(b: Entry, options: Options) -> str:
    """The derived file of A that holds its map to B under ``options``."""
    return f"align-{_digest(b.path.name, options.key())}.npz"


def identity(b: Entry) -> str:
    """What changes when B's entry is rebuilt: its source's fingerprint and its build time."""
    return _digest(b.meta.get("fingerprint"), b.meta.get("created"), b.meta.get("dim"))


def align(
    emb: _Loaded,
    other: _Loaded,
    *,
    refine: int = 1,
    seed: int = 0,
    test_share: float = 0.1,
    pool: int = 5_000,
    ridge: float = 1.0,
    top: int = 10,
    neighbors: int = 5,
    composed: int = 0,
    report: Report | None = None,
) -> Alignment:
    """A linear map from these embeddings' space to ``other``'s, fitted on the tokens both
    vocabularies share (orthogonal Procrustes, or ridge least squares with lambda ``ridge``
    when the dimensions differ; ``refine`` rounds of MUSE's refinement over ``pool`` tokens),
    scored on ``test_share`` of them held out (P@1, P@10 by cosine and by CSLS), and the
    ``top`` tokens that moved most with their ``neighbors`` nearest in each space
    (``tokneigh.analyses.align``), and the composed tokens' summary with the ``composed`` least
    agreeing listed (``tokneigh.analyses.composed``). The map is kept in the cache entry, keyed
    by ``other``'s."""
    from ..analyses.align import Options

    options = Options(refine=refine, seed=seed, test_share=test_share, pool=pool, ridge=ridge)
    result, _ = aligned(
        emb, other, options, top=top, neighbors=neighbors, composed=composed, report=report
    )
    return result


def _checker(a: SpaceView, b: SpaceView, expected: str) -> Callable[[dict[str, np.ndarray]], None]:
    def check(arrays: dict[str, np.ndarray]) -> None:
        if str(arrays["b_identity"]) != expected:
            raise ValueError("it was fitted to an earlier build of B")
        if arrays["weights"].shape != (a.dim, b.dim) or arrays["scores"].shape != (8,):
            raise ValueError("its arrays have the wrong shape")
        if arrays["mean_a"].shape != (a.dim,) or arrays["mean_b"].shape != (b.dim,):
            raise ValueError("its arrays have the wrong shape")
        if not all(np.isfinite(arrays[k]).all() for k in ("weights", "scores")):
            raise ValueError("it holds NaN or infinite values")

    return check


def aligned(
    emb: _Loaded,
    other: _Loaded,
    options: Options,
    *,
    top: int = 10,
    neighbors: int = 5,
    composed: int | None = 0,
    report: Report | None = None,
) -> tuple[Alignment, dict[str, np.ndarray]]:
    """``align``'s result and the arrays of its map (read from A's entry, or fitted and kept)."""
    from ..analyses.align import align_views

    options.check()
    say = report or log_report
    a, b, a_entry, b_entry = emb.view, other.view, emb._entry, other._entry
    name = file_name(b_entry, options)
    expected = identity(b_entry)
    kept = derived.read_arrays(a_entry, name, _checker(a, b, expected), say)
    if kept is None:
        say(info(f"aligning {a.model} to {b.model} (kept in the cache for the next run)"))
    result, arrays = align_views(
        a, b, options, top=top, neighbors=neighbors, kept=kept, composed=composed
    )
    if kept is None:
        derived.save(a_entry, name, {**arrays, "b_identity": np.asarray(expected)}, say)
    return result, arrays


def kept_map(
    emb: _Loaded, other: _Loaded, options: Options, report: Report | None = None
) -> tuple[dict[str, np.ndarray], bool]:
    """(the map's arrays, whether they were read from the cache): read alone when kept (no
    alignment is recomputed: a cross-model query costs a file read), else fitted by
    ``aligned`` and kept for the next call."""
    options.check()
    say = report or log_report
    a, b = emb.view, other.view
    name = file_name(other._entry, options)
    kept = derived.read_arrays(emb._entry, name, _checker(a, b, identity(other._entry)), say)
    if kept is not None:
        return kept, True
    _, arrays = aligned(emb, other, options, top=0, neighbors=0, composed=None, report=say)
    return arrays, False
