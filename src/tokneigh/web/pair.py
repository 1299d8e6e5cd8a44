"""The second model of ``tokneigh serve --against B``: B's neighbour list beside A's for the same
query, the tokens both lists hold, the query's drift, and the drift ranking.

Which token of B is which of A is the one matching rule (``tokens/matching.py``, as ``diff``
and ``align`` use it), computed when the server starts (a fraction of a second): a shared
neighbour is a token of A's list whose counterpart is in B's list, never two equal raw
strings. The query is the same text for both models, each tokenizing it itself; a ``#N`` query
names A's token N, and B's list is that of its counterpart (none: B's column says so).

The drift is ``Embeddings.align`` (1 − cos of A's vector mapped and B's, every compared pair,
most moved first), kept in A's cache entry: computed once, on its own thread as the Map's
layout is, started with the server; requests meanwhile answer at once (202 from
``/api/drift``, ``"status": "computing"`` in the pair's lists).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from starlette.requests import Request
from starlette.responses import Response

from ..analyses.matching import match_views
from ..analyses.queries import parse_query_text
from ..errors import TokneighError
from .background import Once
from .guards import json_response
from .params import FILTERS, BadRequest, Params, Refused

if TYPE_CHECKING:
    from ..analyses.filters import Filters
    from ..api.embeddings import Embeddings
    from ..results import Alignment
    from .worker import Worker

# B's metrics are the worker's spaces under these names (one worker: one thread for both).
B_PREFIX = "b:"
MAX_DRIFT_ROWS = 1000  # rows of the ranking one request may ask for

NOT_SERVED = "this server serves one model: start it with --against B to compare two"


@dataclass
class Pair:
    """B (its embeddings under each of A's metrics), which of its tokens is which of A's, and
    the alignment of A to B (computed on its own thread)."""

    a: Embeddings  # A and B as loaded: what the alignment reads
    b: Embeddings
    spaces: Mapping[str, Embeddings]  # B under each metric A is served with, by the same names
    counterpart_a: np.ndarray  # B's id of each id of A (-1: none), by the matching rule
    counterpart_b: np.ndarray  # A's id of each id of B (-1: none)
    alignment: Once[Alignment] = field(init=False)
    _rank_of: np.ndarray | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        a, b = self.a, self.b
        # top=0: the page lists the ranking itself (/api/drift), with no neighbour lists to rank.
        self.alignment = Once(lambda _: a.align(b, top=0, neighbors=0), name="tokneigh-align")

    @classmethod
    def of(cls, a: Embeddings, b: Embeddings, spaces: Mapping[str, Embeddings]) -> Pair:
        """A and B paired by the matching rule (special tokens by name too: a list that
        includes them links them)."""
        matched = match_views(a.view, b.view)
        counterpart_a = np.full(a.vocab_size, -1, dtype=np.int64)
        counterpart_b = np.full(b.vocab_size, -1, dtype=np.int64)
        counterpart_a[matched.ids_a] = matched.ids_b
        counterpart_b[matched.ids_b] = matched.ids_a
        return cls(a, b, spaces, counterpart_a, counterpart_b)

    def worker_spaces(self) -> dict[str, Embeddings]:
        return {B_PREFIX + name: space for name, space in self.spaces.items()}

    def health(self) -> dict[str, Any]:
        b = self.b
        return {
            "model": b.model,
            "embeddings": b.embeddings,
            "vocab_size": b.vocab_size,
            "dim": b.dim,
            "matched": int(np.count_nonzero(self.counterpart_a >= 0)),
            "alignment": self.status(),
        }

    def status(self) -> str:
        job = self.alignment
        if not job.finished.is_set():
            return "computing"
        return "failed" if job.error is not None else "ready"

    def ready(self) -> Alignment | None:
        """The alignment if it is done (its error raised if it failed), else None."""
        job = self.alignment
        if not job.finished.is_set():
            return None
        if job.error is not None:
            raise job.error
        assert job.result is not None
        return job.result

    def ranking(self, alignment: Alignment) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        assert alignment.ranking is not None  # align_views always sets it
        return alignment.ranking

    def rank_of(self, alignment: Alignment) -> np.ndarray:
        """The 0-based place in the ranking of each id of A (-1: not compared)."""
        if self._rank_of is None:
            ids_a = self.ranking(alignment)[0]
            ranks = np.full(self.a.vocab_size, -1, dtype=np.int64)
            ranks[ids_a] = np.arange(ids_a.size)
            self._rank_of = ranks
        return self._rank_of

    def b_query(self, query: str) -> str:
        """B's query for A's: the same text, or for ``#N`` the id of A's token N's counterpart
        (TokneighError when it has none)."""
        parsed = parse_query_text(query, self.a.vocab_size)
        if isinstance(parsed, str):
            return query
        partner = int(self.counterpart_a[parsed])
        if partner < 0:
            raise TokneighError(f"token #{parsed} of A has no counterpart in B")
        return f"#{partner}"

    def query_drift(self, query_ids: list[int]) -> dict[str, Any] | None:
        """How far a one-token query moved (its place in the ranking), or the alignment's
        status; None for a query of several tokens or one that is not compared."""
        if self.status() == "computing":
            return {"status": "computing"}
        try:
            alignment = self.ready()
        except Exception as exc:  # noqa: BLE001 - the lists stand without the drift
            return {"status": "failed", "error": str(exc)}
        assert alignment is not None
        if len(query_ids) != 1:
            return None
        place = int(self.rank_of(alignment)[query_ids[0]])
        if place < 0:
            return None
        ids_a, ids_b, drift = self.ranking(alignment)
        return {
            "status": "ready",
            "rank": place + 1,
            "of": int(ids_a.size),
            "id_a": int(ids_a[place]),
            "id_b": int(ids_b[place]),
            "drift": float(drift[place]),
        }

    def shared(self, listed_a: list[int], listed_b: list[int]) -> list[dict[str, int]]:
        """The tokens of A's list whose counterpart is in B's list, in A's order."""
        in_b = set(listed_b)
        partners = [(i, int(self.counterpart_a[i])) for i in listed_a]
        return [{"a": i, "b": j} for i, j in partners if j >= 0 and j in in_b]

    def drift_rows(self, alignment: Alignment, offset: int, top: int) -> list[dict[str, Any]]:
        ids_a, ids_b, drift = self.ranking(alignment)
        rows = []
        for place in range(offset, min(offset + top, ids_a.size)):
            i, j = int(ids_a[place]), int(ids_b[place])
            text, label_a = self.a.view.shown(i)
            rows.append(
                {
                    "rank": place + 1,
                    "id_a": i,
                    "id_b": j,
                    "token": text,
                    "label_a": label_a,
                    "label_b": self.b.view.shown(j)[1],
                    "drift": float(drift[place]),
                }
            )
        return rows


Answer = Callable[[Request, Callable[[], "asyncio.Future[Any]"]], Awaitable[Any]]
Handler = Callable[[Request], Awaitable[Response]]


def pair_handlers(
    pair: Pair | None,
    worker: Worker,
    answer: Answer,
    metric_of: Callable[[Params], str],
    max_k: int,
) -> tuple[Handler, Handler]:
    """The handlers of ``/api/pair/neighbors`` and ``/api/drift`` (404 without B). ``answer``
    runs a worker job for a request; ``metric_of`` reads its metric as ``/api/neighbors`` does."""

    def served() -> Pair:
        if pair is None:
            raise Refused(NOT_SERVED, 404)
        return pair

    async def neighbors(request: Request) -> Response:
        p = Params(request, {"q", "k", "metric", "exclude_query"} | FILTERS)
        query, k, filters = p.query("q"), p.integer("k", 20, 1, max_k), p.filters()
        name, exclude = metric_of(p), p.flag("exclude_query")
        both = served()

        def ask(space: str, text: str, filters: Filters = filters) -> Any:
            return answer(request, lambda: worker.neighbors(space, text, k, filters, exclude))

        async def in_b() -> tuple[dict[str, Any] | None, str | None]:
            try:  # B failing (no counterpart, nothing passes) leaves A's list standing
                text = both.b_query(query)
                return (await ask(B_PREFIX + name, text)).to_json(), None
            except TokneighError as exc:
                return None, str(exc)

        # One after the other: each waits on the request's disconnect, which one reader watches.
        a_json = (await ask(name, query)).to_json()
        b_json, b_error = await in_b()
        listed_b = [n["id"] for n in b_json["neighbors"]] if b_json else []
        body = {
            "a": a_json,
            "b": b_json,
            "b_error": b_error,
            "shared": both.shared([n["id"] for n in a_json["neighbors"]], listed_b),
            "drift": both.query_drift(a_json["query_ids"]),
        }
        return json_response(body)

    async def drift(request: Request) -> Response:
        p = Params(request, {"top", "offset"})
        top = p.integer("top", 50, 0, MAX_DRIFT_ROWS)
        offset = p.integer("offset", 0, 0, 2**31)
        both = served()
        both.alignment.start()  # started with the app; again is a no-op
        for _ in range(10):  # a cached alignment is read at once: answer it without a poll
            if both.alignment.finished.is_set():
                break
            await asyncio.sleep(0.05)
        alignment = both.ready()
        if alignment is None:
            seconds = round(both.alignment.seconds, 1)
            return json_response({"status": "computing", "seconds": seconds}, 202)
        total = int(both.ranking(alignment)[0].size)
        if offset > total:
            raise BadRequest(f"parameter 'offset' is past the ranking's {total:,} tokens")
        rows = await answer(
            request, lambda: worker.call(lambda: both.drift_rows(alignment, offset, top), "drift")
        )
        summary = alignment.to_json()
        del summary["drift"]  # top=0: the rows below are the ranking
        body = {"status": "ready", **summary, "total": total, "offset": offset, "rows": rows}
        return json_response(body)

    return neighbors, drift
