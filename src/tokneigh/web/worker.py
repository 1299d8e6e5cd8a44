"""The server's model work, on one thread: neighbour queries that arrive together share one
matrix-matrix product.

One query reads the whole matrix (154 MB for GPT-2) for a single matrix-vector product, so
on a small machine concurrent requests answered one by one are bound by memory bandwidth. The
worker takes every neighbour query waiting when it is free and answers those that ask the
same thing (metric, k, filters) with one ``neighbors_many`` call: one product for all of them,
the same rows bit for bit as each alone.

A product costs about the same for 2 queries as for 16 here (BLAS packs the whole matrix
either way), so batches should be full. Under load they would not be: clients answered
together come back a few at a time, the first few would start the next product alone, and
the rest would wait a whole product for the one after (batches of 2, 14, 2, 14...). So when
one of the last two batches held several queries, the worker waits up to ``GATHER_SECONDS``
for as many as the larger held, as dynamic batching servers do (Triton's queue delay, TF
Serving's batch timeout). After lone queries it never waits: one client in a loop is not
slowed.

One thread also means the ``Embeddings`` objects are never used by two threads at once.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..analyses.filters import Filters
from ..api.embeddings import Embeddings
from ..errors import TokneighError
from ..results import NeighborList

# Queries answered by one product at most: bounds the score block (64 x vocab float32, 13 MB
# for GPT-2) and how long the last query of a batch waits for the first.
MAX_BATCH = 64
# How long the worker waits, after a batch of several queries, for the next one to fill.
GATHER_SECONDS = 0.005


@dataclass
class _Job:
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    # A neighbour query (batched with others of the same key), or any other call.
    key: Hashable | None = None
    query: str | int | None = None
    call: Callable[[], Any] | None = None


@dataclass(frozen=True)
class NeighborsKey:
    """What must be equal for neighbour queries to share a product."""

    metric: str
    k: int
    filters: Filters
    exclude_query: bool


@dataclass
class BatchStats:
    """How the worker has batched: products run, and queries answered by them."""

    products: int = 0
    queries: int = 0
    largest: int = 0


class Worker:
    """Runs model work for an asyncio server on one thread, batching neighbour queries."""

    def __init__(self, spaces: Mapping[str, Embeddings], max_batch: int = MAX_BATCH) -> None:
        self._spaces = spaces
        self._max_batch = max_batch
        self._jobs: deque[_Job] = deque()
        self._wake = threading.Condition()
        self._stopping = False
        self._recent = deque([0, 0], maxlen=2)  # neighbour queries in the last two batches
        self.stats = BatchStats()
        self._thread = threading.Thread(target=self._run, name="tokneigh-worker", daemon=True)
        self._thread.start()

    def close(self) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify()
        self._thread.join()

    async def neighbors(
        self, metric: str, query: str | int, k: int, filters: Filters, exclude_query: bool
    ) -> NeighborList:
        """``Embeddings.neighbors`` under ``metric``, batched with concurrent queries."""
        job = self._job(key=NeighborsKey(metric, k, filters, exclude_query), query=query)
        return await job.future  # type: ignore[no-any-return]

    async def call(self, function: Callable[[], Any]) -> Any:
        """Run ``function`` on the worker thread, in turn with the other jobs."""
        return await self._job(call=function).future

    def _job(self, **what: Any) -> _Job:
        loop = asyncio.get_running_loop()
        job = _Job(loop.create_future(), loop, **what)
        with self._wake:
            self._jobs.append(job)
            self._wake.notify()
        return job

    # --- the thread -----------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._jobs and not self._stopping:
                    self._wake.wait()
                expected = min(max(self._recent), self._max_batch)
                if expected > 1:
                    deadline = time.monotonic() + GATHER_SECONDS
                    while len(self._jobs) < expected and not self._stopping:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            break
                        self._wake.wait(left)
                if self._stopping:
                    return
                jobs = list(self._jobs)
                self._jobs.clear()
            self._recent.append(sum(1 for job in jobs if job.call is None))
            self._work(jobs)

    def _work(self, jobs: list[_Job]) -> None:
        groups: dict[Hashable, list[_Job]] = {}
        for job in jobs:
            if job.call is not None:
                self._settle(job, job.call)
            else:
                groups.setdefault(job.key, []).append(job)
        for key, group in groups.items():
            assert isinstance(key, NeighborsKey)
            for start in range(0, len(group), self._max_batch):
                self._answer(key, group[start : start + self._max_batch])

    def _answer(self, key: NeighborsKey, group: Sequence[_Job]) -> None:
        emb = self._spaces[key.metric]

        def ask(queries: Sequence[str | int]) -> list[NeighborList]:
            return emb.neighbors_many(
                list(queries), k=key.k, exclude_query=key.exclude_query, filters=key.filters
            )

        # A query the model refuses (an unknown id, text that yields no token) fails alone:
        # check each first, then rank the rest together.
        good: list[_Job] = []
        for job in group:
            assert job.query is not None
            try:
                emb.query_tokens(job.query)
            except TokneighError as exc:
                _deliver(job, None, exc)
            else:
                good.append(job)
        if not good:
            return
        try:
            results = ask([job.query for job in good])  # type: ignore[misc]
        except TokneighError:
            # Refused as a batch (e.g. a query whose tokens' vectors cancel out): one by one,
            # so each query gets its own answer or error.
            for job in good:
                self._settle(job, lambda job=job: ask([job.query])[0])  # type: ignore[misc]
            return
        except BaseException as exc:  # noqa: BLE001 - a bug must reach each request, not kill the thread
            for job in good:
                _deliver(job, None, exc)
            return
        self._count(len(good))
        for job, result in zip(good, results):
            _deliver(job, result, None)

    def _count(self, size: int) -> None:
        stats = self.stats
        stats.products += 1
        stats.queries += size
        stats.largest = max(stats.largest, size)

    @staticmethod
    def _settle(job: _Job, function: Callable[[], Any]) -> None:
        try:
            result = function()
        except BaseException as exc:  # noqa: BLE001 - delivered to the request that asked
            _deliver(job, None, exc)
        else:
            _deliver(job, result, None)


def _deliver(job: _Job, result: Any, error: BaseException | None) -> None:
    def settle() -> None:
        if job.future.done():  # the client went away and the request was cancelled
            return
        if error is not None:
            job.future.set_exception(error)
        else:
            job.future.set_result(result)

    try:
        job.loop.call_soon_threadsafe(settle)
    except RuntimeError:  # the event loop has closed: the server is shutting down
        pass
