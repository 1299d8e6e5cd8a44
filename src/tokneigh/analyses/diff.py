"""How token neighbourhoods change between two embedding spaces (``tokneigh diff``).

A is one model's embeddings under one metric, B another: another model or file (a GGUF copy,
a fine-tune), the other matrix of the same model (input and output), or the same matrix under
another metric (cosine and csls). For each query:

- the top-K neighbours in A and in B, the query's own tokens left out, as ``neighbors`` ranks
  them (special tokens and rows with no direction left out, ties broken by the lower id);
- overlap@K = |N_A ∩ N_B| / K and Jaccard = |N_A ∩ N_B| / |N_A ∪ N_B| of the two sets;
- Spearman's rho of the query's two similarity rows (each side's metric score: cosine, the
  cosine of the centred or ABTT vectors, or CSLS) over every candidate: the Pearson
  correlation of their ranks, tied scores sharing the average of their ranks.

Both sides rank the same candidates: the shared vocabulary. B's tokens are matched to A's by
the matching rule (``tokneigh.tokens.matching``: the same decoded text, a word start as a
leading space, so GPT-2's ``Ġking`` is Llama's ``▁king``; byte fragments by their bytes), and a
token is shared when it is usable (a row with a direction) and not special in both models; when
several ids of one model have the same key the lowest one stands for it. Ranks are taken
within the shared tokens only, on both sides, so a token one model lacks cannot push the
other's neighbours down; ties are broken by the lower id *in A* on both sides, so identical
spaces give identical lists. A query's own tokens (in either model) are left out of both
rankings and of rho. CSLS's r(y) is each model's own, computed over its whole vocabulary
(what its ``neighbors`` uses).

Queries are words and a sample. A word is text, tokenized by each model's own tokenizer; a
word of several tokens is the normalized mean of their unit vectors, as in ``neighbors``. The
sample is ``sample`` shared tokens drawn uniformly without replacement with
``numpy.random.default_rng(seed)`` (all of them when fewer are shared). The summary (mean,
median, the share with overlap below 0.5) covers every query, words and sample alike; the most
changed are the lowest overlap, ties by the lowest rho, then the lower id in A.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..errors import UsageError
from ..results import DiffItem, DiffSummary, Neighbor, NeighborhoodDiff
from ..space import core
from .matching import match_views, summary
from .queries import parse_query_text, query_tokens

if TYPE_CHECKING:
    from ..results import Query
    from .view import SpaceView

# Queries scored per matrix product for rho: bounds the temporary to 256 x vocabulary floats.
_BLOCK = 256
_ROWS = 8192  # shared rows converted to float64 at a time (25 MB at 384 dims)


def shared_tokens(a: SpaceView, b: SpaceView) -> tuple[np.ndarray, np.ndarray]:
    """(ids in A, ids in B) of the tokens both models have, matched by the matching rule
    (``tokneigh.tokens.matching``), ascending by A's id: every id usable and not special."""
    return match_views(a, b).without_special()


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of ``values``, each group of equal values sharing its average rank."""
    # Not a stable sort: equal values share one rank, so their order does not matter, and
    # the default sort is three times as fast (it is most of the time a diff takes).
    order = np.argsort(values)
    ordered = values[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], values.size]  # exclusive
    group = np.repeat(np.arange(starts.size), ends - starts)
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = ((starts + ends + 1) / 2.0)[group]  # mean of positions start+1 .. end
    return ranks


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rho of two rows (NaN when either is constant: no ranking to correlate)."""
    rx = average_ranks(x)
    ry = average_ranks(y)
    rx -= rx.mean()
    ry -= ry.mean()
    denominator = float(np.sqrt((rx * rx).sum() * (ry * ry).sum()))
    if denominator == 0.0:
        return float("nan")
    return float((rx * ry).sum() / denominator)


