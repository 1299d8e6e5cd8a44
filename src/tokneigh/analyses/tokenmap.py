"""A query and its neighbours as a picture: projected to 2-D by PCA of their unit vectors."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..errors import UsageError
from ..results import TokenMap
from ..space import core
from .filters import NO_FILTERS, Filters
from .queries import QueryLike
from .ranking import neighbors_many

if TYPE_CHECKING:
    from .view import SpaceView


def token_map(
    view: SpaceView, query: QueryLike, k: int = 30, *, filters: Filters = NO_FILTERS
) -> TokenMap:
    """``query`` and its ``k`` nearest tokens projected to 2-D by PCA of their unit vectors
    (``core.pca_2d``); the query's own tokens are left out of the neighbours."""
    result = neighbors_many(view, [query], k=k, exclude_query=True, filters=filters)[0]
    if not result.neighbors:
        raise UsageError("no token passes the filters: nothing to map")
    query_vector = core.query_vector(view.unit, result.query_ids)
    rows = view.unit[np.asarray([n.id for n in result.neighbors], dtype=np.int64)]
    coords, share = core.pca_2d(np.vstack([query_vector[None, :], rows]))
    return TokenMap(
        result=result,
        query_xy=(float(coords[0, 0]), float(coords[0, 1])),
        points=[(float(x), float(y)) for x, y in coords[1:]],
        explained=(float(share[0]), float(share[1])),
    )
