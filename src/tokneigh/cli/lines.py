"""Input lines, as the shell and ``--queries FILE`` read them: what makes a line hold no query,
and neighbour queries answered together with each line's own result or error. Both report a
bad line and go on with the others."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class TooLong:
    """A line over the size limit, dropped as it was read (memory stays bounded)."""

    def __init__(self, size: int) -> None:
        self.size = size


Line = str | None | TooLong  # None: a line that is not UTF-8


def decode(raw: bytes) -> str | None:
    """A line's text, None when it is not UTF-8."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def line_problem(line: Line) -> str | None:
    """Why a line holds no query (not UTF-8, over the size limit, blank), or None."""
    if line is None:
        return "the line is not valid UTF-8 text"
    if isinstance(line, TooLong):
        from ..api.vocabulary import MAX_TEXT_BYTES

        return f"the line has {line.size:,} bytes; a line holds at most {MAX_TEXT_BYTES:,}"
    if not line.strip():
        return "the line is empty: nothing to look up"
    return None


def neighbors_each(emb: Any, queries: Sequence[Any], **options: Any) -> list[Any]:
    """Each query's neighbour list (``emb.neighbors_many`` with ``options``), or the exception
    that refused it, in order. The queries the model accepts are ranked together (one
    product); when that batch fails as a whole, each is asked alone for its own answer."""
    outcome: list[Any] = []
    valid: list[Any] = []
    for query in queries:
        try:
            emb.query_tokens(query)
        except Exception as exc:  # noqa: BLE001 - this query's answer is its error
            outcome.append(exc)
        else:
            outcome.append(None)
            valid.append(query)
    try:
        answers = iter(emb.neighbors_many(valid, **options) if valid else [])
    except Exception:  # noqa: BLE001 - refused as a batch: one by one below
        answers = None
    for at, (query, done) in enumerate(zip(queries, outcome, strict=True)):
        if done is not None:
            continue
        if answers is not None:
            outcome[at] = next(answers)
            continue
        try:
            outcome[at] = emb.neighbors_many([query], **options)[0]
        except Exception as exc:  # noqa: BLE001
            outcome[at] = exc
    return outcome
