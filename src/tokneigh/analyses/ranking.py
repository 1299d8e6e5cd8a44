"""Neighbour lists: rank the vocabulary against query vectors under the view's metric (or by
the raw dot product), with the filter policy (which rows a ranking leaves out, which
candidates it keeps) and the rows a list shows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..errors import UsageError
from ..results import Neighbor, NeighborList, Query, Variant
from ..space import core
from . import queries
from .filters import NO_FILTERS, Filters
from .queries import AnyQuery

if TYPE_CHECKING:
    from .view import SpaceView

_NO_IDS = np.empty(0, dtype=np.int64)


def neighbors_many(
    view: SpaceView,
    query_list: Sequence[AnyQuery],
    k: int = 20,
    exclude_query: bool = False,
    *,
    filters: Filters = NO_FILTERS,
    score: str = "cosine",
) -> list[NeighborList]:
    """Neighbours of several queries at once (one matrix-matrix product per block), the
    same rows in the same order as each query asked alone."""
    if k < 1:
        raise UsageError(f"k must be at least 1, got {k}")
    if score not in ("cosine", "dot"):
        raise UsageError(f"the score is 'cosine' or 'dot', not {score!r}")
    both = [queries.parse(view, q) for q in query_list]
    if not both:
        return []
    parsed = [tokens for tokens, _ in both]
    if score == "dot":
        if any(raw is None for _, raw in both):
            raise UsageError("dot products rank vector queries only (a vector or the centroid)")
        if view.radius is not None:
            raise UsageError(f"dot products are raw products, not {view.metric.name} scores")
    vectors = query_vectors(view, both)
    for tokens, vector in zip(parsed, vectors):
        if not vector.any():  # tokens whose unit vectors cancel out exactly
            raise UsageError(f"{tokens.shown}: the mean of its tokens' vectors is zero")
    # A query's own special token still answers: asking for <|endoftext|> finds it first.
    exclude = [
        left_out(view, filters, spared=t.ids, extra=t.ids if exclude_query else ()) for t in parsed
    ]
    select = [selector(view, filters, k)] * len(parsed)
    if score == "dot":
        ranked = [
            rank_dot(view, raw, k, skip, chooser, filters.min_sim)
            for (_, raw), skip, chooser in zip(both, exclude, select)
            if raw is not None
        ]
    else:
        ranked = rank(view, vectors, parsed, k, exclude, select, filters.min_sim)
    hidden = hidden_count(view, filters, exclude)
    results = []
    for tokens, vector, (ids, scores), n_hidden in zip(parsed, vectors, ranked, hidden):
        skip = tokens.ids if exclude_query else ()
        results.append(
            NeighborList(
                query=tokens.text,
                query_id=tokens.token_id,
                query_ids=tokens.ids,
                query_tokens=tokens.tokens,
                query_labels=tokens.labels,
                model=view.model,
                vocab_size=view.vocab_size,
                dim=view.dim,
                neighbors=neighbor_rows(view, ids, scores, vector, filters, skip),
                dedupe=filters.dedupe,
                hidden=n_hidden,
                unusable=int(view.unusable.size),
                metric=view.metric.name,
                quantization=view.quantization,
                vector=tokens.vector,
                score=score,
                query_unknown=tokens.unknown,
            )
        )
    return results


def query_vectors(view: SpaceView, both: Sequence[tuple[Query, np.ndarray | None]]) -> np.ndarray:
    """The unit query vector of each query: tokens as ``core.query_vectors`` makes them
    (the same bits in any batch), vectors normalized."""
    out = np.empty((len(both), view.dim), dtype=np.float32)
    token_rows = [i for i, (_, raw) in enumerate(both) if raw is None]
    if token_rows:
        out[token_rows] = core.query_vectors(view.unit, [both[i][0].ids for i in token_rows])
    for i, (_, raw) in enumerate(both):
        if raw is not None:
            out[i] = core.unit_vector(raw)
    return out


def rank(
    view: SpaceView,
    vectors: np.ndarray,
    parsed: Sequence[Query | None],
    k: int,
    exclude: Sequence[np.ndarray],
    select: Sequence[core.Selector | None],
    min_score: float | None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``core.rank_many`` under the view's metric."""
    if view.radius is None:
        return core.rank_many(view.unit, vectors, k, exclude, select, min_score)
    return core.rank_many(
        view.unit,
        vectors,
        k,
        exclude,
        select,
        min_score,
        radius=view.radius,
        query_radius=view.query_radius(vectors, parsed),
    )


