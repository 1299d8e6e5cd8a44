"""Two models' spaces aligned on the tokens they share (``tokneigh align``), and the tokens that
moved most from one to the other.

1. Pairs: the tokens both models have, by the matching rule (``analyses.matching``: the same
   pairs ``diff`` ranks), special tokens left out. A seeded split
   (``numpy.random.default_rng(seed).permutation``) holds out ``test_share`` of them (at least
   one); the map is fitted on the rest only.
2. Rows: each model's cached unit rows centred on the mean unit row of the shared tokens and
   made unit again (MUSE's ``renorm,center,renorm``; MUSE centres on each whole vocabulary,
   here both sides centre on the same tokens, so that a rotated copy of a subset is still
   exactly a rotation).
3. The map W (x @ W ~ y): orthogonal Procrustes when the dimensions agree, ridge least squares
   (lambda ``ridge``) when they differ (``fitting.fit``). Then ``refine`` rounds of MUSE's
   refinement: the mutual nearest neighbours under CSLS between A's pool mapped and B's pool,
   and W fitted again on those pairs. The pools are the tokens of the first ``pool`` fitted
   pairs (by A's id), each model's own, B's in its own id order: the search is not told which
   is which. (MUSE's pools are each language's most frequent words; here both pools hold the
   same tokens, so a good map finds every pair, and a pair it cannot find is left out.)
4. Held-out pairs: P@1 and P@10 of finding B's counterpart among all of B's usable,
   non-special tokens from A's token mapped, by cosine and by CSLS (k = 10; B's r against A's
   pool mapped, as MUSE takes it against the mapped source words), the mean aligned cosine
   and the residual ||XW - Y||_F / ||Y||_F.
5. Drift of every pair: 1 - cos(x W, y), ranked from most moved (ties: the lower id in A); the
   ``top`` listed with their ``neighbors`` nearest tokens in A's and in B's own space (cosine,
   special tokens and the token itself left out, as ``neighbors`` lists them).

What is kept in the cache (``kept``): W, both means, the refinement's pair counts and the
held-out scores; the split and the drift are recomputed (a second or less).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..errors import UsageError
from ..results import Alignment, DriftToken, Retrieval
from . import fitting
from .filters import Filters
from .matching import match_views, summary
from .whole import graph_rows

if TYPE_CHECKING:
    from ..results import Neighbor
    from .view import SpaceView

DEFAULT_POOL = 5_000  # MUSE searches 15,000 words; 5,000 keep a GPT-2 pair within seconds
DEFAULT_RIDGE = 1.0  # on unit rows: small beside X^T X's trace (the number of pairs)
DEFAULT_TEST_SHARE = 0.1
DEFAULT_REFINE = 1
_SCORES = (  # the held-out scores kept in the cache, in this order
    *("p1_nn", "p10_nn", "p1_csls", "p10_csls"),
    *("mean_cosine", "mean_cosine_fit", "residual", "residual_fit"),
)


@dataclass(frozen=True)
class Options:
    """What an alignment depends on besides the two matrices (the cache key holds them all)."""

    refine: int = DEFAULT_REFINE
    seed: int = 0
    test_share: float = DEFAULT_TEST_SHARE
    pool: int = DEFAULT_POOL
    ridge: float = DEFAULT_RIDGE

    def check(self) -> None:
        if self.refine < 0:
            raise UsageError(f"refinement rounds must be at least 0, got {self.refine}")
        if not 0.0 < self.test_share < 1.0:
            raise UsageError(f"the test share must be between 0 and 1, got {self.test_share}")
        if self.pool < 2:
            raise UsageError(f"the refinement pool must hold at least 2 tokens, got {self.pool}")
        if not (np.isfinite(self.ridge) and self.ridge >= 0.0):
            raise UsageError(f"the ridge lambda must be a number at least 0, got {self.ridge}")

    def key(self) -> str:
        """The options as text, for a cache key."""
        return f"r{self.refine}-s{self.seed}-t{self.test_share!r}-p{self.pool}-l{self.ridge!r}"


def split(pairs: int, test_share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(fit positions, test positions), each ascending: a seeded permutation's first
    max(1, round(test_share * pairs)) positions are held out."""
    test_size = max(1, int(round(test_share * pairs)))
    order = np.random.default_rng(seed).permutation(pairs)
    return np.sort(order[test_size:]), np.sort(order[:test_size])


