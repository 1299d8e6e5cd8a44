"""The seed's lesson: score a query against every raw row in a Python loop and with one
matrix-vector product, and see that the two agree (and how much faster the second is)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from ..errors import UsageError
from ..results import Verification
from ..space import core
from .queries import QueryLike, query_tokens

if TYPE_CHECKING:
    from .view import SpaceView

# Similarities closer than this are a tie: float32 rounding alone can order them either way.
TIE = 1e-6


def verify(view: SpaceView, query: QueryLike, k: int = 10, repeats: int = 5) -> Verification:
    """Score ``query`` against every raw row twice: one row at a time in a Python loop
    (``core.scores_loop``) and with one matrix-vector product over the normalized matrix,
    and report how far the two agree and how long each took.

    The raw rows are rebuilt from the cache (unit row x stored norm), a block at a time so
    that memory stays bounded on large vocabularies.
    """
    if k < 1:
        raise UsageError(f"k must be at least 1, got {k}")
    tokens = query_tokens(view, query)
    unit = view.cached_unit  # the loop checks the cosine of the cached rows, any metric
    vector = core.query_vector(unit, tokens.ids)
    if not vector.any():
        raise UsageError(
            f"{tokens.shown} has an all-zero embedding: its cosine with anything is undefined"
        )
    k = min(k, view.vocab_size)
    started = time.perf_counter()
    looped = core.scores_loop(_raw_rows(view), vector)
    loop_seconds = time.perf_counter() - started
    vectorized_seconds = float("inf")
    for _ in range(max(1, repeats)):
        started = time.perf_counter()
        scores = core.scores_for(unit, vector)
        vectorized_seconds = min(vectorized_seconds, time.perf_counter() - started)
    vectorized = np.asarray(scores, dtype=np.float64)
    # Rows with no direction take part in neither ranking nor in the comparison.
    usable = np.ones(view.vocab_size, dtype=bool)
    usable[view.unusable] = False
    looped, vectorized = looped[usable], vectorized[usable]
    ids_usable = np.flatnonzero(usable)
    k = min(k, int(usable.sum()))
    # The loop's ranking by a full stable sort, independently of the core's ranking.
    top_loop = [int(ids_usable[i]) for i in np.argsort(-looped, kind="stable")[:k]]
    looped_by_id = dict(zip(ids_usable.tolist(), looped.tolist()))
    # The vectorized ranking as `neighbors` lists it (no filter).
    [(ids, _)] = core.rank_many(unit, vector[None, :], k, [view.unusable])
    top_vec = [int(i) for i in ids]
    # Tokens that tie in exact arithmetic ("ban" and "ana" against their own mean) may be
    # ordered by rounding, which differs between the two methods: count, don't fail.
    differing = [(a, b) for a, b in zip(top_loop, top_vec) if a != b]
    swaps = sum(1 for a, b in differing if abs(looped_by_id[a] - looped_by_id[b]) <= TIE)
    if looped.std() > 0 and vectorized.std() > 0:
        pearson = float(np.corrcoef(looped, vectorized)[0, 1])
    else:  # a one-row vocabulary: correlation is undefined, agreement is what counts
        pearson = 1.0 if np.allclose(looped, vectorized, atol=1e-6) else 0.0
    return Verification(
        query=tokens,
        model=view.model,
        vocab_size=view.vocab_size,
        dim=view.dim,
        k=k,
        pearson=pearson,
        max_abs_diff=float(np.max(np.abs(looped - vectorized))),
        top_k_identical=bool(top_loop == top_vec),
        top_k_agree=bool(swaps == len(differing)),
        top_k_tied_swaps=swaps,
        top_k_loop=top_loop,
        top_k_vectorized=top_vec,
        loop_seconds=loop_seconds,
        vectorized_seconds=vectorized_seconds,
        speedup=loop_seconds / vectorized_seconds if vectorized_seconds > 0 else float("inf"),
    )


def _raw_rows(view: SpaceView, block: int = 4096) -> Iterator[np.ndarray]:
    for start in range(0, view.vocab_size, block):
        stop = start + block
        yield from view.cached_unit[start:stop] * view.norms[start:stop, None]