def rank_dot(
    view: SpaceView,
    raw: np.ndarray,
    k: int,
    exclude: np.ndarray,
    select: core.Selector | None,
    min_score: float | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Rank by the raw product with the unnormalized rows (each rebuilt as unit row x
    norm), float64 on the shortlist as every ranking is."""
    unit, norms = view.cached_unit, view.norms
    # A vector float32 cannot hold (1e39, 1e-300) is ranked times a power of two (exact, the
    # order kept); the products are reported at the vector's own scale.
    shift = core.rescaling(raw)
    vector = core.rescaled(raw)
    row = (unit @ vector.astype(np.float32)) * norms  # float32: only a shortlist

    def rescore(ids: np.ndarray) -> np.ndarray:
        rows = unit[ids].astype(np.float64)
        return np.einsum("wd,d->w", rows, vector) * norms[ids].astype(np.float64)

    # core's shortlist margin is absolute, made for cosines: scale the scores into
    # [-1, 1] by a power of two (exact in floating point, so the order is kept bit for
    # bit), rank, and report the unscaled products.
    finite = np.abs(row[np.isfinite(row)])
    scale = 2.0 ** np.ceil(np.log2(max(float(finite.max()) if finite.size else 1.0, 1e-30)))
    with np.errstate(over="ignore"):  # a floor beyond every product: inf keeps none, rightly
        floor = None if min_score is None else float(np.ldexp(min_score, shift)) / scale
    ids, _ = core.top_k_selected(
        row / np.float32(scale),
        k,
        select,
        exclude,
        floor,
        lambda chosen: rescore(chosen) / scale,
        owned=True,
    )
    products = rescore(ids)
    if shift:
        with np.errstate(over="ignore"):
            products = np.ldexp(products, -shift)
        if not np.isfinite(products).all():
            raise UsageError("the vector's dot products are beyond float64's range")
    return ids, products


# --- the filter policy ------------------------------------------------------------------------


def left_out(
    view: SpaceView, filters: Filters, spared: Sequence[int] = (), extra: Sequence[int] = ()
) -> np.ndarray:
    """The ids left out of one ranking: special tokens (with ``skip_special``) other than
    ``spared``, and ``extra``. Masked out of the scores before the top k is taken."""
    out = view.special_ids() if filters.skip_special else _NO_IDS
    if view.unusable.size:
        out = np.concatenate([out, view.unusable])
    if filters.skip_special and any(view.codec.is_special(i) for i in spared):
        keep = set(spared)
        out = np.asarray([i for i in out.tolist() if i not in keep], dtype=np.int64)
    if len(extra):
        out = np.concatenate([out, np.asarray(extra, dtype=np.int64)])
    return out


def hidden_count(view: SpaceView, filters: Filters, left_out: Sequence[np.ndarray]) -> list[int]:
    """How many special tokens each ranking left out (what a shortfall note names)."""
    if not filters.skip_special:
        return [0] * len(left_out)
    specials = view.special_ids()
    special = set(specials.tolist())  # sets, not np.isin/np.unique (they import numpy.ma)
    return [len(special.intersection(out.tolist())) for out in left_out]


def selector(view: SpaceView, filters: Filters, k: int) -> core.Selector | None:
    """The candidate filter for ``words_only`` and ``dedupe`` (special tokens are left out
    before, by ``left_out``). Candidates come best first, so it stops once ``k`` are kept:
    later ones would be cut anyway."""
    if not (filters.words_only or filters.dedupe):
        return None
    codec = view.codec

    def select(candidates: np.ndarray) -> np.ndarray:
        kept: list[int] = []
        seen: set[str] = set()
        for i in candidates.tolist():
            if filters.words_only and not codec.has_letter(i):
                continue
            if filters.dedupe:
                key = codec.fold_key(i)
                if key is not None:
                    if key in seen:
                        continue  # a variant of a better token already kept
                    seen.add(key)
            kept.append(i)
            if len(kept) == k:
                break
        return np.asarray(kept, dtype=np.int64)

    return select


def neighbor_rows(
    view: SpaceView,
    ids: np.ndarray,
    scores: np.ndarray,
    vector: np.ndarray,
    filters: Filters,
    excluded: Sequence[int],
) -> list[Neighbor]:
    """The rows of a neighbour list, with each token's variants when ``dedupe`` folds them."""
    codec = view.codec
    groups = codec.fold_groups() if filters.dedupe else {}
    skip = set(excluded)
    rows = []
    for rank, (i, s) in enumerate(zip(ids.tolist(), scores.tolist()), start=1):
        variants = None
        if filters.dedupe:
            key = codec.fold_key(i)
            others = [v for v in groups.get(key, []) if v != i and v not in skip] if key else []
            others = [v for v in others if v < view.vocab_size]
            sims = (
                core.exact_scores(view.unit, vector, np.asarray(others)).tolist() if others else []
            )
            variants = []
            for sim, v in sorted(zip(sims, others), key=lambda p: (-p[0], p[1])):
                if filters.min_sim is None or sim >= filters.min_sim:
                    v_text, v_label = codec.shown(v)
                    variants.append(Variant(v, v_text, sim, v_label))
        text, label = view.shown(i)
        rows.append(Neighbor(rank, i, text, s, label, codec.is_special(i), variants))
    return rows