class _Space:
    """One model's side: its usable, non-special ids and their centred unit rows, prepared
    once (float32: 150 MB for GPT-2)."""

    def __init__(self, view: SpaceView, shared: np.ndarray, mean: np.ndarray | None) -> None:
        self.view = view
        self.candidates = graph_rows(view, include_special=False)
        self.mean = fitting.mean_row(view.cached_unit, shared) if mean is None else mean
        self.prepared = fitting.prepared(view.cached_unit, self.candidates, self.mean)

    def rows(self, ids: np.ndarray) -> np.ndarray:
        return self.prepared[np.searchsorted(self.candidates, ids)]


def align_views(
    a: SpaceView,
    b: SpaceView,
    options: Options = Options(),
    *,
    top: int = 10,
    neighbors: int = 5,
    kept: dict[str, np.ndarray] | None = None,
    composed: int | None = 0,
) -> tuple[Alignment, dict[str, np.ndarray]]:
    """A aligned to B (see the module docstring), and the arrays to keep in the cache (those
    of ``kept`` when it is given: an earlier run's map and scores for the same options).
    ``composed``: how many composed tokens to list (``analyses.composed``); None skips them."""
    options.check()
    if top < 0 or neighbors < 0:
        raise UsageError("the number of tokens and neighbours listed must be at least 0")
    matched = match_views(a, b)
    ids_a, ids_b = matched.without_special()
    if ids_a.size < 3:
        raise UsageError(
            f"{a.model} and {b.model} share {ids_a.size} usable, non-special token"
            f"{'s' if ids_a.size != 1 else ''}: too few to fit a map and test it"
        )
    fit_at, test_at = split(ids_a.size, options.test_share, options.seed)
    if fit_at.size < 2:
        raise UsageError(f"a test share of {options.test_share} leaves fewer than 2 pairs to fit")
    side_a = _Space(a, ids_a, None if kept is None else kept["mean_a"])
    side_b = _Space(b, ids_b, None if kept is None else kept["mean_b"])
    # The pools: the first `pool` fitted pairs' tokens, B's in its own id order.
    pool_a = ids_a[fit_at][: options.pool]
    pool_b = np.sort(ids_b[fit_at][: options.pool])
    method = "procrustes" if a.dim == b.dim else "ridge"

    if kept is None:
        x_fit, y_fit = side_a.rows(ids_a[fit_at]), side_b.rows(ids_b[fit_at])
        x_test, y_test = side_a.rows(ids_a[test_at]), side_b.rows(ids_b[test_at])
        weights, _ = fitting.fit(x_fit, y_fit, options.ridge)
        refined: list[int] = []
        if options.refine:
            source, target = side_a.rows(pool_a), side_b.rows(pool_b)
            k = min(fitting.CSLS_K, source.shape[0], target.shape[0])
            for _ in range(options.refine):
                rows, cols = fitting.mutual_csls(fitting.mapped(source, weights), target, k)
                refined.append(int(rows.size))
                if rows.size >= 2:  # else the round has nothing to fit on: W stays
                    weights, _ = fitting.fit(source[rows], target[cols], options.ridge)
        scores = _scores(
            side_a, side_b, weights, (x_fit, y_fit), (x_test, y_test), ids_b[test_at], pool_a
        )
        kept = {
            "weights": weights,
            "mean_a": side_a.mean,
            "mean_b": side_b.mean,
            "refined": np.asarray(refined, dtype=np.int64),
            "scores": np.asarray([scores[name] for name in _SCORES], dtype=np.float64),
        }
        cached = False
    else:
        weights, cached = kept["weights"], True
        scores = dict(zip(_SCORES, kept["scores"].tolist()))
        refined = kept["refined"].tolist()

    drift = pair_drift(side_a.rows(ids_a), side_b.rows(ids_b), weights)
    order = np.lexsort((ids_a, -drift))  # most moved first, ties by the lower id in A
    head = order[:top]
    listed = _drift_tokens(a, b, ids_a[head], ids_b[head], drift[head], neighbors)
    result = Alignment(
        model_a=a.model,
        embeddings_a=a.embeddings,
        dim_a=a.dim,
        model_b=b.model,
        embeddings_b=b.embeddings,
        dim_b=b.dim,
        matching=summary(matched),
        method=method,
        ridge=None if method == "procrustes" else options.ridge,
        refine=options.refine,
        refined_pairs=refined,
        pool=options.pool,
        seed=options.seed,
        test_share=options.test_share,
        fit_pairs=int(fit_at.size),
        test_pairs=int(test_at.size),
        csls_k=fitting.CSLS_K,
        retrieval=Retrieval(
            scores["p1_nn"], scores["p10_nn"], scores["p1_csls"], scores["p10_csls"]
        ),
        mean_cosine=scores["mean_cosine"],
        mean_cosine_fit=scores["mean_cosine_fit"],
        residual=scores["residual"],
        residual_fit=scores["residual_fit"],
        drift=listed,
        cached=cached,
        ranking=(ids_a[order], ids_b[order], drift[order]),
    )
    if composed is not None:
        from .composed import composed as composed_tokens

        unmatched = np.setdiff1d(side_a.candidates, matched.ids_a)
        result.composed = composed_tokens(
            a,
            b,
            unmatched,
            ids_a[test_at],
            lambda ids: fitting.mapped(side_a.rows(ids), weights),
            side_b.mean,
            composed,
        )
    return result, kept


