"""Queries: the token ids a text or an id stands for, the vector a query is ranked by, and the
rows that cannot be one. A query is text (several tokens mean the mean of their unit vectors),
an ``int`` token id, or a vector (an array, or a ``vectors.VectorQuery`` that names its file).

One id syntax for every surface (arguments, batch files, the shell, the page, the API): the
text ``#N`` (``#`` and ASCII digits, nothing around them) is token id N, and a leading
backslash before ``#`` asks for the literal text (``\\#2332`` is the text "#2332"; ``\\\\#2332``
is "\\#2332"). ``parse_query_text`` is the one place that decides.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import EmptyQueryError, TokenIdError, UsageError
from ..results import Query, VectorSource
from ..space import core

if TYPE_CHECKING:
    from .vectors import VectorQuery
    from .view import SpaceView

QueryLike = str | int
# Text, a token id, or a vector (an array, or a ``vectors.VectorQuery`` that names its file).
AnyQuery = Any


def _text_in_message(text: str) -> str:
    # A 100,000-character query must not become a 100,000-character error line.
    return repr(text) if len(text) <= 60 else repr(text[:57]) + "..."


# Longer than any vocabulary's ids (and short enough for int() of any length limit).
MAX_ID_DIGITS = 18


def parse_query_text(text: str, vocab_size: int | None = None) -> str | int:
    """What a query written as text means: ``#N`` is token id N (checked against
    ``vocab_size`` when given: TokenIdError outside it); ``\\#...`` is the text ``#...`` (one
    leading backslash removed, so any text starting with backslashes and ``#`` can be
    written); any other text is itself. A backslash escape rather than a ``--text`` flag: it
    works the same in every surface (an argument, a line of a file or of the shell, a page's
    field, a Python string), and a real token that starts with '#' ("#", "##ing") is still
    reachable as text or as its id."""
    if text.startswith("#"):
        digits = text[1:]
        if digits.isascii() and digits.isdigit():
            if len(digits) > MAX_ID_DIGITS:
                within = "" if vocab_size is None else f" 0..{vocab_size - 1}"
                raise UsageError(
                    f"token id #{digits[:MAX_ID_DIGITS]}... is outside{within or ' any vocabulary'}"
                )
            token_id = int(digits)
            if vocab_size is not None and token_id >= vocab_size:
                raise TokenIdError(token_id, vocab_size)
            return token_id
        return text
    if text.startswith("\\") and text.lstrip("\\").startswith("#"):
        return text[1:]
    return text


def query_tokens(view: SpaceView, query: QueryLike) -> Query:
    """The token ids a query stands for, validated against the embedding matrix. Text is read
    by ``parse_query_text``: ``#N`` is token id N, ``\\#...`` the literal text ``#...``."""
    if isinstance(query, str):
        query = parse_query_text(query, view.vocab_size)
    if isinstance(query, (int, np.integer)) and not isinstance(query, bool):
        token_id = int(query)
        if not 0 <= token_id < view.vocab_size:
            raise TokenIdError(token_id, view.vocab_size)
        check_usable(view, [token_id], f"token #{token_id}")
        text, label = view.shown(token_id)
        return Query(None, token_id, [token_id], [text or ""], [label])
    if not isinstance(query, str):
        raise UsageError(f"a query is text or a token id, not {type(query).__name__}")
    if not query.strip():
        raise EmptyQueryError("the query is empty or only whitespace")
    tokens = view.tokenize(query)
    if not tokens.ids:
        raise UsageError(f"{_text_in_message(query)} tokenizes to no tokens for {view.model}")
    beyond = [i for i in tokens.ids if i >= view.vocab_size]
    if beyond:
        raise UsageError(
            f"{_text_in_message(query)} has token id {beyond[0]}, beyond the embedding "
            f"matrix ({view.vocab_size} rows)"
        )
    check_usable(view, tokens.ids, _text_in_message(query))
    return Query(query, None, tokens.ids, tokens.tokens, tokens.labels, unknown=tokens.unknown)


def check_usable(view: SpaceView, ids: Sequence[int], what: str) -> None:
    """Refuse a row with no direction (NaN or infinite values, all zero) as a query."""
    for i in ids:
        if i in view.non_finite or i in view.zero:
            why = "holds NaN or infinite values" if i in view.non_finite else "is all zero"
            raise UsageError(
                f"{what} cannot be ranked against: the embedding row of token id {i} {why}, "
                "so it has no direction"
            )


def vector(view: SpaceView, query: QueryLike) -> np.ndarray:
    """The unit vector of a query (the normalized mean of its tokens' unit vectors)."""
    return core.query_vector(view.unit, query_tokens(view, query).ids)


def raw_vector(view: SpaceView, query: QueryLike) -> np.ndarray:
    """The raw embedding of a query (the mean of its tokens' raw rows)."""
    ids = query_tokens(view, query).ids
    unit = view.cached_unit  # the cached rows, whatever the metric compares
    return (unit[ids] * view.norms[ids, None]).mean(axis=0, dtype=np.float64)


def centroid(view: SpaceView) -> VectorQuery:
    """The mean raw row (of the rows with a direction), as a vector query."""
    from ..space.metrics import mean_row
    from .vectors import VectorQuery

    usable = np.ones(view.vocab_size, dtype=bool)
    usable[view.unusable] = False
    mean = mean_row(view.cached_unit, view.norms, usable)
    return VectorQuery(mean, VectorSource(centroid=True))


def parse(view: SpaceView, query: AnyQuery) -> tuple[Query, np.ndarray | None]:
    """A query's tokens, and for a vector query its (checked, float64) vector."""
    if isinstance(query, np.integer):
        query = int(query)
    if isinstance(query, (str, int)):  # the usual case: no import
        return query_tokens(view, query), None
    from .vectors import VectorQuery, checked

    if isinstance(query, np.ndarray):
        query = VectorQuery(np.asarray(query), VectorSource())
    if not isinstance(query, VectorQuery):
        return query_tokens(view, query), None  # refuses it, naming its type
    if view.metric.transforms:
        raise UsageError(
            f"a vector is ranked by cosine or csls, not {view.metric.name} (which "
            "compares transformed rows)"
        )
    return Query(None, None, [], [], [], query.origin), checked(query, view.dim)
