"""Two queries compared: their similarity under the view's metric, and where the second stands
among the first one's neighbours."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import numpy as np

from ..errors import UsageError
from ..results import Comparison
from ..space import core
from . import queries
from .filters import NO_FILTERS, Filters
from .queries import QueryLike
from .ranking import left_out

if TYPE_CHECKING:
    from .view import SpaceView


def similarity(view: SpaceView, a: QueryLike, b: QueryLike) -> float:
    """The similarity of two queries under the view's metric (cosine by default)."""
    if view.radius is None:
        return core.cosine(queries.vector(view, a), queries.vector(view, b))
    return compare(view, a, b).similarity


def rank(view: SpaceView, a: QueryLike, b: QueryLike, *, filters: Filters = NO_FILTERS) -> int:
    """Where ``b`` stands among ``a``'s neighbours, 1-based, as ``neighbors(a)`` with
    the same ``filters`` lists them (only ``skip_special`` applies)."""
    return compare(view, a, b, filters=filters).rank_of_b


def compare(
    view: SpaceView, a: QueryLike, b: QueryLike, *, filters: Filters = NO_FILTERS
) -> Comparison:
    """Cosine, angle, Pearson correlation, raw norms and rank of b among a's neighbours.

    ``rank_of_b`` counts what ``neighbors(a, filters=filters)`` would list before b, plus
    one: b's own rank, or where it would stand if that list leaves it out (a special
    token) or it is not one row (a text of several tokens). Of the filters only
    ``skip_special`` applies.
    """
    tokens_a, tokens_b = queries.query_tokens(view, a), queries.query_tokens(view, b)
    unit_a = core.query_vector(view.unit, tokens_a.ids)
    unit_b = core.query_vector(view.unit, tokens_b.ids)
    for tokens, vector in ((tokens_a, unit_a), (tokens_b, unit_b)):
        if not vector.any():  # tokens whose unit vectors cancel out exactly
            raise UsageError(f"{tokens.shown}: the mean of its tokens' vectors is zero")
    cos = core.cosine(unit_a, unit_b)
    row = core.scores_for(view.unit, unit_a)  # a fresh array: ours to mask
    rescore: core.Rescore = functools.partial(core.exact_scores, view.unit, unit_a)
    score = cos
    if view.radius is not None:
        r_a, r_b = view.query_radius(np.stack([unit_a, unit_b]), [tokens_a, tokens_b])
        row = 2 * row - view.radius - r_a
        rescore = functools.partial(core.csls_scores, view.unit, unit_a, view.radius, r_a)
        score = 2.0 * cos - r_a - r_b
    row[left_out(view, filters, spared=tokens_a.ids)] = -np.inf
    if len(tokens_b.ids) == 1:
        # b's score as `neighbors a` reports it, the same number to the last bit; b
        # competes even when the list would leave it out (a special token).
        b_id = tokens_b.ids[0]
        cos = float(core.exact_scores(view.unit, unit_a, np.asarray([b_id]))[0])
        score = float(rescore(np.asarray([b_id]))[0])
        rank = core.rank_of(row, rescore, b_id, score)
    else:
        rank = core.rank_of(row, rescore, None, score)
    raw_a, raw_b = queries.raw_vector(view, a), queries.raw_vector(view, b)
    return Comparison(
        a=tokens_a,
        b=tokens_b,
        model=view.model,
        cosine=cos,
        angle_degrees=core.angle_degrees(cos),
        pearson=core.pearson(raw_a, raw_b),
        norm_a=float(np.linalg.norm(raw_a)),
        norm_b=float(np.linalg.norm(raw_b)),
        rank_of_b=rank,
        metric=view.metric.name,
        similarity=score,
    )