def _scores(
    side_a: _Space,
    side_b: _Space,
    weights: np.ndarray,
    fit_rows: tuple[np.ndarray, np.ndarray],
    test_rows: tuple[np.ndarray, np.ndarray],
    test_ids_b: np.ndarray,
    pool_a: np.ndarray,
) -> dict[str, float]:
    """The held-out retrieval, and the cosines and residuals of the fit and held-out pairs."""
    candidates = side_b.prepared
    mapped_pool = fitting.mapped(side_a.rows(pool_a), weights)
    r_candidates = fitting.radius_against(
        candidates, mapped_pool, min(fitting.CSLS_K, mapped_pool.shape[0])
    )
    truth = np.searchsorted(side_b.candidates, test_ids_b)
    queries = fitting.mapped(test_rows[0], weights)
    by_cosine, by_csls = fitting.retrieval_ranks(queries, candidates, truth, r_candidates)
    cosines, residual = fitting.pair_scores(*test_rows, weights)
    cosines_fit, residual_fit = fitting.pair_scores(*fit_rows, weights)
    return {
        "p1_nn": float(np.mean(by_cosine <= 1)),
        "p10_nn": float(np.mean(by_cosine <= 10)),
        "p1_csls": float(np.mean(by_csls <= 1)),
        "p10_csls": float(np.mean(by_csls <= 10)),
        "mean_cosine": float(cosines.mean()),
        "mean_cosine_fit": float(cosines_fit.mean()),
        "residual": residual,
        "residual_fit": residual_fit,
    }


def pair_drift(x: np.ndarray, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """1 - cos(x W, y) of each pair of rows (float64)."""
    cosines, _ = fitting.pair_scores(x, y, weights)
    return 1.0 - cosines


def _drift_tokens(
    a: SpaceView, b: SpaceView, ids_a: np.ndarray, ids_b: np.ndarray, drift: np.ndarray, k: int
) -> list[DriftToken]:
    """The top of the ranking, with each token's ``k`` nearest in A and in B (one batch each)."""
    near_a, near_b = _nearest(a, ids_a, k), _nearest(b, ids_b, k)
    out = []
    for rank, (i, j, d) in enumerate(zip(ids_a.tolist(), ids_b.tolist(), drift.tolist()), 1):
        text_a, label_a = a.shown(i)
        out.append(
            DriftToken(
                rank=rank,
                id_a=i,
                id_b=j,
                token=text_a or "",
                label_a=label_a,
                label_b=b.shown(j)[1],
                drift=d,
                neighbors_a=near_a[rank - 1],
                neighbors_b=near_b[rank - 1],
            )
        )
    return out


def _nearest(view: SpaceView, ids: np.ndarray, k: int) -> list[list[Neighbor]]:
    if k == 0 or ids.size == 0:
        return [[] for _ in range(ids.size)]
    from .ranking import neighbors_many

    lists = neighbors_many(view, ids.tolist(), k, True, filters=Filters(skip_special=True))
    return [listed.neighbors for listed in lists]
