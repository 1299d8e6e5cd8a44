"""Vector arithmetic on queries: ``most_similar`` (sum(positive) - sum(negative), as gensim's)
and the analogy "a is to b as c is to ?"."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..errors import UsageError
from ..results import MostSimilar
from ..space import core
from . import ranking
from .filters import NO_FILTERS, Filters
from .queries import QueryLike, query_tokens

if TYPE_CHECKING:
    from .view import SpaceView


def most_similar(
    view: SpaceView,
    positive: QueryLike | Sequence[QueryLike] = (),
    negative: QueryLike | Sequence[QueryLike] = (),
    k: int = 10,
    *,
    exclude_input: bool = True,
    filters: Filters = NO_FILTERS,
) -> MostSimilar:
    """The tokens nearest to sum(positive) - sum(negative), as gensim's ``most_similar``.

    Each term is a query (text or id) represented by its unit vector (a multi-token word:
    the normalized mean of its tokens' unit vectors); the sum is normalized before ranking.
    ``most_similar(positive=["king", "woman"], negative=["man"])`` is king - man + woman.
    The terms' own tokens are left out unless ``exclude_input=False``.
    """
    return _expression(view, _terms(positive), _terms(negative), k, exclude_input, filters)


def analogy(
    view: SpaceView,
    a: QueryLike,
    b: QueryLike,
    c: QueryLike,
    k: int = 10,
    *,
    exclude_input: bool = True,
    filters: Filters = NO_FILTERS,
) -> MostSimilar:
    """The analogy "a is to b as c is to ?": the tokens nearest to b - a + c.

    ``analogy("man", "king", "woman")`` is ``most_similar(positive=["king", "woman"],
    negative=["man"])``.
    """
    return _expression(view, [b, c], [a], k, exclude_input, filters, analogy=True)


def _expression(
    view: SpaceView,
    positive: list[QueryLike],
    negative: list[QueryLike],
    k: int,
    exclude_input: bool,
    filters: Filters,
    analogy: bool = False,
) -> MostSimilar:
    if k < 1:
        raise UsageError(f"k must be at least 1, got {k}")
    pos = [query_tokens(view, q) for q in positive]
    neg = [query_tokens(view, q) for q in negative]
    if not pos and not neg:
        raise UsageError("give at least one positive or negative term")
    vector = core.expression_vector(
        [core.query_vector(view.unit, t.ids) for t in pos],
        [core.query_vector(view.unit, t.ids) for t in neg],
    )
    if not vector.any():
        raise UsageError("the terms cancel out: their sum is the zero vector, nothing to rank")
    inputs = sorted({i for t in pos + neg for i in t.ids}) if exclude_input else []
    left_out = ranking.left_out(view, filters, extra=inputs)
    [(ids, scores)] = ranking.rank(
        view,
        vector[None, :],
        [None],
        k,
        [left_out],
        [ranking.selector(view, filters, k)],
        filters.min_sim,
    )
    [hidden] = ranking.hidden_count(view, filters, [left_out])
    return MostSimilar(
        positive=pos,
        negative=neg,
        model=view.model,
        vocab_size=view.vocab_size,
        dim=view.dim,
        neighbors=ranking.neighbor_rows(view, ids, scores, vector, filters, inputs),
        dedupe=filters.dedupe,
        hidden=hidden,
        unusable=int(view.unusable.size),
        analogy=analogy,
        metric=view.metric.name,
    )


def _terms(terms: QueryLike | Sequence[QueryLike]) -> list[QueryLike]:
    # A lone string is one term, not a sequence of one-letter terms.
    if isinstance(terms, (str, int, np.integer)):
        return [terms]  # type: ignore[list-item]
    return list(terms)
