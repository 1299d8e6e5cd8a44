"""Cross-model neighbours: a query of model A read among model B's tokens through the map
``align`` fitted (``tokneigh.analyses.align``), for tokens B has and tokens it lacks.

The query is treated exactly as the fitted pairs were: A's unit query vector (a token's unit
row, or the unit mean of a text's tokens, as ``neighbors`` makes it) centred on A's mean row of
the shared tokens and made unit again, mapped by W and made unit again. That lands in B's
centred space; B's centring is then undone (the direction scaled by the query's own centred
length, B's mean row added back) so that the vector is ranked by B's own exact path, against
B's unit rows, as a vector query. A rotated copy thus maps each token onto its counterpart's
own row, and the list is B's own list of that counterpart.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..errors import UsageError
from ..results import CrossNeighborList, NeighborList, Query, VectorSource
from ..space import core
from ..tokens.matching import TEXT, match_key
from . import queries
from .filters import NO_FILTERS, Filters
from .queries import AnyQuery
from .ranking import neighbors_many, query_vectors

if TYPE_CHECKING:
    from .view import SpaceView


def map_vector(query_unit: np.ndarray, kept: dict[str, np.ndarray]) -> np.ndarray:
    """A's unit query vector carried into B's space (float64; see the module docstring)."""
    centred = np.asarray(query_unit, dtype=np.float64) - kept["mean_a"]
    length = float(np.linalg.norm(centred))
    if length == 0.0:
        raise UsageError("the query is A's mean row: once centred it has no direction to map")
    direction = (centred / length) @ kept["weights"]
    size = float(np.linalg.norm(direction))
    if size == 0.0:
        raise UsageError("the map sends the query to the zero vector: it has no direction in B")
    return direction / size * length + kept["mean_b"]


def counterpart(a: SpaceView, b: SpaceView, query: Query) -> int | None:
    """B's own token for the query, when B's tokenizer reads its text as one known token: a
    text query's text, or an id query's decoded text (the matching rule's, a word start as a
    leading space) when B's token matches it by the rule. None for a vector query, a text B
    splits, and a WordPiece continuation (B's tokenizer cannot be asked for one)."""
    if query.vector is not None:
        return None
    if query.text is not None:
        text, key = query.text, None
    else:
        key = match_key(a.codec, query.ids[0])
        if key is None or key[0] != TEXT or not isinstance(key[1], str):
            return None
        text = key[1]
    if not text:
        return None
    read = b.tokenize(text)
    if len(read.ids) != 1 or read.unknown:
        return None
    found = read.ids[0]
    if key is not None and match_key(b.codec, found) != key:
        return None
    return found


def cross_neighbors(
    a: SpaceView,
    b: SpaceView,
    kept: dict[str, np.ndarray],
    query_list: Sequence[AnyQuery],
    k: int = 20,
    *,
    filters: Filters = NO_FILTERS,
    alignment: dict[str, object] | None = None,
) -> list[CrossNeighborList]:
    """The neighbours in B of each of A's queries mapped (one matrix-vector product each in
    A's dimension, then B's own ranking of the vectors, all in one batch)."""
    if a.metric.transforms or b.metric.transforms or a.radius is not None or b.radius is not None:
        raise UsageError("cross-model neighbours are ranked by cosine: the map was fitted on it")
    both = [queries.parse(a, q) for q in query_list]
    if not both:
        return []
    unit = query_vectors(a, both)
    for (tokens, _), vector in zip(both, unit):
        if not vector.any():
            raise UsageError(f"{tokens.shown}: the mean of its tokens' vectors is zero")
    mapped = [map_vector(vector, kept) for vector in unit]
    from .vectors import VectorQuery

    # The source names A's query, for the notes on the list ("7,001 tokens listed for ...").
    asked = [
        VectorQuery(v, VectorSource(f"A's {t.shown}, mapped")) for (t, _), v in zip(both, mapped)
    ]
    lists = neighbors_many(b, asked, k, filters=filters)
    out = []
    for (tokens, _), vector, listed in zip(both, mapped, lists):
        found = counterpart(a, b, tokens)
        out.append(
            CrossNeighborList(
                asked=tokens,
                model_a=a.model,
                embeddings_a=a.embeddings,
                listed=listed,
                counterpart=None if found is None else _counterpart(b, found, vector, listed),
                alignment=dict(alignment or {}),
            )
        )
    return out


def _counterpart(
    b: SpaceView, found: int, vector: np.ndarray, listed: NeighborList
) -> dict[str, object]:
    """B's own token: its id, label, cosine with the mapped vector, and its rank in the list
    (None when it is not listed)."""
    unit = core.unit_vector(vector)
    cosine = float(core.exact_scores(b.unit, unit, np.asarray([found]))[0])
    rank = next((n.rank for n in listed.neighbors if n.id == found), None)
    return {"id": found, "label": b.shown(found)[1], "similarity": cosine, "rank": rank}