class _Side:
    """One space restricted to the shared tokens, in A's id order."""

    def __init__(self, view: SpaceView, ids: np.ndarray) -> None:
        self.view = view
        self.ids = ids
        self.unit = np.ascontiguousarray(view.unit[ids])
        radius = view.radius  # CSLS's r over the model's whole vocabulary, or None
        self.radius = None if radius is None else np.ascontiguousarray(radius[ids])
        self.local = np.full(view.vocab_size, -1, dtype=np.int64)  # model id -> shared index
        self.local[ids] = np.arange(ids.size)

    def query_vectors(self, queries: Sequence[Query]) -> np.ndarray:
        vectors = core.query_vectors(self.view.unit, [q.ids for q in queries])
        for query, vector in zip(queries, vectors):
            if not vector.any():  # tokens whose unit vectors cancel out exactly
                raise UsageError(f"{query.shown}: the mean of its tokens' vectors is zero")
        return vectors

    def rank(
        self, vectors: np.ndarray, queries: Sequence[Query], k: int, exclude: list[np.ndarray]
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Top-k (shared indices, scores) of each query among the shared tokens."""
        if self.radius is None:
            return core.rank_many(self.unit, vectors, k, exclude)
        # r(q) shifts a query's scores by a constant: the list does not depend on it, the
        # scores shown do, and this is the r that `neighbors` uses for them.
        query_radius = self.view.query_radius(vectors, list(queries))
        return core.rank_many(
            self.unit, vectors, k, exclude, radius=self.radius, query_radius=query_radius
        )

    def score_rows(self, vectors: np.ndarray) -> np.ndarray:
        """Each query's score with every shared token, up to a constant per query (what rho
        needs: a constant shift changes no rank)."""
        # float64: a float32 product rounds near-equal scores either way, and every such swap
        # moves rho (by 1e-5 for 500 tokens); converted a slice at a time to bound memory.
        queries = vectors.astype(np.float64)
        rows = np.empty((queries.shape[0], self.ids.size), dtype=np.float64)
        for start in range(0, self.ids.size, _ROWS):
            part = self.unit[start : start + _ROWS].astype(np.float64)
            rows[:, start : start + part.shape[0]] = queries @ part.T
        if self.radius is not None:
            rows = 2.0 * rows - self.radius[None, :]
        return rows

    def neighbors(self, local: np.ndarray, scores: np.ndarray) -> list[Neighbor]:
        rows = []
        for rank, (j, s) in enumerate(zip(local.tolist(), scores.tolist()), start=1):
            token_id = int(self.ids[j])
            text, label = self.view.shown(token_id)
            rows.append(Neighbor(rank, token_id, text, float(s), label))
        return rows


def compare_models(
    a: SpaceView,
    b: SpaceView,
    *,
    words: Sequence[str] = (),
    sample: int = 0,
    seed: int = 0,
    k: int = 10,
    changed: int = 3,
) -> NeighborhoodDiff:
    """How the neighbourhoods of ``words`` and of a seeded sample of ``sample`` shared tokens
    change from ``a`` to ``b``: overlap@k, Jaccard and Spearman's rho of each, their summary,
    and the ``changed`` most changed queries (see the module docstring)."""
    if k < 1:
        raise UsageError(f"k must be at least 1, got {k}")
    if sample < 0:
        raise UsageError(f"the number of tokens to sample must be at least 0, got {sample}")
    if changed < 0:
        raise UsageError(
            f"the number of most changed queries to list must be at least 0, got {changed}"
        )
    if not words and sample == 0:
        raise UsageError("nothing to compare: no word, and a sample of 0 tokens")
    matched = match_views(a, b)
    ids_a, ids_b = matched.without_special()
    if ids_a.size == 0:
        raise UsageError(
            f"{a.model} and {b.model} share no token: no usable, non-special token of one "
            "decodes to a token of the other"
        )
    side_a, side_b = _Side(a, ids_a), _Side(b, ids_b)

    # Each query: where it came from, its tokens in A and in B.
    sources: list[str] = []
    texts: list[str] = []
    queries_a: list[Query] = []
    queries_b: list[Query] = []
    for word in words:
        if not word.strip():  # (EmptyQueryError's hint is about `neighbors --id`)
            raise UsageError("a word is empty or only whitespace")
        if isinstance(parse_query_text(word), int):
            # Row N of one vocabulary is another token (or none) in the other model's.
            raise UsageError(
                f"{word} names a row of one model's vocabulary, not a word both models share: "
                f"give the token's text (\\{word} for the literal text {word!r})"
            )
        sources.append("word")
        texts.append(word)
        queries_a.append(query_tokens(a, word))
        queries_b.append(query_tokens(b, word))
    rng = np.random.default_rng(seed)
    drawn = np.sort(rng.choice(ids_a.size, size=min(sample, ids_a.size), replace=False))
    for j in drawn.tolist():
        query_a = query_tokens(a, int(ids_a[j]))
        sources.append("sample")
        texts.append(query_a.tokens[0])
        queries_a.append(query_a)
        queries_b.append(query_tokens(b, int(ids_b[j])))

    # A query's own tokens, in either model, are left out of both sides: the same candidates.
    exclude = []
    for query_a, query_b in zip(queries_a, queries_b):
        own = np.r_[side_a.local[query_a.ids], side_b.local[query_b.ids]]
        own = np.unique(own[own >= 0])
        if ids_a.size - own.size < k:
            raise UsageError(
                f"k = {k} is more than the {ids_a.size - own.size:,} shared tokens "
                f"{query_a.shown} can be compared with"
            )
        exclude.append(own)

    vectors_a = side_a.query_vectors(queries_a)
    vectors_b = side_b.query_vectors(queries_b)
    ranked_a = side_a.rank(vectors_a, queries_a, k, exclude)
    ranked_b = side_b.rank(vectors_b, queries_b, k, exclude)
    rhos = _rhos(side_a, side_b, vectors_a, vectors_b, exclude)

    items = []
    for n, (source, text, query_a) in enumerate(zip(sources, texts, queries_a)):
        (local_a, scores_a), (local_b, scores_b) = ranked_a[n], ranked_b[n]
        common = len(set(local_a.tolist()) & set(local_b.tolist()))
        one_token = len(query_a.ids) == 1
        label = query_a.labels[0] if one_token else query_a.shown
        items.append(
            DiffItem(
                source=source,
                query=text,
                id=query_a.ids[0] if one_token else None,
                label=label,
                overlap=common / k,
                jaccard=common / (2 * k - common),
                spearman=rhos[n],
                neighbors_a=side_a.neighbors(local_a, scores_a),
                neighbors_b=side_b.neighbors(local_b, scores_b),
            )
        )
    return NeighborhoodDiff(
        model_a=a.model,
        embeddings_a=a.embeddings,
        metric_a=a.metric.name,
        model_b=b.model,
        embeddings_b=b.embeddings,
        metric_b=b.metric.name,
        k=k,
        vocab_a=a.vocab_size,
        vocab_b=b.vocab_size,
        shared=int(ids_a.size),
        sample=sample,
        seed=seed,
        items=items,
        summary=summarize(items),
        most_changed=most_changed(items, changed, a.vocab_size),
        matching=summary(matched),
    )


def _rhos(
    side_a: _Side,
    side_b: _Side,
    vectors_a: np.ndarray,
    vectors_b: np.ndarray,
    exclude: list[np.ndarray],
) -> list[float]:
    out = []
    keep = np.ones(side_a.ids.size, dtype=bool)
    for start in range(0, len(exclude), _BLOCK):
        rows_a = side_a.score_rows(vectors_a[start : start + _BLOCK])
        rows_b = side_b.score_rows(vectors_b[start : start + _BLOCK])
        for offset, (row_a, row_b) in enumerate(zip(rows_a, rows_b)):
            own = exclude[start + offset]
            keep[own] = False
            out.append(spearman(row_a[keep], row_b[keep]))
            keep[own] = True
    return out


def summarize(items: Sequence[DiffItem]) -> DiffSummary:
    """Mean and median of each measure over ``items`` (rho over the queries that have one),
    and the share of queries whose overlap is below 0.5."""
    overlap = np.asarray([i.overlap for i in items], dtype=np.float64)
    jaccard = np.asarray([i.jaccard for i in items], dtype=np.float64)
    rho = np.asarray([i.spearman for i in items], dtype=np.float64)
    rho = rho[~np.isnan(rho)]
    nan = float("nan")
    return DiffSummary(
        queries=len(items),
        overlap_mean=float(overlap.mean()),
        overlap_median=float(np.median(overlap)),
        jaccard_mean=float(jaccard.mean()),
        jaccard_median=float(np.median(jaccard)),
        spearman_mean=float(rho.mean()) if rho.size else nan,
        spearman_median=float(np.median(rho)) if rho.size else nan,
        overlap_below_half=float(np.count_nonzero(overlap < 0.5) / overlap.size),
    )


def most_changed(items: Sequence[DiffItem], n: int, vocab_size: int) -> list[int]:
    """Positions in ``items`` of the ``n`` most changed: lowest overlap, then lowest rho (an
    undefined rho last), then the lower id in A (a word of several tokens after every token),
    then the earlier query."""

    def key(position: int) -> tuple[float, float, int, int]:
        item = items[position]
        rho = item.spearman if not np.isnan(item.spearman) else np.inf
        token = item.id if item.id is not None else vocab_size
        return (item.overlap, rho, token, position)

    return sorted(range(len(items)), key=key)[:n]
